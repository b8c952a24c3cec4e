package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// The example documents every key, and is itself a valid configuration.
func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	t.Setenv("EMAIL_HOST", "")
	data, err := os.ReadFile("../../campaignd.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig()
	if err := decodeConfig("campaignd.toml.example", data, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.finish(); err != nil {
		t.Fatal(err)
	}
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			key := f.Tag.Get("toml")
			if key == "" {
				continue
			}
			if !strings.Contains(string(data), key+" =") && !strings.Contains(string(data), "["+key) && !strings.Contains(string(data), "."+key+"]") {
				t.Errorf("campaignd.toml.example does not document %s%s", prefix, key)
			}
			if f.Type.Kind() == reflect.Struct && f.Type.Name() != "duration" {
				walk(prefix+key+".", f.Type)
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
	walk("senders.NAME.", reflect.TypeOf(SenderConfig{}))
}

// loadConfigText loads data as a campaignd.toml.
func loadConfigText(t *testing.T, data string) (*Config, error) {
	t.Helper()
	path := t.TempDir() + "/campaignd.toml"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return loadConfig(path)
}

// Issue 12 item 4: ${A:-${B}} with A unset was the literal "${B}" (taken
// as a 25-character cron secret). Defaults nest, an unused default is not
// expanded, and a "${" that is not a reference is an error naming the key.
func TestConfigEnvDefaultsNest(t *testing.T) {
	t.Setenv("CD_NEST_B", "from-b-0123456789")
	t.Setenv("CD_NEST_SET", "set-0123456789abcdef")
	for raw, want := range map[string]string{
		"${CD_NEST_UNSET_A:-${CD_NEST_B}}":                      "from-b-0123456789",
		"${CD_NEST_UNSET_A:-${CD_NEST_UNSET_C:-lit}}x":          "litx",
		"${CD_NEST_SET:-${CD_NEST_UNSET_C}}":                    "set-0123456789abcdef",
		"${CD_NEST_UNSET_A:-}":                                  "",
		"a$b$":                                                  "a$b$",
		"${CD_NEST_UNSET_A:-${CD_NEST_UNSET_C:-${CD_NEST_B}}}!": "from-b-0123456789!",
	} {
		c := &Config{}
		got, err := c.expandEnv("http.cron_secret", raw)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, raw := range []string{
		"${CD_NEST_UNSET_A:-${CD_NEST_UNSET_C}}",
		"${CD_NEST_UNSET_A:-${B}",
		"${1X}",
		"${}",
		"x${CD_NEST_B",
		"${CD_NEST_B:x}",
		strings.Repeat("${CD_NEST_UNSET_A:-", 20) + strings.Repeat("}", 20),
	} {
		c := &Config{}
		got, err := c.expandEnv("http.cron_secret", raw)
		if err == nil || !strings.Contains(err.Error(), "http.cron_secret") {
			t.Errorf("%s: %q, %v; want an error naming the key", raw, got, err)
		}
	}
	_, err := loadConfigText(t, "[http]\ncron_secret = \"${CD_NEST_UNSET_A:-${CD_NEST_UNSET_C}}\"\n")
	if err == nil || !strings.Contains(err.Error(), "http.cron_secret") || !strings.Contains(err.Error(), "CD_NEST_UNSET_C") {
		t.Errorf("load: %v, want an error naming http.cron_secret and CD_NEST_UNSET_C", err)
	}
}

// Issue 12 item 5: a message_id_domain that makes every Message-ID
// illegal is refused at load (so by config check), naming the key.
func TestConfigMessageIDDomainRefused(t *testing.T) {
	for _, d := range []string{"ex ample.com", "example.com>", "ex\\r\\nample.com", "exa\\nmple.com", "bücher.example", "a..b", ".a", "a@b"} {
		_, err := loadConfigText(t, "[queue]\nmessage_id_domain = \""+d+"\"\n")
		if err == nil || !strings.Contains(err.Error(), "queue.message_id_domain") {
			t.Errorf("%q: %v, want an error naming queue.message_id_domain", d, err)
		}
	}
	for _, d := range []string{"", "example.com", "mail-1.example.co.uk", "localhost"} {
		if _, err := loadConfigText(t, "[queue]\nmessage_id_domain = \""+d+"\"\n"); err != nil {
			t.Errorf("%q: %v", d, err)
		}
	}
}

// A malformed ${...} in a secret's value is placed by its byte offset:
// the error quotes none of the secret; other keys still quote the text.
func TestConfigExpandErrorHidesSecret(t *testing.T) {
	_, err := loadConfigText(t, "[senders.mail]\nplugin = \"smtp\"\n[senders.mail.options]\npassword = \"hunter${2secret}\"\n")
	if err == nil || !strings.Contains(err.Error(), "senders.mail.options.password") || !strings.Contains(err.Error(), "byte offset 6") ||
		strings.Contains(err.Error(), "secret}") {
		t.Errorf("load: %v, want the key and byte offset 6, none of the value", err)
	}
	_, err = loadConfigText(t, "[http]\ncron_secret = \"abc${oops\"\n")
	if err == nil || !strings.Contains(err.Error(), "http.cron_secret") || strings.Contains(err.Error(), "oops") {
		t.Errorf("load: %v, want the key, none of the value", err)
	}
	_, err = loadConfigText(t, "socket_group = \"mail${9x}\"\n")
	if err == nil || !strings.Contains(err.Error(), `"${9x}"`) {
		t.Errorf("load: %v, want the text quoted", err)
	}
}
