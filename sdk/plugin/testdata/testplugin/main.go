// Command testplugin is a sender plugin for the sdk's own tests. What it
// does is chosen by the message subject and by environment variables, so
// the tests can make it succeed, fail with each class, crash, hang, log or
// misbehave at start-up.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
)

type sender struct {
	mu   sync.Mutex
	opts map[string]string
}

// Echo is what a successful send reports back in Receipt.Response.
type Echo struct {
	Pid         int
	CampaignID  int64
	RecipientID int64
	MessageID   string
	From        string
	To          string
	ReplyTo     string
	ReturnPath  string
	Subject     string
	Date        string
	Headers     []sdk.Header
	TextSHA     string
	HTMLSHA     string
	Options     map[string]string
}

func (s *sender) Configure(_ context.Context, opts map[string]string) error {
	if v := opts["reject"]; v != "" {
		return errors.New("option reject is set: " + v)
	}
	if opts["reject_transient"] != "" {
		return sdk.Transient("backend unreachable").WithSMTP(421, "4.4.1")
	}
	s.mu.Lock()
	s.opts = opts
	s.mu.Unlock()
	return nil
}

// Info reports a DNS record made from the greeting option, so a test sees
// that Info answers for the configuration Configure was given.
func (s *sender) Info(context.Context) (sdk.Info, error) {
	s.mu.Lock()
	greeting := s.opts["greeting"]
	s.mu.Unlock()
	info := sdk.Info{Name: "test", Version: "1.2.3", MaxPerSecond: 12.5, MaxConcurrency: 7,
		Options: []string{"greeting", "token"}, SecretOptions: []string{"token"}}
	if greeting != "" {
		info.DNSRecords = []sdk.DNSRecord{{Name: "test._domainkey.example.com", Type: "TXT", Value: "greeting=" + greeting}}
	}
	return info, nil
}

// Check answers by the "check" option: "" succeeds, "fail" is refused
// credentials, "slow" waits for the deadline.
func (s *sender) Check(ctx context.Context) error {
	s.mu.Lock()
	mode := s.opts["check"]
	s.mu.Unlock()
	switch mode {
	case "fail":
		return sdk.ConfigError("AUTH: authentication failed").WithSMTP(535, "5.7.8")
	case "slow":
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// noChecker hides sender's Check: a plugin that does not offer the call.
type noChecker struct{ sdk.Sender }

func sum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func (s *sender) Send(ctx context.Context, m *sdk.Message) (*sdk.Receipt, error) {
	switch m.Subject {
	case "transient":
		return nil, sdk.Transient("try later").WithSMTP(451, "4.3.0")
	case "throttled":
		return nil, sdk.Throttled(1500*time.Millisecond, "slow down").WithHTTP(429)
	case "permanent":
		return nil, sdk.Permanent("rejected by policy").WithSMTP(554, "5.7.1")
	case "bounced":
		return nil, sdk.Bounced("no such user").WithSMTP(550, "5.1.1")
	case "config":
		return nil, sdk.ConfigError("bad api key").WithHTTP(401)
	case "plain":
		return nil, errors.New("plain failure")
	case "crash":
		panic("testplugin: crash requested")
	case "hang":
		time.Sleep(time.Hour) // ignores ctx on purpose
	case "slow":
		<-ctx.Done()
		return nil, ctx.Err()
	case "log":
		sdk.Logger().Debug("debug line", "k", "v")
		sdk.Logger().Info("info line", "k", "v")
		fmt.Println("stray stdout line")
	}
	s.mu.Lock()
	opts := s.opts
	s.mu.Unlock()
	e := Echo{
		Pid: os.Getpid(), CampaignID: m.CampaignID, RecipientID: m.RecipientID, MessageID: m.MessageID,
		From: m.From, To: m.To, ReplyTo: m.ReplyTo, ReturnPath: m.ReturnPath, Subject: m.Subject, Headers: m.Headers,
		TextSHA: sum(m.Text), HTMLSHA: sum(m.HTML), Options: opts,
	}
	if !m.Date.IsZero() {
		e.Date = m.Date.Format(time.RFC1123Z)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return &sdk.Receipt{ProviderID: strconv.Itoa(os.Getpid()), Response: string(b)}, nil
}

func main() {
	if path := os.Getenv("TESTPLUGIN_MARK"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintln(f, os.Getpid())
			f.Close()
		}
	}
	if os.Getenv("TESTPLUGIN_EXIT") != "" {
		fmt.Fprintln(os.Stderr, "testplugin: refusing to start")
		os.Exit(7)
	}
	if os.Getenv("TESTPLUGIN_JUNK") != "" {
		fmt.Println("junk before handshake")
	}
	switch {
	case os.Getenv("TESTPLUGIN_NO_CHECKER") != "":
		plugin.Serve(noChecker{&sender{}})
	case os.Getenv("TESTPLUGIN_OLD_SDK") != "":
		serveOldSDK()
	default:
		plugin.Serve(&sender{})
	}
}
