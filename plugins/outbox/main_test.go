package main_test

import (
	"context"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
	"github.com/campaignd/campaignd/sdk/sdktest"
)

// binary is the outbox plugin, built once by TestMain (or prebuilt in
// $CAMPAIGND_BIN_DIR).
var binary string

func TestMain(m *testing.M) {
	path, err := sdktest.BuildPlugin(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = path
	code := m.Run()
	sdktest.RemoveBuilt()
	os.Exit(code)
}

// readEML parses the file a receipt names and checks it is the message.
func readEML(t *testing.T, dir string, msg *sdk.Message, r *sdk.Receipt) {
	t.Helper()
	if want := fmt.Sprintf("%d-%d.eml", msg.CampaignID, msg.RecipientID); r.ProviderID != want {
		t.Errorf("provider id %q, want %q", r.ProviderID, want)
	}
	f, err := os.Open(filepath.Join(dir, r.ProviderID))
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	m, err := mail.ReadMessage(f)
	if err != nil {
		t.Errorf("%s: %v", r.ProviderID, err)
		return
	}
	if m.Header.Get("Message-Id") != msg.MessageID || !strings.Contains(m.Header.Get("To"), msg.To) {
		t.Errorf("%s: Message-ID %q To %q, want %q %q", r.ProviderID, m.Header.Get("Message-Id"), m.Header.Get("To"), msg.MessageID, msg.To)
	}
	if fi, _ := f.Stat(); len(msg.HTML) > 1<<20 && fi.Size() < int64(len(msg.HTML)) {
		t.Errorf("%s: %d bytes for a %d-byte body", r.ProviderID, fi.Size(), len(msg.HTML))
	}
}

func TestConformance(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "outbox")
	sdktest.Run(t, sdktest.Config{
		PluginPath: binary,
		Options:    map[string]string{"dir": dir},
		Scenarios: []sdktest.Scenario{{
			Name: "unrenderable message is permanent",
			Edit: func(m *sdk.Message) { m.Subject = "evil\r\nBcc: victim@example.com" },
			Want: &sdk.Error{Class: sdk.ClassPermanent, Message: "outbox: render message"},
		}},
		BadOptions:   []map[string]string{{"dir": ""}, {"dri": "/tmp/x"}},
		RequireCheck: true,
		Verify:       func(t *testing.T, msg *sdk.Message, r *sdk.Receipt) { readEML(t, dir, msg, r) },
	})
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("outbox dir: %v, mode %v; want created with 0700", err, fi.Mode().Perm())
	}
}

func TestResendOverwrites(t *testing.T) {
	dir := t.TempDir()
	p, err := plugin.Launch(t.Context(), plugin.PluginConfig{Name: "outbox", Plugin: binary, Options: map[string]string{"dir": dir}, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msg := sdktest.NewMessage(9)
	for _, body := range []string{"first attempt", "second attempt"} {
		msg.Text, msg.HTML = body, ""
		if _, err := p.Send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "1-9.eml" {
		t.Fatalf("outbox holds %v, want only 1-9.eml", entries)
	}
	b, err := os.ReadFile(filepath.Join(dir, "1-9.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "second attempt") || strings.Contains(string(b), "first attempt") {
		t.Errorf("resend did not overwrite:\n%s", b)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "1-9.eml")); fi.Mode().Perm() != 0o600 {
		t.Errorf("eml mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestCheckNeedsAWritableDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	p, err := plugin.Launch(t.Context(), plugin.PluginConfig{Name: "outbox", Plugin: binary, Options: map[string]string{"dir": dir}, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Check left %v behind", entries)
	}
	// Replaced by a file: no permission bits involved, so this holds for
	// root too.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err = p.Check(t.Context())
	if e := sdk.AsError(err); err == nil || e.Class != sdk.ClassConfig || !strings.Contains(e.Message, dir) {
		t.Errorf("Check with the dir gone: %v, want ClassConfig naming %s", err, dir)
	}
}

// TestReturnPathRecorded: a message's envelope sender (a VERP return path)
// is written as the file's Return-Path, as a delivering MTA records it.
func TestReturnPathRecorded(t *testing.T) {
	dir := t.TempDir()
	p, err := plugin.Launch(t.Context(), plugin.PluginConfig{Name: "outbox", Plugin: binary, Options: map[string]string{"dir": dir}, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msg := sdktest.NewMessage(4)
	msg.ReturnPath = "bounces+1.4@example.com"
	r, err := p.Send(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, r.ProviderID))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "Return-Path: <bounces+1.4@example.com>\r\n") {
		t.Errorf("file starts %q, want the Return-Path", b[:min(len(b), 80)])
	}
	readEML(t, dir, msg, r)
}
