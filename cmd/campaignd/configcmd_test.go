package main

import (
	"strings"
	"testing"

	"github.com/campaignd/campaignd/sdk"
)

// TestExpandEnvRecordsSources: expansion records the variables a value
// came from, and only those that were set (a ${VAR:-default} whose VAR is
// unset came from the file).
func TestExpandEnvRecordsSources(t *testing.T) {
	t.Setenv("CD_UNIT_A", "a")
	t.Setenv("CD_UNIT_B", "b")
	c := &Config{}
	for key, raw := range map[string]string{
		"one":     "${CD_UNIT_A}",
		"two":     "x${CD_UNIT_A}-${CD_UNIT_B}",
		"default": "${CD_UNIT_SURELY_UNSET:-d}",
		"literal": "plain",
	} {
		if _, err := c.expandEnv(key, raw); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"one": "${CD_UNIT_A}", "two": "${CD_UNIT_A}, ${CD_UNIT_B}"}
	if len(c.envRefs) != len(want) {
		t.Errorf("envRefs = %v, want only %v", c.envRefs, want)
	}
	for k, w := range want {
		if got := refs(c.envRefs[k]); got != w {
			t.Errorf("%s: %q, want %q", k, got, w)
		}
	}
}

// TestShownValuesNeverShowASecret: a secret from the environment shows as
// its variable, a literal one as redacted, anything else as itself; the
// path of a file that holds a secret is not a secret.
func TestShownValuesNeverShowASecret(t *testing.T) {
	got := shownValues(map[string]string{
		"password": "hunter2", "api_key": "SG.x", "host": "smtp.example.com", "dsn": "smtps://u:pw@h",
		"dkim_private_key_file": "/etc/campaignd/dkim.pem",
	}, map[string][]string{"password": {"EMAIL_PASS"}, "host": {"EMAIL_HOST"}, "dsn": {"DSN"}})
	want := map[string]string{"password": "${EMAIL_PASS}", "api_key": "(set, redacted)", "host": "smtp.example.com", "dsn": "${DSN}",
		"dkim_private_key_file": "/etc/campaignd/dkim.pem"}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s shown as %q, want %q", k, got[k], w)
		}
	}
}

// TestZoneLineSplitsTXT: a TXT value longer than 255 octets (a DKIM RSA
// key) is printed as several quoted strings of at most 255 that join back
// to the value; quotes and backslashes are escaped; other types as given.
func TestZoneLineSplitsTXT(t *testing.T) {
	long := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", 392)
	got := zoneLine(sdk.DNSRecord{Name: "s1._domainkey.example.com", Type: "TXT", Value: long})
	want := `s1._domainkey.example.com. IN TXT "` + long[:255] + `" "` + long[255:] + `"`
	if got != want {
		t.Errorf("zoneLine =\n%s\nwant\n%s", got, want)
	}
	for _, tc := range []struct {
		r    sdk.DNSRecord
		want string
	}{
		{sdk.DNSRecord{Name: "s._domainkey.example.com.", Type: "txt", Value: `a "b" \c`}, `s._domainkey.example.com. IN TXT "a \"b\" \\c"`},
		{sdk.DNSRecord{Name: "x.example.com", Type: "TXT", Value: ""}, `x.example.com. IN TXT ""`},
		{sdk.DNSRecord{Name: "bounce.example.com", Type: "MX", Value: "10 mx.example.com."}, `bounce.example.com. IN MX 10 mx.example.com.`},
	} {
		if got := zoneLine(tc.r); got != tc.want {
			t.Errorf("zoneLine(%+v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}
