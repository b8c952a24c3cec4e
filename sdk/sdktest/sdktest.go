// Package sdktest is a conformance kit for campaignd sender plugins. It
// drives a built plugin binary through the real go-plugin protocol, exactly
// as campaignd does (plugin.Launch), and checks what the host relies on:
//
//   - the plugin speaks the current protocol (plugin.ProtocolVersionStream:
//     its sends travel over one stream) unless UnaryOnly is set;
//   - Info answers with a name;
//   - a send succeeds with a Receipt;
//   - every failure the author's fake backend can produce arrives as the
//     declared *sdk.Error, class and codes intact;
//   - a send with a cancelled or expired context fails promptly as
//     ClassTransient, and the plugin keeps working afterwards;
//   - 20 concurrent sends all succeed; with a Stall scenario, sends
//     made while a stalled one is in flight succeed before it ends (the
//     stream answers each as it finishes, not in order), and the stalled
//     send, past its deadline, does not cost the process;
//   - a 10 MiB HTML body goes through;
//   - bad options are rejected at Configure as ClassConfig;
//   - the optional sdk.Checker call: with the working options Check
//     succeeds, with a cancelled context it fails promptly, and with each
//     of BadCheckOptions it fails (a plugin without Check passes with a
//     note unless RequireCheck is set);
//   - Close stops the process.
//
// A plugin author's test looks like this:
//
//	func TestConformance(t *testing.T) {
//		backend := startFakeBackend(t) // the author's own
//		sdktest.Run(t, sdktest.Config{
//			PluginPath: sdktest.Build(t, "."),
//			Options:    map[string]string{"url": backend.URL},
//			Scenarios: []sdktest.Scenario{{
//				Name: "unknown mailbox",
//				Edit: func(m *sdk.Message) { m.To = "nobody@bounce.test" },
//				Want: sdk.Bounced("no such user").WithSMTP(550, "5.1.1"),
//			}},
//			BadOptions: []map[string]string{{}},
//		})
//	}
//
// Build compiles the plugin for one test. To build it once for all the
// tests of a package, call BuildPlugin from TestMain and RemoveBuilt after
// the tests have run.
package sdktest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
)

// Config describes the plugin under test and how to make its backend
// produce each outcome.
type Config struct {
	// PluginPath is the plugin executable, e.g. from Build. Required.
	PluginPath string
	// Options configure the plugin so that it accepts messages; every
	// check runs with them unless a scenario adds its own.
	Options map[string]string
	// Env is added to the plugin's environment (see plugin.PluginConfig.Env).
	Env []string
	// Edit, when set, adjusts every message the kit sends, before a
	// scenario's own Edit (e.g. to use a From domain the backend accepts).
	Edit func(*sdk.Message)
	// Scenarios are the outcomes the author's backend can be told to
	// produce; each sends one message and checks the result.
	Scenarios []Scenario
	// Stall, when set, is a scenario in which the backend never answers.
	// The kit sends with a 500 ms deadline and requires a ClassTransient
	// error within 2 s, then a normal send that succeeds. Its Want is
	// ignored.
	Stall *Scenario
	// BadOptions are option sets (merged over Options) that Configure must
	// reject with ClassConfig, e.g. {"url": ""} for a required option.
	BadOptions []map[string]string
	// UnaryOnly accepts a plugin that serves only protocol version 1
	// (plugin.ProtocolVersionUnary: one unary Send call per message), for
	// example one written in another language without SendStream. The
	// other checks then run over unary calls. Without it such a plugin
	// fails the Protocol check.
	UnaryOnly bool
	// RequireCheck fails a plugin that does not implement sdk.Checker.
	// Without it such a plugin passes the Check checks with a log note.
	RequireCheck bool
	// BadCheckOptions are option sets (merged over Options) that
	// Configure accepts but Check must refuse, e.g. {"password": "wrong"}
	// or a port nothing listens on. Each runs in its own plugin process;
	// Check must fail within SendTimeout with an error that is not
	// sdk.ErrCheckUnsupported.
	BadCheckOptions []map[string]string
	// Verify, when set, is called after every successful send with the
	// message sent and its Receipt, so the author can check what the
	// backend received (a file written, a request recorded).
	Verify func(t *testing.T, msg *sdk.Message, r *sdk.Receipt)
	// SendTimeout bounds each send the kit expects to succeed; 0 means
	// 30 s.
	SendTimeout time.Duration
}

// Scenario makes the backend produce one outcome.
type Scenario struct {
	// Name names the subtest.
	Name string
	// Options, when non-nil, are merged over Config.Options and the
	// scenario runs in its own plugin process.
	Options map[string]string
	// Edit adjusts the message, e.g. to a recipient the backend bounces.
	Edit func(*sdk.Message)
	// Want is the expected failure; nil expects success. Class, SMTPCode,
	// EnhancedCode, HTTPStatus and RetryAfter must match exactly (zero
	// means "must be zero"); a non-empty Message must be contained in the
	// error's Message.
	Want *sdk.Error
}

// LargeBodyBytes is the size of the HTML body of the large-message check.
const LargeBodyBytes = 10 << 20

// ConcurrentSends is how many sends the concurrency check runs at once.
const ConcurrentSends = 20

// NewMessage returns a valid message for recipient i: distinct
// RecipientID, Message-ID and To for distinct i, with a text and an HTML
// body, a Date and a List-Unsubscribe header.
func NewMessage(i int) *sdk.Message {
	return &sdk.Message{
		CampaignID:  1,
		RecipientID: int64(i),
		MessageID:   fmt.Sprintf("<1.%d@sdktest.example.com>", i),
		From:        "sdktest <sender@example.com>",
		To:          fmt.Sprintf("rcpt%d@example.com", i),
		ReplyTo:     "help@example.com",
		Subject:     fmt.Sprintf("sdktest message %d", i),
		Text:        "Hello from the sdktest conformance kit.\n",
		HTML:        "<p>Hello from the <b>sdktest</b> conformance kit.</p>\n",
		Date:        time.Now().Truncate(time.Second),
		Headers:     []sdk.Header{{Name: "List-Unsubscribe", Value: "<https://example.com/u/1>"}},
	}
}

// Run runs the conformance checks as subtests of t. It fails t when the
// plugin cannot be launched with cfg.Options or violates a check.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.PluginPath == "" {
		t.Fatal("sdktest: Config.PluginPath is empty")
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = 30 * time.Second
	}
	k := &kit{cfg: cfg}
	p := k.launch(t, nil)

	t.Run("Protocol", func(t *testing.T) {
		switch got := p.Protocol(); {
		case got == plugin.ProtocolVersionStream:
		case got == plugin.ProtocolVersionUnary && cfg.UnaryOnly:
			t.Logf("the plugin serves protocol %d only (UnaryOnly is set)", got)
		default:
			t.Errorf("the plugin negotiated protocol %d, want %d (a Go plugin: rebuild it against this SDK)",
				got, plugin.ProtocolVersionStream)
		}
	})
	t.Run("Info", func(t *testing.T) {
		info, err := p.Info(t.Context())
		if err != nil {
			t.Fatalf("Info: %v", err)
		}
		if info.Name == "" || info.MaxPerSecond < 0 || info.MaxConcurrency < 0 {
			t.Errorf("Info = %+v: want a name and no negative limits", info)
		}
	})
	t.Run("Check", func(t *testing.T) { k.check(t, p) })
	t.Run("Send", func(t *testing.T) { k.sendOK(t, p, k.message(1, nil)) })
	for _, sc := range cfg.Scenarios {
		t.Run("Scenario/"+sc.Name, func(t *testing.T) { k.scenario(t, p, sc) })
	}
	t.Run("Cancelled", func(t *testing.T) { k.cancelled(t, p) })
	if cfg.Stall != nil {
		t.Run("Stall", func(t *testing.T) { k.stall(t, p) })
	}
	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range ConcurrentSends {
			wg.Go(func() { k.sendOK(t, p, k.message(100+i, nil)) })
		}
		wg.Wait()
	})
	t.Run("LargeBody", func(t *testing.T) {
		msg := k.message(2, nil)
		msg.HTML = "<html><body><p>" + strings.Repeat("0123456789abcdef", LargeBodyBytes/16) + "</p></body></html>"
		k.sendOK(t, p, msg)
	})
	if len(cfg.BadOptions) > 0 {
		t.Run("BadOptions", func(t *testing.T) {
			for _, bad := range cfg.BadOptions {
				q, err := plugin.Launch(t.Context(), k.pluginConfig(t, bad))
				if err == nil {
					q.Close()
					t.Errorf("options %v were accepted, want a ClassConfig error", bad)
					continue
				}
				if e := sdk.AsError(err); e.Class != sdk.ClassConfig {
					t.Errorf("options %v: %v (class %s), want ClassConfig", bad, err, e.Class)
				}
			}
		})
	}
	t.Run("Close", func(t *testing.T) {
		if err := p.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if !p.Exited() {
			t.Error("plugin process still running after Close")
		}
	})
}

type kit struct{ cfg Config }

// message returns NewMessage(i) with the config's and edit's changes.
func (k *kit) message(i int, edit func(*sdk.Message)) *sdk.Message {
	m := NewMessage(i)
	if k.cfg.Edit != nil {
		k.cfg.Edit(m)
	}
	if edit != nil {
		edit(m)
	}
	return m
}

func (k *kit) pluginConfig(t *testing.T, extra map[string]string) plugin.PluginConfig {
	opts := maps.Clone(k.cfg.Options)
	if opts == nil {
		opts = map[string]string{}
	}
	maps.Copy(opts, extra)
	return plugin.PluginConfig{
		Name:    "sdktest",
		Plugin:  k.cfg.PluginPath,
		Options: opts,
		Env:     k.cfg.Env,
		Logger:  hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: newTestWriter(t)}),
	}
}

// launch starts the plugin with Options merged with extra and closes it
// when t ends.
func (k *kit) launch(t *testing.T, extra map[string]string) *plugin.Plugin {
	t.Helper()
	p, err := plugin.Launch(t.Context(), k.pluginConfig(t, extra))
	if err != nil {
		t.Fatalf("sdktest: launch %s: %v", k.cfg.PluginPath, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// sendOK sends msg and requires success. Safe to call from goroutines.
func (k *kit) sendOK(t *testing.T, p *plugin.Plugin, msg *sdk.Message) {
	ctx, cancel := context.WithTimeout(t.Context(), k.cfg.SendTimeout)
	defer cancel()
	r, err := p.Send(ctx, msg)
	if err != nil {
		t.Errorf("send to %s: %v", msg.To, err)
		return
	}
	if r == nil {
		t.Errorf("send to %s: nil receipt", msg.To)
		return
	}
	if k.cfg.Verify != nil {
		k.cfg.Verify(t, msg, r)
	}
}

func (k *kit) scenario(t *testing.T, p *plugin.Plugin, sc Scenario) {
	if sc.Options != nil {
		p = k.launch(t, sc.Options)
	}
	msg := k.message(3, sc.Edit)
	if sc.Want == nil {
		k.sendOK(t, p, msg)
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), k.cfg.SendTimeout)
	defer cancel()
	_, err := p.Send(ctx, msg)
	var got *sdk.Error
	if !errors.As(err, &got) {
		t.Fatalf("send: got %v, want %v", err, sc.Want)
	}
	want := *sc.Want
	if got.Class != want.Class || got.SMTPCode != want.SMTPCode || got.EnhancedCode != want.EnhancedCode ||
		got.HTTPStatus != want.HTTPStatus || got.RetryAfter != want.RetryAfter ||
		!strings.Contains(got.Message, want.Message) {
		t.Errorf("send: got %#v\nwant %#v (Message as a substring)", *got, want)
	}
}

// check runs the optional Check call: it must succeed with the working
// options, fail promptly with a cancelled context, and fail with each of
// BadCheckOptions.
func (k *kit) check(t *testing.T, p *plugin.Plugin) {
	ctx, cancel := context.WithTimeout(t.Context(), k.cfg.SendTimeout)
	defer cancel()
	err := p.Check(ctx)
	if errors.Is(err, sdk.ErrCheckUnsupported) {
		if k.cfg.RequireCheck {
			t.Fatalf("Check: %v; RequireCheck is set", err)
		}
		t.Logf("the plugin does not implement sdk.Checker (optional): %v", err)
		return
	}
	if err != nil {
		t.Fatalf("Check with the working options: %v", err)
	}

	dead, cancelDead := context.WithCancel(t.Context())
	cancelDead()
	start := time.Now()
	if err := p.Check(dead); err == nil {
		t.Error("Check with a cancelled context succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Check with a cancelled context took %s", d)
	}

	for _, bad := range k.cfg.BadCheckOptions {
		q := k.launch(t, bad)
		ctx, cancel := context.WithTimeout(t.Context(), k.cfg.SendTimeout)
		err := q.Check(ctx)
		cancel()
		switch {
		case err == nil:
			t.Errorf("Check with options %v succeeded, want an error", bad)
		case errors.Is(err, sdk.ErrCheckUnsupported):
			t.Errorf("Check with options %v: %v, want a failure, not unsupported", bad, err)
		}
		q.Close()
	}
}

// cancelled checks that dead contexts fail promptly and harmlessly.
func (k *kit) cancelled(t *testing.T, p *plugin.Plugin) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	if _, err := p.Send(ctx, k.message(4, nil)); sdk.AsError(err).Class != sdk.ClassTransient {
		t.Errorf("send with a cancelled context: %v, want a ClassTransient error", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("send with a cancelled context took %s", d)
	}

	ctx, cancel = context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := p.Send(ctx, k.message(5, nil)); err != nil && sdk.AsError(err).Class != sdk.ClassTransient {
		t.Errorf("send with a 1ms deadline: %v, want success or a ClassTransient error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("send with a 1ms deadline took %s", d)
	}
	k.sendOK(t, p, k.message(6, nil)) // still usable
}

// stall checks that a backend that never answers costs one deadline.
func (k *kit) stall(t *testing.T, p *plugin.Plugin) {
	sp := p
	if k.cfg.Stall.Options != nil {
		sp = k.launch(t, k.cfg.Stall.Options)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	stalled := make(chan error, 1)
	go func() {
		_, err := sp.Send(ctx, k.message(7, k.cfg.Stall.Edit))
		stalled <- err
	}()
	if sp == p {
		// Beside the stalled send, on the same process: answered first.
		time.Sleep(50 * time.Millisecond)
		k.sendOK(t, p, k.message(9, nil))
		select {
		case err := <-stalled:
			stalled <- err
			t.Errorf("a send made beside a stalled one was answered only after it ended (%v): "+
				"answers must not wait for each other", err)
		default:
		}
	}
	err := <-stalled
	if err == nil || sdk.AsError(err).Class != sdk.ClassTransient {
		t.Errorf("stalled send: %v, want a ClassTransient error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stalled send with a 500ms deadline returned after %s", d)
	}
	if sp.Exited() {
		t.Error("the plugin process exited after a stalled send")
	}
	k.sendOK(t, p, k.message(8, nil))
}

// testWriter logs to a test until the test ends; later writes (from
// plugin goroutines finishing) are dropped rather than panicking.
type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func newTestWriter(t *testing.T) *testWriter {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return w
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

// CheckError runs c's Check within 10 s and returns its failure as the
// *sdk.Error every Check must return (nil when it succeeds); any other
// kind of error fails the test. For a plugin's own unit tests of Check.
func CheckError(t testing.TB, c sdk.Checker) *sdk.Error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.Check(ctx)
	if err == nil {
		return nil
	}
	var e *sdk.Error
	if !errors.As(err, &e) {
		t.Fatalf("Check returned %T %v, want *sdk.Error", err, err)
	}
	return e
}
