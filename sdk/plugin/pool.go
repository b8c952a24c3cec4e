package plugin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/campaignd/campaignd/sdk"
)

var (
	// ErrUnknownSender is wrapped by Pool when asked for a sender name it
	// has no configuration for.
	ErrUnknownSender = errors.New("unknown sender")
	// ErrPoolClosed is wrapped by Pool after Close.
	ErrPoolClosed = errors.New("plugin pool closed")
)

// DrainTimeout bounds how long a plugin replaced by Pool.Reconfigure may
// keep serving its in-flight calls before it is stopped.
const DrainTimeout = 30 * time.Second

// restartHoldOff is how long a failed start is remembered: calls in that
// window get the same error instead of starting the plugin again, so a
// broken configuration does not fork a process per message.
const restartHoldOff = time.Second

// Pool keeps one warm plugin process per configured sender. It starts a
// plugin on first use, restarts it on the next use after it crashed, hung
// or was replaced, and stops every process on Close. All methods are safe
// for concurrent use.
type Pool struct {
	logger hclog.Logger

	mu       sync.Mutex
	closed   bool
	slots    map[string]*slot
	retiring map[*Plugin]struct{} // replaced plugins still draining
	done     chan struct{}        // closed by Close
	bg       sync.WaitGroup       // drain goroutines

	// restarts counts, per sender name, plugins restarted after they
	// crashed or hung; its own lock, taken under a slot's.
	restartMu sync.Mutex
	restarts  map[string]uint64
}

// slot is one sender's current plugin.
type slot struct {
	cfg PluginConfig

	mu       sync.Mutex // held while starting, so concurrent users share one start
	p        *Plugin    // nil until started
	gone     bool       // removed by Reconfigure or Close: never start again
	failedAt time.Time  // last failed start
	startErr error
}

// NewPool returns a Pool for configs, keyed by sender name. It starts
// nothing. A config's empty Name is set to its key and a nil Logger to
// logger (hclog.Default() when logger is nil).
func NewPool(logger hclog.Logger, configs map[string]PluginConfig) *Pool {
	if logger == nil {
		logger = hclog.Default()
	}
	pl := &Pool{
		logger:   logger,
		slots:    make(map[string]*slot, len(configs)),
		retiring: map[*Plugin]struct{}{},
		done:     make(chan struct{}),
		restarts: map[string]uint64{},
	}
	for name, cfg := range configs {
		pl.slots[name] = &slot{cfg: pl.normalise(name, cfg)}
	}
	return pl
}

func (pl *Pool) normalise(name string, cfg PluginConfig) PluginConfig {
	if cfg.Name == "" {
		cfg.Name = name
	}
	if cfg.Logger == nil {
		cfg.Logger = pl.logger
	}
	return cfg
}

// sameConfig reports whether a and b start the same plugin the same way.
// Loggers are not compared.
func sameConfig(a, b PluginConfig) bool {
	return a.Name == b.Name && a.Plugin == b.Plugin && a.Dir == b.Dir && a.SHA256 == b.SHA256 &&
		maps.Equal(a.Options, b.Options) && slices.Equal(a.Env, b.Env)
}

// Sender returns the sender called name, starting its plugin (Launch) if
// it is not running. It fails with ErrUnknownSender for a name that has no
// configuration, ErrPoolClosed after Close, or Launch's error.
//
// The returned Sender resolves the plugin on every call, so it stays valid
// across crashes, restarts and Reconfigure. Its Send returns *Error values
// as Plugin.Send does and additionally: a call whose ctx deadline expires
// while the plugin is working gets ClassTransient, and the plugin process
// is killed as hung when it did not answer (protocol 1: at the deadline;
// protocol 2: within hangGrace after it, so a plugin that honours the
// deadline keeps its process and stream); after a crash or kill the next call starts a fresh
// process; a failure to (re)start is ClassConfig (the sender is broken
// until the operator fixes it), or the plugin's own class when its
// Configure rejected the options with another. A send that never reached a
// plugin (ctx already done, or no plugin started in time) has
// ErrNotAttempted in its chain. The Sender also implements sdk.Checker
// (see Plugin.Check).
func (pl *Pool) Sender(ctx context.Context, name string) (sdk.Sender, error) {
	if _, err := pl.instance(ctx, name); err != nil {
		return nil, err
	}
	return &pooledSender{pool: pl, name: name}, nil
}

// instance returns name's running plugin, starting it if needed.
func (pl *Pool) instance(ctx context.Context, name string) (*Plugin, error) {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return nil, fmt.Errorf("sender %s: %w", name, ErrPoolClosed)
	}
	s := pl.slots[name]
	pl.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("sender %s: %w", name, ErrUnknownSender)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return nil, fmt.Errorf("sender %s: %w", name, ErrUnknownSender)
	}
	if s.p != nil {
		if s.p.usable() {
			return s.p, nil
		}
		s.cfg.Logger.Warn("restarting plugin", "pid", s.p.Pid(), "exited", s.p.Exited())
		pl.restartMu.Lock()
		pl.restarts[name]++
		pl.restartMu.Unlock()
		s.p.kill()
		s.p = nil
	}
	if s.startErr != nil && time.Since(s.failedAt) < restartHoldOff {
		return nil, s.startErr
	}
	p, err := Launch(ctx, s.cfg)
	if err != nil {
		if ctx.Err() == nil { // the caller's impatience is not the plugin's fault
			s.startErr, s.failedAt = err, time.Now()
		}
		return nil, err
	}
	s.startErr = nil
	s.p = p
	return p, nil
}

// Restarts returns, per sender name, how many times the pool restarted its
// plugin because it had crashed or hung (not first starts, nor a
// Reconfigure's replacements), since the pool was made: a copy.
func (pl *Pool) Restarts() map[string]uint64 {
	pl.restartMu.Lock()
	defer pl.restartMu.Unlock()
	out := make(map[string]uint64, len(pl.restarts))
	for k, v := range pl.restarts {
		out[k] = v
	}
	return out
}

// Reconfigure replaces the pool's configurations, as on SIGHUP. Senders
// whose configuration is unchanged (Logger aside) keep their process;
// changed or removed ones are stopped once their in-flight calls finish (at
// most DrainTimeout) and changed ones start with the new configuration on
// next use; new ones start on first use. After Close it does nothing.
func (pl *Pool) Reconfigure(configs map[string]PluginConfig) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return
	}
	var old []*slot
	for name, s := range pl.slots {
		if cfg, ok := configs[name]; !ok || !sameConfig(s.cfg, pl.normalise(name, cfg)) {
			delete(pl.slots, name)
			old = append(old, s)
		}
	}
	for name, cfg := range configs {
		if _, ok := pl.slots[name]; !ok {
			pl.slots[name] = &slot{cfg: pl.normalise(name, cfg)}
		}
	}
	for _, s := range old {
		pl.bg.Add(1)
		go pl.retire(s)
	}
}

// retire stops a replaced slot's plugin after it drained.
func (pl *Pool) retire(s *slot) {
	defer pl.bg.Done()
	s.mu.Lock() // waits for a start in progress
	s.gone = true
	p := s.p
	s.p = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	pl.mu.Lock()
	pl.retiring[p] = struct{}{}
	pl.mu.Unlock()
	deadline := time.Now().Add(DrainTimeout)
	for p.inflight.Load() > 0 && time.Now().Before(deadline) {
		select {
		case <-pl.done:
			deadline = time.Now()
		case <-time.After(20 * time.Millisecond):
		}
	}
	_ = p.Close()
	pl.mu.Lock()
	delete(pl.retiring, p)
	pl.mu.Unlock()
}

// Close stops every plugin process the pool started, including replaced
// ones still draining, and waits until they are gone. In-flight calls fail
// with ClassTransient; later calls fail with ErrPoolClosed. It returns
// nil; calling it again does nothing.
func (pl *Pool) Close() error {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return nil
	}
	pl.closed = true
	close(pl.done)
	slots := slices.Collect(maps.Values(pl.slots))
	pl.mu.Unlock()

	var wg sync.WaitGroup
	for _, s := range slots {
		wg.Go(func() {
			s.mu.Lock() // waits for a start in progress
			s.gone = true
			p := s.p
			s.p = nil
			s.mu.Unlock()
			if p != nil {
				_ = p.Close()
			}
		})
	}
	wg.Wait()
	pl.bg.Wait() // draining plugins see done and close themselves
	return nil
}

// pooledSender is the Sender handed out by Pool.Sender.
type pooledSender struct {
	pool *Pool
	name string
}

// startFailed classifies a failure to get a running plugin.
func (ps *pooledSender) startFailed(ctx context.Context, err error) error {
	var e *sdk.Error
	switch {
	case errors.As(err, &e):
		return fmt.Errorf("sender %s: %w", ps.name, err)
	case ctx.Err() != nil:
		return sdk.Transient("sender %s: no plugin before the deadline: %v", ps.name, err)
	case errors.Is(err, ErrPoolClosed):
		return sdk.Transient("sender %s: %v", ps.name, err)
	}
	return sdk.ConfigError("%v", err)
}

func (ps *pooledSender) Configure(ctx context.Context, options map[string]string) error {
	p, err := ps.pool.instance(ctx, ps.name)
	if err != nil {
		return ps.startFailed(ctx, err)
	}
	return p.Configure(ctx, options)
}

func (ps *pooledSender) Info(ctx context.Context) (sdk.Info, error) {
	p, err := ps.pool.instance(ctx, ps.name)
	if err != nil {
		return sdk.Info{}, ps.startFailed(ctx, err)
	}
	return p.Info(ctx)
}

// Check runs the plugin's optional check (see Plugin.Check), starting the
// plugin first when needed.
func (ps *pooledSender) Check(ctx context.Context) error {
	p, err := ps.pool.instance(ctx, ps.name)
	if err != nil {
		return ps.startFailed(ctx, err)
	}
	return p.Check(ctx)
}

func (ps *pooledSender) Send(ctx context.Context, msg *sdk.Message) (*sdk.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return nil, notAttempted(sdk.Transient("sender %s: send not attempted: %v", ps.name, err))
	}
	p, err := ps.pool.instance(ctx, ps.name)
	if err != nil {
		return nil, notAttempted(ps.startFailed(ctx, err))
	}
	r, hung, err := p.send(ctx, msg)
	if hung {
		p.logger.Warn("plugin did not answer before the deadline; killing it as hung", "pid", p.Pid())
		p.kill()
	}
	return r, err
}

// Running returns the pid of the named sender's plugin process while one
// runs, and 0 when none does (never started, exited, being started right
// now, or no such sender). It never waits for a start.
func (pl *Pool) Running(name string) int {
	pl.mu.Lock()
	s := pl.slots[name]
	pl.mu.Unlock()
	if s == nil || !s.mu.TryLock() {
		return 0
	}
	defer s.mu.Unlock()
	if s.p == nil || s.p.Exited() {
		return 0
	}
	return s.p.Pid()
}
