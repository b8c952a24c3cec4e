package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

// DefaultSocketPath is the control socket a zero ServerConfig or Client
// uses: campaignd.sock in the working directory.
const DefaultSocketPath = "campaignd.sock"

// Defaults a zero ServerConfig field takes.
const (
	DefaultMode           os.FileMode = 0o600
	DefaultMaxBodyBytes   int64       = 1 << 20 // 1 MiB of JSON
	DefaultMaxImportBytes int64       = 4 << 30 // 4 GiB of CSV or JSONL
	// DefaultBodyReadTimeout is how long a request body may send nothing.
	DefaultBodyReadTimeout = 60 * time.Second
)

const (
	// readHeaderTimeout bounds how long a connection may take to send a
	// request's headers. There is deliberately no ReadTimeout or
	// WriteTimeout: an import streams for as long as it keeps sending, and a
	// tick answers when it is done (bounded by the engine's tick_timeout).
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes keep-alive connections nobody uses.
	idleTimeout = 2 * time.Minute
	// maxSocketPath is the size of sockaddr_un.sun_path on Linux, NUL included.
	maxSocketPath = 108
)

// ServerConfig configures a control Server. Zero fields take the defaults
// documented on each.
type ServerConfig struct {
	// SocketPath is where the socket is created (DefaultSocketPath if
	// empty). Its directory must exist; an existing socket there is
	// replaced, any other kind of file is an error.
	SocketPath string
	// Mode is the socket's permission bits (DefaultMode, 0600, if zero).
	// Peers must also be able to search the socket's directory.
	Mode os.FileMode
	// Group, if set, is a group name or numeric gid the socket is chowned
	// to; give it Mode 0660 so that group may connect. The daemon must be
	// root or a member of the group.
	Group string
	// AllowUIDs are the uids allowed to call besides root and the daemon's
	// own effective uid. Everyone else is refused with 403 forbidden, whatever
	// the socket's mode lets them open.
	AllowUIDs []int
	// Logger receives refused callers (warn), internal errors with their
	// detail (error) and one line per request (debug). Nil discards.
	Logger hclog.Logger
	// MaxBodyBytes bounds JSON request bodies (DefaultMaxBodyBytes if
	// zero); larger ones are refused with 413 too_large.
	MaxBodyBytes int64
	// MaxImportBytes bounds a streamed recipients import
	// (DefaultMaxImportBytes if zero); an import that goes past it fails
	// with 413 too_large.
	MaxImportBytes int64
	// BodyReadTimeout abandons a request whose body sends nothing for this
	// long (DefaultBodyReadTimeout if zero), so a stalled client cannot
	// hold an import open. It bounds each wait for data, not the whole
	// body: an import that keeps sending runs as long as it needs.
	BodyReadTimeout time.Duration
	// Version is the daemon's version, reported by GET /v1/status.
	Version string
	// Backup makes a verified copy of the database for POST /v1/backup
	// (the store is not part of core.Service). Nil answers that route with
	// EUNAVAILABLE.
	Backup func(ctx context.Context, req BackupRequest) (*BackupResult, error)
	// Status completes GET /v1/status?detail=true (database, senders,
	// last tick, queue) after the server filled PID, Version and Started.
	// Nil, or a request without detail, answers with those alone.
	Status func(ctx context.Context, st *Status) error
	// LoginLink makes a one-time dashboard login link for POST
	// /v1/dashboard/login-link (`campaignd dashboard`): whoever holds the
	// socket may log in. Nil (no admin listener) answers EUNAVAILABLE.
	LoginLink func(ctx context.Context) (*LoginLink, error)
}

// Server serves the control API on a Unix socket. Create it with NewServer,
// then call Listen, Serve (blocking) and finally Shutdown. A Server is used
// once: after Shutdown it cannot Listen again.
type Server struct {
	svc     core.Service
	cfg     ServerConfig
	log     hclog.Logger
	euid    int
	started time.Time
	hs      *httpx.Server

	mu   sync.Mutex
	sock os.FileInfo // the socket file as Listen left it; nil before
}

// NewServer returns a Server that answers requests with svc. It does not
// touch the file system: Listen creates the socket.
func NewServer(svc core.Service, cfg ServerConfig) *Server {
	if cfg.SocketPath == "" {
		cfg.SocketPath = DefaultSocketPath
	}
	if cfg.Mode == 0 {
		cfg.Mode = DefaultMode
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxImportBytes <= 0 {
		cfg.MaxImportBytes = DefaultMaxImportBytes
	}
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	cfg.AllowUIDs = slices.Clone(cfg.AllowUIDs)
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Server{
		svc:     svc,
		cfg:     cfg,
		log:     log,
		euid:    os.Geteuid(),
		started: time.Now(),
	}
	guard := httpx.Guard{Name: "control", Log: log, Fields: func(r *http.Request) []any {
		return []any{"path", r.URL.Path, "uid", peerOf(r).uid}
	}}
	s.hs = httpx.NewServer("control", &http.Server{
		Handler:           guard.Wrap(s.authorized(s.routes())),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnContext:       connContext,
		ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	})
	return s
}

// SocketPath returns the path the server listens on (after defaults).
func (s *Server) SocketPath() string { return s.cfg.SocketPath }

// Listen creates the control socket at SocketPath with the configured mode
// and group, with no moment at which it is reachable with other
// permissions: the socket is bound in a fresh private (0700) directory next
// to SocketPath, chmod-ed and chown-ed there, then renamed onto SocketPath,
// atomically replacing a stale socket. The caller guarantees that no other
// daemon uses SocketPath (it holds the database lock). Listen fails if it
// was already called, if the path is too long for a Unix socket, if
// something other than a socket exists at SocketPath, or on any file-system
// error; it leaves nothing behind when it fails.
func (s *Server) Listen() (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := s.cfg.SocketPath
	if s.sock != nil {
		return fmt.Errorf("control: listen on %s: already listening", path)
	}
	if len(path) >= maxSocketPath {
		return fmt.Errorf("control: listen on %s: path is %d bytes, a Unix socket path must be under %d", path, len(path), maxSocketPath)
	}
	gid := -1
	if s.cfg.Group != "" {
		if gid, err = lookupGroup(s.cfg.Group); err != nil {
			return fmt.Errorf("control: listen on %s: %w", path, err)
		}
		if s.cfg.Mode&0o060 == 0 {
			s.log.Warn("control socket has a group but no group permissions; members cannot connect",
				"group", s.cfg.Group, "mode", fmt.Sprintf("%04o", s.cfg.Mode))
		}
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("control: listen on %s: a %s is in the way, refusing to replace it", path, fileKind(fi))
	}

	dir, err := os.MkdirTemp(filepath.Dir(path), ".cd")
	if err != nil {
		return fmt.Errorf("control: listen on %s: create private directory: %w", path, err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			s.log.Warn("cannot remove the socket's temporary directory", "dir", dir, "error", rerr)
		}
	}()
	tmp := filepath.Join(dir, "s")
	if len(tmp) >= maxSocketPath {
		return fmt.Errorf("control: listen on %s: temporary socket path %s is over %d bytes; use a shorter socket path", path, tmp, maxSocketPath-1)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return fmt.Errorf("control: listen on %s: %w", path, err)
	}
	// The file moves away from the bound name; Shutdown removes it by path.
	ln.SetUnlinkOnClose(false)
	defer func() {
		if err != nil {
			_ = ln.Close()
		}
	}()
	if err := os.Chmod(tmp, s.cfg.Mode); err != nil {
		return fmt.Errorf("control: listen on %s: chmod: %w", path, err)
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return fmt.Errorf("control: listen on %s: chown to group %s: %w", path, s.cfg.Group, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("control: listen on %s: move socket into place: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("control: listen on %s: %w", path, err)
	}
	if err := s.hs.Use(ln); err != nil {
		return err
	}
	s.sock = fi
	s.log.Info("control socket listening", "path", path, "mode", fmt.Sprintf("%04o", s.cfg.Mode), "group", s.cfg.Group)
	return nil
}

// Serve answers requests on the socket Listen created until Shutdown. It
// returns nil after Shutdown, and an error if Listen was not called, Serve
// was already called, or accepting fails.
func (s *Server) Serve() error { return s.hs.Serve() }

// Shutdown stops accepting connections, waits for in-flight requests to
// finish until ctx is done, then closes whatever connections remain, and
// removes the socket file (only if it is still the one Listen created). It
// returns ctx's error, wrapped, if requests were still running when ctx
// ended. A tick in flight is not cancelled by the forced close; it runs to
// its own timeout and records its outcomes.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.hs.Shutdown(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sock != nil {
		if fi, lerr := os.Lstat(s.cfg.SocketPath); lerr == nil && os.SameFile(fi, s.sock) {
			if rerr := os.Remove(s.cfg.SocketPath); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("control: shutdown: remove socket: %w", rerr))
			}
		}
	}
	return err
}

// lookupGroup resolves a group name or numeric gid.
func lookupGroup(g string) (int, error) {
	if gid, err := strconv.Atoi(g); err == nil {
		if gid < 0 {
			return -1, fmt.Errorf("group %q: not a valid gid", g)
		}
		return gid, nil
	}
	grp, err := user.LookupGroup(g)
	if err != nil {
		return -1, fmt.Errorf("group %q: %w", g, err)
	}
	gid, err := strconv.Atoi(grp.Gid)
	if err != nil {
		return -1, fmt.Errorf("group %q: gid %q is not numeric", g, grp.Gid)
	}
	return gid, nil
}

// fileKind names a file's type for an error message.
func fileKind(fi os.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t == 0:
		return "regular file"
	case t&os.ModeDir != 0:
		return "directory"
	case t&os.ModeSymlink != 0:
		return "symbolic link"
	default:
		return "non-socket file (" + t.String() + ")"
	}
}

// peerKey carries a connection's peer on its context.
type peerKey struct{}

// peer is who is at the other end of a connection.
type peer struct {
	uid int
	err error // credentials could not be read: the caller is refused
}

// connContext records the connection's peer credentials once per
// connection, for guard to check on every request.
func connContext(ctx context.Context, c net.Conn) context.Context {
	p := peer{uid: -1}
	if sc, ok := c.(syscall.Conn); ok {
		rc, err := sc.SyscallConn()
		if err != nil {
			p.err = fmt.Errorf("peer credentials: %w", err)
		} else {
			p.uid, p.err = peerUID(rc)
		}
	} else {
		p.err = fmt.Errorf("peer credentials: %T is not a socket", c)
	}
	return context.WithValue(ctx, peerKey{}, p)
}

// authorize returns nil if p may call, and an EFORBIDDEN error naming the
// caller otherwise.
func (s *Server) authorize(p peer) error {
	if p.err != nil {
		return &core.Error{Code: core.EFORBIDDEN, Message: "cannot identify the caller on the control socket: " + p.err.Error(), Err: p.err}
	}
	if p.uid == 0 || p.uid == s.euid || slices.Contains(s.cfg.AllowUIDs, p.uid) {
		return nil
	}
	return core.Errorf(core.EFORBIDDEN,
		"uid %d is not allowed to use the campaignd control socket: only root, the daemon's user (uid %d) and the configured allowed uids may",
		p.uid, s.euid)
}

// peerOf returns the peer connContext recorded for r's connection.
func peerOf(r *http.Request) peer {
	p, ok := r.Context().Value(peerKey{}).(peer)
	if !ok {
		return peer{uid: -1, err: errors.New("peer credentials: connection not seen")}
	}
	return p
}

// authorized lets through only the requests of callers authorize accepts,
// with the caller as the actor on their context.
func (s *Server) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := peerOf(r)
		if err := s.authorize(p); err != nil {
			s.log.Warn("control socket caller refused", "uid", p.uid, "method", r.Method,
				"path", r.URL.Path, "error", err)
			w.Header().Set("Connection", "close")
			s.writeError(w, r, err)
			return
		}
		ctx := core.WithActor(r.Context(), fmt.Sprintf("uid %d via socket", p.uid))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
