package sqlite_test

import (
	"context"
	"testing"

	"github.com/campaignd/campaignd/core"
)

// BenchmarkMissingAttrs1M counts the recipients lacking a referenced
// attribute in a campaign of 1,000,000 PENDING recipients (the check
// activate and execute run): "present" when every row has them (the
// common case, a full scan), "missing" when every row lacks one.
func BenchmarkMissingAttrs1M(b *testing.B) {
	const n = 1_000_000
	path := cachedDB(b, "execute-1m", func(path string) {
		db, done := openBuild(b, path)
		c := MustCampaign(b, db, "execute")
		importRows(b, db, c.ID, n, 10_000, false)
		done()
	})
	db := MustOpenPath(b, path)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		attrs []string
		want  int64
	}{{"present", []string{"city", "plan"}, 0}, {"missing", []string{"city", "zip"}, n}} {
		b.Run(tc.name, func(b *testing.B) {
			var cpu float64
			for b.Loop() {
				cpu0 := cpuTime()
				m, err := db.MissingAttrs(ctx, 1, tc.attrs, []core.RecipientStatus{core.RecipientPending})
				cpu += (cpuTime() - cpu0).Seconds()
				if err != nil || m.Count != tc.want {
					b.Fatalf("%+v %v", m, err)
				}
			}
			b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
		})
	}
}
