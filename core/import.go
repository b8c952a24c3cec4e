package core

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// ImportFormat is the format of an imported file.
type ImportFormat string

// Import formats. Recipients come as CSV or JSON lines; a suppression list
// as CSV or as a plain list.
const (
	FormatCSV   ImportFormat = "csv"
	FormatJSONL ImportFormat = "jsonl"
	// FormatList is one address per line; blank lines and lines starting
	// with # are skipped.
	FormatList ImportFormat = "list"
)

// ImportError is one rejected row of an import.
type ImportError struct {
	Line    int64  `json:"line"`
	Message string `json:"message"`
}

// ImportResult counts what an import did. Errors lists the first
// MaxImportErrors invalid rows; Invalid counts them all.
type ImportResult struct {
	Added      int64         `json:"added"`
	Duplicates int64         `json:"duplicates"`
	Suppressed int64         `json:"suppressed"`
	Invalid    int64         `json:"invalid"`
	Errors     []ImportError `json:"errors"`
	// MissingAttrs reports the valid rows that lack an attribute the
	// campaign's templates reference; nil when none does (and for
	// suppression imports).
	MissingAttrs *ImportMissingAttrs `json:"missing_attrs,omitempty"`
}

// ImportMissingAttrs counts the imported rows lacking an attribute the
// templates reference (duplicates and suppressed rows included: they are
// counted as read). Such rows make activate and execute refuse until they
// are completed, or the operator allows it (see WithAllowMissingAttrs).
type ImportMissingAttrs struct {
	Rows  int64    `json:"rows"`
	Lines []int64  `json:"lines"` // the first MaxMissingAttrLines of them
	Attrs []string `json:"attrs"` // the referenced attributes missing at least once, sorted
}

// MaxMissingAttrLines bounds the line numbers ImportMissingAttrs lists.
const MaxMissingAttrLines = 10

// note counts row line if it lacks one of attrs.
func (m *ImportMissingAttrs) note(line int64, in *RecipientInput, attrs []string) {
	lacks := false
	for _, a := range attrs {
		if _, ok := in.Attrs[a]; !ok {
			lacks = true
			if !slices.Contains(m.Attrs, a) {
				m.Attrs = append(m.Attrs, a)
				slices.Sort(m.Attrs)
			}
		}
	}
	if !lacks {
		return
	}
	m.Rows++
	if len(m.Lines) < MaxMissingAttrLines {
		m.Lines = append(m.Lines, line)
	}
}

// MaxImportErrors bounds the per-row errors an ImportResult lists; Invalid
// still counts every rejected row.
const MaxImportErrors = 1000

// importChunk is the number of rows written per transaction: large enough
// to amortise the commit, small enough that an import never holds the write
// lock for long and a tick can interleave.
const importChunk = 10000

// maxRecordBytes bounds one record, a JSON line or a CSV record (which
// may span lines inside quotes), so that memory stays flat whatever the
// file holds.
const maxRecordBytes = 1 << 20

// ParseImportFormat returns the format named by s; "" means CSV.
func ParseImportFormat(s string) (ImportFormat, error) {
	switch strings.ToLower(s) {
	case "", "csv":
		return FormatCSV, nil
	case "jsonl", "ndjson", "json":
		return FormatJSONL, nil
	}
	return "", Errorf(EINVALID, "format %q: must be csv or jsonl", s)
}

// recipientSource yields validated-shape rows with their line numbers.
// Next returns io.EOF at the end, a *rowError for a bad row (the source
// stays usable) and any other error for an unreadable stream.
type recipientSource interface {
	Next() (RecipientInput, int64, error)
}

type rowError struct {
	line int64
	msg  string
}

func (e *rowError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// importRecipients streams rows from r into the store, validating each.
// This goroutine parses, validates and packs valid rows into bounded runs
// (see sortRun); a writer goroutine sorts each run by address and writes it
// importChunk rows per transaction, so parsing overlaps SQLite's work. Two
// runs take turns, so memory stays bounded whatever the file's size. It
// returns the counts so far together with any error that stopped it: rows
// already committed stay committed. Valid rows lacking one of attrs (the
// attributes the campaign's templates reference) are reported in
// res.MissingAttrs.
func importRecipients(ctx context.Context, store Store, campaignID int64, format ImportFormat, r io.Reader, now func() time.Time, attrs []string) (*ImportResult, error) {
	var src recipientSource
	switch format {
	case FormatCSV, "":
		s, err := newCSVSource(r, false)
		if err != nil {
			return &ImportResult{Errors: []ImportError{}}, err
		}
		src = s
	case FormatJSONL:
		src = newJSONLSource(r)
	default:
		return nil, Errorf(EINVALID, "format %q: must be csv or jsonl", format)
	}
	res := &ImportResult{Errors: []ImportError{}}
	missing := &ImportMissingAttrs{Lines: []int64{}}
	defer func() {
		if missing.Rows > 0 {
			res.MissingAttrs = missing
		}
	}()

	// The writer owns written and werr until done is closed; it drains
	// full to the end even after a failure, so sending never blocks for
	// good, and hands every run back on free.
	full := make(chan *rowRun)
	free := make(chan *rowRun, 2)
	free <- newRowRun()
	free <- newRowRun()
	done := make(chan struct{})
	var (
		written ImportResult
		werr    error
		failed  atomic.Bool
	)
	go func() {
		defer close(done)
		batch := make([]RecipientInput, 0, importChunk)
		for run := range full {
			if werr == nil {
				if werr = writeRun(ctx, store, campaignID, run, batch, now, &written); werr != nil {
					failed.Store(true)
				}
			}
			run.reset()
			free <- run
		}
	}()
	run := <-free
	// finish hands the last run to the writer, waits for it and adds what
	// it wrote to res.
	finish := func() error {
		if len(run.rows) > 0 {
			full <- run
		}
		close(full)
		<-done
		res.Added, res.Duplicates, res.Suppressed = written.Added, written.Duplicates, written.Suppressed
		return werr
	}
	err := eachRow(ctx, src, res, "import recipients", "rows", finish, func(in *RecipientInput, line int64) (bool, error) {
		if verr := in.Validate(); verr != nil {
			res.addError(line, ErrorMessage(verr))
			return false, nil
		}
		if len(attrs) > 0 {
			missing.note(line, in, attrs)
		}
		run.add(in)
		if run.full() {
			full <- run
			run = <-free
			return failed.Load(), nil // the writer failed: finish says why
		}
		return false, nil
	})
	if err != nil {
		return res, err
	}
	return res, finish()
}

// eachRow hands take the rows of src with their line numbers until the
// source ends or take says stop; rows the source rejects are counted in
// res. A cancelled ctx (checked every importChunk rows) or a broken stream
// ends the import: flush then writes what was taken so far, and eachRow
// returns flush's error, or else the cause, naming the line and how many
// noun were added. The one row loop of every import.
func eachRow(ctx context.Context, src recipientSource, res *ImportResult, op, noun string,
	flush func() error, take func(in *RecipientInput, line int64) (stop bool, err error)) error {
	for rows := 1; ; rows++ {
		if rows%importChunk == 0 {
			if err := ctx.Err(); err != nil {
				if ferr := flush(); ferr != nil {
					return ferr
				}
				return fmt.Errorf("%s: %w", op, err)
			}
		}
		in, line, err := src.Next()
		if err == io.EOF {
			return nil
		}
		var re *rowError
		if errors.As(err, &re) {
			res.addError(re.line, re.msg)
			continue
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return Errorf(EINVALID, "import stopped at line %d after %d %s added: %v", line, res.Added, noun, err)
		}
		if stop, err := take(&in, line); err != nil || stop {
			return err
		}
	}
}

// writeRun sorts a run and writes it importChunk rows per transaction,
// adding the counts to res.
func writeRun(ctx context.Context, store Store, campaignID int64, run *rowRun, batch []RecipientInput, now func() time.Time, res *ImportResult) error {
	run.sort()
	for start := 0; start < len(run.rows); start += importChunk {
		batch = batch[:0]
		for _, p := range run.rows[start:min(start+importChunk, len(run.rows))] {
			batch = append(batch, run.row(p))
		}
		ir, err := store.InsertRecipients(ctx, campaignID, batch, now())
		if err != nil {
			return fmt.Errorf("import recipients: %w", err)
		}
		res.Added += ir.Added
		res.Duplicates += ir.Duplicates
		res.Suppressed += ir.Suppressed
	}
	return nil
}

// sortRun and sortRunBytes bound the rows an import holds before writing
// them: a run is sorted by address, then written importChunk rows per
// transaction. The (campaign_id, email) unique index takes each row at a
// random place; once a campaign's index has more leaf pages than a
// transaction has rows, every row dirties a page of its own, which the WAL
// writes and the checkpoint writes again: about 4 KB of writes per row (4 GB
// for a 1,000,000-row file). Sorted, consecutive transactions fill
// neighbouring pages: 50,000-row runs cut those writes threefold, and the
// import's CPU time by half (BenchmarkImportCSV). Memory stays flat: two
// runs (one filling, one being written) of at most sortRunBytes of packed
// rows each. Within a run, rows get their ids in address order, not file
// order; the first of duplicate rows still wins (ties keep file order).
const (
	sortRun      = 50000
	sortRunBytes = 8 << 20
)

// rowRun is a run of validated rows packed into one buffer (far smaller
// than RecipientInput values with their maps), sortable by address.
type rowRun struct {
	// data holds each row as uvarint-length-prefixed fields: email, name,
	// then the attribute count and each key and value.
	data []byte
	rows []packedRow
	keys map[string]string // attribute names, shared between rows
}

// packedRow locates one row of a run and its address in data (a run is at
// most sortRunBytes plus one row, far below 2 GiB).
type packedRow struct{ off, email, end int32 }

func newRowRun() *rowRun { return &rowRun{keys: map[string]string{}} }

func (r *rowRun) add(in *RecipientInput) {
	p := packedRow{off: int32(len(r.data))}
	r.data = binary.AppendUvarint(r.data, uint64(len(in.Email)))
	p.email = int32(len(r.data))
	r.data = append(r.data, in.Email...)
	p.end = int32(len(r.data))
	r.data = appendField(r.data, in.Name)
	r.data = binary.AppendUvarint(r.data, uint64(len(in.Attrs)))
	for k, v := range in.Attrs {
		r.data = appendField(r.data, k)
		r.data = appendField(r.data, v)
	}
	r.rows = append(r.rows, p)
}

func appendField(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// field returns the field starting at data[off] and the offset after it.
func (r *rowRun) field(off int) ([]byte, int) {
	n, k := binary.Uvarint(r.data[off:])
	off += k
	return r.data[off : off+int(n)], off + int(n)
}

func (r *rowRun) full() bool { return len(r.rows) >= sortRun || len(r.data) >= sortRunBytes }

func (r *rowRun) reset() { r.data, r.rows = r.data[:0], r.rows[:0] }

// sort orders the run by address, keeping file order among equal ones.
func (r *rowRun) sort() {
	slices.SortFunc(r.rows, func(a, b packedRow) int {
		if c := bytes.Compare(r.data[a.email:a.end], r.data[b.email:b.end]); c != 0 {
			return c
		}
		return cmp.Compare(a.off, b.off)
	})
}

// row unpacks a row.
func (r *rowRun) row(p packedRow) RecipientInput {
	email := r.data[p.email:p.end]
	name, off := r.field(int(p.end))
	n, k := binary.Uvarint(r.data[off:])
	off += k
	in := RecipientInput{Email: string(email), Name: string(name)}
	if n > 0 {
		in.Attrs = make(map[string]string, n)
		for range n {
			var kb, vb []byte
			kb, off = r.field(off)
			vb, off = r.field(off)
			key, ok := r.keys[string(kb)]
			if !ok {
				key = string(kb)
				if len(r.keys) < 1000 {
					r.keys[key] = key
				}
			}
			in.Attrs[key] = string(vb)
		}
	}
	return in
}

func (r *ImportResult) addError(line int64, msg string) {
	r.Invalid++
	if len(r.Errors) < MaxImportErrors {
		r.Errors = append(r.Errors, ImportError{Line: line, Message: msg})
	}
}

// csvSource reads a CSV file with a header row: "email" is required,
// "name" optional, every other column an attribute.
type csvSource struct {
	r        *csv.Reader
	limit    *recordLimit
	emailCol int
	nameCol  int
	attrCols []int
	header   []string
	attrs    map[string]string // reused by Next
	line     int64             // where the last record read ended
}

// importBuffer is the read buffer of an import's source.
const importBuffer = 256 << 10

// newImportReader buffers r for a source and drops a leading UTF-8 byte
// order mark: spreadsheet exports start with one, before any quote.
func newImportReader(r io.Reader) *bufio.Reader {
	br := bufio.NewReaderSize(r, importBuffer) // r itself when it is one already
	if bom, _ := br.Peek(3); string(bom) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	return br
}

// newCSVSource reads the header row. A ragged source (a suppression list)
// lets a record have fewer fields than the header (the missing ones read
// as empty) or more (ignored), and ignores columns with no name; otherwise
// every record must have the header's fields, and every column a name.
func newCSVSource(r io.Reader, ragged bool) (*csvSource, error) {
	limit := &recordLimit{r: newImportReader(r)}
	cr := csv.NewReader(limit)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, Errorf(EINVALID, "line 1: empty file: a header row with an email column is required")
	}
	if err != nil {
		return nil, Errorf(EINVALID, "line 1: header: %v", csvErrText(err))
	}
	s := &csvSource{r: cr, limit: limit, emailCol: -1, nameCol: -1}
	seen := map[string]bool{}
	for i, h := range header {
		// Checked before lower-casing, which turns invalid bytes into
		// U+FFFD and so would let them through as a column name.
		if !utf8.ValidString(h) {
			return nil, Errorf(EINVALID, "line 1: header column %d is not valid UTF-8", i+1)
		}
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			if ragged {
				s.header = append(s.header, h)
				continue
			}
			return nil, Errorf(EINVALID, "line 1: header column %d is empty", i+1)
		}
		if seen[h] {
			return nil, Errorf(EINVALID, "line 1: header column %q appears twice", h)
		}
		seen[h] = true
		switch h {
		case "email":
			s.emailCol = i
		case "name":
			s.nameCol = i
		default:
			s.attrCols = append(s.attrCols, i)
		}
		s.header = append(s.header, h)
	}
	if s.emailCol < 0 {
		cols := make([]string, len(s.header))
		for i, h := range s.header {
			cols[i] = strconv.Quote(h) // a quoted header may hold CR or LF: keep the message one line
		}
		return nil, Errorf(EINVALID, "line 1: header has no email column (columns: %s)", strings.Join(cols, ", "))
	}
	cr.FieldsPerRecord = len(header)
	if ragged {
		cr.FieldsPerRecord = -1
	}
	s.line = recordEndLine(cr, header)
	return s, nil
}

func (s *csvSource) Next() (RecipientInput, int64, error) {
	s.limit.n = 0
	rec, err := s.r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			s.line = int64(pe.Line)
			return RecipientInput{}, int64(pe.StartLine), &rowError{line: int64(pe.StartLine), msg: csvErrText(err)}
		}
		// The stream broke (not the CSV): name the line it broke on.
		return RecipientInput{}, s.line + 1, err
	}
	line, _ := s.r.FieldPos(0)
	s.line = recordEndLine(s.r, rec)
	if s.emailCol >= len(rec) {
		return RecipientInput{}, int64(line), &rowError{line: int64(line), msg: "no email field"}
	}
	in := RecipientInput{Email: rec[s.emailCol]}
	if s.nameCol >= 0 && s.nameCol < len(rec) {
		in.Name = rec[s.nameCol]
	}
	if len(s.attrCols) > 0 {
		// One map serves every row: importRecipients packs each row
		// before it asks for the next.
		if s.attrs == nil {
			s.attrs = make(map[string]string, len(s.attrCols))
		}
		clear(s.attrs)
		in.Attrs = s.attrs
		for _, i := range s.attrCols {
			if i < len(rec) && rec[i] != "" {
				in.Attrs[s.header[i]] = rec[i]
			}
		}
	}
	return in, int64(line), nil
}

// recordEndLine is the line the record just read ends on (a quoted field
// may span lines).
func recordEndLine(r *csv.Reader, rec []string) int64 {
	l, _ := r.FieldPos(len(rec) - 1)
	return int64(l) + int64(strings.Count(rec[len(rec)-1], "\n"))
}

// recordLimit fails a read once more than maxRecordBytes (plus the CSV
// reader's small read-ahead) have been read since n was last reset, before
// each record: one endless record (an unclosed quote in a huge file) stops
// the import with an error instead of filling memory.
type recordLimit struct {
	r io.Reader
	n int
}

var errRecordTooLong = fmt.Errorf("a record is longer than %d bytes (an unclosed quote?)", maxRecordBytes)

func (l *recordLimit) Read(p []byte) (int, error) {
	const readAhead = 64 << 10
	if l.n >= maxRecordBytes+readAhead {
		return 0, errRecordTooLong
	}
	p = p[:min(len(p), maxRecordBytes+readAhead-l.n)]
	n, err := l.r.Read(p)
	l.n += n
	return n, err
}

func csvErrText(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// lineReader reads a stream line by line, counting lines from 1; a line
// longer than maxRecordBytes is a row error, skipped whole.
type lineReader struct {
	r    *bufio.Reader
	line int64
}

// jsonlSource reads one JSON object per line: "email" required, "name"
// optional, "attrs" an optional object, any other scalar key an attribute.
type jsonlSource struct{ lineReader }

func newJSONLSource(r io.Reader) *jsonlSource {
	return &jsonlSource{lineReader{r: newImportReader(r)}}
}

func (s *jsonlSource) Next() (RecipientInput, int64, error) {
	for {
		raw, err := s.readLine()
		if err != nil {
			return RecipientInput{}, s.line, err
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		in, msg := decodeJSONRecipient(raw)
		if msg != "" {
			return RecipientInput{}, s.line, &rowError{line: s.line, msg: msg}
		}
		return in, s.line, nil
	}
}

// readLine returns the next line; an over-long line is a row error and is
// skipped whole.
func (s *lineReader) readLine() ([]byte, error) {
	s.line++
	var buf []byte
	tooLong := false
	for {
		chunk, err := s.r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > maxRecordBytes {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if tooLong {
			if err != nil && err != io.EOF {
				return nil, err
			}
			return nil, &rowError{line: s.line, msg: fmt.Sprintf("line longer than %d bytes", maxRecordBytes)}
		}
		if err == io.EOF && len(buf) > 0 {
			return buf, nil
		}
		return buf, err
	}
}

func decodeJSONRecipient(raw []byte) (RecipientInput, string) {
	if !utf8.Valid(raw) {
		return RecipientInput{}, "not valid UTF-8"
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return RecipientInput{}, "malformed JSON: " + err.Error()
	}
	var in RecipientInput
	// In key order, so that of several bad fields the same one is named
	// every time.
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		v := obj[k]
		switch k {
		case "email", "name":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return in, fmt.Sprintf("field %q: must be a string", k)
			}
			if k == "email" {
				in.Email = s
			} else {
				in.Name = s
			}
		case "attrs":
			var m map[string]json.RawMessage
			if err := json.Unmarshal(v, &m); err != nil {
				return in, `field "attrs": must be an object`
			}
			for _, ak := range slices.Sorted(maps.Keys(m)) {
				if msg := setAttr(&in, ak, m[ak]); msg != "" {
					return in, msg
				}
			}
		default:
			if msg := setAttr(&in, k, v); msg != "" {
				return in, msg
			}
		}
	}
	if in.Email == "" {
		return in, `field "email": required`
	}
	return in, ""
}

func setAttr(in *RecipientInput, k string, v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	var s string
	switch {
	case len(v) == 0 || string(v) == "null":
		return ""
	case v[0] == '"':
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Sprintf("attribute %q: %v", k, err)
		}
	case v[0] == '{' || v[0] == '[':
		return fmt.Sprintf("attribute %q: must be a string, number or boolean", k)
	default:
		s = string(v)
	}
	if in.Attrs == nil {
		in.Attrs = map[string]string{}
	}
	if _, dup := in.Attrs[k]; dup {
		return fmt.Sprintf(`attribute %q: given both as a key and inside "attrs"`, k)
	}
	in.Attrs[k] = s
	return ""
}

// importSuppressions streams a suppression list from r onto the store's
// suppression list, importChunk addresses per transaction, each with
// source "import" and the reason from its row or else reason. It reads
// CSV (a header row with an "email" column, optionally "reason") or a
// plain list; format "" tells them apart by the first line (see
// sniffSuppressionFormat). Invalid rows are reported like a recipients
// import's and skipped. It returns the counts so far together with any
// error that stopped it: addresses already committed stay listed.
func importSuppressions(ctx context.Context, store Store, format ImportFormat, r io.Reader, reason string, now func() time.Time) (*ImportResult, error) {
	res := &ImportResult{Errors: []ImportError{}}
	if strings.ContainsRune(reason, 0) {
		return res, Errorf(EINVALID, "reason: contains a NUL byte")
	}
	br := newImportReader(r)
	if format == "" {
		var err error
		if format, err = sniffSuppressionFormat(br); err != nil {
			return res, err
		}
	}
	var src recipientSource
	switch format {
	case FormatCSV:
		s, err := newCSVSource(br, true)
		if err != nil {
			return res, err
		}
		src = s
	case FormatList:
		src = &listSource{lineReader{r: br}}
	default:
		return res, Errorf(EINVALID, "format %q: must be csv or list", format)
	}
	batch := make([]Suppression, 0, importChunk)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := store.Suppress(ctx, batch...); err != nil {
			return fmt.Errorf("import suppressions: %w", err)
		}
		res.Added += int64(len(batch))
		batch = batch[:0]
		return nil
	}
	err := eachRow(ctx, src, res, "import suppressions", "addresses", flush, func(in *RecipientInput, line int64) (bool, error) {
		s := Suppression{Email: in.Email, Reason: in.Attrs["reason"], Source: SourceImport, CreatedAt: now()}
		if s.Reason == "" {
			s.Reason = reason
		}
		if verr := s.Validate(); verr != nil {
			res.addError(line, ErrorMessage(verr))
			return false, nil
		}
		batch = append(batch, s)
		if len(batch) == importChunk {
			return false, flush()
		}
		return false, nil
	})
	if err != nil {
		return res, err
	}
	return res, flush()
}

// sniffSuppressionFormat tells a CSV suppression list from a plain one by
// its first line: one that names an "email" column makes the file CSV (one
// column is enough); one with commas but no such column is a CSV file
// without the header it needs, refused naming its columns; anything else,
// a comment line with commas included, is a plain list.
func sniffSuppressionFormat(br *bufio.Reader) (ImportFormat, error) {
	first, _ := br.Peek(4096)
	line0, _, _ := strings.Cut(string(first), "\n")
	line0 = strings.TrimRight(line0, "\r")
	if strings.HasPrefix(strings.TrimSpace(line0), "#") {
		return FormatList, nil
	}
	var columns []string
	for _, h := range strings.Split(line0, ",") {
		columns = append(columns, strings.ToLower(strings.TrimSpace(strings.Trim(strings.TrimSpace(h), `"`))))
	}
	switch {
	case slices.Contains(columns, "email"):
		return FormatCSV, nil
	case len(columns) > 1:
		return "", Errorf(EINVALID, "line 1: a CSV file needs a header row with an email column (columns: %s)", strings.Join(columns, ", "))
	}
	return FormatList, nil
}

// listSource reads one address per line, skipping blank lines and lines
// that start with #.
type listSource struct{ lineReader }

func (s *listSource) Next() (RecipientInput, int64, error) {
	for {
		raw, err := s.readLine()
		if err != nil {
			return RecipientInput{}, s.line, err
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] == '#' {
			continue
		}
		return RecipientInput{Email: string(raw)}, s.line, nil
	}
}
