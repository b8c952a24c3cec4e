package main_test

import (
	"testing"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	sdktest.Run(t, sdktest.Config{
		PluginPath: sdktest.Build(t, "."),
		Scenarios: []sdktest.Scenario{{
			Name: "bounce",
			Edit: func(m *sdk.Message) { m.To = "Nobody <nobody@example.invalid>" },
			Want: sdk.Bounced("no such domain").WithSMTP(550, "5.1.2"),
		}},
		Verify: func(t *testing.T, m *sdk.Message, r *sdk.Receipt) {
			if r.ProviderID != m.MessageID {
				t.Errorf("provider id %q, want %q", r.ProviderID, m.MessageID)
			}
		},
	})
}
