package sqlite

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/campaignd/campaignd/core"
	"golang.org/x/sys/unix"
)

// ErrLocked is in the chain of the error Lock returns when another process
// (or another FileLock in this one) holds the database lock:
// errors.Is(err, ErrLocked) tells a busy lock, which a standalone tick
// reports as skipped, from a real failure.
var ErrLocked = errors.New("database lock is held by another process")

// lockPoll is how often a waiting Lock retries.
const lockPoll = 25 * time.Millisecond

// FileLock is an exclusive flock(2) on <database>.lock. The kernel releases
// it when the process exits or dies, so there are no stale locks.
type FileLock struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// Lock takes the exclusive lock on dbPath+".lock" (created with mode 0600),
// trying once when wait is 0 and otherwise retrying until wait has elapsed.
// Once it holds the lock it writes "pid N: <holder>" into the file so a
// process that finds it busy can say who holds it. When it stays busy Lock
// returns an ECONFLICT *core.Error naming the holder, with ErrLocked in its
// chain. The lock belongs to the open file, not the process: a second Lock
// in the same process is busy too.
func Lock(dbPath string, wait time.Duration, holder string) (*FileLock, error) {
	path := dbPath + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock database: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := flock(f, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("lock database: flock %s: %w", path, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			who := readHolder(f)
			_ = f.Close()
			msg := fmt.Sprintf("database %s is locked by %s", dbPath, who)
			if wait > 0 {
				msg += fmt.Sprintf(" (waited %s)", wait)
			}
			return nil, &core.Error{Code: core.ECONFLICT, Message: msg, Err: ErrLocked}
		}
		time.Sleep(min(lockPoll, left))
	}
	l := &FileLock{f: f, path: path}
	if err := l.writeHolder(fmt.Sprintf("pid %d: %s\n", os.Getpid(), holder)); err != nil {
		_ = l.Release()
		return nil, fmt.Errorf("lock database: record holder: %w", err)
	}
	return l, nil
}

// Path returns the lock file's path.
func (l *FileLock) Path() string { return l.path }

// Release clears the holder note and releases the lock. Releasing twice is
// harmless. The lock file stays: removing it would let two processes lock
// two different files of the same name.
func (l *FileLock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	errs := []error{f.Truncate(0), flock(f, unix.LOCK_UN), f.Close()}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release database lock: %w", err)
	}
	return nil
}

func (l *FileLock) writeHolder(s string) error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	if _, err := l.f.WriteAt([]byte(s), 0); err != nil {
		return err
	}
	return nil
}

// readHolder returns the holder note of a busy lock file, or a generic
// description when it is empty (the holder is between taking the lock and
// writing its note) or unreadable.
func readHolder(f *os.File) string {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 4096))
	s := strings.TrimSpace(string(b))
	if err != nil || s == "" {
		return "another process"
	}
	return s
}

// flock calls flock(2) on f, retrying on EINTR.
func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = unix.Flock(int(fd), how)
			if !errors.Is(ferr, unix.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}
