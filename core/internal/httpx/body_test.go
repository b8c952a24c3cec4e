package httpx_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

func TestReadBody(t *testing.T) {
	const limit = 1 << 10
	answerErr := func(w http.ResponseWriter, err error) {
		httpx.WriteError(w, core.ErrorCode(err), core.ErrorMessage(err))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /read", func(w http.ResponseWriter, r *http.Request) {
		data, err := httpx.ReadBody(w, r, limit, "test body", 0)
		if err != nil {
			answerErr(w, err)
			return
		}
		_ = httpx.WriteJSON(w, http.StatusOK, len(data))
	})
	mux.HandleFunc("POST /idle", func(w http.ResponseWriter, r *http.Request) {
		if _, err := httpx.ReadBody(w, r, limit, "test body", 200*time.Millisecond); err != nil {
			answerErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	base := serve(t, httpx.Guard{Name: "test"}.Wrap(mux))

	if a := do(t, "POST", base+"/read", strings.NewReader(strings.Repeat("x", limit))); a.status != 200 || a.body != "1024\n" {
		t.Errorf("at the limit: %d %q", a.status, a.body)
	}
	// Over the limit by Content-Length: refused before reading.
	do(t, "POST", base+"/read", strings.NewReader(strings.Repeat("x", limit+1))).
		want(t, 413, core.ETOOLARGE, "test body is larger than the limit of 1 KiB")
	// Over the limit in a chunked stream, with no length to check first.
	do(t, "POST", base+"/read", struct{ io.Reader }{strings.NewReader(strings.Repeat("x", 3*limit))}).
		want(t, 413, core.ETOOLARGE, "1 KiB")
	// A stalled body is abandoned after the idle time.
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write([]byte("some")) }() // then nothing, until the test ends
	t.Cleanup(func() { pw.Close() })
	start := time.Now()
	do(t, "POST", base+"/idle", pr).want(t, 400, core.EINVALID, "test body: the client sent nothing for 200ms")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the stalled body was abandoned after %v", d)
	}
	// A body that keeps sending is never cut by the idle time.
	pr2, pw2 := io.Pipe()
	go func() {
		for i := 0; i < 4; i++ {
			_, _ = pw2.Write([]byte("slow"))
			time.Sleep(100 * time.Millisecond)
		}
		pw2.Close()
	}()
	if a := do(t, "POST", base+"/idle", pr2); a.status != 204 {
		t.Errorf("a slow body that keeps sending: %d %q", a.status, a.body)
	}
}

func TestTooLarge(t *testing.T) {
	for limit, want := range map[int64]string{
		4 << 30: "4 GiB", 1 << 20: "1 MiB", 4 << 10: "4 KiB", 1500: "1500 bytes", 1: "1 bytes",
	} {
		err := httpx.TooLarge("upload", limit)
		if core.ErrorCode(err) != core.ETOOLARGE || err.Error() != "upload is larger than the limit of "+want {
			t.Errorf("TooLarge(%d) = %v", limit, err)
		}
	}
}
