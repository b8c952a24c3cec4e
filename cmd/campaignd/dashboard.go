package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/admin"
	"github.com/campaignd/campaignd/core/control"
)

// cmdDashboard is `campaignd dashboard`: it asks the running daemon for a
// one-time login link to its dashboard and prints it. Whoever can use the
// control socket may log in; the link works once, for admin.DefaultLinkTTL.
func (a *app) cmdDashboard(ctx context.Context, args []string) error {
	fs := a.flags("dashboard")
	if _, err := a.parse(fs, args, 0, 0, "dashboard"); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	client := &control.Client{SocketPath: cfg.socketPath(), AllowUIDs: cfg.AllowUIDs}
	link, err := client.LoginLink(ctx)
	if errors.Is(err, control.ErrNoDaemon) {
		return core.Errorf(core.EUNAVAILABLE, "dashboard: no daemon answers on %s: the dashboard is served by `campaignd serve` with [admin] listen set", cfg.socketPath())
	}
	if err != nil {
		return err
	}
	return a.print(link, func(w io.Writer) {
		fprintf(w, "%s\n", link.URL)
		fprintf(w, "Open it within %s (until %s); it logs one browser in, once.\n",
			time.Until(link.Expires).Round(time.Minute), link.Expires.Local().Format("15:04:05"))
	})
}

// validate checks the [admin] table: tokens of at least admin.MinTokenLen
// characters, and no listener beyond this machine without admin_token.
// EINVALID naming the key.
func (c AdminConfig) validate() error {
	for _, f := range []struct{ key, v string }{{"admin.admin_token", c.AdminToken}, {"admin.metrics_token", c.MetricsToken}} {
		if f.v != "" && len(f.v) < admin.MinTokenLen {
			return core.Errorf(core.EINVALID, "config: %s: %d characters is too short; use at least %d (e.g. `openssl rand -hex 24`)", f.key, len(f.v), admin.MinTokenLen)
		}
	}
	if c.Listen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return core.Errorf(core.EINVALID, "config: admin.listen: %q: want host:port (e.g. 127.0.0.1:9090)", c.Listen)
	}
	if !loopbackHost(host) && c.AdminToken == "" {
		return core.Errorf(core.EINVALID, "config: admin.listen: %q is reachable from other machines: set admin.admin_token (e.g. \"${CAMPAIGND_ADMIN_TOKEN}\") or listen on a loopback address such as 127.0.0.1", c.Listen)
	}
	return nil
}

// loopbackHost reports whether host (of a listen address) is this machine
// only: localhost or a loopback IP. An empty host is every interface.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loginLinkURL is the URL of a one-time login token on the admin listener
// bound at addr; a wildcard address is named by this host's name.
func loginLinkURL(addr net.Addr, token string) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		host, port = addr.String(), ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			host = name
		}
	}
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(host, port), Path: "/login", RawQuery: "link=" + url.QueryEscape(token)}
	return u.String()
}

// loginLink makes a one-time link on the daemon's admin listener, for
// the control socket's POST /v1/dashboard/login-link.
func (d *daemon) loginLink(ctx context.Context) (*control.LoginLink, error) {
	dash := d.dash.Load()
	if dash == nil {
		return nil, core.Errorf(core.EUNAVAILABLE, "this daemon has no dashboard: set [admin] listen in its configuration and restart it")
	}
	link := dash.auth.NewLoginLink()
	return &control.LoginLink{URL: loginLinkURL(dash.addr, link.Token), Expires: link.Expires}, nil
}

// adminDashboard is what loginLink needs of the admin listener, set once it
// listens.
type adminDashboard struct {
	auth *admin.Auth
	addr net.Addr
}
