package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/control"
	"github.com/campaignd/campaignd/core/sqlite"
	"github.com/campaignd/campaignd/core/web"
)

// cmdServe runs the daemon: it holds the database lock for its lifetime,
// serves the control socket, keeps plugins warm and ticks every
// tick_interval when that is set. SIGTERM/SIGINT drain and stop; SIGHUP
// reloads [queue] limits and [senders].
func (a *app) cmdServe(ctx context.Context, args []string) error {
	if _, err := a.parse(a.flags("serve"), args, 0, 0, "serve"); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	mode, err := cfg.socketMode()
	if err != nil {
		return err
	}
	lock, err := sqlite.Lock(cfg.Database, 0, "campaignd serve, socket "+cfg.socketPath())
	if err != nil {
		return err
	}
	defer lock.Release()
	l, err := a.openLocal(ctx, cfg, daemonCache...)
	if err != nil {
		return err
	}
	defer l.Close()
	eng, senders := l.eng, l.senders
	srv := control.NewServer(eng, control.ServerConfig{
		SocketPath: cfg.socketPath(), Mode: mode, Group: cfg.SocketGroup, AllowUIDs: cfg.AllowUIDs,
		Logger: a.log.Named("control"), Version: version,
	})
	if err := srv.Listen(); err != nil {
		return err
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve() }()
	pub, err := a.startWeb(cfg, eng)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	a.log.Info("serving", "socket", cfg.socketPath(), "database", cfg.Database, "tick_interval", cfg.TickInterval.Duration)

	// The scheduler's ticks are not cancelled by a signal: Drain stops them
	// claiming, and in-flight sends finish and are recorded.
	schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	if iv := cfg.TickInterval.Duration; iv > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.schedule(schedCtx, eng, iv)
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			a.log.Info("shutting down")
			break loop
		case err := <-serveErr:
			runErr = err
			break loop
		case <-hup:
			a.reload(eng, senders)
		}
	}
	eng.Drain()
	stopSched()
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Duration)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		a.log.Warn("control socket shutdown", "error", err)
	}
	if pub != nil {
		if err := pub.Shutdown(shutCtx); err != nil {
			a.log.Warn("http listener shutdown", "error", err)
		}
	}
	if !eng.WaitIdle(shutCtx) {
		a.log.Error("a tick was still sending at shutdown_timeout; its leases will be recovered by policy", "timeout", cfg.ShutdownTimeout.Duration)
	}
	wg.Wait()
	return runErr
}

// daemonCache bounds the daemon's SQLite page caches. SQLite keeps every
// page it touched until its cache is full, and a daemon sending a big
// campaign touches the whole queue, so its RSS climbs to the caches' sum:
// with the defaults (32 MiB writer + 4 x 4 MiB readers) about 68 MB at 1M
// recipients, against the design's 40 MB. A tick's working set is a few
// pages of the claim index and the rows it claims, so 8 MiB + 4 x 1 MiB
// costs the ticks nothing; imports through the daemon into very large
// campaigns are somewhat slower than standalone ones (32 MiB).
var daemonCache = []sqlite.Option{sqlite.WithCacheKiB(8 << 10), sqlite.WithReadCacheKiB(1 << 10)}

// startWeb starts the optional public HTTP listener ([http] listen):
// webhooks, one-click unsubscribe and the cron endpoints. nil when off.
func (a *app) startWeb(cfg *Config, eng *core.Engine) (*web.Server, error) {
	if cfg.HTTP.Listen == "" {
		return nil, nil
	}
	u, err := cfg.unsubscriber()
	if err != nil {
		return nil, err
	}
	wc := cfg.webConfig()
	wc.Unsubscriber, wc.Logger = u, a.log.Named("http")
	pub, err := web.New(eng, wc)
	if err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	if err := pub.Listen(); err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	go func() {
		if err := pub.Serve(); err != nil {
			a.log.Error("http listener stopped", "error", err)
		}
	}()
	a.log.Info("http listener", "addr", pub.Addr().String())
	return pub, nil
}

// schedule ticks every interval until ctx ends.
func (a *app) schedule(ctx context.Context, eng *core.Engine, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// ctx ending stops the schedule, never the tick: cancelling
			// it would cut in-flight sends off into in-doubt (and resend
			// them). Drain, called first on shutdown, stops the claiming.
			res, err := eng.Tick(core.WithActor(context.WithoutCancel(ctx), "scheduler"), core.TriggerScheduler)
			switch {
			case err != nil && core.ErrorCode(err) == core.EUNAVAILABLE:
				return
			case err != nil:
				a.log.Error("scheduled tick", "error", err)
			case res.Processed > 0:
				a.log.Info("tick", "processed", res.Processed, "sent", res.Sent, "failed", res.Failed, "retried", res.Retried, "throttled", res.Throttled)
			}
		}
	}
}

// reload re-reads the configuration on SIGHUP and applies what can change
// without a restart: [queue] limits and [senders]. A bad file changes nothing.
func (a *app) reload(eng *core.Engine, senders *senderSet) {
	cfg, err := loadConfig(a.configPath)
	if err != nil {
		a.log.Error("reload: configuration not applied", "error", core.ErrorMessage(err))
		return
	}
	if a.dbPath != "" {
		cfg.Database = a.dbPath
	}
	if err := eng.SetLimits(cfg.limits()); err != nil {
		a.log.Error("reload: limits not applied", "error", core.ErrorMessage(err))
		return
	}
	senders.Reconfigure(cfg)
	a.log.Info("reloaded configuration", "file", cfg.path)
}
