package control_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/control"
)

// allowSpy records whether activate and execute arrived with
// core.WithAllowMissingAttrs; its other methods are not called.
type allowSpy struct {
	core.Service
	mu    sync.Mutex
	calls []bool
}

func (s *allowSpy) note(ctx context.Context) {
	s.mu.Lock()
	s.calls = append(s.calls, core.AllowMissingAttrs(ctx))
	s.mu.Unlock()
}

func (s *allowSpy) ChangeCampaign(ctx context.Context, id int64, a core.Action) (*core.Campaign, error) {
	s.note(ctx)
	return &core.Campaign{ID: id}, nil
}

func (s *allowSpy) Execute(ctx context.Context, id int64) (*core.ExecuteResult, error) {
	s.note(ctx)
	return &core.ExecuteResult{CampaignID: id}, nil
}

func (s *allowSpy) EditCampaign(ctx context.Context, id int64, edit core.CampaignEdit) (*core.Campaign, error) {
	s.note(ctx)
	return &core.Campaign{ID: id}, nil
}

// The client carries --allow-missing-attrs (core.WithAllowMissingAttrs)
// to the daemon for activate, execute and edit, and only when it is given; the
// server refuses it on other actions and a value that is not a boolean.
func TestAllowMissingAttrsCarried(t *testing.T) {
	spy := &allowSpy{}
	srv, c := startServer(t, spy, control.ServerConfig{})
	ctx := context.Background()
	allow := core.WithAllowMissingAttrs(ctx)
	if _, err := c.ChangeCampaign(ctx, 1, core.ActionActivate); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangeCampaign(allow, 1, core.ActionActivate); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Execute(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Execute(allow, 1); err != nil {
		t.Fatal(err)
	}
	name := "renamed"
	if _, err := c.EditCampaign(ctx, 1, core.CampaignEdit{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EditCampaign(allow, 1, core.CampaignEdit{Name: &name}); err != nil {
		t.Fatal(err)
	}
	spy.mu.Lock()
	got := append([]bool(nil), spy.calls...)
	spy.mu.Unlock()
	if want := []bool{false, true, false, true, false, true}; !slices.Equal(got, want) {
		t.Fatalf("allow_missing_attrs seen %v, want %v", got, want)
	}
	path := srv.SocketPath()
	wantRawError(t, raw(t, path, http.MethodPost, "/v1/campaigns/1/pause?allow_missing_attrs=true", nil), http.StatusBadRequest, core.EINVALID, "allow_missing_attrs")
	wantRawError(t, raw(t, path, http.MethodPost, "/v1/campaigns/1/execute?allow_missing_attrs=maybe", nil), http.StatusBadRequest, core.EINVALID, "not true or false")
}
