package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/control"
)

// FuzzDecodeRequest posts arbitrary bodies, with a declared length or
// chunked, to the real control server on a real socket for the three
// routes that decode a JSON object (create campaign, add recipient,
// suppress), answered by the recording fake service. Invariants:
//   - never a 5xx, never a panic (the server's recovery would log one and
//     answer 500);
//   - every answer is 2xx, 400 EINVALID or 413 ETOOLARGE, errors in the
//     {"error": {...}} shape;
//   - a body over the limit is 413 whether its length was declared or not;
//   - a refused request reaches the service not at all;
//   - a body with a field the wire type does not have, invalid UTF-8, more
//     than one JSON value, or anything but one JSON object is refused;
//   - an accepted body is exactly what an independent strict decoder makes
//     of it, and that is what the service received.

// fuzzMaxBody is the fuzz server's body limit: small, so the fuzzer
// reaches it.
const fuzzMaxBody = 4 << 10

type fuzzRoute struct {
	path   string
	status int    // on success
	call   string // the fake's method
	wire   func() any
}

var fuzzRoutes = []fuzzRoute{
	{"/v1/campaigns", http.StatusCreated, "CreateCampaign", func() any { return new(core.CampaignSpec) }},
	{"/v1/campaigns/7/recipients", http.StatusOK, "AddRecipient", func() any { return new(core.RecipientInput) }},
	{"/v1/suppressions", http.StatusNoContent, "Suppress", func() any { return new(core.Suppression) }},
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []struct {
		route   uint8
		body    string
		chunked bool
	}{
		{0, `{"name":"spring","sender":"smtp","from":"a@example.org","subject":"Hi","text":"x","headers":[{"Name":"X-A","Value":"1"}]}`, false},
		{0, `{"name":"spring","bogus":1}`, false},
		{0, `{"name":"spring","headers":[{"Name":"X-A","Value":"1","Extra":true}]}`, true},
		{0, `{"NAME":"case","Sender":"smtp"}`, false},
		{0, `{"name":"x"} {"name":"y"}`, false},
		{0, `{"name":"a","name":"b"}`, false},
		{0, `{"concurrency":1e400}`, false},
		{0, `{"batch_size":-9223372036854775809}`, false},
		{0, "{\"name\":\"\xff\"}", false},
		{0, `{"name":"` + strings.Repeat("x", fuzzMaxBody) + `"}`, false},
		{0, `{"name":"` + strings.Repeat("x", fuzzMaxBody) + `"}`, true},
		{1, `{"email":"ann@example.org","name":"Ann","attrs":{"city":"Oslo"}}`, false},
		{1, `{"email":"ann@example.org","attrs":{"city":5}}`, true},
		{1, `{"email":"ann@example.org\r\nBcc: x@example.net"}`, false},
		{1, `[]`, false},
		{1, `null`, false},
		{1, ``, false},
		{1, `{"email":"a@b.org","extra":true}`, false},
		{1, strings.Repeat("[", 5000), true},
		{2, `{"email":"gone@example.org","reason":"bounce","source":"operator","created_at":"2025-01-01T00:00:00Z"}`, false},
		{2, `{"email":"gone@example.org","created_at":"yesterday"}`, false},
		{2, `{"email":"gone@example.org"}trailing`, true},
		{2, "\ufeff{}", false},
	} {
		f.Add(s.route, s.body, s.chunked)
	}
	sockPath, fake := startFuzzServer(f)
	c := &control.Client{SocketPath: sockPath}
	hc := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return c.Dial(ctx) },
		},
	}
	f.Fuzz(func(t *testing.T, route uint8, body string, chunked bool) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = struct{ io.Reader }{rd} // unknown length: Transfer-Encoding: chunked
		}
		req, err := http.NewRequest("POST", "http://campaignd"+rt.path, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", rt.path, err)
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("read answer: %v", err)
		}
		calls := fake.take()
		st := resp.StatusCode

		if st >= 500 {
			t.Fatalf("POST %s %q: %d %s", rt.path, body, st, answer)
		}
		if len(body) > fuzzMaxBody && st != http.StatusRequestEntityTooLarge {
			t.Fatalf("a %d-byte body (limit %d, chunked %v) answered %d, want 413: %s", len(body), fuzzMaxBody, chunked, st, answer)
		}
		if st != rt.status {
			var er control.ErrorResponse
			dec := json.NewDecoder(bytes.NewReader(answer))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&er); err != nil {
				t.Fatalf("%d answer is not an error body: %q (%v)", st, answer, err)
			}
			switch {
			case st == http.StatusBadRequest && er.Error.Code == core.EINVALID:
			case st == http.StatusRequestEntityTooLarge && er.Error.Code == core.ETOOLARGE:
			default:
				t.Fatalf("unexpected answer %d %q: %s", st, er.Error.Code, er.Error.Message)
			}
			if len(calls) != 0 {
				t.Fatalf("a refused request (%d %s) reached the service: %+v", st, er.Error.Message, calls)
			}
			return
		}

		// Accepted: it must be one strict JSON object of the wire type.
		if len(calls) != 1 || calls[0].Name != rt.call {
			t.Fatalf("accepted, but the service saw %+v", calls)
		}
		if !utf8.ValidString(body) {
			t.Fatalf("a body with invalid UTF-8 was accepted: %q", body)
		}
		if unknown := unknownField(body, reflect.TypeOf(rt.wire()).Elem()); unknown != "" {
			t.Fatalf("a body with the unknown field %q was accepted: %q", unknown, body)
		}
		want := rt.wire()
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(want); err != nil {
			t.Fatalf("accepted a body a strict decoder refuses (%v): %q", err, body)
		}
		if _, err := dec.Token(); err != io.EOF {
			t.Fatalf("accepted a body with data after the object: %q", body)
		}
		if strings.TrimSpace(body)[0] != '{' {
			t.Fatalf("accepted a body that is not an object: %q", body)
		}
		got := calls[0].Args[len(calls[0].Args)-1]
		if !reflect.DeepEqual(got, reflect.ValueOf(want).Elem().Interface()) {
			t.Fatalf("the service got %#v, the body says %#v", got, want)
		}
	})
}

// startFuzzServer serves a fresh fake on a socket in a short directory
// for the whole fuzz run (each fuzz worker process has its own).
func startFuzzServer(tb testing.TB) (string, *fakeService) {
	dir, err := os.MkdirTemp("", "cdfz")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	fake := &fakeService{}
	srv := control.NewServer(fake, control.ServerConfig{
		SocketPath: filepath.Join(dir, "s.sock"), MaxBodyBytes: fuzzMaxBody, Version: "fuzz",
		BodyReadTimeout: 10 * time.Second,
	})
	if err := srv.Listen(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return srv.SocketPath(), fake
}

// unknownField returns the first object key in body that names no field
// of typ (matching as encoding/json does, case-insensitively), descending
// into nested objects and arrays of known struct-typed fields; "" if there
// is none or body is not a JSON object.
func unknownField(body string, typ reflect.Type) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(body), &obj) != nil {
		return ""
	}
	for k, v := range obj {
		f, ok := fieldFor(typ, k)
		if !ok {
			return k
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
			var items []json.RawMessage
			if json.Unmarshal(v, &items) == nil && ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Time{}) {
				for _, it := range items {
					if u := unknownField(string(it), ft); u != "" {
						return k + "." + u
					}
				}
			}
		}
	}
	return ""
}

// fieldFor finds the struct field encoding/json would decode key into.
func fieldFor(typ reflect.Type, key string) (reflect.StructField, bool) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.EqualFold(name, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
