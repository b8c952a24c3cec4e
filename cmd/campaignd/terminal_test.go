package main

import (
	"bytes"
	"errors"
	"testing"
)

// TestTermSafe pins what reaches a terminal from text output (issue 12
// item 6): control characters, ESC sequences, bidi overrides and bytes
// that are not UTF-8 come out escaped; ordinary text is untouched.
func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"Ann Smith":                "Ann Smith",
		"Zoë 李 \\x1b":              "Zoë 李 \\x1b",
		"\x1b[2J\x1b]0;pwned\x07x": `\x1b[2J\x1b]0;pwned\x07x`,
		"a\r\nb\tc":                `a\r\nb\tc`,
		"del\x7f c1\u009b":         `del\x7f c1\u009b`,
		"evil\u202eexe.txt":        `evil\u202eexe.txt`,
		"bad\xffutf8":              `bad\xffutf8`,
		"real \ufffd stays":        "real \ufffd stays",
	} {
		if got := termSafe(in); got != want {
			t.Errorf("termSafe(%q) = %q, want %q", in, got, want)
		}
	}
	type status string
	var b bytes.Buffer
	fprintf(&b, "%s|%v|%s|%d\n", "n\x1bm", status("S\x1b"), errors.New("e\x1b"), 7)
	if got, want := b.String(), "n\\x1bm|S\\x1b|e\\x1b|7\n"; got != want {
		t.Errorf("fprintf: %q, want %q", got, want)
	}
}
