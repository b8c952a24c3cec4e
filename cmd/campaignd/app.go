package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/control"
	"github.com/campaignd/campaignd/core/sqlite"
	"github.com/hashicorp/go-hclog"
)

// app is one CLI invocation: its global flags, streams and, once opened,
// its configuration.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	configPath string
	dbPath     string
	socketPath string
	jsonOut    bool
	verbose    bool
	// daemon is set for `serve`: it logs at log_level, every other
	// command at cli_log_level.
	daemon bool

	cfg *Config
	log hclog.Logger

	// cmd is the registry entry being run, for the usage on errors.
	cmd *command
	// probing runs a command only up to its parse, which stores the
	// FlagSet it registered in probed (see flagsOf).
	probing bool
	probed  *flag.FlagSet
	// flagSet is the FlagSet the command parsed, for its usage line.
	flagSet *flag.FlagSet
}

// globalFlags registers the flags every command accepts, before or after
// the command name.
func (a *app) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.configPath, "config", a.configPath, "configuration `file`")
	fs.StringVar(&a.dbPath, "db", a.dbPath, "database `path` (overrides the config)")
	fs.StringVar(&a.socketPath, "socket", a.socketPath, "control socket `path` (overrides the config)")
	fs.BoolVar(&a.jsonOut, "json", a.jsonOut, "print one JSON document")
	fs.BoolVar(&a.verbose, "v", a.verbose, "print a summary even on success")
}

// flags returns a FlagSet for a subcommand with the global flags included.
func (a *app) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.globalFlags(fs)
	return fs
}

// parse parses flags and positional arguments in any order and checks the
// positional count is within [minArgs, maxArgs] (maxArgs < 0: unbounded).
// -h, -help and --help print the command's help on stdout and return
// errHelpShown (exit 0). In probe mode it returns errProbed at once. A
// usage error shows the registry's usage line for the command; usage is
// the fallback for a FlagSet the registry does not name.
func (a *app) parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int, usage string) ([]string, error) {
	if a.probing {
		a.probed = fs
		return nil, errProbed
	}
	a.flagSet = fs
	if c := byName(fs.Name()); c != nil {
		usage = strings.TrimPrefix(c.usageLine(fs), "campaignd ")
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				if c := byName(fs.Name()); c != nil {
					printHelp(a.stdout, c, fs)
					return nil, errHelpShown
				}
			}
			return nil, usagef("%s: %v (usage: %s)", fs.Name(), err, usage)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < minArgs || (maxArgs >= 0 && len(pos) > maxArgs) {
		return nil, usagef("%s: wrong number of arguments (usage: %s)", fs.Name(), usage)
	}
	return pos, nil
}

// config loads the configuration once, applying --db and --socket.
func (a *app) config() (*Config, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	if a.probing {
		return nil, errProbed
	}
	cfg, err := loadConfig(a.configPath)
	if err != nil {
		return nil, err
	}
	// Flags are relative to the working directory, like any command-line
	// path.
	if a.dbPath != "" {
		if cfg.Database, err = filepath.Abs(a.dbPath); err != nil {
			return nil, fmt.Errorf("--db: %w", err)
		}
		cfg.Database = canonicalPath(cfg.Database)
		cfg.dbFlag = true
	}
	if a.socketPath != "" {
		if cfg.Socket, err = filepath.Abs(a.socketPath); err != nil {
			return nil, fmt.Errorf("--socket: %w", err)
		}
	}
	a.cfg = cfg
	level := cfg.CLILogLevel
	if a.daemon {
		level = cfg.LogLevel
	}
	a.log = newLogger(level, cfg.LogFormat, a.stderr)
	return cfg, nil
}

// newLogger returns the process's logger: hclog's text lines, or one JSON
// object per line with format "json" (for a service's log collector).
// Lines to the journal carry no timestamp of their own (underJournal).
func newLogger(level, format string, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "campaignd", Level: hclog.LevelFromString(level), Output: w,
		JSONFormat: format == "json", DisableTime: underJournal(w)})
}

// access says what a command needs from the database when no daemon runs.
type access int

const (
	readAccess   access = iota // no lock: WAL lets reads run beside a tick
	writeAccess                // the database lock, waiting lock_timeout
	tickAccess                 // the database lock shared, and campaign locks, not waiting: busy -> skipped
	createAccess               // as writeAccess, and may create the database
)

// errLockBusy reports that a standalone tick found the lock held.
var errLockBusy = errors.New("database lock held elsewhere")

// daemonNote begins the daemon's lock note (after "pid N: "): how a
// standalone tick tells the daemon from a command holding the lock.
const daemonNote = "campaignd serve"

// daemonWait is how long a tick blocked by the daemon's lock waits for its
// socket to answer: the daemon takes the lock before it listens.
const daemonWait = time.Second

// daemonUnreachableError is a standalone tick that found the database held
// by the daemon (campaignd serve) while no daemon answered on the socket
// it tried: its configuration points elsewhere than the daemon's (a
// --db, or another socket). Not a busy tick to skip quietly: with the
// daemon's own ticking off, nothing would ever send, so cron must hear it.
type daemonUnreachableError struct {
	socket string // the socket the tick tried
	holder string // the lock's message, naming the daemon's note
}

func (e *daemonUnreachableError) Error() string {
	return fmt.Sprintf("tick not run: the daemon holds the database (%s) but did not answer on socket %s: "+
		"run the tick with the daemon's configuration (its socket setting)", e.holder, e.socket)
}

// session is a Service plus what must be released after the command.
type session struct {
	core.Service
	local  *core.Engine // nil when talking to the daemon
	closer func()
}

func (s *session) Close() {
	if s.closer != nil {
		s.closer()
	}
}

// open returns the daemon's client when a daemon answers on the socket, and
// otherwise a local engine on the database under the lock `acc` needs.
func (a *app) open(ctx context.Context, acc access, holder string) (*session, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	client := &control.Client{SocketPath: cfg.socketPath(), AllowUIDs: cfg.AllowUIDs}
	if _, err := client.Status(ctx); err == nil {
		return &session{Service: client}, nil
	} else if !errors.Is(err, control.ErrNoDaemon) {
		return nil, err
	}
	// Checked before the lock, which would create <database>.lock: a
	// command run with the wrong working directory or config must leave
	// no trace and say which database it looked for.
	if acc != createAccess {
		if err := cfg.databaseExists(); err != nil {
			return nil, err
		}
	}
	var lock *sqlite.FileLock
	if acc != readAccess {
		if acc == tickAccess {
			lock, err = sqlite.LockShared(cfg.Database) // ticks run beside each other, per campaign
		} else {
			lock, err = sqlite.Lock(cfg.Database, cfg.LockTimeout.Duration, holder)
		}
		if err != nil {
			if acc == tickAccess && errors.Is(err, sqlite.ErrLocked) {
				// The message names the holder (from the lock file's note).
				msg := core.ErrorMessage(err)
				if !strings.Contains(msg, ": "+daemonNote) {
					return nil, fmt.Errorf("%w: %s", errLockBusy, msg)
				}
				if s, ok := awaitDaemon(ctx, client); ok {
					return s, nil
				}
				return nil, &daemonUnreachableError{socket: cfg.socketPath(), holder: msg}
			}
			return nil, err
		}
	}
	var dbOpts []sqlite.Option
	if acc == readAccess || acc == tickAccess {
		// Only a holder of the exclusive lock changes the schema: never
		// under another process's tick.
		dbOpts = append(dbOpts, sqlite.WithoutMigration())
	}
	l, err := openLocal(ctx, cfg, a.log, dbOpts...)
	if err != nil {
		if lock != nil {
			lock.Release()
		}
		return nil, err
	}
	if acc == tickAccess {
		l.eng.SetCampaignLocker(lock)
	}
	return &session{Service: l.eng, local: l.eng, closer: func() {
		l.Close()
		if lock != nil {
			lock.Release()
		}
	}}, nil
}

// awaitDaemon polls client for up to daemonWait: a daemon that holds the
// lock but does not answer yet may be starting. It returns the daemon's
// session once it answers.
func awaitDaemon(ctx context.Context, client *control.Client) (*session, bool) {
	deadline := time.Now().Add(daemonWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		if _, err := client.Status(ctx); err == nil {
			return &session{Service: client}, true
		}
	}
	return nil, false
}

// local is the engine on the database with its plugins: what the daemon
// runs, and what a CLI command runs when no daemon answers.
type local struct {
	db      *sqlite.DB
	senders *senderSet
	eng     *core.Engine
}

// openLocal opens the database and builds the engine, logging to log; the
// caller holds the database lock when it will write. dbOpts tune the store
// (the daemon's page caches).
func openLocal(ctx context.Context, cfg *Config, log hclog.Logger, dbOpts ...sqlite.Option) (*local, error) {
	opts, err := cfg.engineOptions()
	if err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, cfg.Database, dbOpts...)
	if err != nil {
		return nil, err
	}
	senders := newSenderSet(cfg, log)
	eng, err := core.NewEngine(db, senders, cfg.limits(), log, opts...)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &local{db: db, senders: senders, eng: eng}, nil
}

// Close stops the plugins and closes the database.
func (l *local) Close() {
	l.senders.Close()
	l.db.Close()
}

// actorContext names the local caller in history records.
func actorContext(ctx context.Context) context.Context {
	name := strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return core.WithActor(ctx, name+" (standalone)")
}

// print writes v as JSON with --json, and otherwise calls human.
func (a *app) print(v any, human func(w io.Writer)) error {
	if a.jsonOut {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	if human != nil {
		human(a.stdout)
	}
	return nil
}

// parseID parses a campaign id argument.
func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef("campaign id %q: must be a positive integer", s)
	}
	return id, nil
}
