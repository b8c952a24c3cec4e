package sqlite_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// lockChildEnv makes the test binary a lock-holding child process.
const lockChildEnv = "CAMPAIGND_SQLITE_LOCK_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(lockChildEnv); path != "" {
		l, err := sqlite.Lock(path, 0, "child")
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
