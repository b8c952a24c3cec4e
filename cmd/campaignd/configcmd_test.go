package main

import (
	"testing"
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
// its variable, a literal one as redacted, anything else as itself.
func TestShownValuesNeverShowASecret(t *testing.T) {
	got := shownValues(map[string]string{
		"password": "hunter2", "api_key": "SG.x", "host": "smtp.example.com", "dsn": "smtps://u:pw@h",
	}, map[string][]string{"password": {"EMAIL_PASS"}, "host": {"EMAIL_HOST"}, "dsn": {"DSN"}})
	want := map[string]string{"password": "${EMAIL_PASS}", "api_key": "(set, redacted)", "host": "smtp.example.com", "dsn": "${DSN}"}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s shown as %q, want %q", k, got[k], w)
		}
	}
}
