package control_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/control"
	"github.com/campaignd/campaignd/sdk"
)

// method is one Service method called through the Client, with what the
// fake must receive and what the caller must get back.
type method struct {
	name string
	call func(ctx context.Context, c *control.Client) (any, error)
	args []any
	want any
}

func methods() []method {
	const id = int64(7)
	in := core.RecipientInput{Email: "ann@example.org", Name: "Ann", Attrs: map[string]string{"city": "Oslo"}}
	filter := core.RecipientFilter{Status: core.RecipientFailed, Limit: 10, AfterID: 5}
	ms := []method{
		{"CreateCampaign", func(ctx context.Context, c *control.Client) (any, error) { return c.CreateCampaign(ctx, fxSpec) },
			[]any{fxSpec}, fxCampaign},
		{"Campaign", func(ctx context.Context, c *control.Client) (any, error) { return c.Campaign(ctx, id) },
			[]any{id}, fxCampaign},
		{"Campaigns", func(ctx context.Context, c *control.Client) (any, error) { return c.Campaigns(ctx) },
			nil, []*core.Campaign{fxCampaign, fxCampaign}},
		{"Execute", func(ctx context.Context, c *control.Client) (any, error) { return c.Execute(ctx, id) },
			[]any{id}, fxExecute},
		{"Stats", func(ctx context.Context, c *control.Client) (any, error) { return c.Stats(ctx, id) },
			[]any{id}, &fxCampaign.Stats},
		{"Retry", func(ctx context.Context, c *control.Client) (any, error) { return c.Retry(ctx, id, "transient", 0) },
			[]any{id, "transient"}, fxRetry},
		{"Retry", func(ctx context.Context, c *control.Client) (any, error) { return c.Retry(ctx, id, "", 0) },
			[]any{id, ""}, fxRetry},
		{"ImportRecipients", func(ctx context.Context, c *control.Client) (any, error) {
			return c.ImportRecipients(ctx, id, core.FormatCSV, strings.NewReader("email,name\nann@example.org,Ann\n"))
		}, []any{id, core.FormatCSV, "email,name\nann@example.org,Ann\n"}, fxImport},
		{"ImportRecipients", func(ctx context.Context, c *control.Client) (any, error) {
			return c.ImportRecipients(ctx, id, core.FormatJSONL, bytes.NewBufferString(`{"email":"ann@example.org"}`+"\n"))
		}, []any{id, core.FormatJSONL, `{"email":"ann@example.org"}` + "\n"}, fxImport},
		{"AddRecipient", func(ctx context.Context, c *control.Client) (any, error) { return c.AddRecipient(ctx, id, in) },
			[]any{id, in}, fxImport},
		{"RecipientDetail", func(ctx context.Context, c *control.Client) (any, error) {
			return c.RecipientDetail(ctx, id, "ann@example.org")
		},
			[]any{id, "ann@example.org"}, fxDetail},
		// An address's characters that mean something in a path (/, %, +, ?)
		// arrive as they were sent.
		{"RecipientDetail", func(ctx context.Context, c *control.Client) (any, error) {
			return c.RecipientDetail(ctx, id, "a/b%c+d?e@example.org")
		}, []any{id, "a/b%c+d?e@example.org"}, fxDetail},
		{"Recipients", func(ctx context.Context, c *control.Client) (any, error) { return c.Recipients(ctx, id, filter) },
			[]any{id, filter}, []*core.Recipient{fxRecipient}},
		{"Recipients", func(ctx context.Context, c *control.Client) (any, error) {
			return c.Recipients(ctx, id, core.RecipientFilter{})
		}, []any{id, core.RecipientFilter{}}, []*core.Recipient{fxRecipient}},
		{"Executions", func(ctx context.Context, c *control.Client) (any, error) { return c.Executions(ctx, id) },
			[]any{id}, []*core.Execution{fxExecution}},
		{"Executions", func(ctx context.Context, c *control.Client) (any, error) { return c.Executions(ctx, 0) },
			[]any{int64(0)}, []*core.Execution{fxExecution}},
		{"Tick", func(ctx context.Context, c *control.Client) (any, error) { return c.Tick(ctx, core.TriggerCLI) },
			[]any{core.TriggerCLI}, fxTick},
		{"Tick", func(ctx context.Context, c *control.Client) (any, error) { return c.Tick(ctx, "") },
			[]any{core.TriggerSocket}, fxTick},
		{"Ticks", func(ctx context.Context, c *control.Client) (any, error) { return c.Ticks(ctx, 5) },
			[]any{5}, []*core.TickRecord{fxTickRec}},
		{"Queue", func(ctx context.Context, c *control.Client) (any, error) { return c.Queue(ctx) },
			nil, []*core.QueueSummary{fxQueue}},
		{"UnblockSender", func(ctx context.Context, c *control.Client) (any, error) { return c.UnblockSender(ctx, "mail/eu west") },
			[]any{"mail/eu west"}, fxUnblock},
		{"Verify", func(ctx context.Context, c *control.Client) (any, error) { return c.Verify(ctx, id) },
			[]any{id}, &core.VerifyReport{Campaigns: 1, Recipients: 3, Violations: []core.Violation{{CampaignID: id, Check: "counters", Message: "m"}}, Notes: []string{}}},
		{"Suppress", func(ctx context.Context, c *control.Client) (any, error) { return nil, c.Suppress(ctx, *fxSupp) },
			[]any{*fxSupp}, nil},
		{"Unsuppress", func(ctx context.Context, c *control.Client) (any, error) {
			return nil, c.Unsuppress(ctx, "odd/one+tag%20@Example.org")
		}, []any{"odd/one+tag%20@Example.org"}, nil},
		{"Suppressions", func(ctx context.Context, c *control.Client) (any, error) { return c.Suppressions(ctx, 10) },
			[]any{10}, []*core.Suppression{fxSupp}},
		{"Suppressions", func(ctx context.Context, c *control.Client) (any, error) { return c.Suppressions(ctx, 1) },
			[]any{1}, []*core.Suppression{}}, // a nil list arrives as an empty one
		{"ImportSuppressions", func(ctx context.Context, c *control.Client) (any, error) {
			return c.ImportSuppressions(ctx, "", strings.NewReader("# old list, from 2019\nann@example.org\n"), "legacy list")
		}, []any{core.ImportFormat(""), "# old list, from 2019\nann@example.org\n", "legacy list"}, fxImport},
		{"ImportSuppressions", func(ctx context.Context, c *control.Client) (any, error) {
			return c.ImportSuppressions(ctx, core.FormatCSV, strings.NewReader("email,reason\nann@example.org,x\n"), "")
		}, []any{core.FormatCSV, "email,reason\nann@example.org,x\n", ""}, fxImport},
		{"ImportSuppressions", func(ctx context.Context, c *control.Client) (any, error) {
			return c.ImportSuppressions(ctx, core.FormatList, nil, "r")
		}, []any{core.FormatList, "", "r"}, fxImport},
	}
	subject, noHeaders, conc := "Hi {{.Name}}", []sdk.Header{}, 4
	edit := core.CampaignEdit{Subject: &subject, Headers: &noHeaders, Concurrency: &conc}
	ms = append(ms,
		method{"EditCampaign", func(ctx context.Context, c *control.Client) (any, error) { return c.EditCampaign(ctx, id, edit) },
			[]any{id, edit}, fxCampaign},
		method{"CloneCampaign", func(ctx context.Context, c *control.Client) (any, error) {
			return c.CloneCampaign(ctx, id, core.CloneRequest{Name: "again", WithRecipients: true})
		}, []any{id, core.CloneRequest{Name: "again", WithRecipients: true}}, fxCampaign},
		method{"CloneCampaign", func(ctx context.Context, c *control.Client) (any, error) {
			return c.CloneCampaign(ctx, id, core.CloneRequest{})
		},
			[]any{id, core.CloneRequest{}}, fxCampaign},
		method{"DeleteCampaign", func(ctx context.Context, c *control.Client) (any, error) { return c.DeleteCampaign(ctx, id, true) },
			[]any{id, true}, fxDelete},
		method{"DeleteCampaign", func(ctx context.Context, c *control.Client) (any, error) { return c.DeleteCampaign(ctx, id, false) },
			[]any{id, false}, fxDelete},
		method{"Preview", func(ctx context.Context, c *control.Client) (any, error) {
			return c.Preview(ctx, id, "Ann+x@Example.org")
		},
			[]any{id, "Ann+x@Example.org"}, fxPreview},
		method{"Preview", func(ctx context.Context, c *control.Client) (any, error) { return c.Preview(ctx, id, "") },
			[]any{id, ""}, fxPreview},
		method{"TestSend", func(ctx context.Context, c *control.Client) (any, error) {
			return c.TestSend(ctx, id, core.TestSendRequest{To: "me@example.org", Recipient: "ann@example.org"})
		}, []any{id, core.TestSendRequest{To: "me@example.org", Recipient: "ann@example.org"}}, fxTestSend},
	)
	for _, a := range []core.Action{core.ActionActivate, core.ActionPause, core.ActionResume, core.ActionCancel} {
		ms = append(ms, method{"ChangeCampaign", func(ctx context.Context, c *control.Client) (any, error) {
			return c.ChangeCampaign(ctx, id, a)
		}, []any{id, a}, fxCampaign})
	}
	return ms
}

func TestRoundTrip(t *testing.T) {
	fake := &fakeService{}
	_, c := startServer(t, fake, control.ServerConfig{})
	ctx := context.Background()
	for _, m := range methods() {
		got, err := m.call(ctx, c)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if m.want == nil {
			if !reflect.ValueOf(&got).Elem().IsNil() {
				t.Errorf("%s: got %#v, want nothing", m.name, got)
			}
		} else if !reflect.DeepEqual(got, m.want) {
			t.Errorf("%s: got %#v, want %#v", m.name, got, m.want)
		}
		call := fake.expectCall(t, m.name, m.args...)
		if call.Actor != "uid 0 via socket" {
			t.Errorf("%s: actor %q, want %q", m.name, call.Actor, "uid 0 via socket")
		}
	}
}

func TestStatus(t *testing.T) {
	fake := &fakeService{}
	before := time.Now()
	_, c := startServer(t, fake, control.ServerConfig{Version: "1.2.3"})
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "1.2.3" || st.PID <= 0 || st.Started.Before(before.Add(-time.Second)) || st.Started.After(time.Now()) {
		t.Errorf("status = %+v", st)
	}
	fake.expectNoCalls(t)
}

// ServerConfig.Status completes the answer; its error is the route's.
func TestStatusCompleted(t *testing.T) {
	running := true
	_, c := startServer(t, &fakeService{}, control.ServerConfig{Version: "1.2.3", Status: func(ctx context.Context, st *control.Status) error {
		if !st.Daemon || st.PID == 0 || st.Version != "1.2.3" {
			t.Errorf("Status hook called with %+v", st)
		}
		st.Database, st.SchemaVersion = "/srv/c.db", 7
		st.Senders = []control.SenderStatus{{Name: "smtp", Plugin: "smtp", Path: "/p", Found: true, Running: &running, PID: 42}}
		st.LastTick = &core.TickRecord{ID: 9, Sent: 3}
		st.Queue = &control.QueueDepth{Queued: 5, Paused: 2, Campaigns: map[core.CampaignStatus]int{core.CampaignSending: 1}}
		return nil
	}})
	if st, err := c.Status(context.Background()); err != nil || st.Database != "" || !st.Daemon {
		t.Errorf("status without detail = %+v, %v; want the daemon's identity alone", st, err)
	}
	st, err := c.StatusDetail(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Daemon || st.Database != "/srv/c.db" || st.SchemaVersion != 7 || len(st.Senders) != 1 || st.Senders[0].Running == nil ||
		!*st.Senders[0].Running || st.Senders[0].PID != 42 || st.LastTick == nil || st.LastTick.Sent != 3 || st.Queue == nil ||
		st.Queue.Paused != 2 || st.Queue.Campaigns[core.CampaignSending] != 1 {
		t.Errorf("status = %+v", st)
	}
	_, c = startServer(t, &fakeService{}, control.ServerConfig{Status: func(ctx context.Context, st *control.Status) error {
		return core.Errorf(core.EUNAVAILABLE, "database gone")
	}})
	wantCode(t, func() error { _, err := c.StatusDetail(context.Background()); return err }(), "unavailable", "database gone")
}

func TestErrorCodes(t *testing.T) {
	fake := &fakeService{}
	srv, c := startServer(t, fake, control.ServerConfig{})
	ctx := context.Background()
	statuses := map[string]int{
		core.EINVALID: 400, core.ENOTFOUND: 404, core.ECONFLICT: 409, core.EFORBIDDEN: 403,
		core.ETOOLARGE: 413, core.EUNAVAILABLE: 503, core.EINTERNAL: 500,
	}
	for code, status := range statuses {
		msg := "something went " + code
		fake.setErr(core.Errorf(code, "%s", msg))
		rr := raw(t, srv.SocketPath(), "GET", "/v1/campaigns/7", nil)
		wantRawError(t, rr, status, code)
		if rr.Err.Message != msg {
			t.Errorf("%s: message %q, want %q", code, rr.Err.Message, msg)
		}
		fake.take()
		for _, m := range methods() {
			_, err := m.call(ctx, c)
			ce := wantCode(t, err, code)
			if ce.Message != msg || err.Error() != msg {
				t.Errorf("%s %s: message %q / %q, want %q", m.name, code, ce.Message, err.Error(), msg)
			}
			fake.expectCall(t, m.name, m.args...)
		}
	}

	// Not a *core.Error: internal, with the text standalone mode prints.
	fake.setErr(errors.New("disk on fire"))
	rr := raw(t, srv.SocketPath(), "POST", "/v1/campaigns/7/execute", nil)
	wantRawError(t, rr, 500, core.EINTERNAL)
	if rr.Err.Message != "internal error: disk on fire" {
		t.Errorf("message %q", rr.Err.Message)
	}
	// Wrapping context before a coded error survives the trip.
	fake.setErr(fmt.Errorf("campaign 7: %w", core.Errorf(core.ECONFLICT, "cannot pause a campaign from DRAFT to PAUSED")))
	_, err := c.ChangeCampaign(ctx, 7, core.ActionPause)
	wantCode(t, err, core.ECONFLICT)
	if err.Error() != "campaign 7: cannot pause a campaign from DRAFT to PAUSED" {
		t.Errorf("error %q", err.Error())
	}
	fake.setErr(nil)
	fake.take()
}

// A daemon (or something else on the socket) answering without the error
// shape still yields a coded error, derived from the status.
func TestClientNonAPIError(t *testing.T) {
	path := filepath.Join(shortDir(t), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/queue":
			http.Error(w, "upstream gone", http.StatusServiceUnavailable)
		case "/v1/ticks":
			_, _ = io.WriteString(w, "[{not json")
		default:
			http.Error(w, "nope", http.StatusTeapot)
		}
	})}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	c := &control.Client{SocketPath: path}
	_, err = c.Queue(context.Background())
	wantCode(t, err, core.EUNAVAILABLE, "503", "upstream gone")
	_, err = c.Campaigns(context.Background())
	wantCode(t, err, core.EINVALID, "418", "nope")
	_, err = c.Ticks(context.Background(), 0)
	wantCode(t, err, core.EINTERNAL, "decode")
}

func TestChangeCampaignRejectsOtherActions(t *testing.T) {
	fake := &fakeService{}
	_, c := startServer(t, fake, control.ServerConfig{})
	for _, a := range []core.Action{core.ActionExecute, core.ActionRetry, "explode"} {
		_, err := c.ChangeCampaign(context.Background(), 7, a)
		wantCode(t, err, core.EINVALID, string(a))
	}
	err := c.Unsuppress(context.Background(), "")
	wantCode(t, err, core.EINVALID, "email")
	_, err = c.UnblockSender(context.Background(), "")
	wantCode(t, err, core.EINVALID, "sender")
	fake.expectNoCalls(t)
}

func TestTooLarge(t *testing.T) {
	fake := &fakeService{}
	srv, c := startServer(t, fake, control.ServerConfig{MaxBodyBytes: 64 << 10, MaxImportBytes: 1 << 20})
	path := srv.SocketPath()
	big := `{"name":"` + strings.Repeat("x", 200<<10) + `"}`

	// Declared length over the limit: refused before reading.
	rr := raw(t, path, "POST", "/v1/campaigns", strings.NewReader(big), "Content-Type", "application/json")
	wantRawError(t, rr, 413, core.ETOOLARGE, "64 KiB")
	// Chunked, so only reading finds out.
	rr = raw(t, path, "POST", "/v1/campaigns", struct{ io.Reader }{strings.NewReader(big)})
	wantRawError(t, rr, 413, core.ETOOLARGE, "64 KiB")
	// Through the client.
	spec := fxSpec
	spec.Text = strings.Repeat("y", 1<<20)
	_, err := c.CreateCampaign(context.Background(), spec)
	wantCode(t, err, core.ETOOLARGE)
	fake.expectNoCalls(t)

	// Exactly at the limit is fine (and then strictly decoded).
	atLimit := `{"email":"` + strings.Repeat("a", (64<<10)-len(`{"email":""}`)) + `"}`
	rr = raw(t, path, "POST", "/v1/campaigns/7/recipients", strings.NewReader(atLimit))
	if rr.Status != 200 {
		t.Fatalf("body at the limit: %d %s", rr.Status, rr.Body)
	}
	fake.take()

	// An import past MaxImportBytes, streamed.
	_, err = c.ImportRecipients(context.Background(), 7, core.FormatCSV, &lines{n: (8 << 20) / lineLen})
	wantCode(t, err, core.ETOOLARGE, "recipients import", "1 MiB")
	fake.take()
	// An import declaring a length over the limit is refused unread.
	rr = raw(t, path, "POST", "/v1/campaigns/7/recipients:import?format=csv", bytes.NewReader(make([]byte, 2<<20)))
	wantRawError(t, rr, 413, core.ETOOLARGE)
	fake.expectNoCalls(t)
	// So is a suppressions import, streamed or declared.
	_, err = c.ImportSuppressions(context.Background(), "", &lines{n: (8 << 20) / lineLen}, "")
	wantCode(t, err, core.ETOOLARGE, "suppressions import", "1 MiB")
	fake.take()
	rr = raw(t, path, "POST", "/v1/suppressions:import", bytes.NewReader(make([]byte, 2<<20)))
	wantRawError(t, rr, 413, core.ETOOLARGE)
	fake.expectNoCalls(t)

	// The connection pool survives all that.
	if _, err := c.Campaign(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
}

func TestStrictRequests(t *testing.T) {
	fake := &fakeService{}
	srv, _ := startServer(t, fake, control.ServerConfig{})
	path := srv.SocketPath()
	for _, tc := range []struct {
		method, target, body string
		status               int
		code                 string
		parts                []string
	}{
		{"POST", "/v1/campaigns", `{"name":"x","bogus":1}`, 400, core.EINVALID, []string{`unknown field "bogus"`}},
		{"POST", "/v1/campaigns", `{"name":"x"} {"name":"y"}`, 400, core.EINVALID, []string{"after the JSON object"}},
		{"POST", "/v1/campaigns", `{"name":"x"} trailing`, 400, core.EINVALID, []string{"after the JSON object"}},
		{"POST", "/v1/campaigns", `{"name":`, 400, core.EINVALID, []string{"truncated"}},
		{"POST", "/v1/campaigns", `{"name":"x",}`, 400, core.EINVALID, []string{"invalid JSON at byte"}},
		{"POST", "/v1/campaigns", `{"concurrency":"five"}`, 400, core.EINVALID, []string{"concurrency"}},
		{"POST", "/v1/campaigns", ``, 400, core.EINVALID, []string{"required"}},
		{"POST", "/v1/campaigns", `[]`, 400, core.EINVALID, []string{"array"}},
		{"POST", "/v1/campaigns/7/recipients", `{"email":"a@b.org","extra":true}`, 400, core.EINVALID, []string{`"extra"`}},
		{"POST", "/v1/tick", `{"trigger":"cosmic-ray"}`, 400, core.EINVALID, []string{"trigger", "cosmic-ray"}},
		{"POST", "/v1/tick", `{"trigger":"socket","when":"now"}`, 400, core.EINVALID, []string{`"when"`}},
		{"POST", "/v1/campaigns/7/execute", `{}`, 400, core.EINVALID, []string{"takes none"}},
		{"POST", "/v1/senders/gmail/unblock", `{}`, 400, core.EINVALID, []string{"takes none"}},
		{"POST", "/v1/senders/gmail/unblock?force=1", ``, 400, core.EINVALID, []string{"force", "no query parameters"}},
		{"GET", "/v1/campaigns/abc", ``, 400, core.EINVALID, []string{"path parameter id", `"abc"`}},
		{"GET", "/v1/campaigns/0", ``, 400, core.EINVALID, []string{"path parameter id"}},
		{"GET", "/v1/campaigns/-3/stats", ``, 400, core.EINVALID, []string{"path parameter id"}},
		{"POST", "/v1/campaigns/7x/pause", ``, 400, core.EINVALID, []string{"path parameter id"}},
		{"GET", "/v1/campaigns/7/recipients?limit=ten", ``, 400, core.EINVALID, []string{"query parameter limit", `"ten"`}},
		{"GET", "/v1/campaigns/7/recipients?limit=-1", ``, 400, core.EINVALID, []string{"query parameter limit"}},
		{"GET", "/v1/campaigns/7/recipients?after_id=x", ``, 400, core.EINVALID, []string{"query parameter after_id"}},
		{"GET", "/v1/campaigns/7/recipients?status=LOST", ``, 400, core.EINVALID, []string{"query parameter status", "LOST"}},
		{"GET", "/v1/campaigns/7/recipients?stauts=FAILED", ``, 400, core.EINVALID, []string{"query parameter stauts", "unknown"}},
		{"GET", "/v1/campaigns/7/recipients?limit=1&limit=2", ``, 400, core.EINVALID, []string{"limit", "2 times"}},
		{"GET", "/v1/executions?campaign=seven", ``, 400, core.EINVALID, []string{"query parameter campaign"}},
		{"GET", "/v1/ticks?limit=1e3", ``, 400, core.EINVALID, []string{"query parameter limit"}},
		{"GET", "/v1/suppressions?limit=x", ``, 400, core.EINVALID, []string{"query parameter limit"}},
		{"GET", "/v1/suppressions?limit=100001", ``, 400, core.EINVALID, []string{"query parameter limit", "outside 0..100000"}},
		{"GET", "/v1/campaigns/7/recipients?limit=100001", ``, 400, core.EINVALID, []string{"query parameter limit", "outside 0..100000"}},
		{"GET", "/v1/queue?verbose=1", ``, 400, core.EINVALID, []string{"verbose", "no query parameters"}},
		{"POST", "/v1/campaigns/7/recipients:import", `a@b.org`, 400, core.EINVALID, []string{"format"}},
		{"POST", "/v1/campaigns/7/recipients:import?format=xml", `a@b.org`, 400, core.EINVALID, []string{"format", "xml"}},
		{"POST", "/v1/suppressions:import?format=jsonl", `a@b.org`, 400, core.EINVALID, []string{"format", "jsonl"}},
		{"POST", "/v1/suppressions:import?reasn=x", `a@b.org`, 400, core.EINVALID, []string{"reasn", "unknown"}},
		{"GET", "/v1/suppressions:import", ``, 405, "method_not_allowed", []string{"POST"}},
		{"POST", "/v1/campaigns/7/explode", ``, 404, core.ENOTFOUND, []string{"explode"}},
		{"GET", "/v1/nothing", ``, 404, core.ENOTFOUND, []string{"/v1/nothing"}},
		{"GET", "/", ``, 404, core.ENOTFOUND, nil},
		{"PUT", "/v1/campaigns/7", ``, 405, "method_not_allowed", []string{"PUT", "DELETE, GET, HEAD, PATCH"}},
		{"PATCH", "/v1/campaigns/7", `{"subjet":"x"}`, 400, core.EINVALID, []string{"subjet"}},
		{"PATCH", "/v1/campaigns/7", ``, 400, core.EINVALID, []string{"JSON object is required"}},
		{"DELETE", "/v1/campaigns/7?dry_run=maybe", ``, 400, core.EINVALID, []string{"dry_run", "maybe"}},
		{"DELETE", "/v1/campaigns/7?force=1", ``, 400, core.EINVALID, []string{"force", "unknown"}},
		{"POST", "/v1/campaigns/7/clone", `{"with_recipient":true}`, 400, core.EINVALID, []string{"with_recipient"}},
		{"GET", "/v1/campaigns/7/preview?email=a@b.org", ``, 400, core.EINVALID, []string{"email", "unknown"}},
		{"POST", "/v1/campaigns/7/test", ``, 400, core.EINVALID, []string{"JSON object is required"}},
		{"GET", "/v1/campaigns/7/test", ``, 405, "method_not_allowed", []string{"POST"}},
		{"PUT", "/v1/tick", ``, 405, "method_not_allowed", []string{"POST"}},
	} {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		rr := raw(t, path, tc.method, tc.target, body)
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			wantRawError(t, rr, tc.status, tc.code, tc.parts...)
		})
	}
	fake.expectNoCalls(t)

	// The import format may come from the media type instead.
	rr := raw(t, path, "POST", "/v1/campaigns/7/recipients:import", strings.NewReader(`{"email":"a@b.org"}`),
		"Content-Type", "application/x-ndjson")
	if rr.Status != 200 {
		t.Fatalf("import by media type: %d %s", rr.Status, rr.Body)
	}
	fake.expectCall(t, "ImportRecipients", int64(7), core.FormatJSONL, `{"email":"a@b.org"}`)
	// Optional bodies may be absent.
	if rr := raw(t, path, "POST", "/v1/tick", nil); rr.Status != 200 {
		t.Fatalf("tick without a body: %d %s", rr.Status, rr.Body)
	}
	fake.expectCall(t, "Tick", core.TriggerSocket)
	// Creating answers 201 with a Location.
	rr = raw(t, path, "POST", "/v1/campaigns", strings.NewReader(`{"name":"spring"}`))
	if rr.Status != 201 || rr.Header.Get("Location") != "/v1/campaigns/7" {
		t.Fatalf("create: %d %v", rr.Status, rr.Header)
	}
	fake.take()
}

// A tick keeps running, and records, after its caller has gone.
func TestTickSurvivesClientDisconnect(t *testing.T) {
	fake := &fakeService{}
	started, release, finished := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	fake.tickFn = func(ctx context.Context) (*core.TickResult, error) {
		close(started)
		<-release
		finished <- ctx.Err()
		return fxTick, nil
	}
	_, c := startServer(t, fake, control.ServerConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Tick(ctx, core.TriggerSocket)
		errc <- err
	}()
	<-started
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v, want context.Canceled", err)
	}
	time.Sleep(50 * time.Millisecond) // let the server notice the hang-up
	close(release)
	if err := <-finished; err != nil {
		t.Fatalf("the tick's context was cancelled: %v", err)
	}
	fake.take()
}

// A service that refuses an import before reading it answers at once; the
// client does not fail with a broken pipe while still sending.
func TestImportRefusedEarly(t *testing.T) {
	fake := &fakeService{}
	fake.importFn = func(ctx context.Context, r io.Reader) (*core.ImportResult, error) {
		return nil, core.Errorf(core.ENOTFOUND, "no campaign 7")
	}
	_, c := startServer(t, fake, control.ServerConfig{})
	gen := &lines{n: (20 << 20) / lineLen}
	start := time.Now()
	_, err := c.ImportRecipients(context.Background(), 7, core.FormatCSV, gen)
	wantCode(t, err, core.ENOTFOUND, "no campaign 7")
	if gen.i == gen.n {
		t.Errorf("the whole import was sent although the daemon refused it first")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("refusal took %v", d)
	}
	// Refused part-way: the body read stops, the answer still arrives.
	fake.importFn = func(ctx context.Context, r io.Reader) (*core.ImportResult, error) {
		if _, err := io.CopyN(io.Discard, r, 3<<20); err != nil {
			return nil, err
		}
		return nil, core.Errorf(core.EINVALID, "line 50000: too many invalid rows")
	}
	_, err = c.ImportRecipients(context.Background(), 7, core.FormatCSV, &lines{n: (20 << 20) / lineLen})
	wantCode(t, err, core.EINVALID, "line 50000")
	fake.take()
}

// Invalid UTF-8 is refused on both sides, never silently turned into
// U+FFFD by encoding/json.
func TestInvalidUTF8(t *testing.T) {
	fake := &fakeService{}
	srv, c := startServer(t, fake, control.ServerConfig{})
	rr := raw(t, srv.SocketPath(), "POST", "/v1/campaigns", strings.NewReader("{\"name\":\"bad \xff\"}"))
	wantRawError(t, rr, 400, core.EINVALID, "UTF-8")
	spec := fxSpec
	spec.Subject = "bad \xff"
	_, err := c.CreateCampaign(context.Background(), spec)
	wantCode(t, err, core.EINVALID, "subject", "UTF-8")
	_, err = c.AddRecipient(context.Background(), 7, core.RecipientInput{Email: "a@b.org", Attrs: map[string]string{"city": "\xc3"}})
	wantCode(t, err, core.EINVALID, "city", "UTF-8")
	fake.expectNoCalls(t)
}

// A handler that panics answers 500 internal in the error shape and the
// server keeps serving.
func TestPanicRecovered(t *testing.T) {
	fake := &fakeService{}
	fake.tickFn = func(ctx context.Context) (*core.TickResult, error) { panic("bug in tick") }
	_, c := startServer(t, fake, control.ServerConfig{})
	_, err := c.Tick(context.Background(), "")
	wantCode(t, err, core.EINTERNAL, "see its log")
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	fake.take()
}
