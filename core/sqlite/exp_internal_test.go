package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

func expRows(buf []core.RecipientInput, start int, seq bool) {
	for i := range buf {
		k := start + i
		h := fnv.New32a()
		fmt.Fprint(h, k)
		e := fmt.Sprintf("%08x.%d@mail%d.example.com", h.Sum32(), k, k%97)
		if seq {
			e = fmt.Sprintf("r%09d@mail%d.example.com", k, k%97)
		}
		buf[i] = core.RecipientInput{Email: e, Name: fmt.Sprintf("Recipient %d", k), Attrs: map[string]string{"city": "Lyon", "plan": "pro"}}
	}
}

func TestExpImport(t *testing.T) {
	if os.Getenv("EXP") == "" {
		t.Skip()
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	if d := os.Getenv("EXPDIR"); d != "" {
		path = filepath.Join(d, "x.db")
		os.Remove(path); os.Remove(path + "-wal"); os.Remove(path + "-shm")
	}
	if ps := os.Getenv("PAGESIZE"); ps != "" {
		createFile(path)
		w, _ := openRawForPageSize(path, ps)
		_ = w
	}
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, p := range strings.Split(os.Getenv("PRAGMAS"), ";") {
		if p != "" {
			if _, err := db.w.Exec("PRAGMA " + p); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := &core.Campaign{Name: "x", Sender: "s", From: "a@b.c", Subject: "s", Text: "t", Concurrency: 1, BatchSize: 1}
	if err := db.CreateCampaign(ctx, c); err != nil {
		t.Fatal(err)
	}
	chunk := 10000
	buf := make([]core.RecipientInput, chunk)
	var ins time.Duration
	last := time.Duration(0)
	seq := os.Getenv("SEQ") != ""
	for i := 0; i < 1000000; i += chunk {
		expRows(buf, i, seq)
		s := time.Now()
		if _, err := db.InsertRecipients(ctx, c.ID, buf, t0x); err != nil {
			t.Fatal(err)
		}
		ins += time.Since(s)
		if (i/chunk)%25 == 24 {
			t.Logf("%d rows: last 250k at %.0f rows/s", i+chunk, 250000/(ins-last).Seconds())
			last = ins
		}
	}
	t.Logf("total %.0f rows/s", 1e6/ins.Seconds())
	if os.Getenv("EXEC") != "" {
		db.SetCampaignStatus(ctx, c.ID, core.CampaignDraft, core.CampaignActive, t0x)
		s := time.Now()
		ex, err := db.Execute(ctx, c.ID, "x", t0x)
		t.Logf("execute %d: %v err=%v", ex.Queued, time.Since(s), err)
	}
}

var t0x = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openRawForPageSize(path, ps string) (any, error) {
	w, err := sqlOpenRaw(path)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	_, err = w.Exec("PRAGMA page_size=" + ps + "; PRAGMA journal_mode=WAL")
	return nil, err
}

func sqlOpenRaw(path string) (*sql.DB, error) { return sql.Open("sqlite3", "file:"+path) }
