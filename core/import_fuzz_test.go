package core_test

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/campaignd/campaignd/core"
	"github.com/hashicorp/go-hclog"
)

// Fuzz targets for Engine.ImportRecipients. The seeds (f.Add below and
// testdata/fuzz/FuzzImport*) run as ordinary tests; scripts/fuzz.sh
// explores further.
//
// Invariants checked on every input:
//   - no panic;
//   - every row is accounted for exactly once: rows handed to the store
//     plus invalid rows equal the rows an independent reader finds, and
//     added + duplicates + suppressed equal the rows handed to the store;
//   - Invalid == len(Errors) (below MaxImportErrors); error lines are >= 1,
//     non-decreasing, within the input, and messages are one valid UTF-8
//     line (the CLI prints one per line);
//   - every stored address is NormalizeAddress's own output (normalising
//     it again changes nothing) and holds no CR, LF or NUL; names hold no
//     CR, LF or NUL and are valid UTF-8; attributes are valid UTF-8
//     without NUL;
//   - an error stopping the import is EINVALID and says so with a line
//     (the header) or names the broken stream, and what was committed
//     before it is still counted.

// fuzzStore is the part of core.Store an import touches. Addresses at
// suppressedDomain count as suppressed, as the SQLite store would.
type fuzzStore struct {
	core.Store
	campaign *core.Campaign
	seen     map[string]bool
	rows     []core.RecipientInput // every row handed to InsertRecipients
}

const suppressedDomain = "@suppressed.example"

func (s *fuzzStore) Campaign(_ context.Context, id int64) (*core.Campaign, error) {
	if id != s.campaign.ID {
		return nil, core.Errorf(core.ENOTFOUND, "campaign %d not found", id)
	}
	return s.campaign, nil
}

func (s *fuzzStore) InsertRecipients(_ context.Context, _ int64, rs []core.RecipientInput, _ time.Time) (core.InsertResult, error) {
	var res core.InsertResult
	for _, r := range rs {
		// The batch slice is reused by the importer: keep copies.
		attrs := make(map[string]string, len(r.Attrs))
		for k, v := range r.Attrs {
			attrs[k] = v
		}
		s.rows = append(s.rows, core.RecipientInput{Email: r.Email, Name: r.Name, Attrs: attrs})
		switch {
		case strings.HasSuffix(r.Email, suppressedDomain):
			res.Suppressed++
		case s.seen[r.Email]:
			res.Duplicates++
		default:
			s.seen[r.Email] = true
			res.Added++
		}
	}
	return res, nil
}

// failingReader returns its data up to n bytes, then a stream error.
type failingReader struct {
	r io.Reader
	n int
}

var errStream = errors.New("fuzz: the disk caught fire")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errStream
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	if err == io.EOF {
		return n, errStream
	}
	return n, err
}

func FuzzImportCSV(f *testing.F) {
	for _, s := range []string{
		"email,name,city\nann@example.com,Ann,Oslo\nbob@Example.COM,Bob,Rome\n",
		"\ufeffEmail,Name\nann@example.com,Ann\nANN@example.com,dup\nann@EXAMPLE.com,dup2\n",
		"email,name\n\"ann@example.com\",\"Ann\r\nEvil: header\"\n",
		"email,name\nbad-address,X\nbob@example.com\n\"cy@example.com,Cy\n",
		"email\r\nann@example.com\r\n\r\nbob@example.com\r\n",
		"email,name\n\"Ann Other\" <ann@example.com>,\nx@suppressed.example,\n",
		"email,name\nann@example.com,\xff\xfe\n",
		"email,city\nann@example.com,\"Oslo\x00\"\n",
		"email,email\n",
		"name,city\nx,y\n",
		"",
		"email,\"na\nme\"\n\"a\"\"b\"@example.com,x\n",
		"email,name\n\"a b\"@example.com,Quoted local part\n",
		"email,name\nann@localhost,Local\nann@host,NoDot\n",
		"email,x\n a@example.com ,<script>alert(1)</script>\n",
	} {
		f.Add(s, uint16(0))
	}
	f.Add("email,name\nann@example.com,Ann\nbob@example.com,Bob\n", uint16(30))
	f.Fuzz(func(t *testing.T, input string, failAt uint16) {
		checkImport(t, core.FormatCSV, input, int(failAt), csvRows(input))
	})
}

func FuzzImportJSONL(f *testing.F) {
	for _, s := range []string{
		`{"email":"ann@example.com","name":"Ann","city":"Oslo"}` + "\n" + `{"email":"bob@Example.COM","attrs":{"plan":"gold","n":3}}`,
		`{"email":"ann@example.com","name":"Ann\r\nBcc: evil@example.net"}`,
		`{"email":"ann@example.com\r\nBcc: evil@example.net"}`,
		`{"email":"ann@example.com","name":"\u0000"}`,
		"{\"email\":\"ann@example.com\",\"name\":\"\xff\"}",
		`{"email": 5}` + "\n" + `{not json` + "\n" + `{"email":"c@example.com","nested":{"x":1}}`,
		"\n\n  \n" + `{"email":"late@example.com"}` + "\n\n",
		`{"email":"x@suppressed.example"}` + "\n" + `{"email":"X@SUPPRESSED.example"}`,
		`{"email":"ann@example.com","attrs":{"a":"<script>x</script>","b":null,"c":true,"d":1e400}}`,
		`{"email":"\"Ann\" <ann@example.com>"}` + "\n" + `{"email":"ann@example.com","email":"bob@example.com"}`,
		`[1,2,3]` + "\n" + `"str"` + "\n" + `null`,
		`{"email":"a b@example.com"}` + "\n" + `{"email":"\"a b\"@example.com"}`,
	} {
		f.Add(s, uint16(0))
	}
	f.Add(`{"email":"ann@example.com"}`+"\n"+`{"email":"bob@example.com"}`+"\n", uint16(40))
	f.Fuzz(func(t *testing.T, input string, failAt uint16) {
		checkImport(t, core.FormatJSONL, input, int(failAt), jsonlRows(input))
	})
}

// csvRows counts the records after the header with encoding/csv itself
// (any field count), -1 when the header does not read.
func csvRows(input string) int {
	r := csv.NewReader(strings.NewReader(input))
	r.FieldsPerRecord = -1
	if _, err := r.Read(); err != nil {
		return -1
	}
	n := 0
	for {
		_, err := r.Read()
		if err == io.EOF {
			return n
		}
		n++ // a malformed record is still one row
	}
}

// jsonlRows counts the non-blank lines.
func jsonlRows(input string) int {
	n := 0
	for _, l := range strings.Split(input, "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}

func checkImport(t *testing.T, format core.ImportFormat, input string, failAt, wantRows int) {
	st := &fuzzStore{campaign: &core.Campaign{ID: 1, Status: core.CampaignDraft}, seen: map[string]bool{}}
	e, err := core.NewEngine(st, nil, core.DefaultLimits(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader = strings.NewReader(input)
	if failAt > 0 {
		r = &failingReader{r: r, n: failAt}
	}
	res, err := e.ImportRecipients(context.Background(), 1, format, r)
	if res == nil {
		t.Fatalf("nil result (error %v)", err)
	}
	stored := int64(len(st.rows))

	// Accounting.
	if got := res.Added + res.Duplicates + res.Suppressed; got != stored {
		t.Fatalf("added %d + duplicates %d + suppressed %d = %d, but %d rows reached the store",
			res.Added, res.Duplicates, res.Suppressed, got, stored)
	}
	if res.Added < 0 || res.Duplicates < 0 || res.Suppressed < 0 || res.Invalid < 0 {
		t.Fatalf("negative count: %+v", res)
	}
	if want := min(res.Invalid, core.MaxImportErrors); int64(len(res.Errors)) != want {
		t.Fatalf("invalid %d but %d errors listed", res.Invalid, len(res.Errors))
	}
	if err == nil {
		if failAt > 0 {
			t.Fatalf("the stream failed after %d bytes but the import succeeded: %+v", failAt, res)
		}
		if wantRows < 0 {
			t.Fatalf("the header does not read, yet the import succeeded: %+v", res)
		}
		if got := stored + res.Invalid; got != int64(wantRows) {
			t.Fatalf("%d rows stored + %d invalid = %d, but the input has %d rows\nerrors: %+v",
				stored, res.Invalid, got, wantRows, res.Errors)
		}
	} else {
		if core.ErrorCode(err) != core.EINVALID {
			t.Fatalf("import error is %s, want EINVALID: %v", core.ErrorCode(err), err)
		}
		msg := core.ErrorMessage(err)
		if !strings.Contains(msg, "line") {
			t.Fatalf("import error names no line: %q", msg)
		}
		if strings.ContainsAny(msg, "\r\n") {
			t.Fatalf("import error is not one line: %q", msg)
		}
		streamFailed := failAt > 0 && strings.Contains(msg, errStream.Error())
		if !streamFailed && !strings.Contains(msg, "line 1") {
			t.Fatalf("import error that is not a stream failure must be the header's (line 1): %q", msg)
		}
		if !streamFailed && stored+res.Invalid != 0 {
			t.Fatalf("a header error, yet rows were imported: %+v, %d stored", res, stored)
		}
		if got := stored + res.Invalid; wantRows >= 0 && got > int64(wantRows) {
			t.Fatalf("%d rows stored + invalid from an input of %d rows", got, wantRows)
		}
	}

	// Error lines and messages.
	maxLine := int64(strings.Count(input, "\n") + 1)
	var prev int64
	for i, ie := range res.Errors {
		if ie.Line < 1 || ie.Line > maxLine {
			t.Fatalf("error %d at line %d, outside 1..%d: %q", i, ie.Line, maxLine, ie.Message)
		}
		if ie.Line < prev {
			t.Fatalf("error lines go backwards: %d after %d (%+v)", ie.Line, prev, res.Errors)
		}
		prev = ie.Line
		if ie.Message == "" || strings.ContainsAny(ie.Message, "\r\n") || !utf8.ValidString(ie.Message) {
			t.Fatalf("error %d message is not one valid UTF-8 line: %q", i, ie.Message)
		}
	}

	// What reached the store.
	for _, row := range st.rows {
		if strings.ContainsAny(row.Email, "\r\n\x00") || !utf8.ValidString(row.Email) {
			t.Fatalf("stored address %q has CR, LF, NUL or bad UTF-8", row.Email)
		}
		again, name, nerr := core.NormalizeAddress(row.Email)
		if nerr != nil {
			t.Fatalf("stored address %q does not normalise again: %v", row.Email, nerr)
		}
		if again != row.Email || name != "" {
			t.Fatalf("stored address %q is not normal: normalises to %q (name %q)", row.Email, again, name)
		}
		if strings.ContainsAny(row.Name, "\r\n\x00") || !utf8.ValidString(row.Name) {
			t.Fatalf("stored name %q has CR, LF, NUL or bad UTF-8", row.Name)
		}
		for k, v := range row.Attrs {
			if !utf8.ValidString(k) || !utf8.ValidString(v) || strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
				t.Fatalf("stored attribute %q=%q has NUL or bad UTF-8", k, v)
			}
		}
	}
}
