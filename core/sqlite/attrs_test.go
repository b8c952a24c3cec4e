package sqlite_test

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/campaignd/campaignd/core/sqlite"
)

// FuzzDecodeAttrs checks the attrs decoder against encoding/json: for any
// column text it returns what json.Unmarshal returns (or fails when it
// fails), and every map appendAttrs writes reads back unchanged.
func FuzzDecodeAttrs(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":"b"}`, `{"city":"Lyon","plan":"pro"}`, `{"a":"b","a":"c"}`, `{"":""}`,
		`{"q":"say \"hi\""}`, `{"t":"tab\there"}`, `{"u":"\u00e9"}`, `{ "a" : "b" }`, `{"a":1}`,
		`{"a":"b",}`, `{"a":"b"`, `{"a""b"}`, "{\"a\":\"\xff\"}", "{\"a\":\"\x01\"}", `null`, `[]`, `{"a":null}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := sqlite.DecodeAttrs(s)
		var want map[string]string
		wantErr := json.Unmarshal([]byte(s), &want)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("DecodeAttrs(%q) error %v, json.Unmarshal error %v", s, err, wantErr)
		}
		if err == nil && !maps.Equal(got, want) {
			t.Fatalf("DecodeAttrs(%q) = %q, json.Unmarshal gives %q", s, got, want)
		}
		if err != nil || len(want) == 0 {
			return
		}
		// Round trip: what appendAttrs writes for the decoded map decodes
		// to the same map.
		back, err := sqlite.DecodeAttrs(string(sqlite.AppendAttrs(nil, want)))
		if err != nil || !maps.Equal(back, want) {
			t.Fatalf("round trip of %q: %q, %v", want, back, err)
		}
	})
}
