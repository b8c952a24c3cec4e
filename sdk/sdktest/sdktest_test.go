package sdktest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/sdktest"
)

// TestKitOnTestPlugin runs the kit against the sdk's own test plugin, whose
// "backend" is chosen by the subject, and checks in Verify that every
// accepted message arrived unaltered.
func TestKitOnTestPlugin(t *testing.T) {
	subject := func(s string) func(*sdk.Message) { return func(m *sdk.Message) { m.Subject = s } }
	var verified atomic.Int64 // Verify runs concurrently
	sdktest.Run(t, sdktest.Config{
		PluginPath: sdktest.Build(t, "../plugin/testdata/testplugin"),
		Options:    map[string]string{"greeting": "hi"},
		Scenarios: []sdktest.Scenario{
			{Name: "ok with other options", Options: map[string]string{"extra": "1"}},
			{Name: "transient", Edit: subject("transient"), Want: sdk.Transient("try").WithSMTP(451, "4.3.0")},
			{Name: "throttled", Edit: subject("throttled"), Want: sdk.Throttled(1500*time.Millisecond, "slow down").WithHTTP(429)},
			{Name: "permanent", Edit: subject("permanent"), Want: sdk.Permanent("policy").WithSMTP(554, "5.7.1")},
			{Name: "bounced", Edit: subject("bounced"), Want: sdk.Bounced("no such user").WithSMTP(550, "5.1.1")},
			{Name: "config", Edit: subject("config"), Want: sdk.ConfigError("bad api key").WithHTTP(401)},
		},
		Stall:           &sdktest.Scenario{Edit: subject("slow")},
		BadOptions:      []map[string]string{{"reject": "yes"}},
		RequireCheck:    true,
		BadCheckOptions: []map[string]string{{"check": "fail"}},
		Verify: func(t *testing.T, msg *sdk.Message, r *sdk.Receipt) {
			var echo struct{ MessageID, To, TextSHA, HTMLSHA string }
			if err := json.Unmarshal([]byte(r.Response), &echo); err != nil {
				t.Errorf("receipt: %v", err)
				return
			}
			h := sha256.Sum256([]byte(msg.HTML))
			if echo.MessageID != msg.MessageID || echo.To != msg.To || echo.HTMLSHA != hex.EncodeToString(h[:]) {
				t.Errorf("plugin received %+v for message %s", echo, msg.MessageID)
			}
			verified.Add(1)
		},
	})
	// Send, the success scenario, after-cancel, beside and after the stall, concurrent and large.
	if want := int64(1 + 1 + 1 + 1 + 1 + sdktest.ConcurrentSends + 1); verified.Load() < want {
		t.Errorf("Verify saw %d accepted messages, want at least %d", verified.Load(), want)
	}
}

// TestKitOnProtocol1Plugin: with UnaryOnly the kit accepts a plugin built
// against the SDK before the send stream (protocol 1), and its checks run
// over unary calls.
func TestKitOnProtocol1Plugin(t *testing.T) {
	sdktest.Run(t, sdktest.Config{
		PluginPath: sdktest.Build(t, "../plugin/testdata/testplugin"),
		Env:        []string{"TESTPLUGIN_OLD_SDK=1"},
		UnaryOnly:  true,
		Stall:      &sdktest.Scenario{Edit: func(m *sdk.Message) { m.Subject = "slow" }},
	})
}
