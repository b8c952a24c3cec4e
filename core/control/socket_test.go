package control_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/control"
)

// staleSocket leaves a socket file at path that nobody listens on, as a
// daemon killed with SIGKILL does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
}

// entries lists dir's names.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestSocketMode(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   control.ServerConfig
		mode  os.FileMode
		group int
	}{
		{"default", control.ServerConfig{}, 0o600, -1},
		{"configured", control.ServerConfig{Mode: 0o660}, 0o660, -1},
		{"group by gid", control.ServerConfig{Mode: 0o660, Group: "65534"}, 0o660, 65534},
		{"group by name", control.ServerConfig{Mode: 0o660, Group: "root"}, 0o660, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.group >= 0 && os.Geteuid() != 0 {
				t.Skip("chown to another group needs root")
			}
			dir := shortDir(t)
			tc.cfg.SocketPath = filepath.Join(dir, "campaignd.sock")
			startServer(t, &fakeService{}, tc.cfg)
			fi, err := os.Lstat(tc.cfg.SocketPath)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != tc.mode {
				t.Errorf("mode %v, want socket %v", fi.Mode(), tc.mode)
			}
			if tc.group >= 0 {
				if gid := int(fi.Sys().(*syscall.Stat_t).Gid); gid != tc.group {
					t.Errorf("gid %d, want %d", gid, tc.group)
				}
			}
			// The private directory the socket was made in is gone.
			if names := entries(t, dir); len(names) != 1 || names[0] != "campaignd.sock" {
				t.Errorf("directory holds %v", names)
			}
		})
	}
}

func TestListenErrors(t *testing.T) {
	dir := shortDir(t)
	// Something that is not a socket is never replaced.
	path := filepath.Join(dir, "campaignd.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := control.NewServer(&fakeService{}, control.ServerConfig{SocketPath: path}).Listen()
	if err == nil || !strings.Contains(err.Error(), "regular file") {
		t.Fatalf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Fatalf("the file was touched")
	}
	// A missing directory, an unknown group and an over-long path fail
	// cleanly, leaving nothing behind.
	for _, cfg := range []control.ServerConfig{
		{SocketPath: filepath.Join(dir, "missing", "campaignd.sock")},
		{SocketPath: filepath.Join(dir, "g.sock"), Group: "no-such-group-campaignd"},
		{SocketPath: filepath.Join(dir, strings.Repeat("x", 120))},
	} {
		if err := control.NewServer(&fakeService{}, cfg).Listen(); err == nil {
			t.Errorf("Listen(%+v) succeeded", cfg)
		}
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v", names)
	}
	// Listening twice is an error.
	srv, _ := startServer(t, &fakeService{}, control.ServerConfig{})
	if err := srv.Listen(); err == nil {
		t.Error("second Listen succeeded")
	}
	// Serve without Listen is an error.
	if err := control.NewServer(&fakeService{}, control.ServerConfig{}).Serve(); err == nil {
		t.Error("Serve without Listen succeeded")
	}
}

func TestNoDaemon(t *testing.T) {
	dir := shortDir(t)
	ctx := context.Background()
	check := func(what string, c *control.Client) {
		t.Helper()
		_, err := c.Status(ctx)
		if !errors.Is(err, control.ErrNoDaemon) {
			t.Fatalf("%s: %v is not ErrNoDaemon", what, err)
		}
		wantCode(t, err, core.EUNAVAILABLE, c.SocketPath)
		_, err = c.ImportRecipients(ctx, 1, core.FormatCSV, strings.NewReader("a@b.org\n"))
		if !errors.Is(err, control.ErrNoDaemon) {
			t.Fatalf("%s: import: %v is not ErrNoDaemon", what, err)
		}
	}
	check("missing socket", &control.Client{SocketPath: filepath.Join(dir, "missing.sock")})
	check("missing directory", &control.Client{SocketPath: filepath.Join(dir, "nodir", "x.sock")})
	stale := filepath.Join(dir, "stale.sock")
	staleSocket(t, stale)
	check("stale socket", &control.Client{SocketPath: stale})
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	check("regular file", &control.Client{SocketPath: plain})

	// The zero Client dials DefaultSocketPath in the working directory.
	t.Chdir(dir)
	check("zero client", &control.Client{})
	srv, _ := startServer(t, &fakeService{}, control.ServerConfig{SocketPath: control.DefaultSocketPath})
	if _, err := new(control.Client).Status(ctx); err != nil {
		t.Fatalf("zero client with a daemon: %v", err)
	}
	_ = srv
}

func TestStaleSocketReplaced(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "campaignd.sock")
	staleSocket(t, path)
	if _, err := (&control.Client{SocketPath: path}).Status(context.Background()); !errors.Is(err, control.ErrNoDaemon) {
		t.Fatalf("before: %v", err)
	}
	_, c := startServer(t, &fakeService{}, control.ServerConfig{SocketPath: path})
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("after: %v", err)
	}
}

func TestShutdownRemovesSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "campaignd.sock")
	fake := &fakeService{}
	started, release := make(chan struct{}), make(chan struct{})
	fake.tickFn = func(ctx context.Context) (*core.TickResult, error) {
		close(started)
		<-release
		return fxTick, nil
	}
	srv := control.NewServer(fake, control.ServerConfig{SocketPath: path})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	c := &control.Client{SocketPath: path}
	ticked := make(chan error, 1)
	go func() {
		_, err := c.Tick(context.Background(), "")
		ticked <- err
	}()
	<-started
	// Graceful: the in-flight tick finishes and answers.
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := <-ticked; err != nil {
		t.Fatalf("in-flight tick: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket still there: %v", err)
	}
	if _, err := c.Status(context.Background()); !errors.Is(err, control.ErrNoDaemon) {
		t.Fatalf("after shutdown: %v", err)
	}
}

// Shutdown bounded by its context closes what is still running.
func TestShutdownDeadline(t *testing.T) {
	fake := &fakeService{}
	started := make(chan struct{})
	fake.importFn = func(ctx context.Context, r io.Reader) (*core.ImportResult, error) {
		close(started)
		_, err := io.Copy(io.Discard, r)
		return nil, err
	}
	path := filepath.Join(shortDir(t), "campaignd.sock")
	srv := control.NewServer(fake, control.ServerConfig{SocketPath: path})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	// An import that never ends, but keeps sending. (A reader that blocks
	// forever also blocks the client's transport until it returns: that is
	// net/http's behaviour, and the reason the CLI reads files, not waits.)
	imported := make(chan error, 1)
	go func() {
		_, err := (&control.Client{SocketPath: path}).ImportRecipients(context.Background(), 7, core.FormatCSV, trickle{})
		imported <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	select {
	case err := <-imported:
		if err == nil {
			t.Fatal("import succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the import was not cut off")
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket still there: %v", err)
	}
}

// trickle is an endless, slow import.
type trickle struct{}

func (trickle) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return copy(p, "a@b.org\n"), nil
}

// A 50 MB import streams through client and server without either holding
// it in memory.
func TestStreamedImportBoundedMemory(t *testing.T) {
	const size = 50 << 20
	n := size/lineLen + 1
	fake := &fakeService{}
	var got, newlines atomic.Int64
	fake.importFn = func(ctx context.Context, r io.Reader) (*core.ImportResult, error) {
		buf := make([]byte, 64<<10)
		for {
			k, err := r.Read(buf)
			got.Add(int64(k))
			for _, b := range buf[:k] {
				if b == '\n' {
					newlines.Add(1)
				}
			}
			if err == io.EOF {
				return &core.ImportResult{Added: newlines.Load()}, nil
			}
			if err != nil {
				return nil, err
			}
		}
	}
	_, c := startServer(t, fake, control.ServerConfig{})

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	start := time.Now()
	res, err := c.ImportRecipients(context.Background(), 7, core.FormatCSV, &lines{n: n})
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	if got.Load() != int64(n*lineLen) || res.Added != int64(n) {
		t.Fatalf("server read %d bytes, %d lines; want %d, %d", got.Load(), res.Added, n*lineLen, n)
	}
	grew := int64(peak.Load()) - int64(base)
	t.Logf("%d MB in %v; heap in use grew by at most %.1f MB", got.Load()>>20, time.Since(start), float64(grew)/(1<<20))
	if grew > 8<<20 {
		t.Errorf("heap grew by %d bytes during a %d-byte import: it is being buffered", grew, got.Load())
	}
	fake.take()
}

// runChild runs this test binary as uid/gid 65534, acting as a client on
// path, and returns what it got.
func runChild(t *testing.T, dir, path string) childResult {
	t.Helper()
	cmd := exec.Command(childBinary(t, dir))
	cmd.Dir = dir
	cmd.Env = []string{childSocketEnv + "=" + path}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("child: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("child: %v", err)
	}
	var res childResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("child said %q: %v", out, err)
	}
	if res.UID != 65534 {
		t.Fatalf("child ran as uid %d", res.UID)
	}
	return res
}

// childBinary copies this test binary into dir, where uid 65534 can run
// it, and returns its path.
func childBinary(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The go build cache is not searchable by nobody: copy the binary.
	bin := filepath.Join(dir, "child.test")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
	if err == nil {
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

// TestClientRefusesForeignServer is issue 12 item 3: a user who can write
// the socket's directory serves a fake daemon there (here uid 65534); the
// client, run by root, checks the server's uid by SO_PEERCRED and refuses
// it before sending a single byte, unless that uid is in AllowUIDs.
func TestClientRefusesForeignServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a fake server as another uid")
	}
	dir := shortDir(t)
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "campaignd.sock")
	cmd := exec.Command(childBinary(t, dir))
	cmd.Dir = dir
	cmd.Env = []string{fakeServerEnv + "=" + path}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(out)
	next := func() string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("fake server ended: %v", lines.Err())
		}
		return lines.Text()
	}
	if l := next(); l != "ready" {
		t.Fatalf("fake server said %q", l)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = (&control.Client{SocketPath: path}).ImportRecipients(ctx, 1, core.FormatCSV, strings.NewReader("email\nsecret@example.org\n"))
	if core.ErrorCode(err) != core.EFORBIDDEN || !strings.Contains(err.Error(), "served by uid 65534") ||
		!strings.Contains(err.Error(), "add 65534 to allow_uids in the config this command reads") || errors.Is(err, control.ErrNoDaemon) {
		t.Fatalf("import to a server run by uid 65534: %v, want forbidden naming the uid and where to allow it", err)
	}
	if l := next(); l != "received 0" {
		t.Fatalf("the fake server got %q, want nothing", l)
	}

	conn, err := (&control.Client{SocketPath: path, AllowUIDs: []int{65534}}).Dial(ctx)
	if err != nil {
		t.Fatalf("dial with allow_uids = [65534]: %v", err)
	}
	_, _ = conn.Write([]byte("hello"))
	conn.Close()
	if l := next(); l != "received 5" {
		t.Fatalf("the allowed connection: fake server got %q", l)
	}
}

// serveFake is the fake daemon of TestClientRefusesForeignServer: it
// listens on path, says "ready", and for each of two connections says how
// many bytes it received before the client closed.
func serveFake(path string) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	for range 2 {
		conn, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := io.Copy(io.Discard, conn)
		conn.Close()
		fmt.Printf("received %d\n", n)
	}
}

func TestPeerUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another uid")
	}
	dir := shortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	// Refused: the socket's mode lets uid 65534 connect, the peer check
	// does not let it call.
	fake := &fakeService{}
	path := filepath.Join(dir, "open.sock")
	startServer(t, fake, control.ServerConfig{SocketPath: path, Mode: 0o666})
	res := runChild(t, dir, path)
	if res.Code != core.EFORBIDDEN || !strings.Contains(res.Message, "uid 65534") {
		t.Fatalf("child got %+v, want forbidden naming uid 65534", res)
	}
	fake.expectNoCalls(t)

	// Allowed when listed, and recorded as the actor.
	fake2 := &fakeService{}
	path2 := filepath.Join(dir, "allow.sock")
	startServer(t, fake2, control.ServerConfig{SocketPath: path2, Mode: 0o666, AllowUIDs: []int{1000, 65534}})
	res = runChild(t, dir, path2)
	if res.Code != "" {
		t.Fatalf("allowed child got %+v", res)
	}
	if call := fake2.expectCall(t, "Campaigns"); call.Actor != "uid 65534 via socket" {
		t.Fatalf("actor %q", call.Actor)
	}

	// With the default mode the kernel already refuses it: EFORBIDDEN
	// from the client, not ErrNoDaemon (a daemon is there).
	path3 := filepath.Join(dir, "closed.sock")
	startServer(t, &fakeService{}, control.ServerConfig{SocketPath: path3})
	res = runChild(t, dir, path3)
	if res.Code != core.EFORBIDDEN || !strings.Contains(res.Message, "permission denied") {
		t.Fatalf("child got %+v, want forbidden (permission denied)", res)
	}
}

// A body that stalls is abandoned after BodyReadTimeout; a body that ended
// leaves no deadline behind to cancel the slow work that follows.
func TestBodyReadTimeout(t *testing.T) {
	fake := &fakeService{}
	var slowCtxErr atomic.Value
	fake.importFn = func(ctx context.Context, r io.Reader) (*core.ImportResult, error) {
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		if string(b) == "slow\n" {
			time.Sleep(400 * time.Millisecond) // well past the body timeout
			slowCtxErr.Store(fmt.Sprint(ctx.Err()))
		}
		return fxImport, nil
	}
	srv, c := startServer(t, fake, control.ServerConfig{BodyReadTimeout: 150 * time.Millisecond})

	if _, err := c.ImportRecipients(context.Background(), 7, core.FormatCSV, strings.NewReader("slow\n")); err != nil {
		t.Fatalf("slow import: %v", err)
	}
	if got := slowCtxErr.Load(); got != "<nil>" {
		t.Fatalf("the request context was cancelled during the slow import: %v", got)
	}

	conn, err := net.Dial("unix", srv.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_, err = io.WriteString(conn, "POST /v1/campaigns/7/recipients:import?format=csv HTTP/1.1\r\n"+
		"Host: campaignd\r\nContent-Length: 100\r\n\r\na@b.org\n")
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	defer resp.Body.Close()
	var er control.ErrorResponse
	if err := json.NewDecoder(resp.Body).Decode(&er); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 || er.Error.Code != core.EINVALID || !strings.Contains(er.Error.Message, "sent nothing for 150ms") {
		t.Fatalf("stalled body: %d %+v", resp.StatusCode, er)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("abandoned after %v", d)
	}
	fake.take()

	// Refused before the body is read: the answer does not wait for the
	// rest of a body that never comes.
	for _, target := range []string{"/v1/campaigns/abc/execute", "/v1/campaigns/7/recipients:import?format=xml"} {
		conn, err := net.Dial("unix", srv.SocketPath())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = io.WriteString(conn, "POST "+target+" HTTP/1.1\r\nHost: campaignd\r\nContent-Length: 100\r\n\r\nab")
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: no answer: %v", target, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || !resp.Close {
			t.Errorf("%s: %d close=%v, want 400 and the connection closed", target, resp.StatusCode, resp.Close)
		}
	}
	fake.expectNoCalls(t)
}
