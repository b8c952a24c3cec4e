package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/campaignd/campaignd/core"
	"golang.org/x/term"
)

func (a *app) recipientsImport(ctx context.Context, args []string) error {
	fs := a.flags("recipients import")
	formatFlag := fs.String("format", "", "`format`: csv or jsonl (default: from the file name, else csv)")
	pos, err := a.parse(fs, args, 2, 2, "recipients import ID FILE|- [--format csv|jsonl]")
	if err != nil {
		return err
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	name := pos[1]
	f := *formatFlag
	if f == "" && (strings.HasSuffix(name, ".jsonl") || strings.HasSuffix(name, ".ndjson")) {
		f = "jsonl"
	}
	format, err := core.ParseImportFormat(f)
	if err != nil {
		return err
	}
	var in io.Reader = a.stdin
	var size int64 = -1
	if name != "-" {
		file, err := os.Open(name)
		if err != nil {
			return core.Errorf(core.EINVALID, "recipients import: %v", err)
		}
		defer file.Close()
		if st, err := file.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		in = file
	}
	if size < 0 {
		// A pipe (stdin, a FIFO, a process substitution) is read to its
		// end before the database lock is taken: a writer stalled or slow
		// upstream must not hold the lock, and every tick with it, for as
		// long as it takes.
		spool, n, err := a.spoolImport(in)
		if err != nil {
			return err
		}
		defer spool.Close()
		in, size = spool, n
	}
	s, err := a.open(ctx, writeAccess, "recipients import")
	if err != nil {
		return err
	}
	defer s.Close()
	if pf, ok := a.stderr.(*os.File); ok && !a.jsonOut && term.IsTerminal(int(pf.Fd())) {
		p := newProgress(in, size, pf)
		defer p.stop()
		in = p
	}
	res, err := s.ImportRecipients(actorContext(ctx), id, format, in)
	if err != nil {
		if res != nil && res.Added > 0 {
			fmt.Fprintf(a.stderr, "campaignd: %d recipients were added before the error\n", res.Added)
		}
		return err
	}
	return a.print(res, func(w io.Writer) {
		fprintf(w, "added %d, duplicates %d, suppressed %d, invalid %d\n", res.Added, res.Duplicates, res.Suppressed, res.Invalid)
		for _, e := range res.Errors {
			fprintf(w, "line %d: %s\n", e.Line, e.Message)
		}
		if int64(len(res.Errors)) < res.Invalid {
			fprintf(w, "... and %d more invalid rows\n", res.Invalid-int64(len(res.Errors)))
		}
		printMissingAttrs(w, res.MissingAttrs)
	})
}

// spoolImport copies in to an unlinked temporary file, streaming (memory
// stays flat whatever the size), and returns it rewound with its size. The
// file is made beside the database, whose file system must hold the rows
// anyway (a tmpfs /tmp would hold them in memory), else in the temporary
// directory; it is unlinked at once, so nothing is left behind whatever
// happens to the process.
func (a *app) spoolImport(in io.Reader) (*os.File, int64, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, 0, err
	}
	f, err := os.CreateTemp(filepath.Dir(cfg.Database), ".campaignd-import-*")
	if err != nil {
		if f, err = os.CreateTemp("", "campaignd-import-*"); err != nil {
			return nil, 0, fmt.Errorf("recipients import: spool the input: %w", err)
		}
	}
	_ = os.Remove(f.Name())
	n, err := io.Copy(f, in)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("recipients import: spool the input: %w", err)
	}
	return f, n, nil
}

func (a *app) recipientsAdd(ctx context.Context, args []string) error {
	fs := a.flags("recipients add")
	var in core.RecipientInput
	var attrs stringList
	fs.StringVar(&in.Name, "name", "", "display `name`")
	fs.Var(&attrs, "attr", "attribute `key=value` (repeatable)")
	pos, err := a.parse(fs, args, 2, 2, "recipients add ID EMAIL [--name N] [--attr k=v]...")
	if err != nil {
		return err
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	in.Email = pos[1]
	for _, kv := range attrs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usagef("--attr %q: want key=value", kv)
		}
		if in.Attrs == nil {
			in.Attrs = map[string]string{}
		}
		in.Attrs[k] = v
	}
	s, err := a.open(ctx, writeAccess, "recipients add")
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.AddRecipient(actorContext(ctx), id, in)
	if err != nil {
		return err
	}
	return a.print(res, func(w io.Writer) {
		switch {
		case res.Added > 0:
			fprintf(w, "added %s\n", in.Email)
		case res.Suppressed > 0:
			fprintf(w, "not added: %s is suppressed\n", in.Email)
		default:
			fprintf(w, "not added: %s is already a recipient\n", in.Email)
		}
	})
}

// allPageSize is the page --all streams by: every row is printed, but no
// more than a page is held in memory, here or in the daemon.
const allPageSize = 1000

func (a *app) recipientsList(ctx context.Context, args []string) error {
	fs := a.flags("recipients list")
	status := fs.String("status", "", "only this `status` (PENDING, QUEUED, SENDING, SENT, FAILED, BOUNCED)")
	limit := fs.Int("limit", core.DefaultListLimit, fmt.Sprintf("most rows, at most %d", core.MaxListLimit))
	after := fs.Int64("after", 0, "only recipients whose `id` is greater: the next page")
	all := fs.Bool("all", false, "every row, streamed page by page (--limit is then ignored)")
	pos, err := a.parse(fs, args, 1, 1, "recipients list ID [--status S] [--limit N] [--after ID] [--all]")
	if err != nil {
		return err
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	n, err := core.ListLimit("--limit", *limit)
	if err != nil {
		return err
	}
	f := core.RecipientFilter{Limit: n, AfterID: *after}
	if *status != "" {
		if f.Status, err = core.ParseRecipientStatus(*status); err != nil {
			return err
		}
	}
	s, err := a.open(ctx, readAccess, "")
	if err != nil {
		return err
	}
	defer s.Close()
	if *all {
		f.Limit = allPageSize
		return a.streamRecipients(ctx, s, id, f)
	}
	rs, err := s.Recipients(ctx, id, f)
	if err != nil {
		return err
	}
	if rs == nil {
		rs = []*core.Recipient{}
	}
	if err := a.print(rs, func(w io.Writer) { printRecipients(w, rs, true) }); err != nil {
		return err
	}
	if len(rs) == f.Limit {
		return a.sayMore(ctx, s, id, f, rs[len(rs)-1].ID, len(rs))
	}
	return nil
}

// sayMore says on stderr when a page stopped at its limit with rows left:
// how many of how many, and how to see the rest.
func (a *app) sayMore(ctx context.Context, s *session, id int64, f core.RecipientFilter, last int64, shown int) error {
	next := f
	next.Limit, next.AfterID = 1, last
	more, err := s.Recipients(ctx, id, next)
	if err != nil || len(more) == 0 {
		return err
	}
	c, err := s.Campaign(ctx, id)
	if err != nil {
		return err
	}
	total := c.Stats.Total
	switch f.Status {
	case core.RecipientPending:
		total = c.Stats.Pending
	case core.RecipientQueued:
		total = c.Stats.Queued
	case core.RecipientSending:
		total = c.Stats.Sending
	case core.RecipientSent:
		total = c.Stats.Sent
	case core.RecipientFailed:
		total = c.Stats.Failed
	case core.RecipientBounced:
		total = c.Stats.Bounced
	}
	fmt.Fprintf(a.stderr, "campaignd: showing %s of %s: --limit N, --after %d or --all for more\n",
		core.Thousands(int64(shown)), core.Thousands(total), last)
	return nil
}

// streamRecipients prints every row page by page, each page printed before
// the next is asked for: one table (one header), or one JSON array.
func (a *app) streamRecipients(ctx context.Context, s *session, id int64, f core.RecipientFilter) error {
	first := true
	if a.jsonOut {
		fmt.Fprint(a.stdout, "[")
	}
	for {
		rs, err := s.Recipients(ctx, id, f)
		if err != nil {
			return err
		}
		if a.jsonOut {
			for _, r := range rs {
				b, err := json.MarshalIndent(r, "  ", "  ")
				if err != nil {
					return fmt.Errorf("recipients list: %w", err)
				}
				sep := ",\n  "
				if first {
					sep = "\n  "
				}
				fmt.Fprintf(a.stdout, "%s%s", sep, b)
				first = false
			}
		} else if len(rs) > 0 || first {
			printRecipients(a.stdout, rs, first)
			first = false
		}
		if len(rs) < f.Limit {
			break
		}
		f.AfterID = rs[len(rs)-1].ID
	}
	if a.jsonOut {
		if !first {
			fmt.Fprint(a.stdout, "\n")
		}
		fmt.Fprint(a.stdout, "]\n")
	}
	return nil
}

// printRecipients writes one page of the recipients table, with its
// header line when header is set.
func printRecipients(w io.Writer, rs []*core.Recipient, header bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tSTATUS\tATTEMPTS\tLAST ERROR")
	}
	for _, r := range rs {
		fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.Email, r.Name, r.Status, r.Attempts, lastError(r))
	}
	tw.Flush()
}

// lastError is a recipient's last error as the tables print it: class,
// reply code and enhanced code before the text.
func lastError(r *core.Recipient) string {
	last := r.LastError
	if r.LastErrorClass != "" {
		code := ""
		if r.LastErrorCode != 0 {
			code = fmt.Sprintf(" %d", r.LastErrorCode)
		}
		if r.LastEnhancedCode != "" {
			code += " " + r.LastEnhancedCode
		}
		last = string(r.LastErrorClass) + code + ": " + last
	}
	return last
}

func (a *app) recipientsShow(ctx context.Context, args []string) error {
	pos, err := a.parse(a.flags("recipients show"), args, 2, 2, "recipients show ID EMAIL")
	if err != nil {
		return err
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	s, err := a.open(ctx, readAccess, "")
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := s.RecipientDetail(ctx, id, pos[1])
	if err != nil {
		return err
	}
	return a.print(d, func(w io.Writer) { printRecipientDetail(w, d) })
}

// printRecipientDetail writes a recipient's state and then its delivery
// events, oldest first, one a line.
func printRecipientDetail(w io.Writer, d *core.RecipientDetail) {
	r := d.Recipient
	fprintf(w, "recipient:  %s (id %d)\n", r.Email, r.ID)
	if r.Name != "" {
		fprintf(w, "name:       %s\n", r.Name)
	}
	fprintf(w, "status:     %s\nattempts:   %d\n", r.Status, r.Attempts)
	if last := lastError(r); last != "" {
		fprintf(w, "last error: %s\n", last)
	}
	if len(d.Events) == 0 {
		fprintf(w, "events:     none recorded\n")
		return
	}
	fprintf(w, "events:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TIME\tTYPE\tPROVIDER\tREASON")
	for _, e := range d.Events {
		fprintf(tw, "  %s\t%s\t%s\t%s\n", e.At.Local().Format(time.DateTime), e.Type, e.Provider, e.Reason)
	}
	tw.Flush()
}

// progress reports an import's progress on a terminal, at most 5 times a second.
type progress struct {
	r     io.Reader
	size  int64
	read  atomic.Int64
	out   *os.File
	done  chan struct{}
	start time.Time
}

func newProgress(r io.Reader, size int64, out *os.File) *progress {
	p := &progress{r: r, size: size, out: out, done: make(chan struct{}), start: time.Now()}
	go p.loop()
	return p
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read.Add(int64(n))
	return n, err
}

func (p *progress) loop() {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			fmt.Fprint(p.out, "\r\033[K")
			return
		case <-t.C:
			p.draw()
		}
	}
}

func (p *progress) draw() {
	n := p.read.Load()
	rate := float64(n) / time.Since(p.start).Seconds() / (1 << 20)
	if p.size > 0 {
		pct := float64(n) * 100 / float64(p.size)
		width := 30
		filled := int(pct / 100 * float64(width))
		fmt.Fprintf(p.out, "\rimporting [%s%s] %5.1f%%  %.1f MiB/s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), pct, rate)
		return
	}
	fmt.Fprintf(p.out, "\rimporting %.1f MiB  %.1f MiB/s", float64(n)/(1<<20), rate)
}

func (p *progress) stop() { close(p.done) }
