package core_test

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
)

// Fixed jitters: the backoff's random half at its least and at its most.
var (
	noJitter   core.Jitter = func(time.Duration) time.Duration { return 0 }
	fullJitter core.Jitter = func(n time.Duration) time.Duration { return n }
)

func TestDecideOutcome(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	lim := core.DefaultLimits() // max 5 attempts, retry 1m..1h, throttle 1m, resend
	hold := lim
	hold.InDoubt = core.InDoubtHold
	plenty := time.Minute // of the tick's time left: not cut off
	notAttempted := fmt.Errorf("launch: %w", errors.Join(sdk.Transient("plugin restarting"), sdk.ErrNotAttempted))

	type want struct {
		status   core.RecipientStatus
		class    core.ErrorClass
		code     int
		enhanced string
		errText  string
		provider string
		next     time.Duration // after now; -1: zero time
		refund   bool
		release  bool
		suppress bool
	}
	cases := []struct {
		name     string
		res      core.SendResult
		attempts int
		lim      core.Limits
		jitter   core.Jitter
		want     want
	}{
		{name: "accepted with the provider's id",
			res:  core.SendResult{Receipt: &sdk.Receipt{ProviderID: "q-1"}, MessageID: "<c1.r7@x>", Left: plenty},
			want: want{status: core.RecipientSent, provider: "q-1", next: -1}},
		{name: "accepted without an id: the Message-ID",
			res:  core.SendResult{Receipt: &sdk.Receipt{}, MessageID: "<c1.r7@x>", Left: plenty},
			want: want{status: core.RecipientSent, provider: "<c1.r7@x>", next: -1}},
		{name: "accepted, no receipt",
			res:  core.SendResult{MessageID: "<c1.r7@x>"}, // even past the deadline: it was sent
			want: want{status: core.RecipientSent, provider: "<c1.r7@x>", next: -1}},
		{name: "transient, first attempt: backoff at its least",
			res: core.SendResult{Err: sdk.Transient("try later").WithSMTP(451, "4.3.0"), Left: plenty}, attempts: 1,
			want: want{status: core.RecipientQueued, class: core.ClassTransient, code: 451, enhanced: "4.3.0", errText: "try later", next: 30 * time.Second}},
		{name: "transient, third attempt: backoff at its most",
			res: core.SendResult{Err: sdk.Transient("try later"), Left: plenty}, attempts: 3, jitter: fullJitter,
			want: want{status: core.RecipientQueued, class: core.ClassTransient, errText: "try later", next: 4 * time.Minute}},
		{name: "transient, backoff capped by retry_max",
			res: core.SendResult{Err: sdk.Transient("x"), Left: plenty}, attempts: 4, jitter: fullJitter,
			lim:  core.Limits{MaxAttempts: 10, RetryBase: time.Minute, RetryMax: 5 * time.Minute},
			want: want{status: core.RecipientQueued, class: core.ClassTransient, errText: "x", next: 5 * time.Minute}},
		{name: "transient, attempts exhausted",
			res: core.SendResult{Err: sdk.Transient("try later").WithSMTP(421, ""), Left: plenty}, attempts: 5,
			want: want{status: core.RecipientFailed, class: core.ClassTransient, code: 421, errText: "try later (gave up after 5 attempts)", next: -1}},
		{name: "plain error is transient",
			res: core.SendResult{Err: errors.New("connection refused"), Left: plenty}, attempts: 1,
			want: want{status: core.RecipientQueued, class: core.ClassTransient, errText: "connection refused", next: 30 * time.Second}},
		{name: "throttled at the provider's retry-after, attempt refunded",
			res: core.SendResult{Err: sdk.Throttled(90*time.Second, "slow down").WithHTTP(429), Left: plenty}, attempts: 5,
			want: want{status: core.RecipientQueued, class: core.ClassThrottled, code: 429, errText: "slow down", next: 90 * time.Second, refund: true}},
		{name: "throttled without retry-after: throttle_delay",
			res:  core.SendResult{Err: sdk.Throttled(0, "slow down").WithSMTP(421, "4.7.0"), Left: plenty},
			want: want{status: core.RecipientQueued, class: core.ClassThrottled, code: 421, enhanced: "4.7.0", errText: "slow down", next: time.Minute, refund: true}},
		{name: "throttled past the deadline stays throttled",
			res:  core.SendResult{Err: sdk.Throttled(time.Second, "slow down")},
			want: want{status: core.RecipientQueued, class: core.ClassThrottled, errText: "slow down", next: time.Second, refund: true}},
		{name: "config: requeued after retry_base, attempt refunded",
			res:  core.SendResult{Err: sdk.ConfigError("bad credentials").WithHTTP(401), Left: plenty},
			want: want{status: core.RecipientQueued, class: core.ClassConfig, code: 401, errText: "bad credentials", next: time.Minute, refund: true}},
		{name: "permanent",
			res:  core.SendResult{Err: sdk.Permanent("policy").WithSMTP(554, "5.7.1"), Left: plenty},
			want: want{status: core.RecipientFailed, class: core.ClassPermanent, code: 554, enhanced: "5.7.1", errText: "policy", next: -1}},
		{name: "bounced (5.1.x): suppressed",
			res:  core.SendResult{Err: sdk.Bounced("no such user").WithSMTP(550, "5.1.1"), Left: plenty},
			want: want{status: core.RecipientBounced, class: core.ClassBounced, code: 550, enhanced: "5.1.1", errText: "no such user", next: -1, suppress: true}},
		{name: "cut off mid-send: in doubt, resent with backoff",
			res: core.SendResult{Err: sdk.Transient("timed out")}, attempts: 1,
			want: want{status: core.RecipientQueued, class: core.ClassInDoubt, errText: "tick timed out mid-send, outcome unknown: timed out", next: 30 * time.Second}},
		{name: "failing within the slack of the deadline counts as cut off",
			res: core.SendResult{Err: sdk.Transient("timed out"), Left: core.DeadlineSlack - time.Millisecond}, attempts: 1,
			want: want{status: core.RecipientQueued, class: core.ClassInDoubt, errText: "tick timed out mid-send, outcome unknown: timed out", next: 30 * time.Second}},
		{name: "failing just outside the slack is an ordinary transient failure",
			res: core.SendResult{Err: sdk.Transient("timed out"), Left: core.DeadlineSlack}, attempts: 1,
			want: want{status: core.RecipientQueued, class: core.ClassTransient, errText: "timed out", next: 30 * time.Second}},
		{name: "cut off mid-send, attempts exhausted: held",
			res: core.SendResult{Err: sdk.Transient("timed out")}, attempts: 5,
			want: want{status: core.RecipientFailed, class: core.ClassInDoubt, errText: "tick timed out mid-send, outcome unknown: timed out", next: -1}},
		{name: "cut off mid-send under hold: held",
			res: core.SendResult{Err: sdk.Transient("timed out")}, attempts: 1, lim: hold,
			want: want{status: core.RecipientFailed, class: core.ClassInDoubt, errText: "tick timed out mid-send, outcome unknown: timed out", next: -1}},
		{name: "cut off before reaching a plugin: handed back unsent",
			res: core.SendResult{Err: notAttempted}, attempts: 3,
			want: want{status: core.RecipientQueued, next: 0, refund: true, release: true}},
		{name: "not attempted but with time left: an ordinary transient failure",
			res: core.SendResult{Err: notAttempted, Left: plenty}, attempts: 1,
			want: want{status: core.RecipientQueued, class: core.ClassTransient, errText: "plugin restarting", next: 30 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &core.Recipient{ID: 7, CampaignID: 1, Email: "ann@example.org", ClaimToken: "tok", Attempts: tc.attempts}
			lim, jitter := tc.lim, tc.jitter
			if lim == (core.Limits{}) {
				lim = core.DefaultLimits()
			}
			if jitter == nil {
				jitter = noJitter
			}
			o := core.DecideOutcome(tc.res, r, lim, now, jitter)
			w := tc.want
			if o.RecipientID != 7 || o.CampaignID != 1 || o.ClaimToken != "tok" || !o.At.Equal(now) {
				t.Errorf("identity: %+v", o)
			}
			if o.Status != w.status || o.ErrorClass != w.class || o.ErrorCode != w.code || o.EnhancedCode != w.enhanced ||
				o.Error != w.errText || o.ProviderID != w.provider || o.RefundAttempt != w.refund || o.Release != w.release {
				t.Errorf("got %+v\nwant %+v", o, w)
			}
			wantNext := time.Time{}
			if w.next >= 0 {
				wantNext = now.Add(w.next)
			}
			if !o.NextAttemptAt.Equal(wantNext) {
				t.Errorf("next attempt %v, want %v", o.NextAttemptAt, wantNext)
			}
			if (o.Suppress != nil) != w.suppress {
				t.Fatalf("suppress %+v, want %v", o.Suppress, w.suppress)
			}
			if s := o.Suppress; s != nil && (s.Email != r.Email || s.Source != core.SourceBounce || !s.CreatedAt.Equal(now) || s.Reason != "bounced: 550 5.1.1 no such user") {
				t.Errorf("suppression %+v", s)
			}
		})
	}
}

func TestOutcomeConstructors(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &core.Recipient{ID: 7, CampaignID: 1, ClaimToken: "tok", Attempts: 2}
	lim := core.DefaultLimits()
	for _, tc := range []struct {
		name string
		o    core.Outcome
		want core.Outcome
	}{
		{"release", core.ReleaseOutcome(r, now.Add(time.Minute), now),
			core.Outcome{Status: core.RecipientQueued, NextAttemptAt: now.Add(time.Minute), RefundAttempt: true, Release: true, Unsent: true}},
		{"sender unavailable", core.UnavailableOutcome(r, sdk.ConfigError("checksum mismatch"), lim, now),
			core.Outcome{Status: core.RecipientQueued, NextAttemptAt: now.Add(lim.RetryBase), RefundAttempt: true, Unsent: true,
				ErrorClass: core.ClassConfig, Error: "not attempted: sender unavailable: checksum mismatch"}},
		{"suppressed", core.SuppressedOutcome(r, now),
			core.Outcome{Status: core.RecipientFailed, ErrorClass: core.ClassSuppressed, RefundAttempt: true, Unsent: true,
				Error: "not sent: the address is on the suppression list"}},
		{"template", core.TemplateOutcome(r, core.Errorf(core.EINVALID, "render: no key city"), now),
			core.Outcome{Status: core.RecipientFailed, ErrorClass: core.ClassTemplate, Error: "render: no key city", Unsent: true}},
	} {
		tc.want.RecipientID, tc.want.CampaignID, tc.want.ClaimToken, tc.want.At = 7, 1, "tok", now
		if tc.o != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, tc.o, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	base, maxWait := time.Second, time.Minute
	for attempt := 1; attempt <= 12; attempt++ {
		step := min(base<<(attempt-1), maxWait)
		if d := core.Backoff(attempt, base, maxWait, noJitter); d != step/2 {
			t.Fatalf("attempt %d, no jitter: %v, want %v", attempt, d, step/2)
		}
		if d := core.Backoff(attempt, base, maxWait, fullJitter); d != step/2+step/2 {
			t.Fatalf("attempt %d, full jitter: %v, want %v", attempt, d, step)
		}
		for i := 0; i < 50; i++ {
			if d := core.Backoff(attempt, base, maxWait, core.RandomJitter); d < step/2 || d > step {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, step/2, step)
			}
		}
	}
	if d := core.Backoff(3, 0, time.Hour, fullJitter); d != 0 {
		t.Fatalf("zero base: %v", d)
	}
	if d := core.Backoff(40, time.Second, time.Hour, fullJitter); d != time.Hour {
		t.Fatalf("huge attempt: %v, want the cap", d)
	}
}

func TestCutOff(t *testing.T) {
	for left, want := range map[time.Duration]bool{
		-time.Second: true, 0: true, core.DeadlineSlack - 1: true,
		core.DeadlineSlack: false, time.Minute: false, math.MaxInt64: false,
	} {
		if got := core.CutOff(left); got != want {
			t.Errorf("CutOff(%v) = %v, want %v", left, got, want)
		}
	}
}

// The in-doubt policy is one decision: what a cut-off send becomes in the
// tick (Status) and what the store does with expired leases (the rule)
// agree for every policy and attempt count.
func TestInDoubtPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy      core.InDoubtPolicy
		maxAttempts int
		requeued    []int // attempts that are resent; any other is held
	}{
		{core.InDoubtResend, 3, []int{0, 1, 2}},
		{"", 3, []int{0, 1, 2}},
		{core.InDoubtResend, 0, []int{0, 1, 2, 3, 4, 100}}, // no limit
		{core.InDoubtHold, 3, nil},
		{"shrug", 3, nil}, // unknown: never resend
	} {
		rule := tc.policy.ExpiredLeases(tc.maxAttempts)
		if rule.Class != core.ClassInDoubt || rule.RequeuedError == "" || rule.HeldError == "" {
			t.Errorf("%q: rule %+v", tc.policy, rule)
		}
		for attempts := 0; attempts <= 100; attempts++ {
			want := core.RecipientFailed
			for _, a := range tc.requeued {
				if a == attempts {
					want = core.RecipientQueued
				}
			}
			if tc.maxAttempts == 0 && tc.policy == core.InDoubtResend {
				want = core.RecipientQueued
			}
			if got := tc.policy.Status(attempts, tc.maxAttempts); got != want {
				t.Errorf("%q max %d: %d attempts -> %s, want %s", tc.policy, tc.maxAttempts, attempts, got, want)
			}
			if byRule := map[bool]core.RecipientStatus{true: core.RecipientQueued, false: core.RecipientFailed}[attempts < rule.RequeueBelow]; byRule != want {
				t.Errorf("%q max %d: the store's rule makes %d attempts %s, the tick %s", tc.policy, tc.maxAttempts, attempts, byRule, want)
			}
		}
	}
}

func TestParseRetryClass(t *testing.T) {
	for _, s := range []string{"", "transient", "permanent", "throttled", "config", "in_doubt", "template"} {
		if c, err := core.ParseRetryClass(s); err != nil || string(c) != s {
			t.Errorf("%q: %q, %v", s, c, err)
		}
	}
	for _, s := range []string{"bounced", "suppressed", "cancelled", "cosmic-rays", "TRANSIENT"} {
		if _, err := core.ParseRetryClass(s); core.ErrorCode(err) != core.EINVALID {
			t.Errorf("%q: %v, want EINVALID", s, err)
		}
	}
}
