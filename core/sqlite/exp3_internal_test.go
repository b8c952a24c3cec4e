package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

func TestExpVariants(t *testing.T) {
	if os.Getenv("EXP3") == "" {
		t.Skip()
	}
	ctx := context.Background()
	const total, chunk = 500000, 10000
	seq := os.Getenv("SEQ") != ""
	var pre [][]core.RecipientInput
	for i := 0; i < total; i += chunk {
		b := make([]core.RecipientInput, chunk)
		expRows(b, i, seq)
		pre = append(pre, b)
	}
	runtime.GC()
	for _, variant := range strings.Split(os.Getenv("EXP3"), ",") {
		path := filepath.Join(t.TempDir(), variant+".db")
		db, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		c := &core.Campaign{Name: "x", Sender: "s", From: "a@b.c", Subject: "s", Text: "t", Concurrency: 1, BatchSize: 1}
		db.CreateCampaign(ctx, c)
		var single *sql.Stmt
		if variant == "single" {
			single, _ = db.w.Prepare(insertSQLFor(1))
		}
		s, c0 := time.Now(), cpuNow()
		for _, rows := range pre {
			tx, err := db.w.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			switch variant {
			case "multi500", "multi100", "multi50":
				k := map[string]int{"multi500": 500, "multi100": 100, "multi50": 50}[variant]
				q := insertSQLFor(k)
				args := make([]any, 4, 4+3*k)
				args[0], args[1], args[2], args[3] = c.ID, "PENDING", int64(1), nil
				var buf []byte
				for j := 0; j < len(rows); j += k {
					args = args[:4]
					for _, r := range rows[j : j+k] {
						buf = appendAttrs(buf[:0], r.Attrs)
						args = append(args, r.Email, r.Name, string(buf))
					}
					if _, err := tx.ExecContext(ctx, q, args...); err != nil {
						t.Fatal(err)
					}
				}
			case "single":
				st := tx.Stmt(single)
				var buf []byte
				for _, r := range rows {
					buf = appendAttrs(buf[:0], r.Attrs)
					if _, err := st.ExecContext(ctx, c.ID, "PENDING", int64(1), nil, r.Email, r.Name, string(buf)); err != nil {
						t.Fatal(err)
					}
				}
			case "json":
				buf := make([]byte, 0, 1<<20)
				buf = append(buf, '[')
				for j, r := range rows {
					if j > 0 {
						buf = append(buf, ',')
					}
					buf = append(buf, '[')
					buf = appendJSONString(buf, r.Email)
					buf = append(buf, ',')
					buf = appendJSONString(buf, r.Name)
					buf = append(buf, ',')
					buf = appendAttrs(buf, r.Attrs)
					buf = append(buf, ']')
				}
				buf = append(buf, ']')
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO recipients
					(campaign_id, email, name, attrs, status, created_at, updated_at, queued_at, next_attempt_at)
					SELECT ?1, value->>0, value->>1, json_extract(value, '$[2]'), ?2, ?3, ?3, ?4, ?4 FROM json_each(?5)`,
					c.ID, "PENDING", int64(1), nil, string(buf)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		wall, cpu := time.Since(s), cpuNow()-c0
		var n int
		db.r.QueryRow("SELECT count(*) FROM recipients").Scan(&n)
		var attrs string
		db.r.QueryRow("SELECT attrs FROM recipients LIMIT 1").Scan(&attrs)
		t.Logf("RESULT %s seq=%v rows=%d attrs=%s: wall %.0f rows/s, cpu %.0f rows/s", variant, seq, n, attrs, total/wall.Seconds(), total/cpu.Seconds())
		db.Close()
	}
}

func insertSQLFor(k int) string {
	var b strings.Builder
	b.WriteString(`INSERT OR IGNORE INTO recipients
		(campaign_id, email, name, attrs, status, created_at, updated_at, queued_at, next_attempt_at) VALUES `)
	for i := range k {
		if i > 0 {
			b.WriteByte(',')
		}
		p := 5 + 3*i
		fmt.Fprintf(&b, "(?1,?%d,?%d,?%d,?2,?3,?3,?4,?4)", p, p+1, p+2)
	}
	return b.String()
}
