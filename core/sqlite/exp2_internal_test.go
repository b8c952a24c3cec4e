package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(0, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestExpTiming(t *testing.T) {
	if os.Getenv("EXP2") == "" {
		t.Skip()
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	if ps := os.Getenv("PAGESIZE"); ps != "" {
		createFile(path)
		if _, err := openRawForPageSize(path, ps); err != nil {
			t.Fatal(err)
		}
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
	db.CreateCampaign(ctx, c)
	chunk, _ := strconv.Atoi(os.Getenv("CHUNK"))
	if chunk == 0 {
		chunk = 10000
	}
	total := 1000000
	if n, _ := strconv.Atoi(os.Getenv("TOTAL")); n > 0 {
		total = n
	}
	buf := make([]core.RecipientInput, chunk)
	seq := os.Getenv("SEQ") != ""
	var wall, cpu time.Duration
	var pre [][]core.RecipientInput
	if os.Getenv("PREGEN") != "" {
		for i := 0; i < total; i += chunk {
			b := make([]core.RecipientInput, chunk)
			expRows(b, i, seq)
			pre = append(pre, b)
		}
		runtime.GC()
	}
	for i := 0; i < total; i += chunk {
		if pre != nil {
			buf = pre[i/chunk]
		} else {
			expRows(buf, i, seq)
		}
		if os.Getenv("SORT") != "" {
			slices.SortStableFunc(buf, func(a, b core.RecipientInput) int { return strings.Compare(a.Email, b.Email) })
		}
		s, c0 := time.Now(), cpuNow()
		if _, err := db.InsertRecipients(ctx, c.ID, buf, t0x); err != nil {
			t.Fatal(err)
		}
		wall += time.Since(s)
		cpu += cpuNow() - c0
	}
	var ps int
	db.w.QueryRow("PRAGMA page_size").Scan(&ps)
	t.Logf("RESULT page=%d chunk=%d pragmas=%q seq=%v: wall %.0f rows/s, cpu %.0f rows/s", ps, chunk, os.Getenv("PRAGMAS"), seq, float64(total)/wall.Seconds(), float64(total)/cpu.Seconds())
	if os.Getenv("EXEC") != "" {
		db.SetCampaignStatus(ctx, c.ID, core.CampaignDraft, core.CampaignActive, t0x)
		s, c0 := time.Now(), cpuNow()
		ex, err := db.Execute(ctx, c.ID, "x", t0x)
		t.Logf("RESULT execute %d: wall %v cpu %v err=%v", ex.Queued, time.Since(s), cpuNow()-c0, err)
	}
}
