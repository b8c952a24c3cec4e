package plugin_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
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
	"github.com/campaignd/campaignd/sdk/sdktest"
)

// pluginPath is the test plugin (campaignd-sender-testplugin), built once
// by TestMain; pluginDir is its directory.
var pluginPath, pluginDir string

// hostHelperEnv makes the test binary act as a plugin host that launches
// the plugin at the given path, prints its pid and waits to be killed.
const hostHelperEnv = "SDK_TEST_HOST_HELPER"

func TestMain(m *testing.M) {
	if path := os.Getenv(hostHelperEnv); path != "" {
		hostHelper(path)
		return
	}
	path, err := sdktest.BuildPlugin("./testdata/testplugin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pluginPath, pluginDir = path, filepath.Dir(path)
	code := m.Run()
	sdktest.RemoveBuilt()
	os.Exit(code)
}

func hostHelper(path string) {
	p, err := plugin.Launch(context.Background(), plugin.PluginConfig{Name: "helper", Plugin: path, Logger: hclog.NewNullLogger()})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(p.Pid())
	time.Sleep(time.Minute)
	os.Exit(1)
}

// launch starts the test plugin with options and env and closes it when
// the test ends.
func launch(t *testing.T, options map[string]string, env ...string) *plugin.Plugin {
	t.Helper()
	p, err := plugin.Launch(t.Context(), plugin.PluginConfig{
		Name: "t", Plugin: pluginPath, Options: options, Env: env, Logger: testLogger(t, hclog.Warn),
	})
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// testLogger logs to the test at level and stops when the test ends, so
// late lines from plugin goroutines do not panic the test framework.
func testLogger(t *testing.T, level hclog.Level) hclog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return hclog.New(&hclog.LoggerOptions{Level: level, Output: w})
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

func (w *testWriter) stop() { w.mu.Lock(); w.done = true; w.mu.Unlock() }

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// waitGone fails the test unless pid is gone within d.
func waitGone(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running after %s", pid, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// markedPids reads the pids the test plugin appended to its TESTPLUGIN_MARK file.
func markedPids(t *testing.T, path string) []int {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pids []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pid, err := strconv.Atoi(sc.Text())
		if err != nil {
			t.Fatalf("marker %q: %v", sc.Text(), err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// message returns a message with the given subject.
func testMsg(subject string) *sdk.Message {
	return &sdk.Message{
		CampaignID: 7, RecipientID: 42, MessageID: "<7.42@example.com>",
		From: "Shop <news@example.com>", To: "ann@example.org", Subject: subject, Text: "hello",
	}
}
