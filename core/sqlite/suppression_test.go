package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/campaignd/campaignd/core"
)

func TestSuppressions(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	if err := db.Suppress(ctx, core.Suppression{Email: "Ann <Ann@Example.COM>", Reason: "complaint", Source: "operator", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.Suppress(ctx, core.Suppression{Email: "bob@example.com", Reason: "unsubscribed", Source: "unsubscribe", CreatedAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	// Updating keeps the first listing time and the stored spelling.
	if err := db.Suppress(ctx, core.Suppression{Email: "ann@example.com", Reason: "bounced", Source: "bounce", CreatedAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	list, err := db.Suppressions(ctx, 0)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v, %v", list, err)
	}
	if *list[1] != (core.Suppression{Email: "Ann@example.com", Reason: "bounced", Source: "bounce", CreatedAt: t0}) || list[0].Email != "bob@example.com" {
		t.Fatalf("list %+v %+v", *list[0], *list[1])
	}
	if err := db.Suppress(ctx, core.Suppression{Email: "not an address"}); core.ErrorCode(err) != core.EINVALID {
		t.Fatalf("bad address: %v", err)
	}
	if err := db.Unsuppress(ctx, "ANN@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := db.Unsuppress(ctx, "ann@example.com"); core.ErrorCode(err) != core.ENOTFOUND {
		t.Fatalf("second unsuppress: %v, want ENOTFOUND", err)
	}
	if list, _ := db.Suppressions(ctx, 1); len(list) != 1 || list[0].Email != "bob@example.com" {
		t.Fatalf("after unsuppress: %+v", list)
	}
}
