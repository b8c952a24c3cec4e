// Command faultplugin is a campaignd sender plugin that misbehaves on
// purpose, for the end-to-end fault tests (cmd/campaignd/fault_test.go).
// Like any third-party plugin it imports only the sdk. Its behaviour comes
// from its options ([senders.NAME.options]):
//
//	state          directory for its bookkeeping (required): the pids of
//	               every process started, the fault counter, and the log
//	               of delivered messages ("delivered": one "To<TAB>Message-ID"
//	               line per accepted send)
//	mode           what a faulty send does: ok (nothing: every send is
//	               accepted), panic (panics in Send: the process crashes),
//	               exit (os.Exit mid-send), hang (never answers, ignoring its
//	               context), garbage (writes junk on its real stdout and
//	               stderr after the handshake, then fails with an error class
//	               no host knows), badreply (answers a receipt gRPC cannot
//	               encode), fill (fills the file system holding the "fill"
//	               file, then accepts the message)
//	fail_times     only the first N sends (counted across every process
//	               sharing the state directory) are faulty; 0 means all
//	delay          how long an accepted send takes (a Go duration)
//	wait_inflight  a faulty send first waits (at most 5 s) until this many
//	               sends are in flight in this process, so a crash takes
//	               them all down
//	fill           mode fill: the file to grow until its file system is full
//	restart_delay  the second process started with this state directory (the
//	               first restart) takes this long in Configure, as a plugin
//	               slow to start on a loaded machine would
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
)

type sender struct {
	mu           sync.Mutex
	state        string
	mode         string
	failTimes    int
	delay        time.Duration
	waitInflight int64
	fill         string

	inflight atomic.Int64
	fillOnce sync.Once
}

func (s *sender) Configure(_ context.Context, opts map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = opts["state"]
	if s.state == "" {
		return sdk.ConfigError("faultplugin: option state is required")
	}
	s.mode = opts["mode"]
	switch s.mode {
	case "":
		s.mode = "ok"
	case "ok", "panic", "exit", "hang", "garbage", "badreply", "fill":
	default:
		return sdk.ConfigError("faultplugin: unknown mode %q", s.mode)
	}
	var err error
	if v := opts["fail_times"]; v != "" {
		if s.failTimes, err = strconv.Atoi(v); err != nil {
			return sdk.ConfigError("faultplugin: fail_times: %v", err)
		}
	}
	if v := opts["delay"]; v != "" {
		if s.delay, err = time.ParseDuration(v); err != nil {
			return sdk.ConfigError("faultplugin: delay: %v", err)
		}
	}
	if v := opts["wait_inflight"]; v != "" {
		if s.waitInflight, err = strconv.ParseInt(v, 10, 64); err != nil {
			return sdk.ConfigError("faultplugin: wait_inflight: %v", err)
		}
	}
	s.fill = opts["fill"]
	if s.mode == "fill" && s.fill == "" {
		return sdk.ConfigError("faultplugin: mode fill needs option fill")
	}
	if err := appendLine(filepath.Join(s.state, "pids"), strconv.Itoa(os.Getpid())); err != nil {
		return err
	}
	if v := opts["restart_delay"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return sdk.ConfigError("faultplugin: restart_delay: %v", err)
		}
		if start := s.claim("start", 2); start == 1 {
			time.Sleep(d) // ignores ctx, as a slow start would
		}
	}
	return nil
}

// claim takes the first free numbered slot name.0 ... name.(n-1) in the
// state directory by creating its file exclusively, which is atomic across
// processes, and returns its number; -1 when all are taken.
func (s *sender) claim(name string, n int) int {
	for k := range n {
		f, err := os.OpenFile(filepath.Join(s.state, name+"."+strconv.Itoa(k)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return k
		}
	}
	return -1
}

func (s *sender) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "fault", Version: "1.0.0"}, nil
}

// faulty reports whether this send is one of the first fail_times ones
// (across every process sharing the state directory).
func (s *sender) faulty() bool {
	if s.mode == "ok" {
		return false
	}
	return s.failTimes <= 0 || s.claim("fault", s.failTimes) >= 0
}

func (s *sender) Send(ctx context.Context, m *sdk.Message) (*sdk.Receipt, error) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	s.mu.Lock()
	mode, delay, wait := s.mode, s.delay, s.waitInflight
	s.mu.Unlock()

	if s.faulty() {
		if wait > 0 {
			deadline := time.Now().Add(5 * time.Second)
			for s.inflight.Load() < wait && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
		}
		switch mode {
		case "panic":
			panic("faultplugin: panic in Send to " + m.To)
		case "exit":
			fmt.Fprintln(os.Stderr, "faultplugin: exiting mid-send")
			os.Exit(7)
		case "hang":
			time.Sleep(time.Hour) // ignores ctx on purpose
		case "garbage":
			junk := "\x00\xff\xfe garbage \x1b[31m not a log line\n" +
				"1|1|tcp|127.0.0.1:1|grpc|\n" + // a second handshake line
				`{"@level":"nonsense","@message":` + "\n" +
				strings.Repeat("\xc3\x28", 2000) + "\n"
			_, _ = syscall.Write(1, []byte(junk))
			_, _ = syscall.Write(2, []byte(junk))
			return nil, &sdk.Error{Class: "no-such-class", SMTPCode: 299, Message: "faultplugin: garbage answer"}
		case "badreply":
			// A protobuf string must be UTF-8: this response cannot be
			// encoded, so the host gets a transport error, not an answer.
			return &sdk.Receipt{ProviderID: "bad\xff\xfe", Response: "\xc3\x28"}, nil
		case "fill":
			s.fillOnce.Do(func() { fillDisk(s.fill) })
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, sdk.Transient("faultplugin: cancelled: %v", ctx.Err())
		}
	}
	if err := appendLine(filepath.Join(s.state, "delivered"), m.To+"\t"+m.MessageID); err != nil {
		return nil, sdk.Transient("faultplugin: record delivery: %v", err)
	}
	return &sdk.Receipt{ProviderID: "fault-" + m.MessageID}, nil
}

// fillDisk grows path until its file system has no space left.
func fillDisk(path string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	// The last pages: what a 64 KiB write no longer fitted.
	for {
		if _, err := f.Write(buf[:512]); err != nil {
			break
		}
	}
}

// appendLine appends one line with a single write, so that concurrent
// writers (in this and other processes) never interleave.
func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte(line + "\n"))
	return errors.Join(werr, f.Close())
}

func main() { plugin.Serve(&sender{}) }
