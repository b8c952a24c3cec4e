package sgsender_test

import (
	"strings"
	"testing"
	"time"

	"github.com/campaignd/campaignd/plugins/sendgrid/internal/sgsender"
	"github.com/campaignd/campaignd/sdk"
)

const optKey = "SG.options-test-key-4f9d2c"

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParseOptionsDefaults(t *testing.T) {
	c, err := sgsender.ParseOptions(map[string]string{"api_key": optKey}, env())
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKey != optKey || c.APIKeyFromEnv || c.APIURL != sgsender.DefaultAPIURL ||
		c.Endpoint != "https://api.sendgrid.com/v3/mail/send" || c.Timeout != 30*time.Second ||
		c.Sandbox || c.Categories != nil || c.ASMGroupID != 0 {
		t.Errorf("defaults: %s", c)
	}
	for _, s := range []string{c.String(), c.GoString()} {
		if strings.Contains(s, optKey) {
			t.Errorf("Config string shows the key: %s", s)
		}
	}
}

func TestParseOptionsAPIKeyFromEnv(t *testing.T) {
	c, err := sgsender.ParseOptions(map[string]string{"api_key": ""}, env("SENDGRID_API_KEY", optKey))
	if err != nil || c.APIKey != optKey || !c.APIKeyFromEnv {
		t.Fatalf("env fallback: %v %v", c, err)
	}
	c, err = sgsender.ParseOptions(map[string]string{"api_key": "SG.option"}, env("SENDGRID_API_KEY", optKey))
	if err != nil || c.APIKey != "SG.option" || c.APIKeyFromEnv {
		t.Fatalf("option over env: %v %v", c, err)
	}
}

func TestParseOptionsValues(t *testing.T) {
	c, err := sgsender.ParseOptions(map[string]string{
		"api_key":      optKey,
		"api_url":      "https://api.eu.sendgrid.com/v3/mail/send/",
		"timeout":      "5s",
		"sandbox":      "true",
		"categories":   " news , weekly,promo ",
		"asm_group_id": "42",
	}, env())
	if err != nil {
		t.Fatal(err)
	}
	if c.APIURL != "https://api.eu.sendgrid.com" || c.Endpoint != "https://api.eu.sendgrid.com/v3/mail/send" ||
		c.Timeout != 5*time.Second || !c.Sandbox || strings.Join(c.Categories, "|") != "news|weekly|promo" || c.ASMGroupID != 42 {
		t.Errorf("parsed %s", c)
	}
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:9/", "http://[::1]:80", "https://proxy.internal/sendgrid"} {
		if _, err := sgsender.ParseOptions(map[string]string{"api_key": optKey, "api_url": u}, env()); err != nil {
			t.Errorf("api_url %s: %v", u, err)
		}
	}
}

func TestParseOptionsErrors(t *testing.T) {
	cases := []struct {
		name string
		opts map[string]string
		want string // in the message
	}{
		{"no key", map[string]string{}, `option "api_key" is required (or set SENDGRID_API_KEY)`},
		{"empty key", map[string]string{"api_key": "  "}, `"api_key" is required`},
		{"unexpanded", map[string]string{"api_key": "${SENDGRID_API_KEY}"}, "unexpanded"},
		{"key with space", map[string]string{"api_key": "SG.secret part"}, `option "api_key" contains a space`},
		{"key not ASCII", map[string]string{"api_key": "SG.clé"}, "non-ASCII"},
		{"unknown option", map[string]string{"api_key": optKey, "apikey": "x"}, `unknown option "apikey"`},
		{"ftp url", map[string]string{"api_key": optKey, "api_url": "ftp://api.sendgrid.com"}, `option "api_url"`},
		{"plain http", map[string]string{"api_key": optKey, "api_url": "http://api.sendgrid.com"}, "refusing plain http"},
		{"no host", map[string]string{"api_key": optKey, "api_url": "https://"}, "no host"},
		{"credentials in url", map[string]string{"api_key": optKey, "api_url": "https://u:hunter2@api.sendgrid.com"}, "credentials"},
		{"query in url", map[string]string{"api_key": optKey, "api_url": "https://api.sendgrid.com/?x=1"}, "query"},
		{"zero timeout", map[string]string{"api_key": optKey, "timeout": "0s"}, `option "timeout"`},
		{"negative timeout", map[string]string{"api_key": optKey, "timeout": "-1s"}, `option "timeout"`},
		{"bare number timeout", map[string]string{"api_key": optKey, "timeout": "30"}, `option "timeout"`},
		{"sandbox maybe", map[string]string{"api_key": optKey, "sandbox": "maybe"}, `option "sandbox"`},
		{"11 categories", map[string]string{"api_key": optKey, "categories": "a,b,c,d,e,f,g,h,i,j,k"}, "at most 10"},
		{"category twice", map[string]string{"api_key": optKey, "categories": "a,b,a"}, "listed twice"},
		{"category too long", map[string]string{"api_key": optKey, "categories": strings.Repeat("x", 256)}, "longer than 255"},
		{"category not ASCII", map[string]string{"api_key": optKey, "categories": "café"}, "non-ASCII"},
		{"only commas", map[string]string{"api_key": optKey, "categories": ",,"}, `option "categories"`},
		{"asm zero", map[string]string{"api_key": optKey, "asm_group_id": "0"}, `option "asm_group_id"`},
		{"asm text", map[string]string{"api_key": optKey, "asm_group_id": "news"}, `option "asm_group_id"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := sgsender.ParseOptions(c.opts, env())
			if err == nil {
				t.Fatal("accepted")
			}
			e := sdk.AsError(err)
			if e.Class != sdk.ClassConfig || !strings.Contains(e.Message, c.want) {
				t.Errorf("got %v (class %s), want ClassConfig containing %q", err, e.Class, c.want)
			}
			for _, secret := range []string{optKey, "SG.secret part", "SG.clé", "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a secret", err)
				}
			}
		})
	}
}
