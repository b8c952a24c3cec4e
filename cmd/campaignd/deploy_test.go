package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The systemd units in deploy/ are checked directive by directive: every
// section and key is one this test knows, every value parses, and the
// paths, user and group agree with deploy/campaignd.toml. Then, where
// systemd-analyze is installed, systemd itself verifies them.

// deployDir is deploy/ from cmd/campaignd.
var deployDir = filepath.Join("..", "..", "deploy")

// unitLine is one directive of a unit file.
type unitLine struct {
	section, key, value string
	line                int
}

// unitFile is a parsed unit file: its directives in order.
type unitFile struct {
	name  string
	lines []unitLine
}

// get returns the values of section.key in order.
func (u *unitFile) get(section, key string) []string {
	var vs []string
	for _, l := range u.lines {
		if l.section == section && l.key == key {
			vs = append(vs, l.value)
		}
	}
	return vs
}

// one returns the single value of section.key, failing the test unless
// there is exactly one.
func (u *unitFile) one(t *testing.T, section, key string) string {
	t.Helper()
	vs := u.get(section, key)
	if len(vs) != 1 {
		t.Fatalf("%s: [%s] %s set %d times, want once", u.name, section, key, len(vs))
	}
	return vs[0]
}

// parseUnit reads a unit file as systemd does (systemd.syntax(7)): [Section]
// headers, Key=Value lines, # and ; comments. Line continuations are not
// used in our units and are refused, so each directive is one line here.
func parseUnit(t *testing.T, path string) *unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := &unitFile{name: filepath.Base(path)}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasSuffix(line, "\\"):
			t.Fatalf("%s:%d: line continuation: keep each directive on one line", u.name, n)
		case strings.HasPrefix(line, "["):
			if !strings.HasSuffix(line, "]") {
				t.Fatalf("%s:%d: bad section header %q", u.name, n, line)
			}
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s:%d: %q is not Key=Value inside a section", u.name, n, line)
		}
		u.lines = append(u.lines, unitLine{section: section, key: strings.TrimSpace(k), value: strings.TrimSpace(v), line: n})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// Value checkers: nil when v is a valid value of the directive.
type checker func(v string) error

var (
	timespanRE  = regexp.MustCompile(`^([0-9]+(us|ms|s|sec|m|min|h|d)?\s*)+$`)
	unitNameRE  = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]+\.(service|target|timer|socket|mount|path)$`)
	calendarRE  = regexp.MustCompile(`^[0-9*,./:~ -]+$|^(minutely|hourly|daily|weekly|monthly|yearly)$`)
	dirNameRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]*(/[a-z][a-z0-9_-]*)*$`)
	userNameRE  = regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`)
	addrFamRE   = regexp.MustCompile(`^AF_[A-Z0-9]+$`)
	execPathRE  = regexp.MustCompile(`^[-@:+!]*/[^ ]+( .*)?$`)
	envFileRE   = regexp.MustCompile(`^-?/[^ ]+$`)
	documentRE  = regexp.MustCompile(`^(https?|man|file|info):\S+$`)
	octalModeRE = regexp.MustCompile(`^0?[0-7]{3,4}$`)
)

func oneOf(vals ...string) checker {
	return func(v string) error {
		if !slices.Contains(vals, v) {
			return fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
		}
		return nil
	}
}

func matches(re *regexp.Regexp) checker {
	return func(v string) error {
		if !re.MatchString(v) {
			return fmt.Errorf("%q does not match %s", v, re)
		}
		return nil
	}
}

// each applies c to every space-separated word of a value.
func each(c checker) checker {
	return func(v string) error {
		words := strings.Fields(v)
		if len(words) == 0 {
			return fmt.Errorf("empty list")
		}
		for _, w := range words {
			if err := c(w); err != nil {
				return err
			}
		}
		return nil
	}
}

func nonEmpty(v string) error {
	if v == "" {
		return fmt.Errorf("empty")
	}
	return nil
}

func empty(v string) error {
	if v != "" {
		return fmt.Errorf("%q: want empty (no capabilities)", v)
	}
	return nil
}

func integer(v string) error {
	if _, err := strconv.ParseUint(v, 10, 64); err != nil {
		return fmt.Errorf("%q is not a number", v)
	}
	return nil
}

var boolean = oneOf("yes", "no", "true", "false", "on", "off", "1", "0")

// knownDirectives lists every section and key our units may use, each with
// its value's syntax (systemd.unit(5), systemd.service(5), systemd.exec(5),
// systemd.kill(5), systemd.timer(5)).
var knownDirectives = map[string]map[string]checker{
	"Unit": {
		"Description":   nonEmpty,
		"Documentation": each(matches(documentRE)),
		"After":         each(matches(unitNameRE)),
		"Wants":         each(matches(unitNameRE)),
	},
	"Service": {
		"Type":                    oneOf("simple", "exec", "forking", "oneshot", "dbus", "notify", "idle"),
		"NotifyAccess":            oneOf("none", "main", "exec", "all"),
		"User":                    matches(userNameRE),
		"Group":                   matches(userNameRE),
		"EnvironmentFile":         matches(envFileRE),
		"ExecStart":               matches(execPathRE),
		"ExecReload":              matches(execPathRE),
		"KillMode":                oneOf("control-group", "mixed", "process", "none"),
		"TimeoutStopSec":          matches(timespanRE),
		"TimeoutStartSec":         matches(timespanRE),
		"Restart":                 oneOf("no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always"),
		"RestartSec":              matches(timespanRE),
		"StateDirectory":          each(matches(dirNameRE)),
		"StateDirectoryMode":      matches(octalModeRE),
		"RuntimeDirectory":        each(matches(dirNameRE)),
		"RuntimeDirectoryMode":    matches(octalModeRE),
		"UMask":                   matches(octalModeRE),
		"NoNewPrivileges":         boolean,
		"ProtectSystem":           oneOf("yes", "no", "true", "false", "full", "strict"),
		"ProtectHome":             oneOf("yes", "no", "true", "false", "read-only", "tmpfs"),
		"PrivateTmp":              boolean,
		"PrivateDevices":          boolean,
		"ProtectKernelTunables":   boolean,
		"ProtectKernelModules":    boolean,
		"ProtectKernelLogs":       boolean,
		"ProtectControlGroups":    boolean,
		"ProtectClock":            boolean,
		"ProtectHostname":         boolean,
		"RestrictAddressFamilies": each(matches(addrFamRE)),
		"RestrictNamespaces":      boolean,
		"RestrictRealtime":        boolean,
		"RestrictSUIDSGID":        boolean,
		"LockPersonality":         boolean,
		"SystemCallArchitectures": oneOf("native"),
		"CapabilityBoundingSet":   empty,
		"LimitNOFILE":             integer,
	},
	"Timer": {
		"OnCalendar":  matches(calendarRE),
		"AccuracySec": matches(timespanRE),
		"Persistent":  boolean,
		"Unit":        matches(unitNameRE),
	},
	"Install": {
		"WantedBy": each(matches(unitNameRE)),
	},
}

// Installed paths the units and deploy/campaignd.toml agree on.
const (
	installedBinary = "/usr/local/bin/campaignd"
	installedConfig = "/etc/campaignd/campaignd.toml"
	installedEnv    = "/etc/campaignd/campaignd.env"
)

func TestDeployUnits(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(deployDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	units := map[string]*unitFile{}
	for _, p := range paths {
		if ext := filepath.Ext(p); ext == ".service" || ext == ".timer" {
			units[filepath.Base(p)] = parseUnit(t, p)
		}
	}
	for _, want := range []string{"campaignd.service", "campaignd-tick.service", "campaignd-tick.timer"} {
		if units[want] == nil {
			t.Fatalf("deploy/%s is missing (found %v)", want, paths)
		}
	}
	// Every directive is known and its value parses; none is set twice.
	for name, u := range units {
		seen := map[string]bool{}
		for _, l := range u.lines {
			keys, ok := knownDirectives[l.section]
			if !ok {
				t.Errorf("%s:%d: unknown section [%s]", name, l.line, l.section)
				continue
			}
			check, ok := keys[l.key]
			if !ok {
				t.Errorf("%s:%d: unknown key %s in [%s]", name, l.line, l.key, l.section)
				continue
			}
			if err := check(l.value); err != nil {
				t.Errorf("%s:%d: %s=%s: %v", name, l.line, l.key, l.value, err)
			}
			if seen[l.section+"."+l.key] {
				t.Errorf("%s:%d: %s set twice", name, l.line, l.key)
			}
			seen[l.section+"."+l.key] = true
		}
	}

	// The paths agree with the packaged configuration.
	cfg, err := loadConfig(filepath.Join(deployDir, "campaignd.toml"))
	if err != nil {
		t.Fatalf("deploy/campaignd.toml: %v", err)
	}
	svc, tick, timer := units["campaignd.service"], units["campaignd-tick.service"], units["campaignd-tick.timer"]
	for _, u := range []*unitFile{svc, tick} {
		exec := strings.Fields(u.one(t, "Service", "ExecStart"))
		if exec[0] != installedBinary || len(exec) < 4 || exec[1] != "--config" || exec[2] != installedConfig {
			t.Errorf("%s: ExecStart %v, want %s --config %s ...", u.name, exec, installedBinary, installedConfig)
		}
		if u.one(t, "Service", "User") != "campaignd" || u.one(t, "Service", "Group") != "campaignd" {
			t.Errorf("%s: must run as User=campaignd Group=campaignd", u.name)
		}
		if got := u.one(t, "Service", "EnvironmentFile"); strings.TrimPrefix(got, "-") != installedEnv {
			t.Errorf("%s: EnvironmentFile=%s, want %s", u.name, got, installedEnv)
		}
		if got := "/var/lib/" + u.one(t, "Service", "StateDirectory"); filepath.Dir(cfg.Database) != got {
			t.Errorf("%s: StateDirectory is %s, the database %s", u.name, got, cfg.Database)
		}
		for _, k := range []string{"NoNewPrivileges", "PrivateTmp"} {
			if u.one(t, "Service", k) != "yes" {
				t.Errorf("%s: %s must be yes", u.name, k)
			}
		}
		if u.one(t, "Service", "ProtectSystem") != "strict" || u.one(t, "Service", "ProtectHome") != "yes" {
			t.Errorf("%s: want ProtectSystem=strict and ProtectHome=yes", u.name)
		}
		fams := strings.Fields(u.one(t, "Service", "RestrictAddressFamilies"))
		slices.Sort(fams)
		if !slices.Equal(fams, []string{"AF_INET", "AF_INET6", "AF_UNIX"}) {
			t.Errorf("%s: RestrictAddressFamilies %v, want AF_UNIX (control and plugin sockets) AF_INET AF_INET6 (SMTP, HTTPS)", u.name, fams)
		}
	}
	if exec := strings.Fields(svc.one(t, "Service", "ExecStart")); exec[len(exec)-1] != "serve" {
		t.Errorf("campaignd.service runs %v, want serve", exec)
	}
	if exec := strings.Fields(tick.one(t, "Service", "ExecStart")); exec[len(exec)-1] != "tick" {
		t.Errorf("campaignd-tick.service runs %v, want tick", exec)
	}
	if svc.one(t, "Service", "Type") != "notify" || tick.one(t, "Service", "Type") != "oneshot" {
		t.Errorf("types: campaignd.service must be notify, the tick oneshot")
	}
	if got := "/run/" + svc.one(t, "Service", "RuntimeDirectory"); filepath.Dir(cfg.socketPath()) != got {
		t.Errorf("RuntimeDirectory is %s, the socket %s", got, cfg.socketPath())
	}
	// The operators' group reaches the socket: the group of the runtime
	// directory (the service's) may search it, and the socket's group may
	// read and write it.
	mode, err := cfg.socketMode()
	if err != nil {
		t.Fatal(err)
	}
	dirMode, _ := strconv.ParseUint(svc.one(t, "Service", "RuntimeDirectoryMode"), 8, 32)
	if cfg.SocketGroup != svc.one(t, "Service", "Group") || mode&0o060 != 0o060 || dirMode&0o010 == 0 {
		t.Errorf("socket_group %q mode %o, runtime directory mode %o: the campaignd group cannot reach the socket", cfg.SocketGroup, mode, dirMode)
	}
	// The daemon outlives its shutdown_timeout before systemd kills it.
	if got := svc.one(t, "Service", "TimeoutStopSec"); parseSeconds(t, got) <= cfg.ShutdownTimeout.Duration.Seconds() {
		t.Errorf("TimeoutStopSec=%s is not above shutdown_timeout %s", got, cfg.ShutdownTimeout.Duration)
	}
	if svc.one(t, "Service", "KillMode") != "mixed" {
		t.Errorf("campaignd.service: KillMode=mixed, so the daemon stops its plugins itself")
	}
	if got := timer.one(t, "Timer", "Unit"); units[got] != tick {
		t.Errorf("the timer starts %s, want campaignd-tick.service", got)
	}
	if cfg.PluginDir != "/usr/local/libexec/campaignd" {
		t.Errorf("plugin_dir %s: the README installs plugins into /usr/local/libexec/campaignd", cfg.PluginDir)
	}

	t.Run("systemd-analyze", func(t *testing.T) {
		sa, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze is not installed: only the directive checks above ran")
		}
		// systemd-analyze wants ExecStart's binary to exist: point the
		// copies at this test binary.
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		var args []string
		for name := range units {
			b, err := os.ReadFile(filepath.Join(deployDir, name))
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), installedBinary, self)), 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, p)
		}
		slices.Sort(args)
		out, err := exec.Command(sa, append([]string{"verify"}, args...)...).CombinedOutput()
		// It exits 0 on unknown keys, only warning: any output fails.
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
}

// parseSeconds reads a plain systemd timespan in seconds ("60", "60s",
// "2min").
func parseSeconds(t *testing.T, v string) float64 {
	t.Helper()
	m := regexp.MustCompile(`^([0-9]+)(s|sec|min)?$`).FindStringSubmatch(v)
	if m == nil {
		t.Fatalf("timespan %q: use seconds or minutes", v)
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	if m[2] == "min" {
		n *= 60
	}
	return n
}
