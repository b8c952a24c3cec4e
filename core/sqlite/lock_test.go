package sqlite_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/sqlite"
)

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	l, err := sqlite.Lock(path, 0, "campaignd serve")
	if err != nil {
		t.Fatal(err)
	}
	note, _ := os.ReadFile(path + ".lock")
	if want := fmt.Sprintf("pid %d: campaignd serve\n", os.Getpid()); string(note) != want {
		t.Fatalf("lock note %q, want %q", note, want)
	}

	// Busy: try once.
	start := time.Now()
	_, err = sqlite.Lock(path, 0, "campaignd tick")
	if !errors.Is(err, sqlite.ErrLocked) || core.ErrorCode(err) != core.ECONFLICT {
		t.Fatalf("second lock: %v, want ECONFLICT wrapping ErrLocked", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("pid %d: campaignd serve", os.Getpid())) {
		t.Fatalf("busy error does not name the holder: %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("wait 0 took %v", d)
	}

	// Busy with a wait: gives up after about the wait.
	start = time.Now()
	if _, err = sqlite.Lock(path, 150*time.Millisecond, "campaignd import"); !errors.Is(err, sqlite.ErrLocked) {
		t.Fatalf("waiting lock: %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Fatalf("waited %v for a 150ms wait", d)
	}

	// A waiter gets the lock once it is released.
	got := make(chan error, 1)
	go func() {
		l2, err := sqlite.Lock(path, 5*time.Second, "waiter")
		if err == nil {
			err = l2.Release()
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if _, err := sqlite.Lock(filepath.Join(t.TempDir(), "missing", "c.db"), 0, "x"); err == nil || errors.Is(err, sqlite.ErrLocked) {
		t.Fatalf("lock in a missing directory: %v", err)
	}
}

// lockChildEnv makes the test binary a lock-holding child process; with
// lockChildCampaignEnv it holds the lock shared, like a tick, and that
// campaign.
const (
	lockChildEnv         = "CAMPAIGND_SQLITE_LOCK_CHILD"
	lockChildCampaignEnv = "CAMPAIGND_SQLITE_LOCK_CHILD_CAMPAIGN"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(lockChildEnv); path != "" {
		var l *sqlite.FileLock
		var err error
		if id, _ := strconv.ParseInt(os.Getenv(lockChildCampaignEnv), 10, 64); id > 0 {
			if l, err = sqlite.LockShared(path); err == nil {
				var ok bool
				if ok, err = l.TryLockCampaign(id); err == nil && !ok {
					err = errors.New("campaign busy")
				}
			}
		} else {
			l, err = sqlite.Lock(path, 0, "child")
		}
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute)
		_ = l.Release()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLockReleasedWhenHolderDies kills a lock holder with SIGKILL: the kernel
// releases the lock, leaving no stale lock behind.
func TestLockReleasedWhenHolderDies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	_, err = sqlite.Lock(path, 0, "parent")
	if !errors.Is(err, sqlite.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d: child", cmd.Process.Pid)) {
		t.Fatalf("lock held by the child: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	l, err := sqlite.Lock(path, 2*time.Second, "parent")
	if err != nil {
		t.Fatalf("lock after the holder died: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

// TestLockSharedAndCampaigns: ticks share the database lock and take
// campaigns one by one; an exclusive holder excludes them, and they
// exclude it, each side naming the other.
func TestLockSharedAndCampaigns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	a, err := sqlite.LockShared(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sqlite.LockShared(path)
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	// A writing command waits for the ticks, and says they hold it.
	_, err = sqlite.Lock(path, 50*time.Millisecond, "campaignd campaign execute")
	if !errors.Is(err, sqlite.ErrLocked) || !strings.Contains(err.Error(), "a running tick") {
		t.Fatalf("exclusive lock beside ticks: %v", err)
	}

	// Campaigns: one tick each; taking one twice is fine.
	for _, c := range []struct {
		l    *sqlite.FileLock
		id   int64
		want bool
	}{{a, 1, true}, {a, 1, true}, {b, 1, false}, {b, 2, true}, {a, 2, false}, {a, 3, true}} {
		got, err := c.l.TryLockCampaign(c.id)
		if err != nil || got != c.want {
			t.Fatalf("campaign %d: %v, %v; want %v", c.id, got, err, c.want)
		}
	}
	if err := a.UnlockCampaign(1); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLockCampaign(1); !ok || err != nil {
		t.Fatalf("campaign 1 after its release: %v, %v", ok, err)
	}
	if _, err := a.TryLockCampaign(0); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("campaign 0: %v", err)
	}

	// Releasing a tick releases its campaigns.
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.TryLockCampaign(2); !ok || err != nil {
		t.Fatalf("campaign 2 after its tick ended: %v, %v", ok, err)
	}
	if _, err := b.TryLockCampaign(5); err == nil {
		t.Fatal("a released lock took a campaign")
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}

	// An exclusive holder keeps ticks out, named by its note.
	l, err := sqlite.Lock(path, 0, "campaignd serve")
	if err != nil {
		t.Fatalf("exclusive lock once the ticks are gone: %v", err)
	}
	_, err = sqlite.LockShared(path)
	if !errors.Is(err, sqlite.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d: campaignd serve", os.Getpid())) {
		t.Fatalf("shared lock beside serve: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if note, _ := os.ReadFile(path + ".lock"); len(note) != 0 {
		t.Fatalf("note left after release: %q", note)
	}
}

// TestCampaignLockReleasedWhenHolderDies: a tick killed while it holds a
// campaign leaves the campaign free.
func TestCampaignLockReleasedWhenHolderDies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+path, lockChildCampaignEnv+"=7")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	l, err := sqlite.LockShared(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if ok, err := l.TryLockCampaign(7); ok || err != nil {
		t.Fatalf("campaign 7 held by the child: %v, %v", ok, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if ok, err := l.TryLockCampaign(7); !ok || err != nil {
		t.Fatalf("campaign 7 after the child died: %v, %v", ok, err)
	}
}

// Issue 12 item 7: a symlink planted at <db>.lock is not followed (its
// target is neither truncated nor written), and a hard link, a FIFO or a
// file bigger than a holder note found there is refused, untouched.
func TestLockFileRefusesWhatIsNotOurs(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "c.db")
	victim := filepath.Join(dir, "victim")
	const content = "precious content\n"
	if err := os.WriteFile(victim, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		for _, lock := range []func() (*sqlite.FileLock, error){
			func() (*sqlite.FileLock, error) { return sqlite.Lock(db, 0, "campaignd serve") },
			func() (*sqlite.FileLock, error) { return sqlite.LockShared(db) },
		} {
			l, err := lock()
			if err == nil {
				l.Release()
				t.Fatalf("%s: locked", what)
			}
			if errors.Is(err, sqlite.ErrLocked) || !strings.Contains(err.Error(), db+".lock") {
				t.Fatalf("%s: %v, want a refusal naming the lock file", what, err)
			}
		}
		if b, _ := os.ReadFile(victim); string(b) != content {
			t.Fatalf("%s: the victim now holds %q", what, b)
		}
		if err := os.Remove(db + ".lock"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(victim, db+".lock"); err != nil {
		t.Fatal(err)
	}
	check("symlink")
	if err := os.Link(victim, db+".lock"); err != nil {
		t.Fatal(err)
	}
	check("hard link")
	if err := syscall.Mkfifo(db+".lock", 0o600); err != nil {
		t.Fatal(err)
	}
	check("fifo")
	if err := os.WriteFile(db+".lock", []byte(strings.Repeat("x", 4096)), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(db + ".lock"); len(b) != 4096 {
		t.Fatal("setup")
	}
	l, err := sqlite.Lock(db, 0, "x")
	if err == nil {
		l.Release()
		t.Fatal("a big file at the lock path: locked")
	}
	if b, _ := os.ReadFile(db + ".lock"); len(b) != 4096 {
		t.Fatalf("a refused lock file was changed to %d bytes", len(b))
	}
	os.Remove(db + ".lock")

	// Our own file works, and a holder note is bounded.
	l, err = sqlite.Lock(db, 0, strings.Repeat("h", 10000))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(db + ".lock"); fi.Size() > 512 {
		t.Fatalf("holder note of %d bytes", fi.Size())
	}
	l.Release()
	if l, err = sqlite.Lock(db, 0, "again"); err != nil {
		t.Fatalf("relock after a long note: %v", err)
	}
	l.Release()
}
