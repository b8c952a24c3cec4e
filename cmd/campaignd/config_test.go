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
