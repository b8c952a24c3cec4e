package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// cmdServe runs the daemon: it holds the database lock for its lifetime,
// serves the control socket, keeps plugins warm and ticks every
// tick_interval when that is set. SIGTERM/SIGINT (ctx ending) drain and
// stop; SIGHUP reloads [queue] limits and [senders]. The daemon itself is
// the daemon type; this is only its signals.
func (a *app) cmdServe(ctx context.Context, args []string) error {
	if _, err := a.parse(a.flags("serve"), args, 0, 0, "serve"); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	// SIGHUP is caught from before Open until after Close: its default
	// action would kill a daemon that is starting or draining.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d := newDaemon(cfg, a.log, a.rereadConfig)
	if err := d.Open(ctx); err != nil {
		return err
	}
	defer d.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case <-hup:
				d.Reload()
			}
		}
	}()
	return d.Run(runCtx)
}

// rereadConfig loads the configuration file again, as on SIGHUP, with
// --db applied as at start.
func (a *app) rereadConfig() (*Config, error) {
	cfg, err := loadConfig(a.configPath)
	if err != nil {
		return nil, err
	}
	if a.dbPath != "" {
		cfg.Database = a.dbPath
	}
	return cfg, nil
}
