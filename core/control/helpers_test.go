package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/control"
)

// childSocketEnv, when set, makes the test binary act as a control client
// on that socket (see TestPeerUID) instead of running tests.
const childSocketEnv = "CAMPAIGND_CONTROL_TEST_CHILD_SOCKET"

// childResult is what the child prints.
type childResult struct {
	UID     int    `json:"uid"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// fakeServerEnv, when set, makes the test binary serve a fake daemon on
// that socket (see TestClientRefusesForeignServer).
const fakeServerEnv = "CAMPAIGND_CONTROL_TEST_FAKE_SERVER"

func TestMain(m *testing.M) {
	if path := os.Getenv(fakeServerEnv); path != "" {
		serveFake(path)
		os.Exit(0)
	}
	if path := os.Getenv(childSocketEnv); path != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := &control.Client{SocketPath: path}
		_, err := c.Campaigns(ctx)
		_ = json.NewEncoder(os.Stdout).Encode(childResult{UID: os.Geteuid(), Code: core.ErrorCode(err), Message: core.ErrorMessage(err)})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// shortDir is a fresh directory with a path short enough for Unix sockets
// (t.TempDir can exceed the 108-byte limit).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// startServer listens and serves svc on cfg (a socket in a short temp dir
// unless cfg names one) and shuts it down when the test ends.
func startServer(t *testing.T, svc core.Service, cfg control.ServerConfig) (*control.Server, *control.Client) {
	t.Helper()
	if cfg.SocketPath == "" {
		cfg.SocketPath = filepath.Join(shortDir(t), "campaignd.sock")
	}
	if cfg.Version == "" {
		cfg.Version = "test"
	}
	srv := control.NewServer(svc, cfg)
	if err := srv.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, &control.Client{SocketPath: cfg.SocketPath}
}

// rawHTTP is an HTTP client on a socket that does no mapping, to see the
// wire. It dials with (*control.Client).Dial, whose connections let an
// answer the server wrote before hanging up win over the broken pipe of a
// body still being sent.
func rawHTTP(path string) *http.Client {
	c := &control.Client{SocketPath: path}
	return &http.Client{Transport: &http.Transport{
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return c.Dial(ctx) },
		DisableKeepAlives: true,
	}}
}

// rawResponse is an answer as it came over the wire.
type rawResponse struct {
	Status int
	Header http.Header
	Body   string
	Err    control.ErrorBody // decoded when the body is an error answer
}

// raw sends one request and returns the answer undecoded (and the error
// body decoded if there is one).
func raw(t *testing.T, path, method, target string, body io.Reader, header ...string) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, "http://campaignd"+target, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := rawHTTP(path).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, target, err)
	}
	rr := rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	if resp.StatusCode >= 400 {
		var er control.ErrorResponse
		dec := json.NewDecoder(strings.NewReader(rr.Body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&er); err != nil || er.Error.Code == "" {
			t.Fatalf("%s %s: %d answer is not an error body: %q (%v)", method, target, resp.StatusCode, rr.Body, err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: error Content-Type %q", method, target, ct)
		}
		rr.Err = er.Error
	}
	return rr
}

// wantRawError checks an error answer's status, code and that its message
// contains each of parts.
func wantRawError(t *testing.T, rr rawResponse, status int, code string, parts ...string) {
	t.Helper()
	if rr.Status != status || rr.Err.Code != code {
		t.Fatalf("got %d %q (%q), want %d %q", rr.Status, rr.Err.Code, rr.Err.Message, status, code)
	}
	for _, p := range parts {
		if !strings.Contains(rr.Err.Message, p) {
			t.Errorf("message %q does not contain %q", rr.Err.Message, p)
		}
	}
}

// wantCode checks that err is a *core.Error with code whose message
// contains each of parts.
func wantCode(t *testing.T, err error, code string, parts ...string) *core.Error {
	t.Helper()
	var ce *core.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *core.Error", err, err)
	}
	if ce.Code != code {
		t.Fatalf("code %q (%v), want %q", ce.Code, err, code)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err.Error(), p)
		}
	}
	return ce
}

// lineLen is the length of every line lines generates.
const lineLen = len("user000000000@example.org,Someone Quite Ordinary 000000000\n")

// lines is an io.Reader of n generated CSV lines of lineLen bytes,
// produced as it is read: nothing of the whole exists in memory.
type lines struct {
	n, i int
	line []byte
	off  int
}

func (l *lines) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if l.off == len(l.line) {
			if l.i == l.n {
				if total == 0 {
					return 0, io.EOF
				}
				return total, nil
			}
			l.line = fmt.Appendf(l.line[:0], "user%09d@example.org,Someone Quite Ordinary %09d\n", l.i, l.i)
			l.off = 0
			l.i++
		}
		c := copy(p, l.line[l.off:])
		p, l.off, total = p[c:], l.off+c, total+c
	}
	return total, nil
}
