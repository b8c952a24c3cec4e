package main

import (
	"io"
	"runtime"
	"runtime/debug"
)

// version and commit are set at build time by `make build` and `make dist`:
// -ldflags "-X main.version=v1.2.0 -X main.commit=<sha>". A plain `go
// build` leaves version "dev" and takes the commit from the build's VCS
// stamp when there is one.
var (
	version = "dev"
	commit  = ""
)

// versionInfo is what `campaignd version` prints.
type versionInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// buildVersion returns this binary's version, commit ("unknown" when
// neither -ldflags nor the VCS stamp says) and Go version.
func buildVersion() versionInfo {
	v := versionInfo{Version: version, Commit: commit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if v.Commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			dirty := false
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					v.Commit = s.Value
				case "vcs.modified":
					dirty = s.Value == "true"
				}
			}
			if v.Commit != "" && dirty {
				v.Commit += "-dirty"
			}
		}
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

// cmdVersion prints the version, the commit and the Go version it was
// built with: one line, or one JSON object with --json.
func (a *app) cmdVersion(args []string) error {
	if _, err := a.parse(a.flags("version"), args, 0, 0, "version"); err != nil {
		return err
	}
	v := buildVersion()
	return a.print(v, func(w io.Writer) {
		fprintf(w, "campaignd %s (commit %s, %s, %s)\n", v.Version, v.Commit, v.Go, v.Platform)
	})
}
