package bounce_test

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkParse is the mailbox pass's cost per report: one Parse of each
// provider's fixture (Postfix, Exim, Gmail, Microsoft 365 DSNs and a Yahoo
// complaint), outside the tick (the pass runs beside it, every interval).
func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"postfix.eml", "exim.eml", "gmail.eml", "exchange.eml", "yahoo-arf.eml"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := parser.Parse(raw)
				if err != nil || r == nil || len(r.Events) == 0 {
					b.Fatalf("%s: %+v %v", name, r, err)
				}
			}
		})
	}
}
