package main

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// Text output goes to an operator's terminal, and much of what it prints
// came from elsewhere: recipient names and attributes from CSV files,
// suppression reasons from webhooks, error texts from SMTP servers and
// provider APIs. An ESC sequence among them could retitle the window,
// rewrite what is on screen or (on some terminals) answer back with input;
// a CR or a bidi override could hide or reorder a line. So every
// human-readable line is printed by fprintf, which escapes control
// characters in its string arguments. JSON output is encoded as is: it
// escapes control characters itself and must stay exact.

// fprintf is fmt.Fprintf with every string-kinded argument (and error)
// passed through termSafe; the format's own newlines and tabs are kept.
// Write errors are ignored, as on a terminal there is nothing to do.
func fprintf(w io.Writer, format string, args ...any) {
	for i, a := range args {
		switch v := a.(type) {
		case string:
			args[i] = termSafe(v)
		case error:
			args[i] = termSafe(v.Error())
		default:
			if rv := reflect.ValueOf(a); rv.IsValid() && rv.Kind() == reflect.String {
				args[i] = termSafe(rv.String())
			}
		}
	}
	fmt.Fprintf(w, format, args...)
}

// termSafe returns s with the characters that can drive a terminal
// written as Go escapes: C0 controls (ESC, CR, LF and tab included, since
// a tab would also break a table's columns), DEL, C1 controls, the
// Unicode bidi controls, and bytes that are not UTF-8. Other text, a
// backslash included, is returned as it was, so ordinary names read
// unchanged.
func termSafe(s string) string {
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unsafeRune(r, size) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case !unsafeRune(r, size):
			b.WriteString(s[i : i+size])
		case r == utf8.RuneError:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80:
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.String()
}

// unsafeRune reports whether the rune decoded with size bytes is one
// termSafe escapes.
func unsafeRune(r rune, size int) bool {
	switch {
	case r == utf8.RuneError && size <= 1:
		return true // not UTF-8 (a literal U+FFFD is 3 bytes and fine)
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true // bidi embeddings, overrides, isolates and marks
	}
	return false
}

// hex2 is b as two lower-case hex digits.
func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&0xf]})
}

// writeTermLines writes text made of lines (a message as it goes on the
// wire) keeping its CRLF or LF line ends, with whatever else termSafe
// escapes escaped within each line.
func writeTermLines(w io.Writer, text string) {
	for text != "" {
		line, rest, found := strings.Cut(text, "\n")
		end := ""
		if found {
			end = "\n"
			if l, ok := strings.CutSuffix(line, "\r"); ok {
				line, end = l, "\r\n"
			}
		}
		_, _ = io.WriteString(w, termSafe(line)+end)
		text = rest
	}
}
