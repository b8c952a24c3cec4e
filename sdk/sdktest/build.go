package sdktest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/campaignd/campaignd/sdk/plugin"
)

// BinDirEnv names a directory of prebuilt plugin executables
// (plugin.PluginPrefix + name, as `make build` writes them into bin/).
// When it is set, BuildPlugin takes a plugin from there instead of
// building it.
const BinDirEnv = "CAMPAIGND_BIN_DIR"

// builds is the build-once cache of BuildPlugin for this process.
var builds struct {
	mu    sync.Mutex
	dir   string                 // where this process's builds go; "" until the first one
	byPkg map[string]*buildEntry // keyed by the package's absolute directory (or import path)
	names map[string]string      // executable name -> the key that owns it
}

type buildEntry struct {
	once sync.Once
	path string
	err  error
}

// BuildPlugin returns the path of the sender plugin executable built from
// the main package pkg, as `go build` takes it from the working directory
// (".", "./testdata/myplugin", "../../plugins/smtp", or an import path).
// The executable is named plugin.PluginPrefix + the last element of pkg's
// directory: "../../plugins/smtp" is campaignd-sender-smtp.
//
// When BinDirEnv is set and holds an executable of that name, its absolute
// path is returned and nothing is built: `make test` prebuilds every
// first-party plugin. Otherwise pkg is built once per process: every later
// call for the same package returns the first call's result, error
// included, without building again. Everything it builds in a process goes
// into one temporary directory, so that directory can serve as a host's
// plugin directory; two packages whose executables would have the same
// name are refused. RemoveBuilt deletes the directory: call it at the end
// of TestMain.
//
// BuildPlugin needs no *testing.T, so TestMain can call it before the tests
// run; it is safe for concurrent use. A failed build's error carries the
// compiler's output.
func BuildPlugin(pkg string) (string, error) {
	key, name, err := buildKey(pkg)
	if err != nil {
		return "", fmt.Errorf("sdktest: build plugin %s: %w", pkg, err)
	}
	builds.mu.Lock()
	e := builds.byPkg[key]
	if e == nil {
		if owner, taken := builds.names[name]; taken {
			builds.mu.Unlock()
			return "", fmt.Errorf("sdktest: build plugin %s: %s is already built from %s", pkg, name, owner)
		}
		if builds.byPkg == nil {
			builds.byPkg, builds.names = map[string]*buildEntry{}, map[string]string{}
		}
		e = &buildEntry{}
		builds.byPkg[key], builds.names[name] = e, key
	}
	builds.mu.Unlock()
	e.once.Do(func() { e.path, e.err = prebuiltOrBuild(pkg, name) })
	return e.path, e.err
}

// buildKey returns the cache key of pkg and its executable's name.
func buildKey(pkg string) (key, name string, err error) {
	key = pkg
	if pkg == "." || pkg == ".." || strings.HasPrefix(pkg, "./") || strings.HasPrefix(pkg, "../") || filepath.IsAbs(pkg) {
		if key, err = filepath.Abs(pkg); err != nil {
			return "", "", err
		}
	}
	base := filepath.Base(key)
	if base == "." || base == string(filepath.Separator) || strings.Contains(base, "...") {
		return "", "", errors.New("not a single main package")
	}
	return key, plugin.PluginPrefix + base, nil
}

// prebuiltOrBuild returns name from BinDirEnv when it is there, or builds
// pkg as name into this process's build directory.
func prebuiltOrBuild(pkg, name string) (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		path, err := filepath.Abs(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("sdktest: %s: %w", BinDirEnv, err)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return path, nil
		}
	}
	dir, err := buildDir()
	if err != nil {
		return "", fmt.Errorf("sdktest: build plugin %s: %w", pkg, err)
	}
	out := filepath.Join(dir, name)
	if err := goBuild(pkg, out); err != nil {
		return "", err
	}
	return out, nil
}

// buildDir returns this process's build directory, creating it on first use.
func buildDir() (string, error) {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "campaignd-plugins-")
		if err != nil {
			return "", err
		}
		builds.dir = dir
	}
	return builds.dir, nil
}

// RemoveBuilt deletes every executable BuildPlugin built in this process
// and forgets them, so a later BuildPlugin builds afresh. Prebuilt
// executables from BinDirEnv are left alone. Call it after the tests have
// run (at the end of TestMain), not while a test still uses a plugin.
func RemoveBuilt() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
	}
	builds.dir, builds.byPkg, builds.names = "", nil, nil
}

// Build compiles the plugin's main package pkg (as `go build` takes it,
// e.g. "." or "./cmd/myplugin") into tb's temporary directory and returns
// the executable's path; it is removed when tb ends. It fails the test when
// the build fails. To build a plugin once for many tests, call BuildPlugin
// from TestMain instead.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "campaignd-sender-under-test")
	if err := goBuild(pkg, out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// goBuild runs `go build -o out pkg`.
func goBuild(pkg, out string) error {
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		return fmt.Errorf("sdktest: build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
