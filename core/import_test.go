package core_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/hashicorp/go-hclog"
)

// memStore is the slice of core.Store an import needs; any other method
// panics through the nil embedded interface.
type memStore struct {
	core.Store
	campaign *core.Campaign
	emails   map[string]bool
	chunks   []int
}

func (m *memStore) Campaign(_ context.Context, id int64) (*core.Campaign, error) {
	if m.campaign == nil || id != m.campaign.ID {
		return nil, core.Errorf(core.ENOTFOUND, "campaign %d not found", id)
	}
	return m.campaign, nil
}

func (m *memStore) InsertRecipients(_ context.Context, _ int64, rs []core.RecipientInput, _ time.Time) (core.InsertResult, error) {
	m.chunks = append(m.chunks, len(rs))
	var res core.InsertResult
	for _, r := range rs {
		if m.emails[r.Email] {
			res.Duplicates++
			continue
		}
		m.emails[r.Email] = true
		res.Added++
	}
	return res, nil
}

func newImportEngine(t *testing.T) (*core.Engine, *memStore) {
	t.Helper()
	st := &memStore{campaign: &core.Campaign{ID: 1, Status: core.CampaignDraft}, emails: map[string]bool{}}
	e, err := core.NewEngine(st, nil, core.DefaultLimits(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return e, st
}

// A byte order mark before a quoted header (what spreadsheets export) is
// not part of the first column's name.
func TestImportCSVBOMBeforeQuotedHeader(t *testing.T) {
	e, st := newImportEngine(t)
	res, err := e.ImportRecipients(context.Background(), 1, core.FormatCSV,
		strings.NewReader("\ufeff\"Email\",\"Name\"\r\n\"ann@example.com\",\"Ann\"\r\n"))
	if err != nil || res.Added != 1 || res.Invalid != 0 || !st.emails["ann@example.com"] {
		t.Fatalf("import: %+v, %v", res, err)
	}
}

// A byte order mark before a JSON-lines file is skipped as it is before a
// CSV header, instead of making line 1 invalid (issue 12 item 10).
func TestImportJSONLBOM(t *testing.T) {
	e, st := newImportEngine(t)
	res, err := e.ImportRecipients(context.Background(), 1, core.FormatJSONL,
		strings.NewReader("\ufeff{\"email\":\"ann@example.com\"}\n{\"email\":\"bob@example.com\"}\n"))
	if err != nil || res.Added != 2 || res.Invalid != 0 || !st.emails["ann@example.com"] {
		t.Fatalf("import: %+v, %v", res, err)
	}
}

// A header name that is not UTF-8 is refused, not turned into U+FFFD by
// lower-casing and accepted as an attribute (issue 12 item 13).
func TestImportCSVHeaderNotUTF8(t *testing.T) {
	e, _ := newImportEngine(t)
	res, err := e.ImportRecipients(context.Background(), 1, core.FormatCSV,
		strings.NewReader("email,Ci\xfft\xff\nann@example.com,Oslo\n"))
	if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "column 2 is not valid UTF-8") {
		t.Fatalf("import: %+v, %v; want EINVALID: column 2 is not valid UTF-8", res, err)
	}
}

func TestImportCSV(t *testing.T) {
	e, st := newImportEngine(t)
	csv := "\ufeffEmail,Name,City\n" +
		"ann@example.com,Ann,Oslo\n" + // line 2
		"bad-address,X,Y\n" + // 3: invalid
		"bob@example.com,Bob\n" + // 4: wrong field count
		"\"cy@example.com,Cy,Z\n" + // 5..: unterminated quote runs to EOF
		""
	res, err := e.ImportRecipients(context.Background(), 1, core.FormatCSV, strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 || res.Invalid != 3 {
		t.Fatalf("got %+v", res)
	}
	wantLines := []int64{3, 4, 5}
	for i, e := range res.Errors {
		if e.Line != wantLines[i] {
			t.Errorf("error %d on line %d, want %d (%s)", i, e.Line, wantLines[i], e.Message)
		}
	}
	if !st.emails["ann@example.com"] {
		t.Fatal("valid row not kept")
	}
}

func TestImportCSVRowErrors(t *testing.T) {
	e, _ := newImportEngine(t)
	csv := "email,name,plan\n" +
		"a@example.com,A,gold\n" +
		"a@EXAMPLE.com,A again,gold\n" + // duplicate after normalisation
		"b@example.com,\"B\rEvil\",x\n" + // CR in name
		"c@example.com,\xff,x\n" + // non-UTF-8
		"d@example.com,D,x\n"
	res, err := e.ImportRecipients(context.Background(), 1, core.FormatCSV, strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 2 || res.Duplicates != 1 || res.Invalid != 2 {
		t.Fatalf("got %+v", res)
	}
	if res.Errors[0].Line != 4 || !strings.Contains(res.Errors[0].Message, "CR") {
		t.Errorf("CR row: %+v", res.Errors[0])
	}
	if res.Errors[1].Line != 5 || !strings.Contains(res.Errors[1].Message, "UTF-8") {
		t.Errorf("non-UTF-8 row: %+v", res.Errors[1])
	}
}

func TestImportCSVHeader(t *testing.T) {
	e, _ := newImportEngine(t)
	for in, want := range map[string]string{
		"":                 "empty file",
		"name,city\nx,y\n": "no email column",
		"email,email\n":    "appears twice",
		"email,,x\n":       "column 2 is empty",
	} {
		_, err := e.ImportRecipients(context.Background(), 1, core.FormatCSV, strings.NewReader(in))
		if err == nil || core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: got %v, want EINVALID line 1 %q", in, err, want)
		}
	}
}

func TestImportJSONL(t *testing.T) {
	e, st := newImportEngine(t)
	in := `{"email":"a@example.com","name":"A","plan":"gold","age":42,"vip":true}
{"email":"b@example.com","attrs":{"city":"Oslo"}}

{"email": 5}
{not json
{"email":"c@example.com","nested":{"x":1}}
{"name":"no email"}
{"email":"d@example.com"}
{"email":"e@example.com","city":"Oslo","attrs":{"city":"Lyon"}}`
	res, err := e.ImportRecipients(context.Background(), 1, core.FormatJSONL, strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 3 || res.Invalid != 5 {
		t.Fatalf("got %+v", res)
	}
	want := []int64{4, 5, 6, 7, 9}
	for i, er := range res.Errors {
		if er.Line != want[i] {
			t.Errorf("error %d line %d want %d: %s", i, er.Line, want[i], er.Message)
		}
	}
	// An attribute given twice is refused, not settled by chance.
	if msg := res.Errors[4].Message; !strings.Contains(msg, `attribute "city": given both as a key and inside "attrs"`) {
		t.Errorf("line 9: %s", msg)
	}
	if len(st.emails) != 3 {
		t.Fatalf("stored %v", st.emails)
	}
}

func TestImportChunksAndErrorCap(t *testing.T) {
	e, st := newImportEngine(t)
	var b strings.Builder
	b.WriteString("email\n")
	for i := 0; i < 25000; i++ {
		fmt.Fprintf(&b, "u%d@example.com\n", i)
	}
	for i := 0; i < core.MaxImportErrors+10; i++ {
		b.WriteString("bad\n")
	}
	res, err := e.ImportRecipients(context.Background(), 1, core.FormatCSV, strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 25000 || res.Invalid != core.MaxImportErrors+10 || len(res.Errors) != core.MaxImportErrors {
		t.Fatalf("added %d invalid %d errors %d", res.Added, res.Invalid, len(res.Errors))
	}
	if len(st.chunks) != 3 || st.chunks[0] != 10000 {
		t.Fatalf("chunks %v: want 10000-row transactions", st.chunks)
	}
}

func TestImportRefusedForClosedCampaign(t *testing.T) {
	e, st := newImportEngine(t)
	st.campaign.Status = core.CampaignCompleted
	_, err := e.ImportRecipients(context.Background(), 1, core.FormatCSV, strings.NewReader("email\na@example.com\n"))
	if core.ErrorCode(err) != core.ECONFLICT {
		t.Fatalf("got %v", err)
	}
	if _, err := e.ImportRecipients(context.Background(), 2, core.FormatCSV, strings.NewReader("email\n")); core.ErrorCode(err) != core.ENOTFOUND {
		t.Fatalf("unknown campaign: got %v", err)
	}
}

// A stream that breaks mid-file (not a CSV syntax error) stops the import
// with an error naming the line it broke on.
func TestImportCSVStreamErrorNamesItsLine(t *testing.T) {
	e, _ := newImportEngine(t)
	data := "email\na@example.org\nb@example.org\nc@exa"
	res, err := e.ImportRecipients(context.Background(), 1, core.FormatCSV, &failingReader{r: strings.NewReader(data), n: len(data)})
	if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("import: %+v, %v; want EINVALID naming line 4", res, err)
	}
	if res.Added != 2 {
		t.Fatalf("added %d, want the 2 rows before the break", res.Added)
	}
}

// A CSV record that never ends (an unclosed quote in a large file) stops
// the import with an error naming its line, after the rows before it, with
// memory bounded by the record limit rather than the file.
func TestImportCSVRecordTooLong(t *testing.T) {
	e, st := newImportEngine(t)
	huge := io.MultiReader(strings.NewReader("email,name\na@example.org,A\nb@example.org,\"B"),
		io.LimitReader(infiniteX{}, 64<<20))
	res, err := e.ImportRecipients(context.Background(), 1, core.FormatCSV, huge)
	if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "line 3") ||
		!strings.Contains(err.Error(), "longer than") {
		t.Fatalf("import: %+v, %v; want EINVALID naming line 3 and the limit", res, err)
	}
	if res.Added != 1 || !st.emails["a@example.org"] {
		t.Fatalf("added %d (%v), want the row before the endless one", res.Added, st.emails)
	}
}

// infiniteX reads as an endless run of 'x'.
type infiniteX struct{}

func (infiniteX) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// The line an import stops at is where the stream broke: after a record
// that spans lines (a quoted line break), and right after the header.
func TestImportCSVStopLineAfterMultilineRecord(t *testing.T) {
	for _, c := range []struct {
		data string
		line string
	}{
		{"email,name\n\"a@example.org", "line 2"},
		{"email,name\na@example.org,\"A\nB\nC\"\nb@example.org,\"B", "line 5"},
	} {
		e, _ := newImportEngine(t)
		huge := io.MultiReader(strings.NewReader(c.data), io.LimitReader(infiniteX{}, 8<<20))
		if _, err := e.ImportRecipients(context.Background(), 1, core.FormatCSV, huge); err == nil || !strings.Contains(err.Error(), c.line) {
			t.Errorf("import of %q...: %v; want it to name %s", c.data, err, c.line)
		}
	}
}

// suppressStore records the batches an import writes to the suppression
// list.
type suppressStore struct {
	core.Store
	batches [][]core.Suppression
	fail    error
}

func (m *suppressStore) Suppress(_ context.Context, ss ...core.Suppression) error {
	if m.fail != nil {
		return m.fail
	}
	m.batches = append(m.batches, slices.Clone(ss))
	return nil
}

func (m *suppressStore) all() []core.Suppression { return slices.Concat(m.batches...) }

func TestImportSuppressions(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name, file string
		format     core.ImportFormat
		want       []string // email/reason
		errors     []core.ImportError
	}{
		{"csv", "email,reason\nA@Example.COM,complaint\nnot-an-address,x\nb@example.org,\n", "",
			[]string{"A@example.com/complaint", "b@example.org/imported"},
			[]core.ImportError{{Line: 3, Message: `invalid email address "not-an-address": mail: missing '@' or angle-addr`}}},
		// A first line that is a comment with commas is a plain list.
		{"list with a comment", "# bounced last year, from the old provider\nc@example.net\n\n  d@example.net \r\n#e@example.net\nnope\n", "",
			[]string{"c@example.net/imported", "d@example.net/imported"},
			[]core.ImportError{{Line: 6, Message: `invalid email address "nope": mail: missing '@' or angle-addr`}}},
		// A one-column CSV file is CSV: its header is not an address.
		{"one-column csv with a BOM", "\ufeff\"Email\"\r\nf@example.net\r\n", "", []string{"f@example.net/imported"}, nil},
		// Rows may be short (no reason) or long; the reason column is optional.
		{"ragged csv", "name,email,reason,\nAnn,g@example.net\nBob,h@example.net,spam,extra\nCy\n", "",
			[]string{"g@example.net/imported", "h@example.net/spam"}, []core.ImportError{{Line: 4, Message: "no email field"}}},
		{"csv parse error", "email\n\"i@example.net\n", core.FormatCSV, nil, []core.ImportError{{Line: 2, Message: `extraneous or missing " in quoted-field`}}},
		// Told it is a list, a header line is just an invalid address.
		{"forced list", "email\nj@example.net\n", core.FormatList, []string{"j@example.net/imported"},
			[]core.ImportError{{Line: 1, Message: `invalid email address "email": mail: missing '@' or angle-addr`}}},
		{"empty", "", "", nil, nil},
		{"reason with a NUL", "email,reason\nk@example.net,a\x00b\n", "", nil, []core.ImportError{{Line: 2, Message: "reason: contains a NUL byte"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &suppressStore{}
			e, err := core.NewEngine(st, nil, core.DefaultLimits(), hclog.NewNullLogger(), core.WithClock(func() time.Time { return at }))
			if err != nil {
				t.Fatal(err)
			}
			res, err := e.ImportSuppressions(context.Background(), tc.format, strings.NewReader(tc.file), "imported")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range st.all() {
				if s.Source != "import" || !s.CreatedAt.Equal(at) {
					t.Errorf("entry %+v", s)
				}
				got = append(got, s.Email+"/"+s.Reason)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("listed %q, want %q", got, tc.want)
			}
			if res.Added != int64(len(tc.want)) || res.Invalid != int64(len(tc.errors)) || res.Duplicates != 0 || res.Suppressed != 0 {
				t.Errorf("result %+v", res)
			}
			if res.Errors == nil || (len(tc.errors) > 0 && !slices.Equal(res.Errors, tc.errors)) {
				t.Errorf("errors %#v, want %#v", res.Errors, tc.errors)
			}
		})
	}
}

func TestImportSuppressionsRefuses(t *testing.T) {
	e, err := core.NewEngine(&suppressStore{}, nil, core.DefaultLimits(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, reason string
		format       core.ImportFormat
		want         string
	}{
		{"name,reason\nAnn,x\n", "", "", "line 1: a CSV file needs a header row with an email column (columns: name, reason)"},
		{"name,reason\nAnn,x\n", "", core.FormatCSV, `line 1: header has no email column (columns: "name", "reason")`},
		{"a@example.org\n", "", core.FormatJSONL, `format "jsonl": must be csv or list`},
		{"a@example.org\n", "x\x00", "", "reason: contains a NUL byte"},
	} {
		res, err := e.ImportSuppressions(context.Background(), tc.format, strings.NewReader(tc.file), tc.reason)
		if core.ErrorCode(err) != core.EINVALID || err.Error() != tc.want || res == nil || res.Added != 0 {
			t.Errorf("%q as %q: %+v, %v; want %s", tc.file, tc.format, res, err, tc.want)
		}
	}
}

// A long list goes in 10,000 addresses per transaction, memory flat; an
// over-long line is one invalid row; a failing store stops the import with
// what was committed.
func TestImportSuppressionsChunks(t *testing.T) {
	st := &suppressStore{}
	e, err := core.NewEngine(st, nil, core.DefaultLimits(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range 25000 {
		fmt.Fprintf(&b, "u%d@example.com\n", i)
		if i == 12000 {
			b.WriteString(strings.Repeat("x", 2<<20) + "\n")
		}
	}
	res, err := e.ImportSuppressions(context.Background(), core.FormatList, strings.NewReader(b.String()), "")
	if err != nil || res.Added != 25000 || res.Invalid != 1 || res.Errors[0].Line != 12002 || !strings.Contains(res.Errors[0].Message, "longer than") {
		t.Fatalf("%+v %v", res, err)
	}
	var sizes []int
	for _, b := range st.batches {
		sizes = append(sizes, len(b))
	}
	if !slices.Equal(sizes, []int{10000, 10000, 5000}) {
		t.Errorf("batches %v", sizes)
	}
	st.fail = core.Errorf(core.EUNAVAILABLE, "disk on fire")
	res, err = e.ImportSuppressions(context.Background(), "", strings.NewReader(b.String()), "")
	if core.ErrorCode(err) != core.EUNAVAILABLE || res.Added != 0 {
		t.Fatalf("failing store: %+v %v", res, err)
	}
}

// Through a real store: the import's addresses are suppressed, case
// aside, for a recipients import that follows.
func TestImportSuppressionsThenRecipients(t *testing.T) {
	h := newHarness(t, nil)
	res, err := h.eng.ImportSuppressions(ctx, "", strings.NewReader("\ufeffEmail,Reason\nA@Example.COM,complaint\nb@example.org\n"), "imported")
	if err != nil || res.Added != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	list, err := h.eng.Suppressions(ctx, 0)
	if err != nil || len(list) != 2 {
		t.Fatalf("%+v %v", list, err)
	}
	c, err := h.eng.CreateCampaign(ctx, core.CampaignSpec{Name: "c", Sender: "fake", From: "news@example.org", Subject: "s", Text: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ir, err := h.eng.ImportRecipients(ctx, c.ID, core.FormatCSV, strings.NewReader("email\na@example.com\nB@example.org\nc@example.org\n"))
	if err != nil || ir.Added != 1 || ir.Suppressed != 2 {
		t.Fatalf("%+v %v", ir, err)
	}
}
