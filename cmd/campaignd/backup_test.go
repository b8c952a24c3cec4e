package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core/control"
	"github.com/campaignd/campaignd/core/sqlite"
	"github.com/campaignd/campaignd/plugins/smtp/smtptest"
)

// A backup taken through the daemon while it sends is one consistent
// snapshot: the copy opens, verify finds it clean, and its counters are
// mid-campaign and add up. An existing DEST is refused without --force;
// a standalone backup (no daemon) works from read access alone and takes
// DEST relative to the working directory.
func TestBackupWhileSending(t *testing.T) {
	const n = 400
	sink := startSink(t, smtptest.Options{ReplyDelay: func() time.Duration { return 5 * time.Millisecond }})
	e := NewEnv(t, "tick_interval = \"20ms\"\n"+sinkTOML("mail", sink))
	d := e.StartDaemon()
	if r := e.Run("backup"); r.Code != 2 || !strings.Contains(r.Stderr, "backup DEST [--force]") {
		t.Fatalf("backup without DEST: %s", r)
	}
	var csv strings.Builder
	csv.WriteString("email,name\n")
	for i := range n {
		fmt.Fprintf(&csv, "u%d@example.com,U %d\n", i, i)
	}
	id := startSendingCampaign(t, e, csv.String(), "--sender", "mail", "--concurrency", "2")

	deadline := time.Now().Add(30 * time.Second)
	for len(sink.Messages()) < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon sent %d messages in 30s", len(sink.Messages()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	dest := filepath.Join(e.Dir, "backups", "campaignd.db")
	if err := os.Mkdir(filepath.Dir(dest), 0o700); err != nil {
		t.Fatal(err)
	}
	var res control.BackupResult
	e.MustJSON(&res, "backup", dest)
	if res.Path != dest || res.Bytes <= 0 || res.SchemaVersion != sqlite.SchemaVersion() || res.Verify == nil ||
		!res.Verify.OK() || res.Verify.Campaigns != 1 || res.Verify.Recipients != n {
		t.Fatalf("backup through the daemon: %+v, verify %+v", res, res.Verify)
	}
	ctx := context.Background()
	cp, err := sqlite.OpenReadOnly(ctx, dest)
	if err != nil {
		t.Fatalf("open the copy: %v", err)
	}
	c, err := cp.Campaign(ctx, id)
	cp.Close()
	if err != nil {
		t.Fatal(err)
	}
	st := c.Stats
	if st.Total != n || st.Pending+st.Queued+st.Sending+st.Sent+st.Failed+st.Bounced != n || st.Sent == 0 {
		t.Fatalf("copy's counters %+v: not a snapshot of %d recipients mid-send", st, n)
	}
	t.Logf("the copy caught the campaign at %+v (%s)", st, c.Status)

	r := e.Run("backup", dest)
	if r.Code != 1 || !strings.Contains(r.Stderr, dest+" already exists (--force replaces it)") {
		t.Fatalf("backup over an existing file: %s", r)
	}
	if err := d.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// Standalone: no daemon, no lock; a relative DEST is the caller's.
	r = e.RunWith(RunOpts{Dir: filepath.Dir(dest)}, "--json", "backup", "campaignd.db", "--force")
	if r.Code != 0 {
		t.Fatalf("standalone backup --force: %s", r)
	}
	var again control.BackupResult
	if err := jsonDecode(r.Stdout, &again); err != nil || again.Path != dest || !again.Verify.OK() || again.Verify.Recipients != n {
		t.Fatalf("standalone backup: %+v, %v", again, err)
	}
	// The copy restores: a campaignd pointed at it sees the campaign.
	restored := NewEnv(t, "database = "+strconv.Quote(dest)+"\n"+sinkTOML("mail", sink))
	if got := dlvShow(t, restored, id); got.Stats.Total != n {
		t.Fatalf("restored campaign: %+v", got.Stats)
	}
	restored.MustRun("verify")
	if left, _ := filepath.Glob(filepath.Join(e.Dir, "backups", ".campaignd.db.tmp-*")); len(left) != 0 {
		t.Fatalf("temporary files left beside the backup: %v", left)
	}
}

// jsonDecode decodes one JSON document.
func jsonDecode(s string, v any) error {
	return json.Unmarshal([]byte(s), v)
}
