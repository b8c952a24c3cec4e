package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/bounce"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// bounceParser is the bounce parser for the engine's limits in force (a
// SIGHUP may have changed them): campaignd's Message-IDs of [queue]
// message_id_domain or, when it is unset, of each campaign's own domain
// (looked up once per campaign and parser), and the VERP template of
// [bounces] return_path, the very one messages are sent with.
func bounceParser(ctx context.Context, eng *core.Engine) *bounce.Parser {
	lim := eng.Limits()
	p := &bounce.Parser{MessageIDDomain: lim.MessageIDDomain, ReturnPath: lim.ReturnPath}
	if p.MessageIDDomain != "" {
		return p
	}
	domains := map[int64]string{}
	p.CampaignDomain = func(id int64) (string, error) {
		if d, ok := domains[id]; ok {
			return d, nil
		}
		c, err := eng.Campaign(ctx, id)
		switch {
		case core.ErrorCode(err) == core.ENOTFOUND:
			domains[id] = ""
		case err != nil:
			return "", err
		default:
			domains[id] = core.MessageIDDomain(c, "")
		}
		return domains[id], nil
	}
	return p
}

// bouncePass reads the bounce mailbox once and applies what it finds with
// eng (see bounce.Pass).
func bouncePass(ctx context.Context, cfg *Config, eng *core.Engine) (*bounce.PassResult, error) {
	res, err := bounce.Pass(ctx, cfg.Bounces.pop3(), bounceParser(ctx, eng), eng)
	if err != nil {
		return res, fmt.Errorf("bounce mailbox %s: %w", cfg.Bounces.pop3().Addr(), err)
	}
	return res, nil
}

// fetchResult is what `bounces fetch` prints with --json: the pass's
// counts, or that it was skipped because the daemon reads the mailbox.
type fetchResult struct {
	*bounce.PassResult
	Skipped bool   `json:"skipped,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// bouncesFetch is `campaignd bounces fetch`: one pass over the bounce
// mailbox, standalone on the database. Silent on success (-v prints the
// counts, --json the counts as JSON); a mailbox or database error exits
// non-zero with its message on stderr. While the daemon runs it reads
// the mailbox itself every bounces.interval, so the command is skipped
// (exit 0).
//
// It holds the database lock shared, as a standalone tick does, not
// exclusive: the pass waits on the network (a slow or stuck mailbox may
// take minutes), and an exclusive hold would skip every cron tick
// meanwhile. Its writes (one transaction per event) interleave with a
// tick's as they do in the daemon. A writing command or a migration
// holding the lock makes it skip (exit 0) like a tick: the next cron run
// reads the mailbox.
func (a *app) bouncesFetch(ctx context.Context, args []string) error {
	if _, err := a.parse(a.flags("bounces fetch"), args, 0, 0, "bounces fetch [-v] [--json]"); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	if !cfg.Bounces.mailbox() {
		return core.Errorf(core.EINVALID, "bounces fetch: no bounce mailbox configured: set [bounces] host, username and password (%s)", cfg.source())
	}
	if err := cfg.Bounces.credentials(); err != nil {
		return err
	}
	s, err := a.open(ctx, tickAccess, "campaignd bounces fetch")
	if errors.Is(err, errLockBusy) {
		out := fetchResult{Skipped: true, Reason: strings.TrimPrefix(err.Error(), errLockBusy.Error()+": ")}
		return a.print(out, func(w io.Writer) {
			if a.verbose {
				fprintf(w, "bounces fetch skipped: %s\n", out.Reason)
			}
		})
	}
	if err != nil {
		return err
	}
	defer s.Close()
	if s.local == nil {
		out := fetchResult{Skipped: true, Reason: "the daemon reads the bounce mailbox every " + cfg.Bounces.Interval.String()}
		return a.print(out, func(w io.Writer) {
			if a.verbose {
				fprintf(w, "bounces fetch skipped: %s\n", out.Reason)
			}
		})
	}
	res, err := bouncePass(actorContext(ctx), cfg, s.local)
	if err != nil {
		if a.jsonOut {
			a.print(fetchResult{PassResult: res}, nil)
		}
		return err
	}
	return a.print(fetchResult{PassResult: res}, func(w io.Writer) {
		if a.verbose {
			printPass(w, res)
		}
	})
}

// printPass writes a pass's counts and why each left message was left.
func printPass(w io.Writer, r *bounce.PassResult) {
	fprintf(w, "bounces: %d message(s): applied %d (%d of them deferrals, recorded only), duplicates %d, unknown recipients %d, not ours %d, no action %d; deleted %d; left %d unreadable, %d too large\n",
		r.Messages, r.Applied, r.Deferred, r.Duplicates, r.Unknown, r.NotOurs, r.NoAction, r.Deleted, r.Left, r.TooLarge)
	for _, p := range r.Problems {
		fprintf(w, "  left: %s\n", p)
	}
}

// readBounces reads the bounce mailbox every interval until ctx ends. It
// is quiet while nothing happens: it logs what a pass applied, a mailbox
// error, and the messages it leaves unread when their number changes.
func (d *daemon) readBounces(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	lastLeft := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// The mailbox is d.cfg's (a restart changes it); the parser
		// follows the engine's limits, which SIGHUP reloads.
		res, err := bouncePass(core.WithActor(ctx, "bounce mailbox"), d.cfg, d.local.eng)
		lastLeft = logPass(d.log, res, err, lastLeft)
		d.bounceMetrics.observe(res, err)
	}
}

// logPass logs one daemon pass (see readBounces) and returns the number
// of messages it left.
func logPass(log hclog.Logger, res *bounce.PassResult, err error, lastLeft int) int {
	if err != nil {
		log.Error("bounce mailbox", "error", err)
	}
	if res == nil {
		return lastLeft
	}
	if res.Deleted > 0 {
		log.Info("bounce mailbox", "applied", res.Applied, "deferred", res.Deferred, "duplicates", res.Duplicates, "unknown", res.Unknown,
			"not_ours", res.NotOurs, "no_action", res.NoAction, "deleted", res.Deleted)
	}
	left := res.Left + res.TooLarge
	if err == nil && left != lastLeft && left > 0 {
		log.Warn("bounce mailbox: messages left unread for a person to look at",
			"left", res.Left, "too_large", res.TooLarge, "problems", res.Problems)
	}
	if err != nil {
		return lastLeft
	}
	return left
}

// bounceMetrics are the bounce mailbox's series on the admin listener's
// /metrics, fed by the daemon's passes. A nil *bounceMetrics (no admin
// listener, or no mailbox) observes nothing.
type bounceMetrics struct {
	messages *prometheus.CounterVec
	left     prometheus.Gauge
	errors   prometheus.Counter
	lastPass prometheus.Gauge
}

// newBounceMetrics registers the bounce mailbox's series with reg.
func newBounceMetrics(reg prometheus.Registerer) *bounceMetrics {
	m := &bounceMetrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "campaignd_bounce_messages_total",
			Help: "Bounce mailbox messages read by the daemon's passes, by result: applied, duplicate, unknown (recipient gone), not_ours, no_action.",
		}, []string{"result"}),
		left: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "campaignd_bounce_mailbox_left",
			Help: "Messages the last pass left in the bounce mailbox: unreadable as a report of campaignd's, or too large.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaignd_bounce_mailbox_errors_total",
			Help: "Passes over the bounce mailbox that failed (mailbox unreachable, login refused, events not recorded).",
		}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "campaignd_bounce_mailbox_last_pass_timestamp_seconds",
			Help: "Unix time at which the last successful pass over the bounce mailbox ended.",
		}),
	}
	reg.MustRegister(m.messages, m.left, m.errors, m.lastPass)
	return m
}

// observe records one pass.
func (m *bounceMetrics) observe(res *bounce.PassResult, err error) {
	if m == nil {
		return
	}
	if res != nil {
		for result, n := range map[string]int{"applied": res.Applied, "duplicate": res.Duplicates, "unknown": res.Unknown,
			"not_ours": res.NotOurs, "no_action": res.NoAction} {
			m.messages.WithLabelValues(result).Add(float64(n))
		}
	}
	if err != nil {
		m.errors.Inc()
		return
	}
	m.left.Set(float64(res.Left + res.TooLarge))
	m.lastPass.SetToCurrentTime()
}
