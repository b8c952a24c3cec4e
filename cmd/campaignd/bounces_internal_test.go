package main

import (
	"strings"
	"testing"

	"github.com/campaignd/campaignd/core"
)

// TestBouncesConfig: [bounces] mistakes are refused where they are made,
// naming the key and what to do; a good table gets its port from its TLS
// mode, and its return path reaches the engine's limits.
func TestBouncesConfig(t *testing.T) {
	const mailbox = "[bounces]\nhost = \"pop.example.com\"\nusername = \"bounces\"\npassword = \"pw\"\n"
	for extra, want := range map[string]string{
		"protocol = \"imap\"\n":                         `bounces.protocol: "imap" is not supported: use "pop3"`,
		"tls = \"ssl\"\n":                               `bounces.tls: "ssl" must be "tls"`,
		"tls = \"none\"\n":                              `bounces.tls: "none" would send the mailbox password in clear text to pop.example.com`,
		"port = 70000\n":                                "bounces.port: 70000 is outside 1..65535",
		"interval = \"0s\"\n":                           "bounces.interval: must be positive",
		"interval = \"often\"\n":                        `"often" is not a duration`,
		"return_path = \"bounces@example.com\"\n":       "bounces.return_path: \"bounces@example.com\" must contain {campaign} exactly once",
		"return_path = \"b+{campaign}{recipient}@x\"\n": "bounces.return_path:",
		"imap_folder = \"INBOX\"\n":                     `unknown key "bounces.imap_folder"`,
	} {
		_, err := loadConfigText(t, mailbox+extra)
		if err == nil || core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want EINVALID saying %q", strings.TrimSpace(extra), err, want)
		}
	}
	for text, want := range map[string]string{
		"[bounces]\nusername = \"bounces\"\n":                                                              "bounces.host: required when username or password is set",
		"[bounces]\nhost = \"pop.example.com\"\npassword = \"pw\"\n":                                       "bounces.username: required",
		"[bounces]\nhost = \"pop.example.com:995\"\nusername = \"u\"\npassword = \"p\"\n":                  "the port goes in bounces.port",
		"[bounces]\nhost = \"pop.example.com\"\nusername = \"u\"\npassword = \"${CD_BOUNCES_UNSET_PW}\"\n": "bounces.password: environment variable CD_BOUNCES_UNSET_PW is not set",
	} {
		_, err := loadConfigText(t, text)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}

	t.Setenv("CD_BOUNCES_PW", "from-env")
	cfg, err := loadConfigText(t, mailbox+"return_path = \"bounces+{campaign}.{recipient}@example.com\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.Bounces; !b.mailbox() || b.Port != 995 || b.TLS != "tls" || b.Protocol != "pop3" || b.Interval.Duration.String() != "5m0s" {
		t.Errorf("defaults: %+v, want pop3 over implicit TLS on 995 every 5m", b)
	}
	if cfg.limits().ReturnPath != "bounces+{campaign}.{recipient}@example.com" {
		t.Errorf("limits().ReturnPath = %q", cfg.limits().ReturnPath)
	}
	cfg, err = loadConfigText(t, "[bounces]\nhost = \"localhost\"\ntls = \"none\"\nusername = \"u\"\npassword = \"${CD_BOUNCES_PW}\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.Bounces; b.Port != 110 || b.Password != "from-env" {
		t.Errorf("loopback without TLS: %+v, want port 110 and the password from the environment", b)
	}
	cfg, err = loadConfigText(t, "[bounces]\nhost = \"[::1]\"\ntls = \"none\"\nusername = \"u\"\npassword = \"p\"\n")
	if err != nil {
		t.Fatalf("IPv6 loopback: %v", err)
	}
	if a := cfg.Bounces.pop3().Addr(); a != "[::1]:110" {
		t.Errorf("IPv6 loopback: addr %s, want [::1]:110", a)
	}
	// Without its password the configuration still loads (an operator's
	// shell, a cron tick need none); what reads the mailbox refuses it.
	cfg, err = loadConfigText(t, "[bounces]\nhost = \"pop.example.com\"\nusername = \"bounces\"\npassword = \"${CD_BOUNCES_UNSET_PW:-}\"\n")
	if err != nil {
		t.Fatalf("a mailbox without its password refused at load: %v", err)
	}
	if err := cfg.Bounces.credentials(); core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "bounces.password: required to read the mailbox") {
		t.Errorf("credentials without a password: %v", err)
	}
	if err := (BouncesConfig{}).credentials(); err != nil {
		t.Errorf("credentials without a mailbox: %v", err)
	}
	if cfg, err := loadConfigText(t, ""); err != nil || cfg.Bounces.mailbox() {
		t.Errorf("no [bounces]: %v, mailbox %v; want no mailbox", err, cfg.Bounces.mailbox())
	}
}
