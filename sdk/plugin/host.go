package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin/internal/pb"
)

// PluginPrefix is prepended to a short plugin name to form the executable's
// file name: plugin "smtp" is <Dir>/campaignd-sender-smtp.
const PluginPrefix = "campaignd-sender-"

// DefaultStartTimeout bounds how long Launch waits for a plugin's handshake
// when its context has no earlier deadline.
const DefaultStartTimeout = 30 * time.Second

var (
	// ErrChecksum is wrapped by Launch when a plugin executable does not
	// match PluginConfig.SHA256. The plugin is not started.
	ErrChecksum = errors.New("plugin checksum mismatch")
	// ErrHandshake is wrapped by Launch when the plugin process started but
	// did not complete go-plugin's handshake: it printed something else on
	// stdout, exited, timed out, or speaks another protocol version.
	ErrHandshake = errors.New("plugin handshake failed")
	// ErrNotFound is wrapped by Launch when the plugin executable does not
	// exist; the error names the path it looked at.
	ErrNotFound = errors.New("plugin not found")
)

// PluginConfig says how to start and configure one sender plugin.
type PluginConfig struct {
	// Name is the sender's name ([senders.NAME]); it appears in every
	// error and log line about the plugin. Empty means Plugin.
	Name string
	// Plugin is the executable: a short name such as "smtp" means
	// <Dir>/campaignd-sender-smtp; a value containing '/' is a path
	// (relative paths are relative to the working directory).
	Plugin string
	// Dir holds plugins given by short name; empty means the directory of
	// the running executable.
	Dir string
	// SHA256 is the optional hex SHA-256 of the executable. When set, the
	// file is hashed before start and a mismatch fails with ErrChecksum
	// without starting it.
	SHA256 string
	// Options are passed to the plugin's Configure.
	Options map[string]string
	// Logger receives go-plugin's messages and the plugin's own log lines,
	// at the plugin's level; its level is also the plugin's (LogLevelEnv).
	// Nil means hclog.Default().
	Logger hclog.Logger
	// Env is added ("KEY=value") to the plugin's environment. The plugin
	// does NOT inherit the host's environment, which may hold other
	// senders' secrets: it gets only PATH, HOME, USER, LOGNAME, TMPDIR, TZ,
	// LANG, LC_*, SSL_CERT_FILE, SSL_CERT_DIR, HTTP_PROXY, HTTPS_PROXY,
	// NO_PROXY (either case), GOCOVERDIR, LogLevelEnv and Env.
	Env []string
}

// name is the sender name used in errors and logs.
func (c PluginConfig) name() string {
	if c.Name != "" {
		return c.Name
	}
	return c.Plugin
}

// Path resolves the plugin executable's path as Launch will run it. It
// fails when Plugin is empty, or Dir is empty and the running executable's
// directory cannot be found. It does not check that the file exists.
func (c PluginConfig) Path() (string, error) {
	switch {
	case c.Plugin == "":
		return "", errors.New("resolve plugin path: no plugin set")
	case strings.Contains(c.Plugin, "/"):
		return filepath.Abs(c.Plugin)
	}
	dir := c.Dir
	if dir == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("resolve plugin path: no plugin dir set and no executable dir: %w", err)
		}
		dir = filepath.Dir(exe)
	}
	return filepath.Abs(filepath.Join(dir, PluginPrefix+c.Plugin))
}

// Check resolves the executable's path as Path does and checks it as
// Launch does before starting it: a regular file with an execute bit and,
// when SHA256 is set, that digest. It returns the path (when resolved)
// and Path's error, a "check executable" error, or ErrChecksum on a digest
// mismatch. The plugin is not started.
func (c PluginConfig) Check() (string, error) {
	path, err := c.Path()
	if err != nil {
		return "", err
	}
	return path, checkExecutable(path, c.SHA256)
}

// Plugin is a running sender plugin process. It implements Sender by
// calling the plugin over gRPC, and is safe for concurrent use. With a
// plugin that speaks protocol version 2 (ProtocolVersionStream) every
// Send is one request on a stream shared by all sends to the process;
// with an older plugin (ProtocolVersionUnary) it is one unary call.
//
// Every method returns classified errors (*Error): the plugin's own
// classified failure arrives intact; a transport failure (the process
// crashed or its connection broke) is ClassTransient "plugin NAME crashed:
// ..."; an expired context is ClassTransient (with ErrNotAttempted in the
// chain when it had expired before the call); a message larger than
// MaxMessageBytes is ClassPermanent. A Plugin whose process crashed stays
// unusable: Close it and Launch a new one (Pool does this for you).
type Plugin struct {
	name   string
	path   string
	client *goplugin.Client
	rpc    pb.SenderClient
	stream *sendStream // nil with a protocol-1 plugin
	cmd    *exec.Cmd
	pid    int
	logger hclog.Logger

	broken   atomic.Bool  // transport failed or presumed hung: do not reuse
	closing  atomic.Bool  // Close or kill has begun
	inflight atomic.Int64 // calls in progress, for draining
	closeMu  sync.Mutex   // serialises Close; client.Kill is not re-entrant
}

// Launch starts the plugin described by cfg and configures it with
// cfg.Options. It resolves the executable (Path; ErrNotFound when there is
// no such file), verifies cfg.SHA256 when
// set (ErrChecksum, classified ClassConfig; nothing is started), starts
// the process with AutoMTLS over gRPC only, waits for its handshake
// (ErrHandshake, with the stray stdout line or the last stderr output when
// the plugin misbehaved), and calls Configure; a rejected configuration is
// returned wrapping the plugin's *Error (ClassConfig unless the plugin
// chose another class). Every error names the plugin. On any error no
// process is left running.
//
// ctx bounds the whole start: its deadline (or DefaultStartTimeout) limits
// the handshake, and Configure runs under ctx. The caller must Close the
// returned Plugin.
func Launch(ctx context.Context, cfg PluginConfig) (*Plugin, error) {
	name := cfg.name()
	path, err := cfg.Path()
	if err != nil {
		return nil, fmt.Errorf("launch plugin %s: %w", name, err)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("launch plugin %s: %w: no executable %s", name, ErrNotFound, path)
	}
	if err := checkExecutable(path, cfg.SHA256); err != nil {
		err = fmt.Errorf("launch plugin %s: %w", name, err)
		if errors.Is(err, ErrChecksum) {
			// Not transient: the file is not the one configured (replaced,
			// tampered with, or the configuration is stale). ClassConfig
			// makes the host pause the campaign instead of retrying forever.
			return nil, configFailure{err}
		}
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("launch plugin %s: %w", name, err)
	}

	logger := cfg.Logger
	if logger == nil {
		logger = hclog.Default()
	}
	logger = logger.With("sender", name)
	timeout := DefaultStartTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = max(time.Until(d), time.Millisecond)
	}

	cmd := exec.Command(path)
	cmd.Env = pluginEnv(cfg.Env, logger)
	stderrTail := &tailWriter{max: 1024}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: Handshake,
		VersionedPlugins: map[int]goplugin.PluginSet{
			ProtocolVersionUnary:  {pluginKey: &grpcPlugin{}},
			ProtocolVersionStream: {pluginKey: &grpcPlugin{}},
		},
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     timeout,
		Logger:           lifecycleLogger{logger},
		Stderr:           stderrTail,
		SyncStdout:       &lineLogger{logger: logger, stream: "stdout"},
		SyncStderr:       &lineLogger{logger: logger, stream: "stderr"},
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
		)},
	})

	rpcClient, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, handshakeError(name, path, err, stderrTail.String())
	}
	raw, err := rpcClient.Dispense(pluginKey)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("launch plugin %s (%s): dispense: %w", name, path, err)
	}
	p := &Plugin{
		name:   name,
		path:   path,
		client: client,
		rpc:    raw.(pb.SenderClient),
		cmd:    cmd,
		pid:    cmd.Process.Pid,
		logger: logger,
	}
	if err := p.Configure(ctx, cfg.Options); err != nil {
		if p.broken.Load() || ctx.Err() != nil {
			p.kill()
		} else {
			// A plugin that answered "bad options" is healthy: stop it
			// gently, so its exit is not logged as a crash.
			_ = p.Close()
		}
		return nil, fmt.Errorf("launch plugin %s: %w", name, err)
	}
	if client.NegotiatedVersion() >= ProtocolVersionStream {
		if p.stream, err = openSendStream(p); err != nil {
			p.kill()
			return nil, fmt.Errorf("launch plugin %s (%s): open send stream: %w", name, path, err)
		}
	}
	logger.Debug("sender plugin ready", "path", path, "pid", p.pid, "protocol", client.NegotiatedVersion())
	return p, nil
}

// checkExecutable fails when path is not an executable regular file or,
// when want is set, its SHA-256 differs.
func checkExecutable(path, want string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("check executable: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("check executable: %s is not an executable file", path)
	}
	if want == "" {
		return nil
	}
	want = strings.ToLower(strings.TrimSpace(want))
	if b, err := hex.DecodeString(want); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("check executable: sha256 %q is not 64 hex digits", want)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("check executable: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("check executable: hash %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%w: %s has sha256 %s, expected %s", ErrChecksum, path, got, want)
	}
	return nil
}

// configFailure classifies err as ClassConfig for AsError (with err's
// text) while keeping err's chain for errors.Is.
type configFailure struct{ err error }

func (c configFailure) Error() string { return c.err.Error() }
func (c configFailure) Unwrap() []error {
	return []error{c.err, &sdk.Error{Class: sdk.ClassConfig, Message: c.err.Error()}}
}

// notAttempted marks err (an *sdk.Error) with sdk.ErrNotAttempted, keeping
// its text.
func notAttempted(err error) error { return notAttemptedError{err} }

type notAttemptedError struct{ err error }

func (e notAttemptedError) Error() string   { return e.err.Error() }
func (e notAttemptedError) Unwrap() []error { return []error{e.err, sdk.ErrNotAttempted} }

// handshakeError turns go-plugin's start error into one that says what the
// plugin did wrong.
func handshakeError(name, path string, err error, stderr string) error {
	msg := err.Error()
	stderr = strings.TrimSpace(stderr)
	const unrecognized = "Unrecognized remote plugin message: "
	if strings.Contains(msg, "Failed to read any lines") {
		msg = "exited before we could connect" // stdout closed without a line
	}
	switch {
	case strings.Contains(msg, unrecognized):
		line, _, _ := strings.Cut(msg[strings.Index(msg, unrecognized)+len(unrecognized):], "\n")
		what := "an empty line"
		if line != "" {
			what = strconv.Quote(line)
		}
		return fmt.Errorf("launch plugin %s (%s): %w: it printed %s on stdout where the handshake line was expected "+
			"(a sender plugin must call plugin.Serve and print nothing to stdout before it)", name, path, ErrHandshake, what)
	case strings.Contains(msg, "exited before we could connect"):
		if stderr == "" {
			stderr = "(nothing)"
		}
		return fmt.Errorf("launch plugin %s (%s): %w: the process exited before the handshake; its stderr ended with: %s",
			name, path, ErrHandshake, stderr)
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return fmt.Errorf("launch plugin %s (%s): %w: no handshake before the start timeout", name, path, ErrHandshake)
	case strings.Contains(msg, "Incompatible API version"), strings.Contains(msg, "unsupported plugin protocol"):
		return fmt.Errorf("launch plugin %s (%s): %w: %s", name, path, ErrHandshake, strings.ReplaceAll(msg, "\n", " "))
	}
	return fmt.Errorf("launch plugin %s (%s): %w", name, path, err)
}

// passEnv lists the host variables a plugin inherits.
var passEnv = map[string]bool{
	"PATH": true, "HOME": true, "USER": true, "LOGNAME": true, "TMPDIR": true, "TZ": true, "LANG": true,
	"SSL_CERT_FILE": true, "SSL_CERT_DIR": true, "GOCOVERDIR": true,
	"HTTP_PROXY": true, "HTTPS_PROXY": true, "NO_PROXY": true,
	"http_proxy": true, "https_proxy": true, "no_proxy": true,
}

func pluginEnv(extra []string, logger hclog.Logger) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if passEnv[k] || strings.HasPrefix(k, "LC_") {
			env = append(env, kv)
		}
	}
	env = append(env, sdk.LogLevelEnv+"="+hostLogLevel(logger))
	return append(env, extra...)
}

// hostLogLevel is the value of LogLevelEnv for a plugin logging through l.
func hostLogLevel(l hclog.Logger) string {
	switch lv := l.GetLevel(); lv {
	case hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error, hclog.Off:
		return lv.String()
	default:
		return hclog.Info.String()
	}
}

// Name returns the sender name the plugin was launched as.
func (p *Plugin) Name() string { return p.name }

// Pid returns the plugin's operating-system process id, for logs and
// diagnostics.
func (p *Plugin) Pid() int { return p.pid }

// Protocol returns the plugin protocol version negotiated with the
// plugin: ProtocolVersionStream, or ProtocolVersionUnary for a plugin
// built against an SDK before the stream existed.
func (p *Plugin) Protocol() int { return p.client.NegotiatedVersion() }

// Exited reports whether the plugin process has exited (crashed, was
// killed, or was closed). Once true it stays true.
func (p *Plugin) Exited() bool { return p.client.Exited() }

// usable reports whether the plugin may take more calls.
func (p *Plugin) usable() bool {
	return !p.broken.Load() && !p.closing.Load() && !p.client.Exited()
}

// Configure passes options to the plugin. A rejected configuration is the
// plugin's *Error (ClassConfig unless it chose otherwise).
func (p *Plugin) Configure(ctx context.Context, options map[string]string) error {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	resp, err := p.rpc.Configure(ctx, &pb.ConfigureRequest{Options: options})
	if err != nil {
		e, _ := p.callFailed(ctx, "configure", err)
		return e
	}
	if resp.GetError() != nil {
		return errorFromPB(resp.GetError())
	}
	return nil
}

// Info asks the plugin to describe itself. Errors are classified as for
// Send.
func (p *Plugin) Info(ctx context.Context) (sdk.Info, error) {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	resp, err := p.rpc.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		e, _ := p.callFailed(ctx, "info", err)
		return sdk.Info{}, e
	}
	if resp.GetError() != nil {
		return sdk.Info{}, errorFromPB(resp.GetError())
	}
	return sdk.Info{
		Name:           resp.GetName(),
		Version:        resp.GetVersion(),
		MaxPerSecond:   resp.GetMaxPerSecond(),
		MaxConcurrency: int(resp.GetMaxConcurrency()),
		Options:        resp.GetOptions(),
		SecretOptions:  resp.GetSecretOptions(),
		DNSRecords:     dnsRecordsFromPB(resp.GetDnsRecords()),
	}, nil
}

// Check asks the plugin to open one real session with its provider (see
// sdk.Checker) and returns nil when it could. A plugin that does not
// implement sdk.Checker, or was built against an SDK without the call,
// yields an error wrapping sdk.ErrCheckUnsupported. Other errors are
// classified as for Send: the plugin's own *Error (e.g. ClassConfig for
// rejected credentials) intact, ClassTransient for an expired ctx or a
// crashed plugin.
func (p *Plugin) Check(ctx context.Context) error {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	resp, err := p.rpc.Check(ctx, &pb.CheckRequest{})
	if status.Code(err) == codes.Unimplemented {
		return fmt.Errorf("plugin %s: %w", p.name, sdk.ErrCheckUnsupported)
	}
	if err != nil {
		e, _ := p.callFailed(ctx, "check", err)
		return e
	}
	if resp.GetError() != nil {
		return errorFromPB(resp.GetError())
	}
	return nil
}

// Send delivers msg through the plugin and returns its Receipt, or an
// *Error: the plugin's classified failure intact, ClassTransient when ctx
// is already done (the plugin is not called), when ctx expires during the
// call, or when the plugin crashed ("plugin NAME crashed: ..."), and
// ClassPermanent when msg exceeds MaxMessageBytes. Over the stream
// (protocol 2) the plugin works under msg's deadline too: its answer
// within hangGrace after the deadline is returned as it is (a receipt
// included), and only without one is the plugin presumed hung ("timed
// out"); a cancelled ctx returns at once and asks the plugin to cancel. A
// send that never reached the plugin (ctx done first, or its stream had
// already ended) has sdk.ErrNotAttempted in its chain. Launch-level
// Plugins do not kill a plugin presumed hung; Pool does.
func (p *Plugin) Send(ctx context.Context, msg *sdk.Message) (*sdk.Receipt, error) {
	r, _, err := p.send(ctx, msg)
	return r, err
}

// send is Send that also reports whether the plugin is presumed hung: the
// call was made with a live context that expired before any answer (over
// the stream: no answer within hangGrace after the deadline).
func (p *Plugin) send(ctx context.Context, msg *sdk.Message) (r *sdk.Receipt, hung bool, err error) {
	if msg == nil {
		return nil, false, sdk.Permanent("plugin %s: send: nil message", p.name)
	}
	if err := ctx.Err(); err != nil {
		return nil, false, notAttempted(sdk.Transient("plugin %s: send not attempted: %v", p.name, err))
	}
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	if p.stream != nil {
		return p.stream.send(ctx, msg)
	}
	resp, callErr := p.rpc.Send(ctx, &pb.SendRequest{Message: messageToPB(msg)})
	if callErr != nil {
		e, hung := p.callFailed(ctx, "send", callErr)
		return nil, hung, e
	}
	switch res := resp.GetResult().(type) {
	case *pb.SendResponse_Receipt:
		return &sdk.Receipt{ProviderID: res.Receipt.GetProviderId(), Response: res.Receipt.GetResponse()}, false, nil
	case *pb.SendResponse_Error:
		return nil, false, errorFromPB(res.Error)
	}
	return nil, false, sdk.Transient("plugin %s: send: response has neither receipt nor error", p.name)
}

// callFailed classifies a gRPC failure of op. A deadline that expired
// during the call means the plugin is presumed hung; any other transport
// failure marks the plugin broken.
func (p *Plugin) callFailed(ctx context.Context, op string, err error) (*sdk.Error, bool) {
	st := status.Convert(err)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || st.Code() == codes.DeadlineExceeded:
		return sdk.Transient("plugin %s: %s timed out: no answer before the deadline", p.name, op), true
	case ctx.Err() != nil:
		return sdk.Transient("plugin %s: %s cancelled: %v", p.name, op, ctx.Err()), false
	case st.Code() == codes.ResourceExhausted:
		return sdk.Permanent("plugin %s: %s: message exceeds the %d MiB plugin transport limit: %s",
			p.name, op, MaxMessageBytes>>20, st.Message()), false
	case st.Code() == codes.Unimplemented:
		return sdk.ConfigError("plugin %s does not implement %s: %s", p.name, op, st.Message()), false
	}
	return p.transportFailed(op, st.Message()), false
}

// transportFailed marks the plugin broken after its connection failed
// during op and says so: stopped by the host, or crashed.
func (p *Plugin) transportFailed(op, msg string) *sdk.Error {
	p.broken.Store(true)
	if p.closing.Load() {
		return sdk.Transient("plugin %s was stopped during %s: %s", p.name, op, msg)
	}
	return sdk.Transient("plugin %s crashed: %s: %s", p.name, op, msg)
}

// Close stops the plugin: it asks it to shut down, waits up to two seconds
// for it to exit, then kills it, and releases everything go-plugin holds
// for it. In-flight calls fail with ClassTransient. Close is idempotent and
// safe to call concurrently; it never fails (the error is for io.Closer).
func (p *Plugin) Close() error {
	p.closing.Store(true)
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.stream != nil {
		// The plugin's graceful shutdown waits for its open calls: end
		// the stream first, so it finishes what is in flight and returns.
		p.stream.closeSend()
	}
	p.client.Kill()
	if p.stream != nil {
		p.stream.close()
	}
	return nil
}

// kill stops a plugin that is presumed hung or broken without a graceful
// shutdown: SIGKILL, then go-plugin's cleanup.
func (p *Plugin) kill() {
	p.closing.Store(true)
	p.broken.Store(true)
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.logger.Warn("kill plugin", "pid", p.pid, "error", err)
	}
	_ = p.Close()
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tailWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	if len(w.buf) > w.max {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-w.max:]...)
	}
	return len(b), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// lineLogger logs what plugin code wrote to os.Stdout or os.Stderr after
// Serve took them over (go-plugin streams those to the host).
type lineLogger struct {
	logger hclog.Logger
	stream string
}

func (l *lineLogger) Write(b []byte) (int, error) {
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimRight(line, "\r\n"); line != "" {
			l.logger.Info(line, "stream", l.stream)
		}
	}
	return len(b), nil
}

// lifecycleLogger is the logger go-plugin gets: it demotes go-plugin's Info
// line for a plugin's clean exit to Debug, like its start lines, so a host
// logging at info (a CLI tick from cron) prints nothing for a plugin that
// started and stopped as it should. A failed exit stays an Error.
type lifecycleLogger struct{ hclog.Logger }

func (l lifecycleLogger) Info(msg string, args ...any) {
	if msg == "plugin process exited" {
		l.Logger.Debug(msg, args...)
		return
	}
	l.Logger.Info(msg, args...)
}
