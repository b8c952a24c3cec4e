package sdk_test

import (
	"io"
	"strings"
	"testing"
)

// BenchmarkWriteToAlternative renders a message of the send path
// benchmark's size (216-byte text, 413-byte HTML part): the plugins' work
// per message before it reaches the wire.
func BenchmarkWriteToAlternative(b *testing.B) {
	m := baseMessage()
	m.Text = "Hi Alice <alice@example.org>,\n\nthis is the campaign. " + strings.Repeat("Lorem ipsum dolor sit amet. ", 6)
	m.HTML = "<!doctype html><html><body><p>Hi Alice,</p><p>this is <b>the campaign</b>.</p><p>" +
		strings.Repeat("Lorem ipsum dolor sit amet. ", 11) + "</p></body></html>"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
