package plugin_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
)

// testPool returns a pool of test plugins, one per name, recording their
// pids in the returned marker file, and closes it when the test ends.
func testPool(t *testing.T, names ...string) (*plugin.Pool, string) {
	t.Helper()
	mark := filepath.Join(t.TempDir(), "mark")
	pl := plugin.NewPool(testLogger(t, hclog.Warn), poolConfigs(mark, nil, names...))
	t.Cleanup(func() { pl.Close() })
	return pl, mark
}

func poolConfigs(mark string, options map[string]string, names ...string) map[string]plugin.PluginConfig {
	cfgs := map[string]plugin.PluginConfig{}
	for _, n := range names {
		cfgs[n] = plugin.PluginConfig{Plugin: pluginPath, Options: options, Env: []string{"TESTPLUGIN_MARK=" + mark}}
	}
	return cfgs
}

// sendPid sends through name and returns the pid of the plugin process
// that answered.
func sendPid(t *testing.T, pl *plugin.Pool, name string) int {
	t.Helper()
	s, err := pl.Sender(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Send(t.Context(), testMsg("pid"))
	if err != nil {
		t.Fatalf("send through %s: %v", name, err)
	}
	pid, err := strconv.Atoi(r.ProviderID)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestPoolStartsLazily(t *testing.T) {
	pl, mark := testPool(t, "a", "b")
	if pids := markedPids(t, mark); len(pids) != 0 {
		t.Fatalf("NewPool started plugins %v", pids)
	}
	if _, err := pl.Sender(t.Context(), "nope"); !errors.Is(err, plugin.ErrUnknownSender) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown sender: %v", err)
	}
	s, err := pl.Sender(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if pids := markedPids(t, mark); len(pids) != 1 {
		t.Fatalf("after Sender(a): started %v, want one plugin", pids)
	}
	info, err := s.Info(t.Context())
	if err != nil || info.Name != "test" {
		t.Errorf("info = %+v, %v", info, err)
	}
	a1, a2 := sendPid(t, pl, "a"), sendPid(t, pl, "a")
	if a1 != a2 || len(markedPids(t, mark)) != 1 {
		t.Errorf("a warm plugin was restarted: pids %d, %d", a1, a2)
	}
}

func TestPoolRestartsAfterCrash(t *testing.T) {
	pl, _ := testPool(t, "a")
	old := sendPid(t, pl, "a")
	s, _ := pl.Sender(t.Context(), "a")
	_, err := s.Send(t.Context(), testMsg("crash"))
	if e := sdk.AsError(err); e == nil || e.Class != sdk.ClassTransient || !strings.Contains(e.Message, "plugin a crashed") {
		t.Fatalf("crash: %v, want transient 'plugin a crashed'", err)
	}
	if now := sendPid(t, pl, "a"); now == old {
		t.Error("crashed plugin was not restarted")
	}
	waitGone(t, old, 2*time.Second)
}

func TestPoolKillsHungPlugin(t *testing.T) {
	pl, _ := testPool(t, "a")
	old := sendPid(t, pl, "a")
	s, _ := pl.Sender(t.Context(), "a")
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Send(ctx, testMsg("hang"))
	if e := sdk.AsError(err); e == nil || e.Class != sdk.ClassTransient || !strings.Contains(e.Message, "timed out") {
		t.Fatalf("hung send: %v, want transient timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("hung send returned after %s", d)
	}
	waitGone(t, old, 2*time.Second)
	if now := sendPid(t, pl, "a"); now == old {
		t.Error("hung plugin was not replaced")
	}
}

func TestPoolRestartsKilledPlugin(t *testing.T) {
	pl, _ := testPool(t, "a")
	old := sendPid(t, pl, "a")
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, old, 2*time.Second)
	s, _ := pl.Sender(t.Context(), "a")
	// The first send may meet the dead connection (transient); the next
	// one must reach a new process.
	for i := 0; ; i++ {
		r, err := s.Send(t.Context(), testMsg("pid"))
		if err == nil {
			if r.ProviderID == strconv.Itoa(old) {
				t.Fatal("send answered by the killed process")
			}
			break
		}
		if e := sdk.AsError(err); e.Class != sdk.ClassTransient || i > 0 {
			t.Fatalf("send %d after kill: %v", i, err)
		}
	}
}

func TestPoolReconfigure(t *testing.T) {
	pl, mark := testPool(t, "a", "b")
	a, b := sendPid(t, pl, "a"), sendPid(t, pl, "b")

	cfgs := poolConfigs(mark, nil, "a", "b", "c")
	cfgs["a"] = plugin.PluginConfig{Plugin: pluginPath, Options: map[string]string{"v": "2"}, Env: []string{"TESTPLUGIN_MARK=" + mark}}
	pl.Reconfigure(cfgs)
	waitGone(t, a, 2*time.Second)
	s, _ := pl.Sender(t.Context(), "a")
	r, err := s.Send(t.Context(), testMsg("pid"))
	if err != nil {
		t.Fatal(err)
	}
	if e := decodeEcho(t, r); e.Pid == a || e.Options["v"] != "2" {
		t.Errorf("changed sender a: pid %d (old %d), options %v", e.Pid, a, e.Options)
	}
	if now := sendPid(t, pl, "b"); now != b {
		t.Errorf("unchanged sender b was restarted: %d -> %d", b, now)
	}
	sendPid(t, pl, "c")

	delete(cfgs, "b")
	pl.Reconfigure(cfgs)
	waitGone(t, b, 2*time.Second)
	if _, err := pl.Sender(t.Context(), "b"); !errors.Is(err, plugin.ErrUnknownSender) {
		t.Errorf("removed sender: %v, want ErrUnknownSender", err)
	}
}

func TestPoolConfigError(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "mark")
	pl := plugin.NewPool(hclog.NewNullLogger(), poolConfigs(mark, map[string]string{"reject": "x"}, "a"))
	defer pl.Close()
	var e *sdk.Error
	if _, err := pl.Sender(t.Context(), "a"); !errors.As(err, &e) || e.Class != sdk.ClassConfig {
		t.Fatalf("Sender: %v, want config error", err)
	}
	// Within the hold-off the same error comes back without a new process.
	if _, err := pl.Sender(t.Context(), "a"); !errors.As(err, &e) || e.Class != sdk.ClassConfig {
		t.Fatalf("second Sender: %v", err)
	}
	if pids := markedPids(t, mark); len(pids) != 1 {
		t.Errorf("failing config started %d processes, want 1", len(pids))
	}
}

func TestPoolConcurrentUseAndClose(t *testing.T) {
	pl, mark := testPool(t, "a", "b")
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 40 {
		wg.Go(func() {
			name := []string{"a", "b"}[i%2]
			s, err := pl.Sender(t.Context(), name)
			if err != nil {
				errs <- err
				return
			}
			for j := range 5 {
				subject := "pid"
				if i == 7 && j == 2 {
					subject = "crash"
				}
				if _, err := s.Send(t.Context(), testMsg(subject)); err != nil {
					if e := sdk.AsError(err); e.Class != sdk.ClassTransient {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent use: %v", err)
	}
	if err := pl.Close(); err != nil {
		t.Fatal(err)
	}
	pids := markedPids(t, mark)
	if len(pids) < 2 {
		t.Fatalf("pids %v", pids)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("plugin %d outlived Pool.Close", pid)
		}
	}
	if _, err := pl.Sender(t.Context(), "a"); !errors.Is(err, plugin.ErrPoolClosed) {
		t.Errorf("Sender after Close: %v, want ErrPoolClosed", err)
	}
}
