package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/campaignd/campaignd/core"
)

// FuzzConfig loads arbitrary campaignd.toml files through loadConfig (the
// file is read, decoded strictly, ${ENV}-expanded and validated).
// Invariants:
//   - no panic;
//   - a refused file is an EINVALID error whose one-line message starts
//     with "config" (the CLI prints it as is);
//   - an accepted file yields a configuration every consumer can use
//     without checking again: limits() passes Validate with batch_size in
//     1..50, the socket mode parses and is at most 0777, the log level is
//     known, tick_interval is not negative, the database is named, every
//     sender has a valid name and a plugin and a 64-hex-digit sha256 or
//     none, the built-in outbox sender exists, the unsubscribe token maker
//     builds, and config check's redaction hides every secret-looking
//     option's value.
func FuzzConfig(f *testing.F) {
	if ex, err := os.ReadFile("../../campaignd.toml.example"); err == nil {
		f.Add(string(ex))
	}
	for _, s := range []string{
		"",
		"[queue]\nbatch_size = 50\n",
		"[queue]\nbatch_size = 51\n",
		"[queue]\nbatch_size = 0\n",
		"[queue]\nbatch_size = -9223372036854775808\n",
		"[queue]\nbatch_size = 1e3\n",
		"[queue]\nbatch_size = 9223372036854775807\ndefault_concurrency = 50\n",
		"[queue]\ntick_timeout = \"-1s\"\nretry_base = \"2h\"\nretry_max = \"1h\"\n",
		"[queue]\ntick_timeout = \"9999999999h\"\n",
		"[queue]\nin_doubt = \"drop\"\n",
		"socket_mode = \"0777\"\n",
		"socket_mode = \"01777\"\n",
		"socket_mode = \"-1\"\n",
		"socket_mode = 600\n",
		"log_level = \"TRACE\"\ntick_interval = \"-5m\"\n",
		"database = \"\"\n",
		"database = \"${CAMPAIGND_FUZZ_UNSET_VAR}\"\n",
		"database = \"${CAMPAIGND_FUZZ_UNSET_VAR:-/tmp/x.db}\"\n",
		"bogus = 1\n",
		"[queue]\nbogus = 1\n",
		"[senders.mail]\nplugin = \"smtp\"\nsha256 = \"zz\"\n",
		"[senders.mail]\nplugin = \"smtp\"\nsha256 = \"" + strings.Repeat("A", 64) + "\"\n",
		"[senders.\"a.b\"]\nplugin = \"smtp\"\n",
		"[senders.\"\"]\nplugin = \"smtp\"\n",
		"[senders.mail]\n",
		"[senders.mail]\nplugin = \"smtp\"\n[senders.mail.options]\npassword = \"hunter2hunter2\"\napi_key = \"${CAMPAIGND_FUZZ_UNSET_VAR:-k3y}\"\nnested = { a = 1 }\n",
		"[senders.mail]\nplugin = \"smtp\"\n[senders.mail.options]\nports = [25, 587]\nok = true\nf = 1.5\nd = 1979-05-27T07:32:00Z\n",
		"[[senders]]\nplugin = \"smtp\"\n",
		"[http]\npublic_url = \"https://mail.example.com\"\nunsubscribe_secret = \"short\"\n",
		"[http]\npublic_url = \"javascript:alert(1)\"\nunsubscribe_secret = \"0123456789abcdef\"\n",
		"[http]\npublic_url = \"https://mail.example.com\"\nunsubscribe_secret = \"0123456789abcdef\"\n",
		"database = \"a\"\ndatabase = \"b\"\n",
		"database = \"\xff\"\n",
		"allow_uids = [65534, -1]\n",
		"lock_timeout = \"forever\"\n",
		"[queue\nbatch_size = 5\n",
		"database = \"\"\"\nmulti\nline\"\"\"\n",
		// issue 12: nested defaults, a "${" left over, illegal Message-ID domains.
		"[http]\ncron_secret = \"${CAMPAIGND_FUZZ_UNSET_VAR:-${CAMPAIGND_FUZZ_UNSET_B}}\"\n",
		"[http]\ncron_secret = \"${CAMPAIGND_FUZZ_UNSET_VAR:-${CAMPAIGND_FUZZ_UNSET_B:-0123456789abcdef}}\"\n",
		"database = \"${CAMPAIGND_FUZZ_UNSET_VAR:-${x\"\n",
		"[queue]\nmessage_id_domain = \"ex ample.com\"\n",
		"[queue]\nmessage_id_domain = \"example.com>\"\n",
		"[queue]\nmessage_id_domain = \"example.com\\r\\nBcc: x@y\"\n",
	} {
		f.Add(s)
	}
	path := filepath.Join(f.TempDir(), "campaignd.toml")
	f.Fuzz(func(t *testing.T, data string) {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(path)
		if err != nil {
			if cfg != nil {
				t.Fatalf("loadConfig returned a config and an error: %v", err)
			}
			if core.ErrorCode(err) != core.EINVALID {
				t.Fatalf("error code %s, want EINVALID: %v", core.ErrorCode(err), err)
			}
			msg := core.ErrorMessage(err)
			if !strings.HasPrefix(msg, "config") {
				t.Fatalf("error does not start with \"config\": %q", msg)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error is not one line: %q", msg)
			}
			return
		}
		l := cfg.limits()
		if err := l.Validate(); err != nil {
			t.Fatalf("accepted a config whose limits are invalid: %v", err)
		}
		if l.BatchSize < 1 || l.BatchSize > 50 {
			t.Fatalf("accepted batch_size %d", l.BatchSize)
		}
		if m, err := cfg.socketMode(); err != nil || m > 0o777 {
			t.Fatalf("accepted socket_mode %q (%v, %v)", cfg.SocketMode, m, err)
		}
		switch strings.ToLower(cfg.LogLevel) {
		case "trace", "debug", "info", "warn", "error", "off":
		default:
			t.Fatalf("accepted log_level %q", cfg.LogLevel)
		}
		if cfg.TickInterval.Duration < 0 {
			t.Fatalf("accepted tick_interval %s", cfg.TickInterval.Duration)
		}
		if cfg.Database == "" {
			t.Fatal("accepted an empty database")
		}
		if _, ok := cfg.Senders["outbox"]; !ok {
			t.Fatal("no built-in outbox sender")
		}
		for name, s := range cfg.Senders {
			if !validSenderName(name) {
				t.Fatalf("accepted sender name %q", name)
			}
			if s.Plugin == "" {
				t.Fatalf("sender %q has no plugin", name)
			}
			if h := strings.TrimSpace(s.SHA256); h != "" && (len(h) != 64 || strings.Trim(strings.ToLower(h), "0123456789abcdef") != "") {
				t.Fatalf("sender %q: accepted sha256 %q", name, s.SHA256)
			}
			if s.options == nil {
				t.Fatalf("sender %q: options not rendered", name)
			}
			red := redacted(s.options)
			for k, v := range s.options {
				lk := strings.ToLower(k)
				secret := !strings.HasSuffix(lk, "_file") && (strings.Contains(lk, "pass") || strings.Contains(lk, "secret") || strings.Contains(lk, "key") ||
					strings.Contains(lk, "token") || strings.Contains(lk, "credential"))
				if secret && v != "" && red[k] == v {
					t.Fatalf("sender %q: option %q's value is not redacted", name, k)
				}
			}
		}
		for _, v := range []string{cfg.Database, cfg.Socket, cfg.DefaultFrom, cfg.HTTP.CronSecret, cfg.HTTP.UnsubscribeSecret, cfg.HTTP.PublicURL} {
			if strings.Contains(v, "${") {
				t.Fatalf("accepted a value with \"${\" left after expansion: %q", v)
			}
		}
		if d := cfg.Queue.MessageIDDomain; d != "" && !validMessageIDDomain(d) {
			t.Fatalf("accepted message_id_domain %q", d)
		}
		if _, err := cfg.unsubscriber(); err != nil {
			t.Fatalf("accepted [http] that cannot make unsubscribe URLs: %v", err)
		}
	})
}
