package core

import (
	"net/mail"
	"testing"
)

// FuzzPlainAddrSpec checks that skipping mail.ParseAddress for a plain
// addr-spec changes nothing: the parse fails or returns the input.
func FuzzPlainAddrSpec(f *testing.F) {
	for _, s := range []string{
		"a@example.org", "A.B+c@Example.COM", "ünï@exämple.org", "a..b@x.org", "a@b@c",
		"a.@x.org", "@x.org", "a@", "a", "a@x..org", "a@x.org.", "a\x00@x.org", "a\xff@x.org",
		"a!#$%&'*+-/=?^_`{|}~@x.org", "a@-x.org", "a.b.c@d.e.f",
		// Not plain: must go through the parser.
		`"a b"@x.org`, "a(c)@x.org", "A <a@x.org>", "a@[1.2.3.4]", "g: a@x.org;", " a@x.org", `a\b@x.org`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !plainAddrSpec(s) {
			return
		}
		if a, err := mail.ParseAddress(s); err == nil && (a.Address != s || a.Name != "") {
			t.Fatalf("ParseAddress(%q) = %+v, want the input unchanged", s, a)
		}
	})
}

func TestMessageIDFormat(t *testing.T) {
	r := &Renderer{c: &Campaign{ID: 7}, domain: "x.org"}
	if got, want := r.MessageID(-3), "<c7.r-3@x.org>"; got != want {
		t.Fatalf("MessageID = %q, want %q", got, want)
	}
	if got, want := r.MessageID(1234567890123), "<c7.r1234567890123@x.org>"; got != want {
		t.Fatalf("MessageID = %q, want %q", got, want)
	}
}
