package smtpsender_test

import (
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/plugins/smtp/internal/smtpsender"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestParseOptionsDefaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      map[string]string
		env       map[string]string
		wantHost  string
		wantPort  int
		wantTLS   string
		wantAuth  string
		wantUser  string
		wantPass  string
		wantConns int
	}{
		{name: "submission default", opts: map[string]string{"host": "smtp.example.com"},
			wantHost: "smtp.example.com", wantPort: 587, wantTLS: "starttls", wantAuth: "none", wantConns: 5},
		{name: "465 is implicit", opts: map[string]string{"host": "smtp.example.com", "port": "465"},
			wantHost: "smtp.example.com", wantPort: 465, wantTLS: "implicit", wantAuth: "none", wantConns: 5},
		{name: "25 remote is starttls", opts: map[string]string{"host": "mx.example.com", "port": "25"},
			wantHost: "mx.example.com", wantPort: 25, wantTLS: "starttls", wantAuth: "none", wantConns: 5},
		{name: "loopback is plaintext", opts: map[string]string{"host": "127.0.0.1", "port": "1025"},
			wantHost: "127.0.0.1", wantPort: 1025, wantTLS: "none", wantAuth: "none", wantConns: 5},
		{name: "localhost without port", opts: map[string]string{"host": "localhost"},
			wantHost: "localhost", wantPort: 25, wantTLS: "none", wantAuth: "none", wantConns: 5},
		{name: "implicit without port", opts: map[string]string{"host": "h.example", "tls": "implicit"},
			wantHost: "h.example", wantPort: 465, wantTLS: "implicit", wantAuth: "none", wantConns: 5},
		{name: "host:port in host", opts: map[string]string{"host": "h.example:2525"},
			wantHost: "h.example", wantPort: 2525, wantTLS: "starttls", wantAuth: "none", wantConns: 5},
		{name: "ipv6", opts: map[string]string{"host": "[::1]:2525"},
			wantHost: "::1", wantPort: 2525, wantTLS: "none", wantAuth: "none", wantConns: 5},
		{name: "username means plain", opts: map[string]string{"host": "h.example", "username": "u", "password": "p", "max_connections": "2"},
			wantHost: "h.example", wantPort: 587, wantTLS: "starttls", wantAuth: "plain", wantUser: "u", wantPass: "p", wantConns: 2},
		{name: "env fallback", opts: map[string]string{"host": "", "password": ""},
			env:      map[string]string{"EMAIL_HOST": "mail.example.net:465", "EMAIL_USER": "envuser", "EMAIL_PASS": "envpass"},
			wantHost: "mail.example.net", wantPort: 465, wantTLS: "implicit", wantAuth: "plain", wantUser: "envuser", wantPass: "envpass", wantConns: 5},
		{name: "options win over env", opts: map[string]string{"host": "h.example", "username": "opt", "password": "optpass", "auth": "login"},
			env:      map[string]string{"EMAIL_HOST": "other.example", "EMAIL_USER": "envuser", "EMAIL_PASS": "envpass"},
			wantHost: "h.example", wantPort: 587, wantTLS: "starttls", wantAuth: "login", wantUser: "opt", wantPass: "optpass", wantConns: 5},
		{name: "auth none ignores env user", opts: map[string]string{"host": "h.example", "auth": "none"},
			env:      map[string]string{"EMAIL_USER": "envuser", "EMAIL_PASS": "envpass"},
			wantHost: "h.example", wantPort: 587, wantTLS: "starttls", wantAuth: "none", wantUser: "envuser", wantPass: "envpass", wantConns: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := smtpsender.ParseOptions(tc.opts, env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.Host != tc.wantHost || c.Port != tc.wantPort || c.TLS != tc.wantTLS || c.Auth != tc.wantAuth ||
				c.Username != tc.wantUser || c.Password != tc.wantPass || c.MaxConnections != tc.wantConns {
				t.Errorf("got %+v", c)
			}
			if c.Timeout != 30*time.Second || c.IdleTimeout != 60*time.Second || c.Helo == "" {
				t.Errorf("defaults: timeout %v idle %v helo %q", c.Timeout, c.IdleTimeout, c.Helo)
			}
		})
	}
}

func TestParseOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		env  map[string]string
		want []string // substrings of the error
	}{
		{map[string]string{"host": "h", "hots": "x"}, nil, []string{`unknown option "hots"`}},
		{map[string]string{"host": "h", "pasword": "x"}, nil, []string{`unknown option "pasword" (did you mean "password"?)`}},
		{map[string]string{"host": "h", "tls": "ssl"}, nil, []string{`"tls"`, `"ssl"`}},
		{map[string]string{"host": "h", "auth": "cram-md5"}, nil, []string{`"auth"`, `"cram-md5"`}},
		{map[string]string{}, nil, []string{`"host" is required`, "EMAIL_HOST"}},
		{map[string]string{"host": "h", "port": "70000"}, nil, []string{`"port"`, "70000"}},
		{map[string]string{"host": "h:25", "port": "587"}, nil, []string{"conflicts"}},
		{map[string]string{"host": "h", "timeout": "soon"}, nil, []string{`"timeout"`, "soon"}},
		{map[string]string{"host": "h", "timeout": "-1s"}, nil, []string{`"timeout"`}},
		{map[string]string{"host": "h", "idle_timeout": "0s"}, nil, []string{`"idle_timeout"`}},
		{map[string]string{"host": "h", "max_connections": "0"}, nil, []string{`"max_connections"`, `"0"`}},
		{map[string]string{"host": "h", "insecure_skip_verify": "maybe"}, nil, []string{`"insecure_skip_verify"`}},
		{map[string]string{"host": "h", "helo": "two words"}, nil, []string{`"helo"`}},
		{map[string]string{"host": "h", "auth": "plain"}, nil, []string{"needs a username"}},
		{map[string]string{"host": "h", "username": "u"}, nil, []string{"needs a password", "EMAIL_PASS"}},
		{map[string]string{"host": "smtp.example.com", "port": "2525", "tls": "none", "username": "u", "password": "p"}, nil,
			[]string{"in clear", "allow_insecure_auth"}},
	} {
		_, err := smtpsender.ParseOptions(tc.opts, env(tc.env))
		if err == nil {
			t.Errorf("ParseOptions(%v) accepted", tc.opts)
			continue
		}
		msg := err.Error()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("ParseOptions(%v) = %q, want it to mention %s", tc.opts, msg, w)
			}
		}
		if !strings.HasPrefix(msg, "configure smtp: ") {
			t.Errorf("error %q lacks the operation prefix", msg)
		}
	}
	// Plain AUTH over plaintext is fine to loopback or when allowed.
	for _, o := range []map[string]string{
		{"host": "127.0.0.1", "tls": "none", "username": "u", "password": "p"},
		{"host": "smtp.example.com", "tls": "none", "username": "u", "password": "p", "allow_insecure_auth": "true"},
	} {
		if _, err := smtpsender.ParseOptions(o, env(nil)); err != nil {
			t.Errorf("ParseOptions(%v): %v", o, err)
		}
	}
}
