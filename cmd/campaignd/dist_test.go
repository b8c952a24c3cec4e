package main_test

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// scripts/dist.sh (make dist) packages the binaries in CAMPAIGND_BIN_DIR
// into campaignd-VERSION-OS-ARCH.tar.gz with a .sha256 beside it: the
// binaries, the example config, deploy/ and the README, and SHA256SUMS
// listing every file. The packaged campaignd reports the version the name
// carries, and a plugin's line in SHA256SUMS, pasted into sha256 in
// [senders.NAME], lets that plugin run (and a wrong one stops it).
func TestDist(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command(filepath.Join("..", "..", "scripts", "dist.sh"), out)
	cmd.Env = append(os.Environ(), "CAMPAIGND_BIN_DIR="+binDir)
	printed, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dist.sh: %v\n%s", err, printed)
	}
	tarball := strings.TrimSpace(string(printed))
	name := strings.TrimSuffix(filepath.Base(tarball), ".tar.gz")
	if filepath.Dir(tarball) != out || !strings.HasPrefix(name, "campaignd-") ||
		!strings.HasSuffix(name, "-"+runtime.GOOS+"-"+runtime.GOARCH) {
		t.Fatalf("dist.sh printed %q", printed)
	}
	version := strings.TrimSuffix(strings.TrimPrefix(name, "campaignd-"), "-"+runtime.GOOS+"-"+runtime.GOARCH)

	// The tarball's own checksum.
	sum, err := os.ReadFile(tarball + ".sha256")
	if err != nil {
		t.Fatal(err)
	}
	if want := fileSHA256(t, tarball) + "  " + name + ".tar.gz\n"; string(sum) != want {
		t.Fatalf("%s.sha256: %q, want %q", name, sum, want)
	}

	// Its contents, extracted.
	dir := t.TempDir()
	extract(t, tarball, dir)
	root := filepath.Join(dir, name)
	var files []string
	err = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	want := []string{"README.md", "SHA256SUMS", "campaignd", "campaignd-sender-outbox", "campaignd-sender-sendgrid",
		"campaignd-sender-smtp", "campaignd.toml.example", "deploy/campaignd-tick.service", "deploy/campaignd-tick.timer",
		"deploy/campaignd.env.example", "deploy/campaignd.service", "deploy/campaignd.toml"}
	if !slices.Equal(files, want) {
		t.Fatalf("tarball holds %v, want %v", files, want)
	}
	sums := map[string]string{}
	f, err := os.Open(filepath.Join(root, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		h, file, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", sc.Text())
		}
		sums[file] = h
	}
	f.Close()
	for _, file := range want {
		if file == "SHA256SUMS" {
			continue
		}
		if got := fileSHA256(t, filepath.Join(root, file)); sums[file] != got {
			t.Errorf("SHA256SUMS says %s is %q; it is %s", file, sums[file], got)
		}
	}
	if len(sums) != len(want)-1 {
		t.Errorf("SHA256SUMS lists %d files, want %d", len(sums), len(want)-1)
	}

	// The packaged binary says what it is.
	vout, err := exec.Command(filepath.Join(root, "campaignd"), "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Version, Commit, Go, Platform string }
	if err := json.Unmarshal(vout, &v); err != nil {
		t.Fatalf("version --json %q: %v", vout, err)
	}
	if v.Version != version || v.Commit == "" || v.Go != runtime.Version() || v.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("version --json: %+v, want version %s", v, version)
	}

	// The checksum pasted into the config lets the plugin run.
	for _, tc := range []struct {
		sha  string
		sent int64
	}{{sums["campaignd-sender-outbox"], 1}, {strings.Repeat("0", 64), 0}} {
		e := NewEnv(t, "plugin_dir = "+quote(root)+"\ndefault_sender = \"pinned\"\n[senders.pinned]\nplugin = \"outbox\"\nsha256 = "+quote(tc.sha)+"\n")
		startSendingCampaign(t, e, "email,name\na@example.com,A\n")
		e.Run("tick")
		if got := dlvShow(t, e, 1); got.Stats.Sent != tc.sent {
			t.Errorf("plugin pinned to sha256 %s: sent %d, want %d", tc.sha[:8], got.Stats.Sent, tc.sent)
		}
	}
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// extract unpacks a .tar.gz into dir (regular files and directories only).
func extract(t *testing.T, tarball, dir string) {
	t.Helper()
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("tarball entry %q escapes its directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			w, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, tr); err != nil {
				t.Fatal(err)
			}
			w.Close()
		default:
			t.Fatalf("tarball entry %q of type %c", h.Name, h.Typeflag)
		}
	}
}
