package httpx_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core/internal/httpx"
)

// serve runs h behind a real httpx.Server on 127.0.0.1:0 until the test
// ends, and returns its base URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httpx.NewServer("test", &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second})
	if err := s.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + s.Addr().String()
}

// answer is a finished exchange with its error envelope decoded, if any.
type answer struct {
	status int
	header http.Header
	close  bool
	body   string
	err    httpx.ErrorBody
}

// do sends one request and checks that an error answer is the envelope.
func do(t *testing.T, method, url string, body io.Reader) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, close: resp.Close, body: string(b)}
	if resp.StatusCode >= 400 {
		var er httpx.ErrorResponse
		dec := json.NewDecoder(strings.NewReader(a.body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&er); err != nil || er.Error.Code == "" {
			t.Fatalf("%s %s: %d answer is not the envelope: %q (%v)", method, url, a.status, a.body, err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: error Content-Type %q", method, url, ct)
		}
		a.err = er.Error
	}
	return a
}

// want checks an error answer's status, code and that its message contains
// each of parts.
func (a answer) want(t *testing.T, status int, code string, parts ...string) {
	t.Helper()
	if a.status != status || a.err.Code != code {
		t.Fatalf("got %d %q (%q), want %d %q", a.status, a.err.Code, a.err.Message, status, code)
	}
	for _, p := range parts {
		if !strings.Contains(a.err.Message, p) {
			t.Errorf("message %q does not contain %q", a.err.Message, p)
		}
	}
}
