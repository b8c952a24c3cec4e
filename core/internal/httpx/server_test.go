package httpx_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core/internal/httpx"
)

// Listen, Serve and Shutdown are used once each, in order.
func TestServerLifecycle(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	s := httpx.NewServer("test", &http.Server{Handler: ok})
	if s.Addr() != nil {
		t.Fatal("an address before Listen")
	}
	if err := s.Serve(); err == nil || !strings.Contains(err.Error(), "test: serve") {
		t.Fatalf("Serve before Listen: %v", err)
	}
	if err := s.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Fatal("second Listen succeeded")
	}
	// The port is taken while listening.
	if err := httpx.NewServer("other", &http.Server{}).Listen("tcp", s.Addr().String()); err == nil {
		t.Fatal("listened twice on one port")
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	if a := do(t, "GET", "http://"+s.Addr().String()+"/", nil); a.status != 204 {
		t.Fatalf("serving: %d", a.status)
	}
	if err := s.Serve(); err == nil || !strings.Contains(err.Error(), "already serving") {
		t.Fatalf("second Serve: %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if err := s.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Fatal("Listen after Shutdown succeeded")
	}

	// A server that listened but never served releases its port.
	s2 := httpx.NewServer("test", &http.Server{Handler: ok})
	if err := s2.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	addr := s2.Addr().String()
	if err := s2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	s3 := httpx.NewServer("test", &http.Server{Handler: ok})
	if err := s3.Listen("tcp", addr); err != nil {
		t.Fatalf("port not released: %v", err)
	}
	_ = s3.Shutdown(context.Background())
}

// Use serves a listener the caller made, here a Unix socket.
func TestServerUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := httpx.NewServer("test", &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = httpx.WriteJSON(w, 200, "over unix")
	})})
	if err := s.Use(ln); err != nil {
		t.Fatal(err)
	}
	if err := s.Use(ln); err == nil {
		t.Fatal("second Use succeeded")
	}
	if s.Addr().String() != path {
		t.Errorf("Addr %v", s.Addr())
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "\"over unix\"\n" {
		t.Errorf("answer %d %q", resp.StatusCode, b)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Shutdown bounded by its context closes what is still running and says
// so.
func TestShutdownDeadline(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	s := httpx.NewServer("test", &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	})})
	defer close(release)
	if err := s.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	reqErr := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
		}
		reqErr <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "test: shutdown") {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	if err := <-reqErr; err == nil {
		t.Error("the request in flight got an answer although its connection was closed")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
