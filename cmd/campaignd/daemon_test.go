package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/control"
	"github.com/campaignd/campaignd/core/sqlite"
)

// lockedBuffer is a log destination the daemon's goroutines and the test
// share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// inProcessDaemon writes a configuration into a fresh short directory (a
// Unix socket path must stay under 108 bytes) and returns an unopened
// daemon on it, its log and its configuration file.
func inProcessDaemon(t *testing.T, extraTOML string) (*daemon, *lockedBuffer, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "cdd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "campaignd.toml")
	toml := "database = \"" + filepath.Join(dir, "campaignd.db") + "\"\n" +
		"log_level = \"info\"\nshutdown_timeout = \"5s\"\ntick_interval = \"20ms\"\n" + extraTOML +
		"[senders.out]\nplugin = \"outbox\"\n"
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	log := &lockedBuffer{}
	return newDaemon(cfg, newLogger(cfg.LogLevel, cfg.LogFormat, log), func() (*Config, error) { return loadConfig(path) }), log, path
}

// The daemon runs in-process: Open holds the lock and answers on a real
// socket, Run serves a control-API call and a reload, and Close removes the
// socket and releases the lock.
func TestDaemonInProcess(t *testing.T) {
	d, log, cfgPath := inProcessDaemon(t, "")
	ctx := context.Background()
	if err := d.Open(ctx); err != nil {
		t.Fatalf("open: %v", err)
	}
	closed := false
	defer func() {
		if !closed {
			d.Close()
		}
	}()
	db, sock := d.cfg.Database, d.cfg.socketPath()

	if l, err := sqlite.Lock(db, 0, "test"); !errors.Is(err, sqlite.ErrLocked) {
		if l != nil {
			l.Release()
		}
		t.Fatalf("lock while the daemon is open: %v, want ErrLocked", err)
	}
	second, _, _ := inProcessDaemon(t, "")
	second.cfg = d.cfg
	if err := second.Open(ctx); !errors.Is(err, sqlite.ErrLocked) {
		second.Close()
		t.Fatalf("a second daemon on the database opened: %v, want ErrLocked", err)
	}

	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- d.Run(runCtx) }()

	client := &control.Client{SocketPath: sock}
	if _, err := client.Status(ctx); err != nil {
		t.Fatalf("status over the socket: %v", err)
	}
	c, err := client.CreateCampaign(ctx, core.CampaignSpec{Name: "in-process", Sender: "out", From: "news@example.com", Subject: "Hi", Text: "Hello"})
	if err != nil {
		t.Fatalf("create over the socket: %v", err)
	}
	if got, err := client.Campaign(ctx, c.ID); err != nil || got.Name != "in-process" || got.Status != core.CampaignDraft {
		t.Fatalf("campaign over the socket: %+v, %v", got, err)
	}

	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, append(cfg, "[queue]\nbatch_size = 10\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Reload()
	if got := d.local.eng.Limits().BatchSize; got != 10 || !strings.Contains(log.String(), "reloaded configuration") {
		t.Fatalf("after Reload batch_size is %d, want 10; log:\n%s", got, log)
	}
	if err := os.WriteFile(cfgPath, append(cfg, "[queue]\nbatch_size = 51\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Reload()
	if got := d.local.eng.Limits().BatchSize; got != 10 || !strings.Contains(log.String(), "reload: configuration not applied") {
		t.Fatalf("a bad reload changed batch_size to %d (want 10 kept); log:\n%s", got, log)
	}

	stop()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	d.Close()
	closed = true
	d.Close() // a second Close does nothing

	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after Close: %v, want it removed", err)
	}
	if _, err := client.Status(ctx); !errors.Is(err, control.ErrNoDaemon) {
		t.Errorf("status after Close: %v, want ErrNoDaemon", err)
	}
	l, err := sqlite.Lock(db, 0, "test")
	if err != nil {
		t.Fatalf("lock after Close: %v, want it released", err)
	}
	l.Release()
	for _, line := range []string{"serving", "shutting down"} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("the log lacks %q:\n%s", line, log)
		}
	}
}

// An Open that fails part-way gives back what it took: here the public
// listener's address is taken, after the lock, the database and the
// control socket were acquired.
func TestDaemonOpenFailureReleases(t *testing.T) {
	d, _, _ := inProcessDaemon(t, "[http]\nlisten = \"256.0.0.1:1\"\n")
	if err := d.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "http listener") {
		d.Close()
		t.Fatalf("open with a bad [http] listen: %v, want an http listener error", err)
	}
	if _, err := os.Lstat(d.cfg.socketPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after a failed Open: %v, want none", err)
	}
	l, err := sqlite.Lock(d.cfg.Database, 0, "test")
	if err != nil {
		t.Fatalf("lock after a failed Open: %v, want it released", err)
	}
	l.Release()
}
