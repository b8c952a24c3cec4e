package plugin_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
)

// TestProtocolNegotiated: a plugin built with this SDK speaks the stream
// (protocol 2); one built against the SDK before it (protocol 1, unary
// Send only, no SendStream in its service) is offered and gets version 1,
// and its sends, errors and deadlines work as before.
func TestProtocolNegotiated(t *testing.T) {
	if got := launch(t, nil).Protocol(); got != plugin.ProtocolVersionStream {
		t.Errorf("current plugin: protocol %d, want %d", got, plugin.ProtocolVersionStream)
	}
	old := launch(t, nil, "TESTPLUGIN_OLD_SDK=1")
	if got := old.Protocol(); got != plugin.ProtocolVersionUnary {
		t.Fatalf("protocol-1 plugin: protocol %d, want %d", got, plugin.ProtocolVersionUnary)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if r, err := old.Send(t.Context(), testMsg("ok")); err != nil || r.ProviderID != "old" {
				t.Errorf("send to the protocol-1 plugin: %+v, %v", r, err)
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := old.Send(ctx, testMsg("slow")); sdk.AsError(err).Class != sdk.ClassTransient ||
		!strings.Contains(err.Error(), "timed out") {
		t.Errorf("protocol-1 send past its deadline: %v, want a transient timeout", err)
	}
}

// TestStreamAnswersOutOfOrder: sends in flight on one stream are answered
// as each finishes: a quick send is not held behind a slow one.
func TestStreamAnswersOutOfOrder(t *testing.T) {
	p := launch(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	slowDone := make(chan time.Time, 1)
	go func() {
		_, _ = p.Send(ctx, testMsg("slow"))
		slowDone <- time.Now()
	}()
	time.Sleep(50 * time.Millisecond) // the slow send is written first
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := p.Send(t.Context(), testMsg("ok")); err != nil {
				t.Errorf("quick send beside a slow one: %v", err)
			}
		})
	}
	wg.Wait()
	select {
	case <-slowDone:
		t.Error("the slow send finished before the quick ones: answers are serialised")
	default:
	}
	cancel()
	<-slowDone
}

// TestStreamDeadlineKeepsPlugin: a send whose deadline expires in a plugin
// that honours it gets a transient error and costs neither the stream nor
// the process; a cancelled send returns at once, and the plugin goes on.
func TestStreamDeadlineKeepsPlugin(t *testing.T) {
	pl, _ := testPool(t, "a")
	before := sendPid(t, pl, "a")
	s, _ := pl.Sender(t.Context(), "a")

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := s.Send(ctx, testMsg("slow"))
	if e := sdk.AsError(err); e.Class != sdk.ClassTransient {
		t.Errorf("send past its deadline: %v, want transient", err)
	}

	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = s.Send(ctx, testMsg("slow"))
	if e := sdk.AsError(err); e.Class != sdk.ClassTransient || !strings.Contains(e.Message, "cancelled") {
		t.Errorf("cancelled send: %v, want a transient cancellation", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancelled send returned after %s", d)
	}
	if after := sendPid(t, pl, "a"); after != before {
		t.Errorf("plugin %d replaced by %d after a deadline it honoured", before, after)
	}
	if n := pl.Restarts()["a"]; n != 0 {
		t.Errorf("%d restarts, want none", n)
	}
}

// TestStreamCrashFailsInFlight: when the plugin dies, every send in flight
// on its stream fails as transient "crashed", and the pool's next send
// starts a new process.
func TestStreamCrashFailsInFlight(t *testing.T) {
	pl, _ := testPool(t, "a")
	before := sendPid(t, pl, "a")
	s, _ := pl.Sender(t.Context(), "a")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	const n = 5
	errs := make(chan error, n)
	for range n {
		go func() { _, err := s.Send(ctx, testMsg("slow")); errs <- err }()
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := s.Send(ctx, testMsg("crash")); !strings.Contains(sdk.AsError(err).Message, "crashed") {
		t.Errorf("crashing send: %v", err)
	}
	for range n {
		select {
		case err := <-errs:
			if e := sdk.AsError(err); e.Class != sdk.ClassTransient || !strings.Contains(e.Message, "plugin a crashed") {
				t.Errorf("send in flight at the crash: %v, want transient 'plugin a crashed'", err)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("a send in flight at the crash did not return")
		}
	}
	waitGone(t, before, 2*time.Second)
	if after := sendPid(t, pl, "a"); after == before {
		t.Error("crashed plugin was not replaced")
	}
}
