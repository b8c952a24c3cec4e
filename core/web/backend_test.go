package web_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/web"
)

// *core.Engine is what the daemon hands web.New.
var _ web.Backend = (*core.Engine)(nil)

// The fake stands in for it here.
var _ web.Backend = (*fakeBackend)(nil)

// backendCall is one recorded Backend call.
type backendCall struct {
	Method string
	// Args are the call's arguments after the context: the trigger, the
	// campaign id, the []core.DeliveryEvent, or the Unsubscriber and the
	// token.
	Args []any
	// Actor is core.Actor of the call's context.
	Actor string
	// Detached reports whether the context can never be cancelled (a
	// caller hanging up must not stop the work).
	Detached bool
}

// fakeBackend is a web.Backend that records every call and answers with
// what the test set. What the engine does with the calls is tested in
// package core (event_test.go, engine_test.go).
type fakeBackend struct {
	mu    sync.Mutex
	calls []backendCall

	// err, when set, is what every method returns.
	err error
	// panics, when set, is what every method panics with.
	panics any
	// tick and execute are what Tick and Execute answer.
	tick    core.TickResult
	execute core.ExecuteResult
	// events, when set, is what ApplyEvents answers; otherwise every
	// event counts as applied.
	events *core.EventsResult
	// recipients are the recipients Unsubscribe knows, by id.
	recipients map[int64]*core.Recipient
}

func (f *fakeBackend) record(ctx context.Context, method string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, backendCall{Method: method, Args: args, Actor: core.Actor(ctx), Detached: ctx.Done() == nil})
	if f.panics != nil {
		panic(f.panics)
	}
	return f.err
}

// set changes the fake's answers under its lock.
func (f *fakeBackend) set(fn func(f *fakeBackend)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// take returns the recorded calls and forgets them.
func (f *fakeBackend) take() []backendCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// expectCall checks that exactly one call, method(args...), was made
// since the last check, and returns it.
func (f *fakeBackend) expectCall(t *testing.T, method string, args ...any) backendCall {
	t.Helper()
	calls := f.take()
	if len(calls) != 1 {
		t.Fatalf("want one call to %s, got %d: %s", method, len(calls), describeCalls(calls))
	}
	c := calls[0]
	if c.Method != method || !reflect.DeepEqual(c.Args, args) {
		t.Fatalf("call:\n%s\nwant:\n%s", describeCalls(calls), describeCalls([]backendCall{{Method: method, Args: args}}))
	}
	return c
}

// expectNoCalls checks that nothing reached the backend.
func (f *fakeBackend) expectNoCalls(t *testing.T) {
	t.Helper()
	if calls := f.take(); len(calls) != 0 {
		t.Fatalf("the backend was called: %s", describeCalls(calls))
	}
}

// describeCalls prints calls one argument (and one event) per line.
func describeCalls(calls []backendCall) string {
	var b strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&b, "  %s (actor %q, detached %v)\n", c.Method, c.Actor, c.Detached)
		for _, a := range c.Args {
			if evs, ok := a.([]core.DeliveryEvent); ok {
				for i, ev := range evs {
					fmt.Fprintf(&b, "    event %d: %+v\n", i, ev)
				}
				continue
			}
			fmt.Fprintf(&b, "    %#v\n", a)
		}
	}
	return b.String()
}

func (f *fakeBackend) Tick(ctx context.Context, trigger core.TickTrigger, campaigns ...int64) (*core.TickResult, error) {
	if err := f.record(ctx, "Tick", trigger); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := f.tick
	return &res, nil
}

func (f *fakeBackend) Execute(ctx context.Context, id int64) (*core.ExecuteResult, error) {
	if err := f.record(ctx, "Execute", id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := f.execute
	return &res, nil
}

func (f *fakeBackend) ApplyEvents(ctx context.Context, events []core.DeliveryEvent) (*core.EventsResult, error) {
	if err := f.record(ctx, "ApplyEvents", append([]core.DeliveryEvent(nil), events...)); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.events != nil {
		res := *f.events
		return &res, nil
	}
	return &core.EventsResult{Applied: len(events)}, nil
}

// Unsubscribe answers as core.Engine.Unsubscribe does: EINVALID for a
// token that does not parse or whose campaign is not its recipient's,
// ENOTFOUND for a recipient it does not know.
func (f *fakeBackend) Unsubscribe(ctx context.Context, u *core.Unsubscriber, token string) (*core.Recipient, error) {
	if err := f.record(ctx, "Unsubscribe", u, token); err != nil {
		return nil, err
	}
	cid, rid, err := u.Parse(token)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.recipients[rid]
	if !ok {
		return nil, core.Errorf(core.ENOTFOUND, "recipient %d not found", rid)
	}
	if r.CampaignID != cid {
		return nil, core.Errorf(core.EINVALID, "unsubscribe token does not match its recipient")
	}
	cp := *r
	return &cp, nil
}
