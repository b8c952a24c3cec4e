package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/admin"
	"github.com/campaignd/campaignd/core/control"
	"github.com/campaignd/campaignd/core/sqlite"
	"github.com/campaignd/campaignd/core/web"
	"github.com/hashicorp/go-hclog"
)

// daemon is `campaignd serve` as a value, in three steps: Open acquires
// everything the daemon holds (the database lock, the database and its
// engine, the plugin pool, the control socket, the public listener), Run
// serves until its context ends, and Close gives it all back in the
// shutdown order. It knows nothing of signals: cmdServe turns SIGTERM into
// Run's context ending and SIGHUP into Reload, so a test can run a daemon
// in-process. (Daemon, in the tests, is the other thing: a campaignd serve
// process.)
type daemon struct {
	cfg *Config
	log hclog.Logger
	// reread loads the configuration again for Reload, with the same
	// command-line overrides Open's configuration had.
	reread func() (*Config, error)

	lock    *sqlite.FileLock
	local   *local          // the database, the engine and the plugin pool
	control *control.Server // the control socket
	public  *web.Server     // the public listener; nil when [http] listen is empty
	// admin is the admin listener (the dashboard, /metrics and health)
	// when [admin] listen is set: opened by listenAdmin after
	// listenPublic, shut down after the public listener.
	admin listener
	// bounceMetrics are the bounce mailbox's series on /metrics; nil
	// without an admin listener or a mailbox.
	bounceMetrics *bounceMetrics
	// dash is the dashboard's logins, for the control socket's one-time
	// links; nil until the admin listener listens (the socket serves
	// before it does).
	dash atomic.Pointer[adminDashboard]

	serveErr  chan error // the control socket's Serve, if it fails
	stopSched context.CancelFunc
	sched     sync.WaitGroup

	mu     sync.Mutex // serialises Reload and Close
	closed bool
}

// listener is what Close needs of an HTTP surface.
type listener interface {
	Shutdown(ctx context.Context) error
}

// newDaemon returns a daemon for cfg that logs to log; reread is how
// Reload loads the configuration again. Nothing is opened until Open.
func newDaemon(cfg *Config, log hclog.Logger, reread func() (*Config, error)) *daemon {
	return &daemon{cfg: cfg, log: log, reread: reread, serveErr: make(chan error, 1)}
}

// Open takes the database lock without waiting (a second daemon on the same
// database fails, naming the holder), opens the database and the engine
// with its plugin pool (plugins start on first use), listens on the control
// socket and, when configured, on the public listener, and logs "serving".
// On error everything it acquired is released again and Close need not be
// called; the errors are the lock's (sqlite.ErrLocked when held), the
// database's, a bad configuration's (EINVALID) and the listeners'.
func (d *daemon) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	cfg := d.cfg
	// Validated before the lock, so a bad socket_mode or a mailbox
	// without its password costs nothing.
	mode, err := cfg.socketMode()
	if err != nil {
		return err
	}
	if err := cfg.Bounces.credentials(); err != nil {
		return err
	}
	if d.lock, err = sqlite.Lock(cfg.Database, 0, daemonNote+", socket "+cfg.socketPath()); err != nil {
		return err
	}
	if d.local, err = openLocal(ctx, cfg, d.log, daemonCache...); err != nil {
		return err
	}
	if err := d.listenControl(mode); err != nil {
		return err
	}
	if err := d.listenPublic(); err != nil {
		return err
	}
	d.local.eng.SetTickInterval(cfg.TickInterval.Duration)
	if err := d.listenAdmin(); err != nil {
		return err
	}
	d.log.Info("serving", "socket", cfg.socketPath(), "database", cfg.Database, "tick_interval", cfg.TickInterval.Duration)
	// Type=notify: systemd starts what depends on campaignd only now that
	// the socket answers and the database is open.
	d.notify("READY=1\nSTATUS=serving on " + cfg.socketPath())
	return nil
}

// listenControl creates the control socket and serves it.
func (d *daemon) listenControl(mode os.FileMode) error {
	cfg := d.cfg
	srv := control.NewServer(d.local.eng, control.ServerConfig{
		SocketPath: cfg.socketPath(), Mode: mode, Group: cfg.SocketGroup, AllowUIDs: cfg.AllowUIDs,
		Logger: d.log.Named("control"), Version: version, Backup: d.backup, Status: d.status,
		LoginLink: d.loginLink,
	})
	if err := srv.Listen(); err != nil {
		return err
	}
	d.control = srv
	go func() { d.serveErr <- srv.Serve() }()
	return nil
}

// listenPublic starts the optional public HTTP listener ([http] listen):
// webhooks, one-click unsubscribe and the cron endpoints.
func (d *daemon) listenPublic() error {
	cfg := d.cfg
	if cfg.HTTP.Listen == "" {
		return nil
	}
	u, err := cfg.unsubscriber()
	if err != nil {
		return err
	}
	wc := cfg.webConfig()
	wc.Unsubscriber, wc.Logger = u, d.log.Named("http")
	pub, err := web.New(d.local.eng, wc)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	if err := pub.Listen(); err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	d.public = pub
	go func() {
		if err := pub.Serve(); err != nil {
			d.log.Error("http listener stopped", "error", err)
		}
	}()
	d.log.Info("http listener", "addr", pub.Addr().String())
	return nil
}

// listenAdmin starts the optional admin listener ([admin] listen): the
// dashboard, the metrics the engine feeds (it becomes the engine's
// observer) and the health checks. Readiness is the database taking a
// write transaction and every configured sender's plugin starting (or
// already running). The dashboard's sessions live in this process: a
// restart logs every browser out.
func (d *daemon) listenAdmin() error {
	cfg := d.cfg
	if cfg.Admin.Listen == "" {
		return nil
	}
	m := admin.NewMetrics(d.local.eng.Queue, d.local.senders.Restarts)
	d.local.eng.SetObserver(m)
	if cfg.Bounces.mailbox() {
		d.bounceMetrics = newBounceMetrics(m.Registry())
	}
	checks := []admin.Check{{Name: "database", Fn: d.local.db.Writable}}
	for _, name := range slices.Sorted(maps.Keys(cfg.Senders)) {
		checks = append(checks, admin.Check{Name: "sender " + name, Fn: func(ctx context.Context) error {
			_, err := d.local.senders.Sender(ctx, name)
			return err
		}})
	}
	auth, err := admin.NewAuth(admin.AuthConfig{AdminToken: cfg.Admin.AdminToken})
	if err != nil {
		return err
	}
	srv, err := admin.NewServer(cfg.Admin.Listen, admin.Handler(admin.Options{
		Metrics: m, Ready: checks, Logger: d.log.Named("admin"), MetricsToken: cfg.Admin.MetricsToken,
		Dashboard: admin.NewDashboard(d.local.eng, auth),
	}))
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	d.admin = srv
	d.dash.Store(&adminDashboard{auth: auth, addr: srv.Addr()})
	go func() {
		if err := srv.Serve(); err != nil {
			d.log.Error("admin listener stopped", "error", err)
		}
	}()
	d.log.Info("admin listener", "addr", srv.Addr().String())
	return nil
}

// Run ticks every tick_interval (when set), reads the bounce mailbox every
// bounces.interval (when [bounces] host is set) and serves until ctx ends, then
// returns nil; it returns the control socket's error if serving it fails.
// Call it once, after Open, and call Close after it returns: the scheduler
// is stopped by Close, after it has stopped claiming.
func (d *daemon) Run(ctx context.Context) error {
	// The scheduler's ticks are not cancelled by ctx: Close's drain stops
	// them claiming, and in-flight sends finish and are recorded.
	schedCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	d.stopSched = stop
	d.sched.Add(1)
	go func() {
		defer d.sched.Done()
		d.watchDatabase(schedCtx, dbCheckInterval)
	}()
	if iv := d.cfg.TickInterval.Duration; iv > 0 {
		d.sched.Add(1)
		go func() {
			defer d.sched.Done()
			d.schedule(schedCtx, iv)
		}()
	}
	if b := d.cfg.Bounces; b.mailbox() {
		d.sched.Add(1)
		go func() {
			defer d.sched.Done()
			d.readBounces(schedCtx, b.Interval.Duration)
		}()
	}
	select {
	case <-ctx.Done():
		d.log.Info("shutting down")
		return nil
	case err := <-d.serveErr:
		return err
	}
}

// schedule ticks every interval until ctx ends.
func (d *daemon) schedule(ctx context.Context, every time.Duration) {
	eng := d.local.eng
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
				d.log.Error("scheduled tick", "error", err)
			case res.Processed > 0:
				d.log.Info("tick", "processed", res.Processed, "sent", res.Sent, "failed", res.Failed, "retried", res.Retried, "throttled", res.Throttled)
			}
		}
	}
}

// dbCheckInterval is how often the daemon checks that its database file is
// still where it was opened.
const dbCheckInterval = 2 * time.Second

// watchDatabase checks every interval, until ctx ends, that the database
// path still leads to the open file (sqlite.DB.CheckFile). Once it does
// not, writes are refused (EUNAVAILABLE naming the path, to every caller),
// and the loss is logged as an error and shown in systemd's status, once:
// the daemon keeps answering reads so the operator can see what it had,
// and must be restarted once the file is restored.
func (d *daemon) watchDatabase(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.local.db.CheckFile(); err != nil {
				d.log.Error("database file lost", "error", core.ErrorMessage(err))
				d.notify("STATUS=" + core.ErrorMessage(err))
				return
			}
		}
	}
}

// Reload re-reads the configuration (SIGHUP) and applies what can change
// without a restart: [queue] limits and [senders]. A bad file changes
// nothing and is logged; so is a reload after Close began (ignored).
func (d *daemon) Reload() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.local == nil {
		return
	}
	d.notify(reloadingState())
	defer d.notify("READY=1\nSTATUS=serving on " + d.cfg.socketPath())
	cfg, err := d.reread()
	if err != nil {
		d.log.Error("reload: configuration not applied", "error", core.ErrorMessage(err))
		return
	}
	if err := d.local.eng.SetLimits(cfg.limits()); err != nil {
		d.log.Error("reload: limits not applied", "error", core.ErrorMessage(err))
		return
	}
	d.local.senders.Reconfigure(cfg)
	d.log.Info("reloaded configuration", "file", cfg.path)
}

// Close shuts the daemon down in the documented order: stop claiming (a
// running tick finishes its sends in flight and hands back the rest), stop
// the scheduler, shut the listeners down (in-flight requests, a control
// tick included, get until shutdown_timeout), wait for the last tick within
// that same timeout, then stop the plugins, close the database and release
// the lock. A tick still sending at the timeout is logged: its leases are
// recovered by policy. Shutdown failures are logged, not returned: nothing
// is left to do about them. Close is safe on a daemon Open gave up on, and
// more than once.
func (d *daemon) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	d.notify("STOPPING=1")
	if d.local != nil {
		d.local.eng.Drain()
	}
	if d.stopSched != nil {
		d.stopSched()
	}
	timeout := d.cfg.ShutdownTimeout.Duration
	shutCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if d.control != nil {
		if err := d.control.Shutdown(shutCtx); err != nil {
			d.log.Warn("control socket shutdown", "error", err)
		}
	}
	if d.public != nil {
		if err := d.public.Shutdown(shutCtx); err != nil {
			d.log.Warn("http listener shutdown", "error", err)
		}
	}
	if d.admin != nil {
		if err := d.admin.Shutdown(shutCtx); err != nil {
			d.log.Warn("admin listener shutdown", "error", err)
		}
	}
	if d.local != nil {
		if !d.local.eng.WaitIdle(shutCtx) {
			d.log.Error("a tick was still sending at shutdown_timeout; its leases will be recovered by policy", "timeout", timeout)
		}
		d.sched.Wait()
		d.local.Close()
	}
	if d.lock != nil {
		d.lock.Release()
	}
}

// daemonCache bounds the daemon's SQLite page caches. SQLite keeps every
// page it touched until its cache is full, and a daemon sending a big
// campaign touches the whole queue, so its RSS climbs to the caches' sum:
// with the defaults (32 MiB writer + 4 x 4 MiB readers) about 68 MB at 1M
// recipients, against the design's 40 MB. A tick's working set is a few
// pages of the claim index and the rows it claims, so 4 MiB + 4 x 1 MiB
// costs the ticks nothing (BenchmarkSendPath: the same tick times as with
// 8 MiB, and 4.5 MB less peak RSS); imports through the daemon into very
// large campaigns are slower than standalone ones (32 MiB).
var daemonCache = []sqlite.Option{sqlite.WithCacheKiB(4 << 10), sqlite.WithReadCacheKiB(1 << 10)}

// status completes the control socket's status answer: what `campaignd
// status` prints standalone, and which plugin processes run.
func (d *daemon) status(ctx context.Context, st *control.Status) error {
	d.mu.Lock() // Reload replaces d.cfg
	cfg := d.cfg
	d.mu.Unlock()
	return fillStatus(ctx, cfg, d.local.eng, d.local.senders.running, st)
}
