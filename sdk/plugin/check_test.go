package plugin_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
)

func TestCheckCrossesIntact(t *testing.T) {
	if err := launch(t, nil).Check(t.Context()); err != nil {
		t.Fatalf("Check of a working plugin: %v", err)
	}

	err := launch(t, map[string]string{"check": "fail"}).Check(t.Context())
	var e *sdk.Error
	if !errors.As(err, &e) || e.Class != sdk.ClassConfig || e.SMTPCode != 535 || e.EnhancedCode != "5.7.8" ||
		e.Message != "AUTH: authentication failed" {
		t.Fatalf("Check refused: got %#v, want the plugin's ClassConfig 535 5.7.8 error", err)
	}
	if errors.Is(err, sdk.ErrCheckUnsupported) {
		t.Error("a failed check reads as unsupported")
	}

	p := launch(t, map[string]string{"check": "slow"})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Check(ctx); sdk.AsError(err).Class != sdk.ClassTransient {
		t.Errorf("Check past its deadline: %v, want ClassTransient", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Check with a 300ms deadline returned after %s", d)
	}
}

// TestCheckUnsupported: a plugin whose Sender is no sdk.Checker, and one
// built before the call existed (its gRPC service has no Check method),
// both read as "not supported" and keep working.
func TestCheckUnsupported(t *testing.T) {
	for _, env := range []string{"TESTPLUGIN_NO_CHECKER=1", "TESTPLUGIN_OLD_SDK=1"} {
		t.Run(env, func(t *testing.T) {
			p := launch(t, nil, env)
			err := p.Check(t.Context())
			if !errors.Is(err, sdk.ErrCheckUnsupported) || !strings.Contains(err.Error(), "plugin t") {
				t.Fatalf("Check: %v, want sdk.ErrCheckUnsupported naming the plugin", err)
			}
			if _, err := p.Send(t.Context(), sdktestMessage()); err != nil {
				t.Errorf("Send after an unsupported Check: %v", err)
			}
		})
	}
}

func TestPoolSenderChecks(t *testing.T) {
	pool := plugin.NewPool(hclog.NewNullLogger(), map[string]plugin.PluginConfig{
		"ok":   {Plugin: pluginPath},
		"fail": {Plugin: pluginPath, Options: map[string]string{"check": "fail"}},
	})
	defer pool.Close()
	for name, wantErr := range map[string]bool{"ok": false, "fail": true} {
		s, err := pool.Sender(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		c, ok := s.(sdk.Checker)
		if !ok {
			t.Fatalf("pool sender %T is not an sdk.Checker", s)
		}
		if err := c.Check(t.Context()); (err != nil) != wantErr {
			t.Errorf("%s: Check = %v, want error %t", name, err, wantErr)
		}
	}
}

func TestLaunchNotFoundSaysWhere(t *testing.T) {
	_, err := plugin.Launch(t.Context(), plugin.PluginConfig{Name: "mail", Plugin: "smtpp", Dir: pluginDir})
	if !errors.Is(err, plugin.ErrNotFound) || !strings.Contains(err.Error(), pluginDir+"/campaignd-sender-smtpp") {
		t.Errorf("missing plugin: %v, want ErrNotFound naming %s/campaignd-sender-smtpp", err, pluginDir)
	}
}

func sdktestMessage() *sdk.Message {
	return &sdk.Message{CampaignID: 1, RecipientID: 1, MessageID: "<1.1@x>", From: "a@example.com", To: "b@example.com", Subject: "hi", Text: "hi"}
}
