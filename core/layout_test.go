package core_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/campaignd/campaignd"

// goList returns the import paths `go list` prints for args, one a line.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	return strings.Fields(string(out))
}

// TestDependencyRules holds the layout's rules (README "Layout"): the
// transport stays out of core, core's subpackages never import each other,
// and a plugin needs nothing of the project but the SDK.
func TestDependencyRules(t *testing.T) {
	for _, dep := range goList(t, "-deps", "./core", "./core/sqlite", "./core/control", "./core/web", "./core/bounce", "./sdk") {
		if strings.HasPrefix(dep, "google.golang.org/grpc") || strings.HasPrefix(dep, "github.com/hashicorp/go-plugin") {
			t.Errorf("core or sdk links %s: the plugin transport belongs in sdk/plugin", dep)
			break
		}
	}
	for _, dep := range goList(t, "-deps", "./core") {
		if dep == "net/http" {
			t.Errorf("package core links net/http: HTTP belongs in core/internal/httpx and the listeners")
		}
	}
	for _, pkg := range goList(t, "./sdk") {
		for _, imp := range goList(t, "-f", `{{join .Imports " "}}`, pkg) {
			if strings.HasPrefix(imp, module+"/") {
				t.Errorf("%s imports %s: sdk imports no project package", pkg, imp)
			}
		}
	}
	for _, pkg := range goList(t, "./core/...") {
		if pkg == module+"/core" {
			continue
		}
		for _, imp := range goList(t, "-f", `{{join .Imports " "}}`, pkg) {
			allowed := !strings.HasPrefix(imp, module+"/") || imp == module+"/core" || imp == module+"/sdk" ||
				strings.HasPrefix(imp, module+"/core/internal/")
			if allowed {
				continue
			}
			t.Errorf("%s imports %s: core's subpackages import only core, sdk and core/internal", pkg, imp)
		}
	}
	for _, dep := range goList(t, "-deps", "./plugins/...") {
		if !strings.HasPrefix(dep, module+"/") {
			continue
		}
		if dep != module+"/sdk" && !strings.HasPrefix(dep, module+"/sdk/") && !strings.HasPrefix(dep, module+"/plugins/") {
			t.Errorf("a plugin links %s: plugins import only sdk/...", dep)
		}
	}
}
