package main_test

// End-to-end tests of the campaignd command line: the real binary as a
// separate process, a real SQLite file and, in "daemon" mode, a real
// control socket. Scenarios that both modes must pass run twice (eachMode).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

// ---- helpers ----

// modeTOML is added to every eachMode environment: with a short
// lock_timeout a write that wrongly bypassed the daemon would fail fast
// with "locked by" instead of passing.
const modeTOML = "lock_timeout = \"2s\"\n"

// eachMode runs fn as two parallel subtests: "standalone" (no daemon: the
// CLI opens the database itself) and "daemon" (a daemon serves the same
// commands over its socket).
func eachMode(t *testing.T, extraTOML string, fn func(t *testing.T, e *Env, daemon bool)) {
	t.Helper()
	for _, mode := range []string{"standalone", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t, modeTOML+extraTOML)
			if mode == "daemon" {
				e.StartDaemon()
			}
			fn(t, e, mode == "daemon")
		})
	}
}

// wantFail checks r failed with exit code `code`, printed nothing on
// stdout, and (for exit 1) exactly one line on stderr, prefixed
// "campaignd: " and containing every want (case-insensitively).
func wantFail(t *testing.T, r Result, code int, want ...string) {
	t.Helper()
	if r.Code != code {
		t.Errorf("exit %d, want %d\n%s", r.Code, code, r)
		return
	}
	if r.Stdout != "" {
		t.Errorf("a failed command printed on stdout:\n%s", r)
	}
	if !strings.HasPrefix(r.Stderr, "campaignd: ") {
		t.Errorf("stderr does not start with \"campaignd: \":\n%s", r)
	}
	if code == 1 && strings.Count(strings.TrimSuffix(r.Stderr, "\n"), "\n") != 0 {
		t.Errorf("want one line on stderr, got:\n%s", r.Stderr)
	}
	lower := strings.ToLower(r.Stderr)
	for _, w := range want {
		if !strings.Contains(lower, strings.ToLower(w)) {
			t.Errorf("stderr does not mention %q:\n%s", w, r.Stderr)
		}
	}
}

// jsonKeys returns the sorted keys of the JSON object doc.
func jsonKeys(t *testing.T, doc string) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, doc)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// hasKeys checks that doc is a JSON object with at least the keys want.
func hasKeys(t *testing.T, what, doc string, want ...string) {
	t.Helper()
	got := jsonKeys(t, doc)
	for _, k := range want {
		if !slices.Contains(got, k) {
			t.Errorf("%s: JSON has no %q (keys %v):\n%s", what, k, got, doc)
		}
	}
}

func stats(t *testing.T, e *Env, id int64) core.Stats {
	t.Helper()
	var s core.Stats
	e.MustJSON(&s, "campaign", "stats", fmt.Sprint(id))
	return s
}

func wantStats(t *testing.T, e *Env, id int64, want core.Stats) {
	t.Helper()
	if got := stats(t, e, id); got != want {
		t.Errorf("stats of campaign %d = %+v, want %+v", id, got, want)
	}
}

func show(t *testing.T, e *Env, id int64) core.Campaign {
	t.Helper()
	var c core.Campaign
	e.MustJSON(&c, "campaign", "show", fmt.Sprint(id))
	return c
}

func wantStatus(t *testing.T, e *Env, id int64, want core.CampaignStatus) {
	t.Helper()
	if got := show(t, e, id).Status; got != want {
		t.Errorf("campaign %d is %s, want %s", id, got, want)
	}
}

func executions(t *testing.T, e *Env, args ...string) []core.Execution {
	t.Helper()
	var xs []core.Execution
	e.MustJSON(&xs, append([]string{"executions"}, args...)...)
	return xs
}

func recipients(t *testing.T, e *Env, id int64, args ...string) []core.Recipient {
	t.Helper()
	var rs []core.Recipient
	e.MustJSON(&rs, append([]string{"recipients", "list", fmt.Sprint(id)}, args...)...)
	return rs
}

func emails(rs []core.Recipient) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Email
	}
	sort.Strings(out)
	return out
}

func campaignCount(t *testing.T, e *Env) int {
	t.Helper()
	var cs []core.Campaign
	e.MustJSON(&cs, "campaign", "list")
	return len(cs)
}

func importFile(t *testing.T, e *Env, id int64, path string, args ...string) core.ImportResult {
	t.Helper()
	var res core.ImportResult
	e.MustJSON(&res, append([]string{"recipients", "import", fmt.Sprint(id), path}, args...)...)
	return res
}

// wantImport compares counts and the reported error lines; each error's
// message must contain the given fragment.
func wantImport(t *testing.T, got core.ImportResult, added, dups, suppressed, invalid int64, errs map[int64]string) {
	t.Helper()
	if got.Added != added || got.Duplicates != dups || got.Suppressed != suppressed || got.Invalid != invalid {
		t.Errorf("import = added %d, duplicates %d, suppressed %d, invalid %d; want %d, %d, %d, %d\nerrors: %+v",
			got.Added, got.Duplicates, got.Suppressed, got.Invalid, added, dups, suppressed, invalid, got.Errors)
	}
	if len(got.Errors) != len(errs) {
		t.Errorf("import reported %d errors, want %d: %+v", len(got.Errors), len(errs), got.Errors)
	}
	seen := map[int64]bool{}
	for _, ie := range got.Errors {
		frag, ok := errs[ie.Line]
		if !ok {
			t.Errorf("unexpected import error at line %d: %s", ie.Line, ie.Message)
			continue
		}
		seen[ie.Line] = true
		if !strings.Contains(strings.ToLower(ie.Message), strings.ToLower(frag)) {
			t.Errorf("import error at line %d = %q, want it to mention %q", ie.Line, ie.Message, frag)
		}
	}
	for line := range errs {
		if !seen[line] {
			t.Errorf("no import error reported for line %d", line)
		}
	}
}

// ---- the lifecycle ----

func TestLifecycle(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *Env, daemon bool) {
		// create -> {"id": ...} in DRAFT, with the defaults filled in.
		out := e.MustRun("--json", "campaign", "create", "--name", "Spring sale", "--sender", "outbox",
			"--from", "Shop <shop@example.com>", "--subject", "Hi {{.Name}}", "--text", "Hello {{.Name}}",
			"--reply-to", "help@example.com", "--concurrency", "3", "--batch-size", "20", "--header", "X-Campaign: spring")
		hasKeys(t, "create", out, "id")
		var c core.Campaign
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatal(err)
		}
		id := c.ID
		if id <= 0 || c.Status != "DRAFT" || c.Name != "Spring sale" || c.Concurrency != 3 || c.BatchSize != 20 || c.Sender != "outbox" {
			t.Fatalf("created campaign = %+v", c)
		}
		if got := show(t, e, id); got.Name != "Spring sale" || got.Status != "DRAFT" || got.Subject != "Hi {{.Name}}" {
			t.Errorf("show = %+v", got)
		}
		if human := e.MustRun("campaign", "show", fmt.Sprint(id)); !strings.Contains(human, "Spring sale") || !strings.Contains(human, "DRAFT") {
			t.Errorf("human show:\n%s", human)
		}

		csv := WriteFile(t, e.Dir, "r.csv", "email,name,city\nann@example.com,Ann,Paris\nbob@example.com,Bob,Rome\ncarl@example.com,Carl,Oslo\n")
		wantImport(t, importFile(t, e, id, csv), 3, 0, 0, 0, nil)
		wantStats(t, e, id, core.Stats{Total: 3, Pending: 3})

		// A failing execute (DRAFT) leaves a FAILED record and the campaign unchanged.
		wantFail(t, e.Run("campaign", "execute", fmt.Sprint(id)), 1, "DRAFT", "SENDING")
		wantStatus(t, e, id, "DRAFT")
		wantStats(t, e, id, core.Stats{Total: 3, Pending: 3})
		xs := executions(t, e, fmt.Sprint(id))
		if len(xs) != 1 || xs[0].Status != "FAILED" || xs[0].Queued != 0 || xs[0].CampaignID != id ||
			!strings.Contains(xs[0].Error, "DRAFT") {
			t.Fatalf("executions after a failed execute = %+v", xs)
		}

		// Illegal transitions name both states and change nothing.
		wantFail(t, e.Run("campaign", "pause", fmt.Sprint(id)), 1, "DRAFT", "PAUSED")
		wantFail(t, e.Run("campaign", "resume", fmt.Sprint(id)), 1, "DRAFT")
		wantStatus(t, e, id, "DRAFT")

		var act core.Campaign
		e.MustJSON(&act, "campaign", "activate", fmt.Sprint(id))
		if act.Status != "ACTIVE" {
			t.Errorf("activate answered %+v", act)
		}
		wantFail(t, e.Run("campaign", "activate", fmt.Sprint(id)), 1, "ACTIVE")

		// execute -> {"queued": 3, "message": ...}, PENDING -> QUEUED, nothing sent.
		out = e.MustRun("--json", "campaign", "execute", fmt.Sprint(id))
		hasKeys(t, "execute", out, "queued", "message")
		var ex core.ExecuteResult
		if err := json.Unmarshal([]byte(out), &ex); err != nil {
			t.Fatal(err)
		}
		if ex.Queued != 3 || !strings.Contains(ex.Message, "3") {
			t.Errorf("execute = %+v", ex)
		}
		wantStatus(t, e, id, "SENDING")
		wantStats(t, e, id, core.Stats{Total: 3, Queued: 3})
		if rs := recipients(t, e, id, "--status", "QUEUED"); len(rs) != 3 {
			t.Errorf("QUEUED recipients after execute: %d, want 3", len(rs))
		}
		if rs := recipients(t, e, id, "--status", "pending"); len(rs) != 0 {
			t.Errorf("PENDING recipients after execute: %d, want 0", len(rs))
		}
		// A second execute is refused (SENDING) and recorded.
		wantFail(t, e.Run("campaign", "execute", fmt.Sprint(id)), 1, "SENDING")

		xs = executions(t, e, fmt.Sprint(id))
		if len(xs) != 3 {
			t.Fatalf("want 3 execution records, got %+v", xs)
		}
		var ok, failed int
		for _, x := range xs {
			switch x.Status {
			case "COMPLETED":
				ok++
				if x.Queued != 3 || x.Error != "" {
					t.Errorf("successful execution record = %+v", x)
				}
			case "FAILED":
				failed++
				if x.Error == "" {
					t.Errorf("failed execution record without an error: %+v", x)
				}
			default:
				t.Errorf("execution record with status %q", x.Status)
			}
			wantBy := "(standalone)"
			if daemon {
				wantBy = "via socket"
			}
			if !strings.Contains(x.By, wantBy) {
				t.Errorf("execution record by %q, want it to contain %q", x.By, wantBy)
			}
		}
		if ok != 1 || failed != 2 {
			t.Errorf("execution records: %d COMPLETED, %d FAILED; want 1 and 2", ok, failed)
		}
		if all := executions(t, e); len(all) != 3 {
			t.Errorf("executions (all campaigns) = %d records, want 3", len(all))
		}
		// Each execution's own result, apart from the campaign's status now.
		if human := e.MustRun("executions", fmt.Sprint(id)); !strings.Contains(human, "refused, nothing queued: ") ||
			!strings.Contains(human, "ok: queued 3") || !strings.Contains(human, "CAMPAIGN NOW") {
			t.Errorf("human executions:\n%s", human)
		}

		// queue shows the work due; retry with nothing FAILED requeues nothing.
		var qs []core.QueueSummary
		e.MustJSON(&qs, "queue")
		if len(qs) != 1 || qs[0].CampaignID != id || qs[0].DueNow != 3 || qs[0].InFlight != 0 {
			t.Errorf("queue = %+v, want campaign %d with 3 due", qs, id)
		}
		out = e.MustRun("--json", "campaign", "retry", fmt.Sprint(id), "--class", "transient")
		hasKeys(t, "retry", out, "requeued", "message")
		var rr core.RetryResult
		if err := json.Unmarshal([]byte(out), &rr); err != nil {
			t.Fatal(err)
		}
		if rr.Requeued != 0 || rr.Message == "" {
			t.Errorf("retry = %+v", rr)
		}
		wantFail(t, e.Run("campaign", "retry", fmt.Sprint(id), "--class", "cosmic-rays"), 1, "cosmic-rays")
		wantStats(t, e, id, core.Stats{Total: 3, Queued: 3})

		// pause -> resume leave the counters alone; cancel ends the unsent.
		e.MustRun("campaign", "pause", fmt.Sprint(id))
		wantStatus(t, e, id, "PAUSED")
		wantFail(t, e.Run("campaign", "pause", fmt.Sprint(id)), 1, "PAUSED")
		e.MustRun("campaign", "resume", fmt.Sprint(id))
		wantStatus(t, e, id, "SENDING")
		wantStats(t, e, id, core.Stats{Total: 3, Queued: 3})
		e.MustRun("campaign", "cancel", fmt.Sprint(id))
		wantStatus(t, e, id, "CANCELLED")
		wantFail(t, e.Run("campaign", "cancel", fmt.Sprint(id)), 1, "CANCELLED")
		wantFail(t, e.Run("campaign", "resume", fmt.Sprint(id)), 1, "CANCELLED")
		wantFail(t, e.Run("campaign", "activate", fmt.Sprint(id)), 1, "CANCELLED", "ACTIVE")
		wantFail(t, e.Run("recipients", "add", fmt.Sprint(id), "dan@example.com"), 1, "CANCELLED")
		wantFail(t, e.Run("campaign", "retry", fmt.Sprint(id)), 1, "CANCELLED")
		wantStats(t, e, id, core.Stats{Total: 3, Failed: 3})
		var ended []core.Recipient
		e.MustJSON(&ended, "recipients", "list", fmt.Sprint(id), "--status", "FAILED")
		if len(ended) != 3 || ended[0].LastErrorClass != "cancelled" {
			t.Errorf("recipients of the cancelled campaign: %+v, want 3 FAILED with class cancelled", ended)
		}

		// stats: exactly the documented keys (the counters and the
		// progress; eta_basis only beside an ETA).
		out = e.MustRun("--json", "campaign", "stats", fmt.Sprint(id))
		if got, want := jsonKeys(t, out), []string{"at", "bounced", "campaign_id", "eta_seconds", "failed", "finished_at", "last_tick_at",
			"pending", "percent_done", "queued", "rate_per_min", "recent_failures", "sending", "sent", "sent_last_5m", "started_at",
			"status", "total"}; !reflect.DeepEqual(got, want) {
			t.Errorf("stats keys = %v, want %v", got, want)
		}
		if human := e.MustRun("campaign", "stats", fmt.Sprint(id)); !strings.Contains(human, "total 3") || !strings.Contains(human, "failed 3") {
			t.Errorf("human stats:\n%s", human)
		}

		// list shows it.
		var cs []core.Campaign
		e.MustJSON(&cs, "campaign", "list")
		if len(cs) != 1 || cs[0].ID != id || cs[0].Status != "CANCELLED" || cs[0].Stats.Total != 3 {
			t.Errorf("campaign list = %+v", cs)
		}
	})
}

// A paused campaign resumes to the state it was paused from.
func TestPauseResumeFromActive(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *Env, daemon bool) {
		id := MustCreateCampaign(t, e)
		e.MustRun("campaign", "activate", fmt.Sprint(id))
		e.MustRun("campaign", "pause", fmt.Sprint(id))
		wantFail(t, e.Run("campaign", "execute", fmt.Sprint(id)), 1, "PAUSED")
		e.MustRun("campaign", "resume", fmt.Sprint(id))
		wantStatus(t, e, id, "ACTIVE")
		e.MustRun("recipients", "add", fmt.Sprint(id), "ann@example.com", "--name", "Ann", "--attr", "city=Paris")
		var ex core.ExecuteResult
		e.MustJSON(&ex, "campaign", "execute", fmt.Sprint(id))
		if ex.Queued != 1 {
			t.Errorf("execute queued %d, want 1", ex.Queued)
		}
		xs := executions(t, e, fmt.Sprint(id))
		if len(xs) != 2 {
			t.Errorf("execution records = %+v, want a FAILED and a COMPLETED one", xs)
		}
	})
}

// ---- recipients ----

func TestImportCSV(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *Env, daemon bool) {
		id := MustCreateCampaign(t, e)
		e.MustRun("suppress", "add", "blocked@example.com", "--reason", "complained")
		content := strings.Join([]string{
			"email,name,city",                   // 1
			"ann@example.com,Ann,Paris",         // 2 valid
			"bob@example.com,Bob",               // 3 wrong number of fields
			"ca\"rl@example.com,Carl,Rome",      // 4 bare quote
			"not-an-address,Dan,Oslo",           // 5 invalid address
			"eve@example.com,\"Eve\rX\",Berlin", // 6 CR in name
			"frank@example.com,Fr\xffnk,Madrid", // 7 not UTF-8
			"ann@EXAMPLE.com,Ann again,Paris",   // 8 duplicate within the file
			"blocked@example.com,B,Lyon",        // 9 suppressed
			"\"gil@example.com\",\"Gil, Jr\",",  // 10 valid, quoted, empty attribute
			"hal@example,Hal,Nice",              // 11 domain not qualified
			"ivy@example.com,\"Ivy\",Kyiv",      // 12 valid
		}, "\n") + "\n"
		path := WriteFile(t, e.Dir, "recipients.csv", content)
		res := importFile(t, e, id, path)
		wantImport(t, res, 3, 1, 1, 6, map[int64]string{
			3:  "number of fields",
			4:  "quote",
			5:  "not-an-address",
			6:  "name",
			7:  "UTF-8",
			11: "hal@example",
		})
		wantStats(t, e, id, core.Stats{Total: 3, Pending: 3})
		rs := recipients(t, e, id)
		if got, want := emails(rs), []string{"ann@example.com", "gil@example.com", "ivy@example.com"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("recipients = %v, want %v", got, want)
		}
		for _, r := range rs {
			switch r.Email {
			case "ann@example.com":
				if r.Name != "Ann" || r.Attrs["city"] != "Paris" || r.Status != "PENDING" {
					t.Errorf("ann = %+v (the first row of a duplicate wins)", r)
				}
			case "gil@example.com":
				if r.Name != "Gil, Jr" {
					t.Errorf("gil = %+v", r)
				}
			}
		}

		// The same rows again are duplicates of the campaign; stdin works.
		r := e.RunIn("email,name\nann@example.com,Ann\nIVY@example.com,Ivy\njoe@example.com,Joe\n",
			"--json", "recipients", "import", fmt.Sprint(id), "-")
		if r.Code != 0 {
			t.Fatalf("stdin import: %s", r)
		}
		var res2 core.ImportResult
		if err := json.Unmarshal([]byte(r.Stdout), &res2); err != nil {
			t.Fatalf("stdin import: %v\n%s", err, r.Stdout)
		}
		// IVY@example.com keeps its local part's case: a different address.
		wantImport(t, res2, 2, 1, 0, 0, nil)
		if res2.Errors == nil {
			t.Errorf("import JSON: errors must be [] not null:\n%s", r.Stdout)
		}
		if got, want := jsonKeys(t, r.Stdout), []string{"added", "duplicates", "errors", "invalid", "suppressed"}; !reflect.DeepEqual(got, want) {
			t.Errorf("import keys = %v, want %v", got, want)
		}
		wantStats(t, e, id, core.Stats{Total: 5, Pending: 5})

		// Human output lists the bad lines.
		human := e.MustRun("recipients", "import", fmt.Sprint(id), path)
		for _, w := range []string{"added 0", "duplicates 4", "suppressed 1", "invalid 6", "line 3:", "line 11:"} {
			if !strings.Contains(human, w) {
				t.Errorf("human import output lacks %q:\n%s", w, human)
			}
		}

		// recipients list --status / --limit.
		if rs := recipients(t, e, id, "--status", "PENDING"); len(rs) != 5 {
			t.Errorf("--status PENDING: %d rows, want 5", len(rs))
		}
		if rs := recipients(t, e, id, "--status", "SENT"); len(rs) != 0 {
			t.Errorf("--status SENT: %d rows, want 0", len(rs))
		}
		if rs := recipients(t, e, id, "--limit", "2"); len(rs) != 2 {
			t.Errorf("--limit 2: %d rows", len(rs))
		}
		wantFail(t, e.Run("recipients", "list", fmt.Sprint(id), "--status", "LOST"), 1, "LOST")
		e.MustRun("campaign", "activate", fmt.Sprint(id))
		e.MustRun("campaign", "execute", fmt.Sprint(id))
		if rs := recipients(t, e, id, "--status", "QUEUED"); len(rs) != 5 {
			t.Errorf("--status QUEUED after execute: %d rows, want 5", len(rs))
		}
		if rs := recipients(t, e, id, "--status", "PENDING"); len(rs) != 0 {
			t.Errorf("--status PENDING after execute: %d rows, want 0", len(rs))
		}
		if human := e.MustRun("recipients", "list", fmt.Sprint(id)); !strings.Contains(human, "joe@example.com") || !strings.Contains(human, "QUEUED") {
			t.Errorf("human recipients list:\n%s", human)
		}
	})
}

func TestImportCSVBadFiles(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *Env, daemon bool) {
		id := MustCreateCampaign(t, e)
		for _, tc := range []struct {
			name, content string
			want          []string
		}{
			{"no email column", "name,city\nAnn,Paris\n", []string{"line 1", "email"}},
			{"empty", "", []string{"line 1", "empty"}},
			{"duplicate column", "email,email\na@example.com,b@example.com\n", []string{"line 1", "twice"}},
		} {
			path := WriteFile(t, e.Dir, "bad.csv", tc.content)
			r := e.Run("recipients", "import", fmt.Sprint(id), path)
			wantFail(t, r, 1, tc.want...)
		}
		wantFail(t, e.Run("recipients", "import", fmt.Sprint(id), filepath.Join(e.Dir, "missing.csv")), 1, "missing.csv")
		r := e.Run("recipients", "import", fmt.Sprint(id), WriteFile(t, e.Dir, "x.csv", "email\n"), "--format", "xml")
		if r.Code == 0 || !strings.Contains(r.Stderr, "xml") {
			t.Errorf("--format xml: %s", r)
		}
		wantStats(t, e, id, core.Stats{})
	})
}

func TestImportJSONL(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *Env, daemon bool) {
		id := MustCreateCampaign(t, e)
		content := strings.Join([]string{
			`{"email":"a@example.com","name":"A","attrs":{"city":"X"}}`, // 1 valid
			`{"email":"b@example.com",`,                                 // 2 truncated
			`not json at all`,                                           // 3 malformed
			`{"name":"no email"}`,                                       // 4 email required
			`{"email":"bad@@example.com"}`,                              // 5 invalid address
			`{"email":"c@example.com","name":"C\r\nBcc: x@y.com"}`,      // 6 CRLF in name
			"{\"email\":\"d@example.com\",\"name\":\"\xff\"}",           // 7 not UTF-8
			``,                          // 8 blank: skipped
			`{"email":"A@EXAMPLE.COM"}`, // 9 not a duplicate: local part differs
			`{"email":"a@Example.Com"}`, // 10 duplicate
			`{"email":"e@example.com","vip":true,"score":5}`, // 11 valid, scalar attrs
			`{"email":"f@example.com","attrs":[1]}`,          // 12 attrs not an object
			`{"email":42}`,                                   // 13 email not a string
			`["f@example.com"]`,                              // 14 not an object
		}, "\n") + "\n"
		path := WriteFile(t, e.Dir, "r.jsonl", content)
		res := importFile(t, e, id, path) // format from the .jsonl suffix
		wantImport(t, res, 3, 1, 0, 9, map[int64]string{
			2: "JSON", 3: "JSON", 4: "email", 5: "bad@@example.com", 6: "name", 7: "UTF-8",
			12: "attrs", 13: "email", 14: "JSON",
		})
		rs := recipients(t, e, id)
		if got, want := emails(rs), []string{"A@example.com", "a@example.com", "e@example.com"}; !reflect.DeepEqual(got, want) {
			t.Errorf("recipients = %v, want %v", got, want)
		}
		for _, r := range rs {
			if r.Email == "a@example.com" && (r.Name != "A" || r.Attrs["city"] != "X") {
				t.Errorf("a = %+v", r)
			}
			if r.Email == "e@example.com" && (r.Attrs["vip"] != "true" || r.Attrs["score"] != "5") {
				t.Errorf("e = %+v", r)
			}
		}
		// stdin with --format jsonl.
		r := e.RunIn("{\"email\":\"g@example.com\"}\n{\"email\":\"a@example.com\"}\n", "--json", "recipients", "import", fmt.Sprint(id), "-", "--format", "jsonl")
		if r.Code != 0 {
			t.Fatalf("stdin jsonl import: %s", r)
		}
		var res2 core.ImportResult
		if err := json.Unmarshal([]byte(r.Stdout), &res2); err != nil {
			t.Fatal(err)
		}
		wantImport(t, res2, 1, 1, 0, 0, nil)
		wantStats(t, e, id, core.Stats{Total: 4, Pending: 4})
	})
}

func TestRecipientsAdd(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *Env, daemon bool) {
		id := MustCreateCampaign(t, e)
		var res core.ImportResult
		e.MustJSON(&res, "recipients", "add", fmt.Sprint(id), "ann@example.com", "--name", "Ann", "--attr", "city=Paris", "--attr", "tier=gold")
		wantImport(t, res, 1, 0, 0, 0, nil)
		e.MustJSON(&res, "recipients", "add", fmt.Sprint(id), "ann@EXAMPLE.com")
		wantImport(t, res, 0, 1, 0, 0, nil)
		wantFail(t, e.Run("recipients", "add", fmt.Sprint(id), "not an address"), 1, "not an address")
		wantFail(t, e.Run("recipients", "add", fmt.Sprint(id), "bob@example.com", "--name", "Bob\r\nBcc: x@y.com"), 1, "name")
		wantFail(t, e.Run("recipients", "add", fmt.Sprint(id), "bob@example.com", "--name", "B\xffb"), 1, "UTF-8")
		wantFail(t, e.Run("recipients", "add", fmt.Sprint(id), "bob@example.com", "--attr", "novalue"), 2, "key=value")
		rs := recipients(t, e, id)
		if len(rs) != 1 || rs[0].Name != "Ann" || rs[0].Attrs["tier"] != "gold" || rs[0].Attrs["city"] != "Paris" {
			t.Errorf("recipients = %+v", rs)
		}
		wantStats(t, e, id, core.Stats{Total: 1, Pending: 1})
	})
}

func TestSuppress(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *Env, daemon bool) {
		e.MustRun("init") // only init, campaign create and serve create the database
		var res map[string]string
		e.MustJSON(&res, "suppress", "add", "Ann@EXAMPLE.com", "--reason", "asked us")
		if res["result"] != "suppressed" {
			t.Errorf("suppress add = %v", res)
		}
		wantFail(t, e.Run("suppress", "add", "not-an-address"), 1, "not-an-address")
		var list []core.Suppression
		e.MustJSON(&list, "suppress", "list")
		if len(list) != 1 || list[0].Email != "Ann@example.com" || list[0].Reason != "asked us" || list[0].Source != "operator" {
			t.Errorf("suppress list = %+v", list)
		}
		id := MustCreateCampaign(t, e)
		var ir core.ImportResult
		e.MustJSON(&ir, "recipients", "add", fmt.Sprint(id), "Ann@example.com")
		wantImport(t, ir, 0, 0, 1, 0, nil)
		e.MustRun("suppress", "remove", "Ann@example.com")
		wantFail(t, e.Run("suppress", "remove", "Ann@example.com"), 1, "Ann@example.com")
		e.MustJSON(&list, "suppress", "list")
		if len(list) != 0 {
			t.Errorf("suppress list after remove = %+v", list)
		}
		e.MustJSON(&ir, "recipients", "add", fmt.Sprint(id), "Ann@example.com")
		wantImport(t, ir, 1, 0, 0, 0, nil)
	})
}

// An idle tick (nothing due) starts no plugin, sends nothing, exits 0
// silently and leaves no tick record.
func TestIdleTick(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *Env, daemon bool) {
		id := MustCreateCampaign(t, e)
		e.MustRun("recipients", "add", fmt.Sprint(id), "ann@example.com")
		e.MustRun("campaign", "activate", fmt.Sprint(id)) // ACTIVE, not executed: nothing due
		if r := e.Run("tick"); r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
			t.Errorf("idle tick should be silent: %s", r)
		}
		out := e.MustRun("--json", "tick")
		hasKeys(t, "idle tick", out, "processed", "skipped")
		var tr core.TickResult
		if err := json.Unmarshal([]byte(out), &tr); err != nil {
			t.Fatal(err)
		}
		if tr.Processed != 0 || tr.Skipped {
			t.Errorf("idle tick = %+v", tr)
		}
		if out := e.MustRun("tick", "-v"); !strings.Contains(out, "processed 0") {
			t.Errorf("tick -v:\n%s", out)
		}
		var ticks []json.RawMessage
		e.MustJSON(&ticks, "ticks")
		if len(ticks) != 0 {
			t.Errorf("idle ticks left records: %s", ticks)
		}
		wantStats(t, e, id, core.Stats{Total: 1, Pending: 1})
		if _, err := os.Stat(e.Outbox); err == nil {
			t.Errorf("an idle tick wrote to the outbox")
		}
	})
}

// ---- bad input at create ----

func TestCreateRejected(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *Env, daemon bool) {
		nulBody := WriteFile(t, e.Dir, "nul.txt", "Hello\x00world")
		badUTF8Body := WriteFile(t, e.Dir, "latin1.txt", "Gr\xfc\xdfe")
		badHTML := WriteFile(t, e.Dir, "bad.html", "<p>{{range .Attr}}</p>")
		base := func(over ...string) []string {
			args := map[string]string{"--name": "n", "--from": "a@example.com", "--subject": "s", "--text": "t"}
			var order = []string{"--name", "--from", "--subject", "--text"}
			var extra []string
			for i := 0; i+1 < len(over); i += 2 {
				if _, ok := args[over[i]]; ok {
					args[over[i]] = over[i+1]
				} else {
					extra = append(extra, over[i], over[i+1])
				}
			}
			out := []string{"campaign", "create"}
			for _, k := range order {
				if args[k] != "\x01omit" {
					out = append(out, k, args[k])
				}
			}
			return append(out, extra...)
		}
		for _, tc := range []struct {
			name string
			args []string
			code int
			want []string
		}{
			{"CR in name", base("--name", "a\rb"), 1, []string{"name", "CR"}},
			{"LF in subject", base("--subject", "Hi\nBcc: x@y.com"), 1, []string{"subject"}},
			{"CRLF in from", base("--from", "a@example.com\r\nBcc: x@y.com"), 1, []string{"from"}},
			{"CR in header value", base("--header", "X-Tag: a\r\nBcc: x@y.com"), 1, []string{"header"}},
			{"LF in header name", base("--header", "X-\nTag: a"), 1, []string{"header"}},
			{"reserved header", base("--header", "Bcc: x@y.com"), 1, []string{"header", "Bcc"}},
			{"header without colon", base("--header", "NoColon"), 2, []string{"header"}},
			{"NUL in text file", base("--text-file", nulBody), 1, []string{"text", "NUL"}},
			{"non-UTF-8 name", base("--name", "Gr\xfc\xdfe"), 1, []string{"name", "UTF-8"}},
			{"non-UTF-8 subject", base("--subject", "\xff"), 1, []string{"subject", "UTF-8"}},
			{"non-UTF-8 text file", base("--text-file", badUTF8Body), 1, []string{"text", "UTF-8"}},
			{"subject template", base("--subject", "Hi {{.Name"), 1, []string{"subject", "template"}},
			{"text template", base("--text", "{{if}}"), 1, []string{"text", "template"}},
			{"html template", base("--html-file", badHTML), 1, []string{"html", "template"}},
			{"invalid from", base("--from", "not-an-address"), 1, []string{"from", "not-an-address"}},
			{"invalid reply-to", base("--reply-to", "nobody"), 1, []string{"reply_to"}},
			{"batch size 51", base("--batch-size", "51"), 1, []string{"batch_size", "51"}},
			{"batch size -1", base("--batch-size", "-1"), 1, []string{"batch_size"}},
			{"concurrency 0", base("--concurrency", "0"), 1, []string{"concurrency", "0"}},
			{"concurrency -2", base("--concurrency", "-2"), 1, []string{"concurrency", "-2"}},
			{"concurrency 51", base("--concurrency", "51"), 1, []string{"concurrency"}},
			{"concurrency not a number", base("--concurrency", "many"), 2, []string{"concurrency"}},
			{"unknown sender", base("--sender", "pigeon"), 1, []string{"pigeon"}},
			{"no name", base("--name", "\x01omit"), 1, []string{"name"}},
			{"blank name", base("--name", "   "), 1, []string{"name"}},
			{"no subject", base("--subject", "\x01omit"), 1, []string{"subject"}},
			{"no body", base("--text", "\x01omit"), 1, []string{"text"}},
			{"missing text file", base("--text-file", filepath.Join(e.Dir, "nope.txt")), 1, []string{"nope.txt"}},
			{"positional argument", append(base(), "extra"), 2, nil},
			{"unknown flag", base("--colour", "red"), 2, []string{"colour"}},
		} {
			r := e.Run(tc.args...)
			if r.Code != tc.code {
				t.Errorf("%s: exit %d, want %d\n%s", tc.name, r.Code, tc.code, r)
				continue
			}
			wantFail(t, r, tc.code, tc.want...)
		}
		// A rejected create creates nothing.
		if n := campaignCount(t, e); n != 0 {
			t.Errorf("%d campaigns after only rejected creates", n)
		}
		if xs := executions(t, e); len(xs) != 0 {
			t.Errorf("executions after only rejected creates: %+v", xs)
		}
		// And a good one still works.
		id := MustCreateCampaign(t, e, "--header", "X-Tag: ok", "--html", "<p>{{.Name}}</p>", "--batch-size", "50", "--concurrency", "50")
		if c := show(t, e, id); c.BatchSize != 50 || c.Concurrency != 50 {
			t.Errorf("campaign = %+v", c)
		}
	})
}

// Unknown campaign ids are clear errors everywhere; bad ids are usage errors.
func TestUnknownCampaign(t *testing.T) {
	eachMode(t, "", func(t *testing.T, e *Env, daemon bool) {
		e.MustRun("init") // unknown in an existing database; a missing one is TestConfigMissingDatabaseIsNotCreated
		csv := WriteFile(t, e.Dir, "r.csv", "email\na@example.com\n")
		for _, args := range [][]string{
			{"campaign", "show", "999"},
			{"campaign", "stats", "999"},
			{"campaign", "activate", "999"},
			{"campaign", "execute", "999"},
			{"campaign", "pause", "999"},
			{"campaign", "resume", "999"},
			{"campaign", "cancel", "999"},
			{"campaign", "retry", "999"},
			{"recipients", "import", "999", csv},
			{"recipients", "add", "999", "a@example.com"},
			{"recipients", "list", "999"},
			{"executions", "999"},
		} {
			r := e.Run(args...)
			if r.Code != 1 || !strings.Contains(r.Stderr, "999") || !strings.Contains(strings.ToLower(r.Stderr), "no campaign") && !strings.Contains(strings.ToLower(r.Stderr), "not found") {
				t.Errorf("%v: want exit 1 naming campaign 999 as not found\n%s", args, r)
				continue
			}
			wantFail(t, r, 1)
		}
		for _, args := range [][]string{
			{"campaign", "show", "abc"},
			{"campaign", "stats", "0"},
			{"recipients", "list", "1.5"},
		} {
			wantFail(t, e.Run(args...), 2, "campaign id")
		}
		wantFail(t, e.Run("campaign", "execute", "-3"), 2) // parsed as a flag: still a usage error
		if n := campaignCount(t, e); n != 0 {
			t.Errorf("campaigns: %d", n)
		}
	})
}

// ---- exit codes and output conventions ----

func TestExitCodes(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	e.MustRun("init")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "no command"},
		{[]string{"frobnicate"}, 2, "frobnicate"},
		{[]string{"--bogus-flag", "version"}, 2, "bogus-flag"},
		{[]string{"campaign"}, 2, "subcommand"},
		{[]string{"campaign", "launch", "1"}, 2, "launch"},
		{[]string{"campaign", "show"}, 2, "usage"},
		{[]string{"campaign", "show", "1", "2"}, 2, "usage"},
		{[]string{"recipients"}, 2, "subcommand"},
		{[]string{"recipients", "import", "1"}, 2, "usage"},
		{[]string{"config"}, 2, "check"},
		{[]string{"suppress"}, 2, "subcommand"},
		{[]string{"version", "extra"}, 2, "usage"},
		{[]string{"campaign", "show", "1"}, 1, "1"},
	} {
		r := e.Run(tc.args...)
		if r.Code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, r.Code, tc.code, r)
			continue
		}
		if !strings.Contains(r.Stderr, tc.want) || !strings.HasPrefix(r.Stderr, "campaignd: ") {
			t.Errorf("%v: stderr should start with \"campaignd: \" and mention %q:\n%s", tc.args, tc.want, r.Stderr)
		}
		if tc.code == 2 && !strings.Contains(r.Stderr, "usage:") {
			t.Errorf("%v: a usage error should show the usage:\n%s", tc.args, r.Stderr)
		}
	}
	// Success: exit 0, nothing on stderr.
	var v map[string]string
	e.MustJSON(&v, "version")
	if v["version"] == "" {
		t.Errorf("version JSON = %v", v)
	}
	if r := e.Run("version"); r.Code != 0 || r.Stderr != "" || !strings.HasPrefix(r.Stdout, "campaignd ") {
		t.Errorf("version: %s", r)
	}
	if r := e.Run("--help"); r.Code != 0 || !strings.Contains(r.Stdout, "usage:") {
		t.Errorf("--help: %s", r)
	}
	// Global flags work after the command too.
	var cs []core.Campaign
	out := e.MustRun("campaign", "list", "--json")
	if err := json.Unmarshal([]byte(out), &cs); err != nil || len(cs) != 0 {
		t.Errorf("campaign list --json = %q (%v)", out, err)
	}
	// --db overrides the configured database.
	alt := filepath.Join(e.Dir, "alt.db")
	e.MustRun("--db", alt, "campaign", "create", "--name", "alt", "--from", "a@example.com", "--subject", "s", "--text", "t")
	if _, err := os.Stat(alt); err != nil {
		t.Errorf("--db: %v", err)
	}
	if n := campaignCount(t, e); n != 0 {
		t.Errorf("--db wrote to the configured database too: %d campaigns", n)
	}
	// Every --json command prints exactly one JSON document.
	id := MustCreateCampaign(t, e)
	for _, args := range [][]string{
		{"campaign", "list"}, {"campaign", "show", fmt.Sprint(id)}, {"campaign", "stats", fmt.Sprint(id)},
		{"recipients", "list", fmt.Sprint(id)}, {"executions"}, {"ticks"}, {"queue"}, {"suppress", "list"},
		{"config", "check"}, {"version"},
	} {
		out := e.MustRun(append([]string{"--json"}, args...)...)
		dec := json.NewDecoder(strings.NewReader(out))
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Errorf("--json %v: %v\n%s", args, err, out)
			continue
		}
		if _, err := dec.Token(); err != io.EOF {
			t.Errorf("--json %v: more than one JSON document:\n%s", args, out)
		}
	}
}

// ---- configuration ----

func TestConfigStrict(t *testing.T) {
	t.Parallel()
	const file = "\x00file" // placeholder: the config file's path
	for _, tc := range []struct {
		name, toml string
		want       []string
	}{
		// NewEnv writes 4 lines first; extra TOML starts at line 5.
		{"unknown top-level key", "tick_intervall = \"1m\"\n", []string{file, "unknown key", "tick_intervall", "line 5"}},
		{"unknown key in a table", "[queue]\nbatch_size = 10\nmax_attempt = 3\n", []string{file, "queue.max_attempt", "line 7"}},
		{"unknown table", "\n[queu]\nbatch_size = 10\n", []string{file, "queu", "line 6"}},
		{"bad TOML", "[queue]\nbatch_size = = 3\n", []string{file, "line 6"}},
		{"unterminated string", "default_from = \"ops@example.com\n", []string{file, "line 5"}},
		{"wrong type", "[queue]\nbatch_size = \"ten\"\n", []string{file, "batch_size"}},
		{"batch size 51", "[queue]\nbatch_size = 51\n", []string{"batch_size", "51"}},
		{"batch size 0", "[queue]\nbatch_size = 0\n", []string{"batch_size"}},
		{"concurrency 0", "[queue]\ndefault_concurrency = 0\n", []string{"default_concurrency"}},
		{"bad duration", "tick_interval = \"soon\"\n", []string{"soon"}},
		{"bad in_doubt", "[queue]\nin_doubt = \"guess\"\n", []string{"in_doubt"}},
		{"bad log level", "log_level = \"loud\"\n", []string{"log_level"}},
		{"bad socket mode", "socket_mode = \"rw\"\n", []string{"socket_mode"}},
		{"unset env", "default_from = \"${CAMPAIGND_TEST_SURELY_UNSET}\"\n", []string{"CAMPAIGND_TEST_SURELY_UNSET", "default_from"}},
		{"sender without plugin", "[senders.mail]\n[senders.mail.options]\nhost = \"x\"\n", []string{"senders.mail.plugin"}},
		{"unknown sender key", "[senders.mail]\nplugin = \"smtp\"\nhots = \"x\"\n", []string{file, "senders.mail.hots", "line 7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t, tc.toml)
			for i, w := range tc.want {
				if w == file {
					tc.want[i] = e.Config
				}
			}
			wantFail(t, e.Run("config", "check"), 1, tc.want...)
			// Every command refuses a bad config, the daemon included, and
			// creates no database.
			wantFail(t, e.Run("campaign", "list"), 1, tc.want...)
			wantFail(t, e.RunWith(RunOpts{Timeout: 15 * time.Second}, "serve"), 1, tc.want...)
			if _, err := os.Stat(e.DB); err == nil {
				t.Errorf("a bad config still created the database")
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-Pa55-VALUE"
	e := NewEnv(t, `default_from = "${CD_TEST_FROM}"
tick_interval = "30s"

[queue]
batch_size = 25
default_concurrency = 7
message_id_domain = "${CD_TEST_DOMAIN:-mail.example.org}"

[senders.mail]
plugin = "smtp"

[senders.mail.options]
host = "${CD_TEST_HOST}"
port = 587
password = "${CD_TEST_PASS}"

[senders.sg]
plugin = "sendgrid"

[senders.sg.options]
api_key = "literal-key-VALUE"
`)
	e.ExtraEnv = []string{"CD_TEST_FROM=ops@example.com", "CD_TEST_HOST=smtp.example.net", "CD_TEST_PASS=" + secret}
	out := e.MustRun("--json", "config", "check")
	human := e.MustRun("config", "check")
	for _, o := range []string{out, human} {
		for _, leak := range []string{secret, "literal-key-VALUE"} {
			if strings.Contains(o, leak) {
				t.Errorf("config check printed a secret (%s):\n%s", leak, o)
			}
		}
	}
	var cc struct {
		File     string `json:"file"`
		Database string `json:"database"`
		Socket   string `json:"socket"`
		Queue    struct {
			BatchSize          int    `json:"batch_size"`
			DefaultConcurrency int    `json:"default_concurrency"`
			MessageIDDomain    string `json:"message_id_domain"`
		} `json:"queue"`
		Senders map[string]struct {
			Plugin  string            `json:"plugin"`
			Options map[string]string `json:"options"`
		} `json:"senders"`
	}
	if err := json.Unmarshal([]byte(out), &cc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if cc.File != e.Config || cc.Database != e.DB || cc.Socket != e.Socket {
		t.Errorf("file/database/socket = %q %q %q", cc.File, cc.Database, cc.Socket)
	}
	if cc.Queue.BatchSize != 25 || cc.Queue.DefaultConcurrency != 7 {
		t.Errorf("queue = %+v", cc.Queue)
	}
	mail, ok := cc.Senders["mail"]
	if !ok || mail.Plugin != "smtp" {
		t.Fatalf("senders = %+v", cc.Senders)
	}
	if mail.Options["host"] != "smtp.example.net" {
		t.Errorf("host option = %q, want the expanded ${CD_TEST_HOST}", mail.Options["host"])
	}
	if mail.Options["port"] != "587" {
		t.Errorf("port option = %q", mail.Options["port"])
	}
	if p, ok := mail.Options["password"]; !ok || p == "" {
		t.Errorf("password option missing from config check (it should show as set, redacted): %v", mail.Options)
	}
	if _, ok := cc.Senders["outbox"]; !ok {
		t.Errorf("the built-in outbox sender is missing: %v", cc.Senders)
	}
	if !strings.Contains(human, "smtp.example.net") || !strings.Contains(human, "is valid") {
		t.Errorf("human config check:\n%s", human)
	}
	if cc.Queue.MessageIDDomain != "mail.example.org" {
		t.Errorf("${VAR:-default} expanded to %q", cc.Queue.MessageIDDomain)
	}
	// The expanded default_from is used by create.
	id := MustCreateCampaign(t, e, "--from", "", "--sender", "outbox")
	if c := show(t, e, id); c.From != "ops@example.com" {
		t.Errorf("campaign from = %q, want default_from expanded from ${CD_TEST_FROM}", c.From)
	}
	// The database path may come from the environment too.
	e2 := NewEnv(t, "database = \"${CD_TEST_DIR}/from-env.db\"\n")
	e2.ExtraEnv = []string{"CD_TEST_DIR=" + e2.Dir}
	var cc2 struct {
		Database string `json:"database"`
	}
	e2.MustJSON(&cc2, "config", "check")
	if want := filepath.Join(e2.Dir, "from-env.db"); cc2.Database != want {
		t.Errorf("database = %q, want %q", cc2.Database, want)
	}
	MustCreateCampaign(t, e2)
	if _, err := os.Stat(filepath.Join(e2.Dir, "from-env.db")); err != nil {
		t.Errorf("database not created at the expanded path: %v", err)
	}
}

// TestConfigCheckThirdPartyOptions: a third-party plugin that declares no
// options has none of their values printed (a ${VAR}'s name is). ${VAR}
// works in every string key, plugin included.
func TestConfigCheckThirdPartyOptions(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, `log_level = "${CD_TEST_LOG:-warn}"
socket_mode = "${CD_TEST_MODE:-0600}"

[senders.custom]
plugin = "${CD_TEST_PLUGIN:-smtp}"

[senders.custom.options]
dsn = "${CD_TEST_DSN}"
bearer = "b-SECRET-bearer"
auth_header = "Basic SECRET-basic"
endpoint = "https://api-user:SECRET-url-pw@api.example.com/v1"
relay = "relay-user:SECRET-relay-pw@mail.example.com:587"
spaced = " smtp://u:SECRET-spaced-pw@mail.example.com"
region = "eu-west"
`)
	// A third-party plugin (sdk/example) accepts any option.
	e.ExtraEnv = []string{"CD_TEST_DSN=smtps://user:SECRET-dsn-pw@mail.example.com", "CD_TEST_PLUGIN=" + examplePlugin(t)}
	var cc struct {
		Senders map[string]struct {
			Plugin  string            `json:"plugin"`
			Options map[string]string `json:"options"`
		} `json:"senders"`
	}
	out := e.MustRun("--json", "config", "check")
	human := e.MustRun("config", "check")
	for _, o := range []string{out, human} {
		if strings.Contains(o, "SECRET") {
			t.Errorf("config check printed a secret:\n%s", o)
		}
	}
	if err := json.Unmarshal([]byte(out), &cc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	c := cc.Senders["custom"]
	if c.Plugin != examplePlugin(t) {
		t.Errorf("plugin = %q, want ${CD_TEST_PLUGIN} expanded", c.Plugin)
	}
	// The example plugin declares no options (sdk.Info.Options), like a
	// plugin built before it could: every value is hidden (issue 12).
	for k, want := range map[string]string{"region": "(set, redacted)", "endpoint": "(set, redacted)", "dsn": "${CD_TEST_DSN}"} {
		if got := c.Options[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"dsn", "bearer", "auth_header"} {
		if c.Options[k] == "" {
			t.Errorf("option %s missing (want it shown as set, redacted): %v", k, c.Options)
		}
	}
}

// TestConfigCheckRefusesWhatServeWould: config check fails on the [http]
// settings the daemon's listener would refuse, naming them, and serve
// refuses them the same way before it opens anything.
func TestConfigCheckRefusesWhatServeWould(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, toml, want string }{
		{"short cron secret", "listen = \"127.0.0.1:0\"\ncron_secret = \"short\"", "config: [http]: cron secret: must be at least 16 characters"},
		{"bad webhook key", "listen = \"127.0.0.1:0\"\nsendgrid_public_key = \"not-a-key\"", "config: [http]: sendgrid public key"},
		{"listen without a port", "listen = \"bogus\"", "config: [http]: listen: \"bogus\" is not a host:port address"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t, "[http]\n"+c.toml+"\n")
			for _, args := range [][]string{{"config", "check"}, {"serve"}} {
				r := e.Run(args...)
				if r.Code != 1 || !strings.Contains(r.Stderr, c.want) {
					t.Errorf("%s: want exit 1 saying %q, got %s", args[0], c.want, r)
				}
			}
			if _, err := os.Stat(e.DB); err == nil {
				t.Errorf("a refused config still created the database")
			}
		})
	}
}

// With no config file at all, campaignd works from defaults in the
// working directory.
func TestNoConfigFile(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	dir := filepath.Join(e.Dir, "work")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	o := RunOpts{Dir: dir, NoConfig: true, Env: []string{"CAMPAIGND_CONFIG=", "SUPPORT_EMAIL=support@example.com"}}
	r := e.RunWith(o, "--json", "config", "check")
	if r.Code != 0 {
		t.Fatalf("config check without a file: %s", r)
	}
	var cc struct {
		File     string `json:"file"`
		Database string `json:"database"`
		Queue    struct {
			BatchSize int `json:"batch_size"`
		} `json:"queue"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &cc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cc.File, "defaults") || cc.Queue.BatchSize != 50 {
		t.Errorf("defaults: %+v", cc)
	}
	r = e.RunWith(o, "--json", "campaign", "create", "--name", "n", "--subject", "s", "--text", "t")
	if r.Code != 0 {
		t.Fatalf("create with defaults: %s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "campaignd.db")); err != nil {
		t.Errorf("default database ./campaignd.db not created: %v", err)
	}
	r = e.RunWith(o, "--json", "campaign", "show", "1")
	if r.Code != 0 || !strings.Contains(r.Stdout, "support@example.com") {
		t.Errorf("the default From should come from $SUPPORT_EMAIL: %s", r)
	}
	// An explicit --config that does not exist is an error, not defaults.
	wantFail(t, e.RunWith(RunOpts{Dir: dir, NoConfig: true}, "--config", filepath.Join(dir, "nope.toml"), "campaign", "list"), 1, "nope.toml")
	// campaignd.toml in the working directory is picked up.
	WriteFile(t, dir, "campaignd.toml", "[queue]\nbatch_size = 12\n")
	r = e.RunWith(RunOpts{Dir: dir, NoConfig: true, Env: []string{"CAMPAIGND_CONFIG="}}, "--json", "config", "check")
	if r.Code != 0 || !strings.Contains(r.Stdout, `"batch_size": 12`) {
		t.Errorf("./campaignd.toml not used: %s", r)
	}
}

// ---- the daemon and the socket ----

func TestSecondDaemonRefused(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	d := e.StartDaemon()
	sock1, err := os.Lstat(e.Socket)
	if err != nil {
		t.Fatal(err)
	}
	r := e.RunWith(RunOpts{Timeout: 20 * time.Second}, "serve")
	wantFail(t, r, 1, "locked", "campaignd serve", fmt.Sprintf("pid %d", d.Cmd.Process.Pid))
	// The first daemon is unharmed and still owns its socket.
	sock2, err := os.Lstat(e.Socket)
	if err != nil || !os.SameFile(sock1, sock2) {
		t.Errorf("the refused daemon touched the socket: %v", err)
	}
	MustCreateCampaign(t, e)
	if xs := e.MustRun("campaign", "list"); !strings.Contains(xs, "test campaign") {
		t.Errorf("list after the refused second daemon:\n%s", xs)
	}
	if d.Exited() {
		t.Fatalf("first daemon died: %s", d.Stderr())
	}
	// A second daemon on the same database but another socket is refused too.
	other := filepath.Join(e.Dir, "other.sock")
	wantFail(t, e.RunWith(RunOpts{Timeout: 20 * time.Second}, "--socket", other, "serve"), 1, "locked")
	if _, err := os.Lstat(other); err == nil {
		t.Errorf("the refused daemon left a socket at %s", other)
	}
	// After a clean stop the socket is gone and the next daemon starts.
	if err := d.Stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, d.Stderr())
	}
	if _, err := os.Lstat(e.Socket); err == nil {
		t.Errorf("socket file left behind after SIGTERM")
	}
	e.StartDaemon()
	if n := campaignCount(t, e); n != 1 {
		t.Errorf("campaigns after restart: %d", n)
	}
}

func TestStaleSocket(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	// A socket file nobody listens on, as a killed daemon leaves behind.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: e.Socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(e.Socket); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("stale socket not there: %v", err)
	}
	// The CLI treats it as no daemon.
	id := MustCreateCampaign(t, e)
	e.MustRun("campaign", "activate", fmt.Sprint(id))
	// The daemon replaces it.
	e.StartDaemon()
	e.MustRun("campaign", "execute", fmt.Sprint(id))
	xs := executions(t, e, fmt.Sprint(id))
	if len(xs) != 1 || !strings.Contains(xs[0].By, "via socket") {
		t.Errorf("execute after the stale socket was replaced did not go through the daemon: %+v", xs)
	}

	// A daemon killed with SIGKILL leaves its socket; the next one replaces it.
	e2 := NewEnv(t, "")
	d := e2.StartDaemon()
	d.Kill()
	if _, err := os.Lstat(e2.Socket); err != nil {
		t.Fatalf("expected the killed daemon's socket file to remain: %v", err)
	}
	id2 := MustCreateCampaign(t, e2) // standalone: the kernel released the lock
	e2.StartDaemon()
	if c := show(t, e2, id2); c.ID != id2 {
		t.Errorf("show = %+v", c)
	}

	// Something that is not a socket in the way is refused, not deleted.
	e3 := NewEnv(t, "")
	WriteFile(t, e3.Dir, "campaignd.sock", "precious")
	wantFail(t, e3.RunWith(RunOpts{Timeout: 20 * time.Second}, "serve"), 1, e3.Socket, "regular file")
	if b, err := os.ReadFile(e3.Socket); err != nil || string(b) != "precious" {
		t.Errorf("the file in the socket's way was changed: %q %v", b, err)
	}
}

func TestSocketMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		toml string
		want os.FileMode
	}{
		{"", 0o600},
		{"socket_mode = \"0660\"\n", 0o660},
	} {
		e := NewEnv(t, tc.toml)
		e.StartDaemon()
		fi, err := os.Lstat(e.Socket)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != tc.want {
			t.Errorf("socket %s mode = %v, want socket %04o", e.Socket, fi.Mode(), tc.want)
		}
		// No temporary binding directory is left beside it.
		entries, _ := os.ReadDir(e.Dir)
		for _, en := range entries {
			if strings.HasPrefix(en.Name(), ".cd") {
				t.Errorf("leftover %s in the socket directory", en.Name())
			}
		}
	}
}

// While a daemon runs, write commands go through it; a CLI that cannot
// reach it (another --socket) waits a bounded time for the lock and then
// says who holds it. Reads and ticks never wait.
func TestStandaloneWhileDaemonRuns(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "lock_timeout = \"1s\"\n")
	// Before the daemon: standalone.
	id := MustCreateCampaign(t, e)
	e.MustRun("recipients", "add", fmt.Sprint(id), "ann@example.com")
	wantFail(t, e.Run("campaign", "execute", fmt.Sprint(id)), 1, "DRAFT") // leaves a FAILED record
	d := e.StartDaemon()
	e.MustRun("campaign", "activate", fmt.Sprint(id))
	e.MustRun("campaign", "execute", fmt.Sprint(id))
	xs := executions(t, e, fmt.Sprint(id))
	if len(xs) != 2 {
		t.Fatalf("executions = %+v", xs)
	}
	for _, x := range xs {
		want := "via socket"
		if x.Status == "FAILED" {
			want = "(standalone)"
		}
		if !strings.Contains(x.By, want) {
			t.Errorf("%s execution by %q, want %q", x.Status, x.By, want)
		}
	}

	other := []string{"--socket", filepath.Join(e.Dir, "nobody.sock")}
	start := time.Now()
	r := e.Run(append(other, "campaign", "create", "--name", "x", "--from", "a@example.com", "--subject", "s", "--text", "t")...)
	wantFail(t, r, 1, "locked", "campaignd serve", fmt.Sprintf("pid %d", d.Cmd.Process.Pid))
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("a blocked write took %s; lock_timeout is 1s", el)
	}
	// Reads need no lock.
	var cs []core.Campaign
	e.MustJSON(&cs, append(other, "campaign", "list")...)
	if len(cs) != 1 {
		t.Errorf("standalone read beside the daemon: %+v", cs)
	}
	wantStats(t, e, id, core.Stats{Total: 1, Queued: 1})
	// A standalone tick finds the daemon holding the lock while its socket
	// does not answer: skipped, but a problem cron must hear (with the
	// daemon's ticking off this cron line would never send), exit 3, one
	// line naming the socket it tried and the daemon.
	r = e.Run(append(other, "--json", "tick")...)
	var tr core.TickResult
	if err := json.Unmarshal([]byte(r.Stdout), &tr); err != nil || r.Code != 3 || !tr.Skipped || len(tr.Problems) != 1 {
		t.Errorf("--json standalone tick beside an unreachable daemon: want skipped with one problem, exit 3: %v\n%s", err, r)
	}
	r = e.Run(append(other, "tick")...)
	if r.Code != 3 || r.Stdout != "" || strings.Count(r.Stderr, "\n") != 1 || !strings.HasPrefix(r.Stderr, "campaignd: ") ||
		!strings.Contains(r.Stderr, "nobody.sock") || !strings.Contains(r.Stderr, "campaignd serve") || !strings.Contains(r.Stderr, "daemon") {
		t.Errorf("a tick blocked by the daemon: want exit 3 and one line naming the socket tried and the daemon: %s", r)
	}
}

// The control API over the socket: body limits and strict JSON.
func TestControlAPI(t *testing.T) {
	t.Parallel()
	e := NewEnv(t, "")
	e.StartDaemon()
	c := e.HTTPClient()
	type apiErr struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	// post sends the request on its own connection and reads the answer
	// while still writing: the daemon may answer (413) and close before it
	// has read the whole body, which net/http's client reports as a write
	// error instead of the response. length < 0 sends it chunked.
	post := func(path string, body io.Reader, length int64) (int, apiErr, string) {
		t.Helper()
		if body == nil {
			body = strings.NewReader("")
		}
		req, err := http.NewRequest("POST", "http://campaignd"+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = length
		if length < 0 {
			req.ContentLength = -1
			req.TransferEncoding = []string{"chunked"}
		}
		req.Header.Set("Content-Type", "application/json")
		conn, err := net.Dial("unix", e.Socket)
		if err != nil {
			t.Fatalf("dial %s: %v", e.Socket, err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		go func() { _ = req.Write(conn) }()
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var ae apiErr
		_ = json.Unmarshal(b, &ae)
		return resp.StatusCode, ae, string(b)
	}
	spec := func(extra string) string {
		return `{"name":"api","sender":"outbox","from":"a@example.com","subject":"s","text":"t"` + extra + `}`
	}

	// > 1 MiB with a Content-Length, and the same streamed (chunked).
	big := spec(`,"html":"` + strings.Repeat("A", 1<<20+100) + `"`)
	st, ae, raw := post("/v1/campaigns", strings.NewReader(big), int64(len(big)))
	if st != http.StatusRequestEntityTooLarge || ae.Error.Code != "too_large" {
		t.Errorf("oversized body: %d %s", st, raw)
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, strings.NewReader(big))
		pw.CloseWithError(err)
	}()
	st, ae, raw = post("/v1/campaigns", pr, -1)
	pr.Close()
	if st != http.StatusRequestEntityTooLarge || ae.Error.Code != "too_large" {
		t.Errorf("oversized chunked body: %d %s", st, raw)
	}

	// Unknown JSON field -> 400 naming it.
	st, ae, raw = post("/v1/campaigns", strings.NewReader(spec(`,"priority":"high"`)), -1)
	if st != http.StatusBadRequest || ae.Error.Code != "invalid" || !strings.Contains(ae.Error.Message, "priority") {
		t.Errorf("unknown field: %d %s", st, raw)
	}
	// NUL and CRLF inside JSON strings, invalid JSON, trailing data, a
	// non-UTF-8 byte, the wrong type.
	for name, body := range map[string]string{
		"NUL in name":       `{"name":"a\u0000b","sender":"outbox","from":"a@example.com","subject":"s","text":"t"}`,
		"CRLF in subject":   `{"name":"a","sender":"outbox","from":"a@example.com","subject":"s\r\nBcc: x@y.com","text":"t"}`,
		"CR in header":      spec(`,"headers":[{"name":"X-A","value":"v\rBcc: x@y.com"}]`),
		"truncated":         `{"name":"a",`,
		"trailing data":     spec("") + `{}`,
		"wrong type":        `{"name":5}`,
		"batch size 51":     spec(`,"batch_size":51`),
		"concurrency -1":    spec(`,"concurrency":-1`),
		"template":          `{"name":"a","sender":"outbox","from":"a@example.com","subject":"{{.Nope","text":"t"}`,
		"non-UTF-8 in name": "{\"name\":\"a\xffb\",\"sender\":\"outbox\",\"from\":\"a@example.com\",\"subject\":\"s\",\"text\":\"t\"}",
	} {
		st, ae, raw := post("/v1/campaigns", strings.NewReader(body), int64(len(body)))
		if st != http.StatusBadRequest || ae.Error.Code != "invalid" || ae.Error.Message == "" {
			t.Errorf("%s: %d %s", name, st, raw)
		}
	}
	if n := campaignCount(t, e); n != 0 {
		t.Fatalf("%d campaigns after only rejected API creates", n)
	}

	// A good create answers 201 with the campaign.
	body := spec("")
	st, _, raw = post("/v1/campaigns", strings.NewReader(body), int64(len(body)))
	var created core.Campaign
	if st != http.StatusCreated || json.Unmarshal([]byte(raw), &created) != nil || created.ID <= 0 || created.Status != "DRAFT" {
		t.Fatalf("create: %d %s", st, raw)
	}
	// Illegal transition over the API: 409 naming both states.
	st, ae, raw = post(fmt.Sprintf("/v1/campaigns/%d/execute", created.ID), nil, 0)
	if st != http.StatusConflict || ae.Error.Code != "conflict" || !strings.Contains(ae.Error.Message, "DRAFT") || !strings.Contains(ae.Error.Message, "SENDING") {
		t.Errorf("execute DRAFT: %d %s", st, raw)
	}
	// Unknown campaign: 404.
	resp, err := c.Get("http://campaignd/v1/campaigns/4242")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !bytes.Contains(b, []byte(`"not_found"`)) {
		t.Errorf("unknown campaign: %d %s", resp.StatusCode, b)
	}
	// Unknown route: JSON 404.
	resp, err = c.Get("http://campaignd/v2/nothing")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !bytes.Contains(b, []byte(`"error"`)) {
		t.Errorf("unknown route: %d %s", resp.StatusCode, b)
	}
	if n := campaignCount(t, e); n != 1 {
		t.Errorf("campaigns: %d, want 1", n)
	}
}

func TestSuppressImport(t *testing.T) {
	e := NewEnv(t, "")
	e.MustRun("init")
	csvFile := WriteFile(t, e.Dir, "sup.csv", "email,reason\nA@Example.COM,complaint\nnot-an-address,x\nb@example.org,\n")
	var res core.ImportResult
	e.MustJSON(&res, "suppress", "import", csvFile)
	if res.Added != 2 || res.Invalid != 1 || len(res.Errors) != 1 || res.Errors[0].Line != 3 {
		t.Fatalf("csv import: %+v", res)
	}
	txt := WriteFile(t, e.Dir, "sup.txt", "# bounced last year, from the old provider\nc@example.net\n\nd@example.net\n")
	e.MustJSON(&res, "suppress", "import", txt, "--reason", "legacy list")
	if res.Added != 2 || res.Invalid != 0 {
		t.Fatalf("text import: %+v", res)
	}
	var list []core.Suppression
	e.MustJSON(&list, "suppress", "list")
	if len(list) != 4 {
		t.Fatalf("list %+v", list)
	}
	for _, s := range list {
		if s.Email == "A@example.com" && (s.Reason != "complaint" || s.Source != "import") {
			t.Fatalf("entry %+v", s)
		}
		if s.Email == "c@example.net" && s.Reason != "legacy list" {
			t.Fatalf("entry %+v", s)
		}
	}
	// A one-column CSV file is a CSV file: its header is not an address.
	e.MustJSON(&res, "suppress", "import", WriteFile(t, e.Dir, "one.csv", "\ufeff\"Email\"\r\nf@example.net\r\n"))
	if res.Added != 1 || res.Invalid != 0 {
		t.Fatalf("one-column csv import: %+v", res)
	}
	// A CSV file without an email column is refused whole, naming its columns.
	r := e.Run("suppress", "import", WriteFile(t, e.Dir, "noemail.csv", "name,reason\nAnn,x\n"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "line 1: a CSV file needs a header row with an email column (columns: name, reason)") {
		t.Fatalf("csv without an email column: %s", r)
	}
	e.MustJSON(&list, "suppress", "list")
	if len(list) != 5 {
		t.Fatalf("list after the one-column and refused files: %+v", list)
	}
	id := MustCreateCampaign(t, e)
	var imp core.ImportResult
	e.MustJSON(&imp, "recipients", "import", fmt.Sprint(id), WriteFile(t, e.Dir, "r.csv", "email\na@example.com\nd@example.net\ne@example.net\n"))
	if imp.Added != 1 || imp.Suppressed != 2 {
		t.Fatalf("import after suppress import: %+v", imp)
	}
}
