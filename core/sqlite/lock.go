package sqlite

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/campaignd/campaignd/core"
	"golang.org/x/sys/unix"
)

// ErrLocked is in the chain of the error Lock and LockShared return when
// another process (or another FileLock in this one) holds the database
// lock: errors.Is(err, ErrLocked) tells a busy lock, which a standalone
// tick reports as skipped, from a real failure.
var ErrLocked = errors.New("database lock is held by another process")

// lockPoll is how often a waiting Lock retries.
const lockPoll = 25 * time.Millisecond

// maxNote bounds the holder note: a lock file larger than this was not
// written by a lock, and is refused.
const maxNote = 512

// The lock file <database>.lock is one file holding several byte-range
// locks, all open-file-description locks (fcntl F_OFD_SETLK on Linux): the
// kernel releases them when the process exits or dies, like flock, so there
// are no stale locks, and they belong to the open file, so two FileLocks in
// one process conflict like two processes do. Every user of the file takes
// this kind of lock; byte 0 comes with a flock(2) of the same kind, which
// is all that releases before these locks took (flock and fcntl locks do
// not see each other on Linux), so old and new binaries exclude each other.
//
//   - byte 0, the database lock: exclusive for `campaignd serve` and the
//     writing commands (Lock), shared by standalone ticks (LockShared), so
//     ticks run beside each other but never beside a writing command or a
//     daemon;
//   - byte 1+id, campaign id: exclusive, held by the tick working on that
//     campaign (TryLockCampaign), so two ticks never send the same campaign
//     at once while ticks of different campaigns run together.
//
// The file's content is the holder note of the exclusive holder, "pid N:
// <holder>", so a process that finds the lock busy can say who holds it;
// shared holders write none (there may be several) and are named as ticks.
//
// The file is opened with O_NOFOLLOW and must be a regular file with one
// link, owned by this process's user or by the owner of its directory,
// and no bigger than a holder note (maxNote): a symlink or hard link
// planted at <database>.lock, or any other file found there, is refused
// rather than written to, so what the lock writes and truncates is only
// ever its own note.
const (
	dbLockByte       int64 = 0
	campaignLockBase int64 = 1 // campaign id's byte is campaignLockBase+id

	lockRead  int16 = unix.F_RDLCK
	lockWrite int16 = unix.F_WRLCK
	lockNone  int16 = unix.F_UNLCK
)

// FileLock is a hold on <database>.lock: the database lock, exclusive or
// shared, and the campaign locks a tick takes under a shared one.
type FileLock struct {
	mu        sync.Mutex
	f         *os.File
	path      string
	exclusive bool
	campaigns map[int64]bool
}

// Lock takes the exclusive database lock on dbPath+".lock" (created with
// mode 0600), trying once when wait is 0 and otherwise retrying until wait
// has elapsed. Once it holds the lock it writes "pid N: <holder>" into the
// file so a process that finds it busy can say who holds it. When it stays
// busy Lock returns an ECONFLICT *core.Error naming the holder (or "a
// running tick" when ticks hold it shared), with ErrLocked in its chain.
// The lock belongs to the open file, not the process: a second Lock in the
// same process is busy too. Other errors (the file cannot be opened) are
// returned wrapped.
func Lock(dbPath string, wait time.Duration, holder string) (*FileLock, error) {
	l, err := lockDB(dbPath, lockWrite, wait)
	if err != nil {
		return nil, err
	}
	if err := l.writeHolder(fmt.Sprintf("pid %d: %s\n", os.Getpid(), holder)); err != nil {
		_ = l.Release()
		return nil, fmt.Errorf("lock database: record holder: %w", err)
	}
	return l, nil
}

// LockShared takes the database lock on dbPath+".lock" shared, without
// waiting: what a standalone tick holds, beside other ticks, while no
// daemon or writing command holds it exclusive. Busy is an ECONFLICT
// *core.Error naming the exclusive holder, with ErrLocked in its chain;
// other errors are returned wrapped. The tick then takes its campaigns
// with TryLockCampaign.
func LockShared(dbPath string) (*FileLock, error) {
	return lockDB(dbPath, lockRead, 0)
}

func lockDB(dbPath string, typ int16, wait time.Duration) (*FileLock, error) {
	path := dbPath + ".lock"
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err := lockDBByte(f, typ)
		if err == nil {
			break
		}
		if !busy(err) {
			_ = f.Close()
			return nil, fmt.Errorf("lock database: fcntl %s: %w", path, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			who := lockHolder(f, typ)
			_ = f.Close()
			msg := fmt.Sprintf("database %s is locked by %s", dbPath, who)
			if wait > 0 {
				msg += fmt.Sprintf(" (waited %s)", wait)
			}
			return nil, &core.Error{Code: core.ECONFLICT, Message: msg, Err: ErrLocked}
		}
		time.Sleep(min(lockPoll, left))
	}
	return &FileLock{f: f, path: path, exclusive: typ == lockWrite, campaigns: map[int64]bool{}}, nil
}

// lockDBByte takes byte 0 (the database lock) as typ, and a flock(2) of
// the same kind beside it: campaignd releases before OFD byte-range locks
// took only an exclusive flock, and the two kinds do not see each other, so
// holding both keeps a binary of either kind out while this one holds the
// database (a tick of the old binary during an upgrade, say).
func lockDBByte(f *os.File, typ int16) error {
	if err := setLock(f, typ, dbLockByte); err != nil {
		return err
	}
	how := unix.LOCK_EX
	if typ == lockRead {
		how = unix.LOCK_SH
	}
	if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
		_ = setLock(f, lockNone, dbLockByte)
		return err
	}
	return nil
}

// openLockFile opens (creating it 0600) the lock file at path without
// following a symlink, and checks it is one the lock may write: see the
// lock file's description above. A refused file is an EINVALID *core.Error
// naming it and why.
func openLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, core.Errorf(core.EINVALID, "lock database: %s is a symbolic link: refusing to use it as the lock file (remove it)", path)
		}
		return nil, fmt.Errorf("lock database: %w", err)
	}
	why := ""
	var st, dir unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock database: stat %s: %w", path, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		why = "is not a regular file"
	case st.Nlink != 1:
		why = fmt.Sprintf("has %d hard links", st.Nlink)
	case st.Size > maxNote:
		why = fmt.Sprintf("holds %d bytes, more than a lock's holder note", st.Size)
	case int(st.Uid) != os.Geteuid():
		if err := unix.Stat(filepath.Dir(path), &dir); err != nil || dir.Uid != st.Uid {
			why = fmt.Sprintf("is owned by uid %d, neither this user nor the directory's owner", st.Uid)
		}
	}
	if why != "" {
		_ = f.Close()
		return nil, core.Errorf(core.EINVALID, "lock database: %s %s: refusing to use it as the lock file (remove it)", path, why)
	}
	return f, nil
}

// Path returns the lock file's path.
func (l *FileLock) Path() string { return l.path }

// TryLockCampaign takes campaign id's lock without waiting and reports
// whether it got it: false when another tick (in any process, or another
// FileLock in this one) works on that campaign. Taking a campaign it
// already holds is true. It returns an error when the lock is released or
// fcntl fails otherwise. It implements core.CampaignLocker.
func (l *FileLock) TryLockCampaign(id int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return false, fmt.Errorf("lock campaign %d: the database lock is released", id)
	}
	if l.campaigns[id] {
		return true, nil
	}
	if id <= 0 {
		return false, core.Errorf(core.EINVALID, "lock campaign %d: not a campaign id", id)
	}
	if err := setLock(l.f, lockWrite, campaignLockBase+id); err != nil {
		if busy(err) {
			return false, nil
		}
		return false, fmt.Errorf("lock campaign %d: fcntl %s: %w", id, l.path, err)
	}
	l.campaigns[id] = true
	return true, nil
}

// UnlockCampaign releases campaign id's lock; releasing one not held is
// harmless. It returns an error only when fcntl fails.
func (l *FileLock) UnlockCampaign(id int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || !l.campaigns[id] {
		return nil
	}
	delete(l.campaigns, id)
	if err := setLock(l.f, lockNone, campaignLockBase+id); err != nil {
		return fmt.Errorf("unlock campaign %d: %w", id, err)
	}
	return nil
}

// Release clears the holder note (an exclusive lock's) and releases every
// lock of l. Releasing twice is harmless. The lock file stays: removing it
// would let two processes lock two different files of the same name.
func (l *FileLock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	var errs []error
	if l.exclusive {
		errs = append(errs, f.Truncate(0))
	}
	// Closing the last descriptor of the open file releases its OFD locks;
	// unlock first anyway so the release does not wait for the garbage
	// collector of a descriptor someone duplicated.
	errs = append(errs, setLockRange(f, lockNone, 0, 0), f.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release database lock: %w", err)
	}
	return nil
}

// writeHolder replaces the note with s (clipped to maxNote bytes); the
// file was checked to hold nothing but a note when it was opened.
func (l *FileLock) writeHolder(s string) error {
	if len(s) > maxNote {
		s = s[:maxNote-1] + "\n"
	}
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	if _, err := l.f.WriteAt([]byte(s), 0); err != nil {
		return err
	}
	return nil
}

// lockHolder describes who holds the database lock that blocked a lock of
// type want on f: ticks when it is held shared, else the exclusive
// holder's note, or a generic description when the note is empty (the
// holder is between taking the lock and writing its note) or unreadable.
func lockHolder(f *os.File, want int16) string {
	if typ, err := getLock(f, want, dbLockByte); err == nil && typ == lockRead {
		return "a running tick (campaignd tick)"
	}
	b, err := io.ReadAll(io.NewSectionReader(f, 0, maxNote))
	s := strings.TrimSpace(string(b))
	if err != nil || s == "" {
		return "another process"
	}
	return s
}

// busy reports whether a failed lock call failed because the range is held.
func busy(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES)
}

// setLock sets a lock of type typ on the one byte at off.
func setLock(f *os.File, typ int16, off int64) error { return setLockRange(f, typ, off, 1) }

// setLockRange sets a lock of type typ on n bytes at off (n 0: to the end
// of any file), without waiting, retrying on EINTR.
func setLockRange(f *os.File, typ int16, off, n int64) error {
	lk := unix.Flock_t{Type: typ, Whence: io.SeekStart, Start: off, Len: n}
	return fcntl(f, setLockCmd, &lk)
}

// getLock returns the type of a lock that would block a lock of type want
// on the byte at off (F_UNLCK: none).
func getLock(f *os.File, want int16, off int64) (int16, error) {
	lk := unix.Flock_t{Type: want, Whence: io.SeekStart, Start: off, Len: 1}
	if err := fcntl(f, getLockCmd, &lk); err != nil {
		return 0, err
	}
	return lk.Type, nil
}

func fcntl(f *os.File, cmd int, lk *unix.Flock_t) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = unix.FcntlFlock(fd, cmd, lk)
			if !errors.Is(ferr, unix.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}
