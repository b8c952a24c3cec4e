package main_test

import (
	"os"
	"strings"
	"testing"
)

// The README shows this plugin as the example for third-party authors; the
// two must not drift apart.
func TestREADMEShowsThisExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```go\n"+string(src)+"```") {
		t.Fatal("README.md does not show sdk/example/main.go verbatim")
	}
	if n := strings.Count(string(src), "\n"); n >= 30 {
		t.Fatalf("example is %d lines; the README promises under 30", n)
	}
}
