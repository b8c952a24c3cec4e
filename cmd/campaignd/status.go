package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/control"
	"github.com/campaignd/campaignd/core/sqlite"
	"github.com/hashicorp/go-hclog"
)

// cmdStatus prints control.Status: the daemon's answer when one runs
// (plugins with whether each runs), and otherwise the same fields read
// from the database and the configuration.
func (a *app) cmdStatus(ctx context.Context, args []string) error {
	if _, err := a.parse(a.flags("status"), args, 0, 0, "status"); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	client := &control.Client{SocketPath: cfg.socketPath()}
	st, err := client.StatusDetail(ctx)
	if err != nil {
		if !errors.Is(err, control.ErrNoDaemon) {
			return err
		}
		if err := cfg.databaseExists(); err != nil {
			return err
		}
		// No lock: status only reads, beside a standalone tick.
		l, err := openLocal(ctx, cfg, a.log)
		if err != nil {
			return err
		}
		defer l.Close()
		st = &control.Status{Version: version}
		if err := fillStatus(ctx, cfg, l.eng, nil, st); err != nil {
			return err
		}
	}
	return a.print(st, func(w io.Writer) { printStatus(w, cfg, st) })
}

// fillStatus completes st from the configuration and svc; running, when
// set (the daemon), says which sender's plugin process runs.
func fillStatus(ctx context.Context, cfg *Config, svc core.Service, running func(name string) int, st *control.Status) error {
	st.Database = cfg.Database
	ms, err := sqlite.ReadMigrationStatus(ctx, cfg.Database)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	st.SchemaVersion = ms.Version
	pcs := pluginConfigs(cfg, hclog.NewNullLogger())
	for _, name := range cfg.senderNames() {
		pc := pcs[name]
		s := control.SenderStatus{Name: name, Plugin: pc.Plugin}
		// The check Launch makes (regular file, execute bit, the configured
		// sha256), so status never reports found a sender every launch refuses.
		path, err := pc.Check()
		s.Path = path
		switch {
		case errors.Is(err, os.ErrNotExist):
			s.Problem = fmt.Sprintf("no executable %s", path)
		case err != nil:
			s.Problem = err.Error()
		default:
			s.Found = true
		}
		if running != nil {
			pid := running(name)
			up := pid != 0
			s.Running, s.PID = &up, pid
		}
		st.Senders = append(st.Senders, s)
	}
	ts, err := svc.Ticks(ctx, 1)
	if err != nil {
		return err
	}
	if len(ts) > 0 {
		st.LastTick = ts[0]
	}
	cs, err := svc.Campaigns(ctx)
	if err != nil {
		return err
	}
	q := &control.QueueDepth{Campaigns: map[core.CampaignStatus]int{}}
	for _, c := range cs {
		q.Campaigns[c.Status]++
		q.Pending += c.Stats.Pending
		q.Queued += c.Stats.Queued
		q.Sending += c.Stats.Sending
		if c.Status == core.CampaignPaused {
			q.Paused += c.Stats.Queued
		}
	}
	st.Queue = q
	if st.Quotas, err = svc.Quotas(ctx); err != nil {
		return err
	}
	return nil
}

// printStatus is status's human form.
func printStatus(w io.Writer, cfg *Config, st *control.Status) {
	if st.Daemon {
		fprintf(w, "daemon:    running (pid %d, since %s)\n", st.PID, st.Started.Local().Format(time.DateTime))
	} else {
		fprintf(w, "daemon:    not running (standalone; socket %s)\n", cfg.socketPath())
	}
	fprintf(w, "version:   %s\ndatabase:  %s (schema version %d)\nconfig:    %s\n", st.Version, st.Database, st.SchemaVersion, cfg.file())
	fprintf(w, "senders:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range st.Senders {
		state := "found " + s.Path
		if !s.Found {
			state = "NOT FOUND: " + s.Problem
		}
		if s.Running != nil {
			if *s.Running {
				state += fmt.Sprintf(", running (pid %d)", s.PID)
			} else {
				state += ", not running (starts on first send)"
			}
		}
		fprintf(tw, "  %s\tplugin %s\t%s\n", s.Name, s.Plugin, state)
	}
	tw.Flush()
	if t := st.LastTick; t != nil {
		result := fmt.Sprintf("processed %d, sent %d, failed %d, retried %d, throttled %d", t.Processed, t.Sent, t.Failed, t.Retried, t.Throttled)
		if t.Error != "" {
			result = "error: " + t.Error
		}
		fprintf(w, "last tick: %s (%s, %s): %s\n", t.Started.Local().Format(time.DateTime), t.Trigger, t.Duration.Round(time.Millisecond), result)
	} else {
		fprintf(w, "last tick: none yet\n")
	}
	if q := st.Queue; q != nil {
		fprintf(w, "queue:     %d queued (%d of them in paused campaigns), %d sending, %d pending (not executed)\n", q.Queued, q.Paused, q.Sending, q.Pending)
		var parts []string
		for _, s := range []core.CampaignStatus{core.CampaignDraft, core.CampaignActive, core.CampaignSending, core.CampaignPaused, core.CampaignCompleted, core.CampaignCancelled} {
			if n := q.Campaigns[s]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, s))
			}
		}
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		fprintf(w, "campaigns: %s\n", strings.Join(parts, ", "))
	}
	if len(st.Quotas) > 0 {
		fprintf(w, "quotas:\n")
		printQuotas(w, st.Quotas)
	}
}
