// Command campaignd-sender-log is an example third-party sender plugin: it logs
// and accepts each message but bounces example.invalid. It imports only sdk/...
package main

import (
	"context"
	"strings"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
)

type sender struct{}

func (sender) Configure(context.Context, map[string]string) error { return nil }

func (sender) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "log", Version: "1.0.0"}, nil
}

func (sender) Send(_ context.Context, m *sdk.Message) (*sdk.Receipt, error) {
	if strings.HasSuffix(strings.TrimSuffix(m.To, ">"), "@example.invalid") {
		return nil, sdk.Bounced("no such domain").WithSMTP(550, "5.1.2")
	}
	sdk.Logger().Info("message", "to", m.To, "subject", m.Subject, "message_id", m.MessageID)
	return &sdk.Receipt{ProviderID: m.MessageID}, nil
}

func main() { plugin.Serve(&sender{}) }
