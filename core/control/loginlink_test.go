package control_test

import (
	"context"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/control"
)

// POST /v1/dashboard/login-link returns ServerConfig.LoginLink's link; a
// daemon without a dashboard says how to get one.
func TestLoginLinkRoute(t *testing.T) {
	ctx := context.Background()
	exp := time.Date(2026, 1, 1, 12, 10, 0, 0, time.UTC)
	_, c := startServer(t, &fakeService{}, control.ServerConfig{
		LoginLink: func(ctx context.Context) (*control.LoginLink, error) {
			return &control.LoginLink{URL: "http://127.0.0.1:9090/login?link=abc", Expires: exp}, nil
		},
	})
	link, err := c.LoginLink(ctx)
	if err != nil || link.URL != "http://127.0.0.1:9090/login?link=abc" || !link.Expires.Equal(exp) {
		t.Fatalf("link: %+v, %v", link, err)
	}
	_, c = startServer(t, &fakeService{}, control.ServerConfig{})
	if _, err := c.LoginLink(ctx); core.ErrorCode(err) != core.EUNAVAILABLE {
		t.Fatalf("no dashboard: %v, want EUNAVAILABLE", err)
	}
}
