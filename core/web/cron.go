package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/internal/httpx"
)

// CronTickResult is the answer of POST /api/cron/process-email-queue: the
// seed's processed, sent and failed, then what a caller needs to tell a
// healthy tick from one that met trouble (see core.TickResult). It is
// answered with 200 whether or not the tick met problems: the request
// worked, and Problems says what did not.
type CronTickResult struct {
	Processed int      `json:"processed"`
	Sent      int      `json:"sent"`
	Failed    int      `json:"failed"`
	Retried   int      `json:"retried"`
	Throttled int      `json:"throttled"`
	Remaining int64    `json:"remaining"`
	Problems  []string `json:"problems"` // [] when none
	Skipped   bool     `json:"skipped"`  // another tick was running; nothing was done
}

// CronExecuteResult is the answer of POST /api/campaigns/{id}/execute.
type CronExecuteResult struct {
	Queued  int64  `json:"queued"`
	Message string `json:"message"`
}

// authorize checks the request's bearer token against CronSecret in
// constant time: both sides are hashed first, so neither the content nor
// the length of the secret leaks through timing. It returns an
// "unauthorized" error (401) for a missing or wrong token, and sets
// WWW-Authenticate (RFC 6750).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) error {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="campaignd"`)
		return &core.Error{Code: httpx.CodeUnauthorized, Message: "a bearer token is required (Authorization: Bearer <cron_secret>)"}
	}
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(s.cfg.CronSecret))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="campaignd", error="invalid_token"`)
		return &core.Error{Code: httpx.CodeUnauthorized, Message: "invalid bearer token"}
	}
	return nil
}

// drainBody reads and discards a request body the route does not use
// (some cron services send "{}"), bounded by MaxBodyBytes.
func (s *Server) drainBody(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength == 0 {
		return nil
	}
	_, err := httpx.ReadBody(w, r, s.cfg.MaxBodyBytes, "request body", 0)
	return err
}

// actor names a cron caller for execution records.
func actor(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "http cron endpoint from " + host
}

// cronTick handles POST /api/cron/process-email-queue: one tick.
func (s *Server) cronTick(w http.ResponseWriter, r *http.Request) {
	if err := s.authorize(w, r); err != nil {
		s.writeError(w, r, fmt.Errorf("cron tick: %w", err))
		return
	}
	if err := s.drainBody(w, r); err != nil {
		s.writeError(w, r, fmt.Errorf("cron tick: %w", err))
		return
	}
	// A tick records every outcome it starts: the caller hanging up (a
	// cron timeout) must not cancel it. The engine bounds it with
	// tick_timeout.
	ctx := core.WithActor(context.WithoutCancel(r.Context()), actor(r))
	res, err := s.b.Tick(ctx, core.TriggerHTTP)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("cron tick: %w", err))
		return
	}
	problems := res.Problems
	if problems == nil {
		problems = []string{}
	}
	_ = httpx.WriteJSON(w, http.StatusOK, CronTickResult{
		Processed: res.Processed, Sent: res.Sent, Failed: res.Failed, Retried: res.Retried,
		Throttled: res.Throttled, Remaining: res.Remaining, Problems: problems, Skipped: res.Skipped,
	})
}

// cronExecute handles POST /api/campaigns/{id}/execute.
func (s *Server) cronExecute(w http.ResponseWriter, r *http.Request) {
	if err := s.authorize(w, r); err != nil {
		s.writeError(w, r, fmt.Errorf("execute: %w", err))
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.writeError(w, r, core.Errorf(core.EINVALID, "execute: campaign id %q is not a positive integer", r.PathValue("id")))
		return
	}
	if err := s.drainBody(w, r); err != nil {
		s.writeError(w, r, fmt.Errorf("execute campaign %d: %w", id, err))
		return
	}
	ctx := core.WithActor(context.WithoutCancel(r.Context()), actor(r))
	res, err := s.b.Execute(ctx, id)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("execute campaign %d: %w", id, err))
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, CronExecuteResult{Queued: res.Queued, Message: res.Message})
}
