package smtpsender

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/campaignd/campaignd/sdk"
)

// TLS modes accepted by the tls option.
const (
	TLSNone     = "none"     // plaintext SMTP
	TLSStartTLS = "starttls" // plaintext, then STARTTLS before anything else; required, never opportunistic
	TLSImplicit = "implicit" // TLS from the first byte (SMTPS, port 465)
)

// AUTH mechanisms accepted by the auth option.
const (
	AuthNone  = "none"
	AuthPlain = "plain"
	AuthLogin = "login"
)

// Defaults for the options.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultMaxConnections = 5
	DefaultIdleTimeout    = 60 * time.Second
)

// Config is the validated form of a [senders.NAME.options] table.
type Config struct {
	Host               string        // server host name or IP (no port)
	Port               int           // server port
	TLS                string        // TLSNone, TLSStartTLS or TLSImplicit
	Username           string        // AUTH user; empty when Auth is AuthNone
	Password           string        // AUTH password (never logged)
	Auth               string        // AuthNone, AuthPlain or AuthLogin
	Helo               string        // name sent in EHLO/HELO
	Timeout            time.Duration // dial, TLS handshake, each command, a stall in the body
	MaxConnections     int           // open sessions (idle + busy) at most
	IdleTimeout        time.Duration // idle sessions older than this are closed (QUIT)
	InsecureSkipVerify bool          // skip certificate verification (tests only)
	AllowInsecureAuth  bool          // allow AUTH without TLS to a non-loopback host
	DKIM               *DKIM         // signs every message; nil when the dkim_* options are not set
}

// Addr is host:port for dialing.
func (c *Config) Addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// knownOptions lists every option key; anything else is a configuration
// error naming the key.
var knownOptions = []string{
	"host", "port", "tls", "username", "password", "auth", "helo", "timeout",
	"max_connections", "idle_timeout", "insecure_skip_verify", "allow_insecure_auth",
	"dkim_domain", "dkim_selector", "dkim_private_key_file",
}

// secretOptions are the options whose values the host never prints.
var secretOptions = []string{"password"}

// ParseOptions validates the plugin options and applies defaults and the
// EMAIL_HOST, EMAIL_USER and EMAIL_PASS environment fallbacks (getenv is
// os.Getenv in production; tests pass their own).
func ParseOptions(opts map[string]string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if err := sdk.UnknownOption(opts, knownOptions...); err != nil {
		return nil, fmt.Errorf("configure smtp: %w", err)
	}
	get := func(k string) string { return strings.TrimSpace(opts[k]) }

	c := &Config{
		Timeout:        DefaultTimeout,
		MaxConnections: DefaultMaxConnections,
		IdleTimeout:    DefaultIdleTimeout,
	}

	// host, possibly host:port; EMAIL_HOST when the option is empty.
	host, hostSource := get("host"), "host"
	if host == "" {
		host, hostSource = strings.TrimSpace(getenv("EMAIL_HOST")), "EMAIL_HOST"
	}
	if host == "" {
		return nil, fmt.Errorf("configure smtp: option \"host\" is required (or set EMAIL_HOST)")
	}
	hostPort := ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		host, hostPort = h, p
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if host == "" || strings.ContainsAny(host, " /\t") {
		return nil, fmt.Errorf("configure smtp: option %q: invalid host %q", hostSource, host)
	}
	c.Host = host

	portStr := get("port")
	if portStr != "" && hostPort != "" && portStr != hostPort {
		return nil, fmt.Errorf("configure smtp: option \"port\" = %q conflicts with the port in %s (%q)", portStr, hostSource, hostPort)
	}
	if portStr == "" {
		portStr = hostPort
	}
	if portStr != "" {
		p, err := strconv.Atoi(portStr)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("configure smtp: option \"port\": invalid value %q (want 1-65535)", portStr)
		}
		c.Port = p
	}

	// tls: explicit, else derived from port and host.
	switch v := strings.ToLower(get("tls")); v {
	case TLSNone, TLSStartTLS, TLSImplicit:
		c.TLS = v
	case "":
		// Secure by default: implicit TLS on 465, plaintext only to a
		// loopback relay, STARTTLS (required) everywhere else.
		switch {
		case c.Port == 465:
			c.TLS = TLSImplicit
		case isLoopback(c.Host):
			c.TLS = TLSNone
		default:
			c.TLS = TLSStartTLS
		}
	default:
		return nil, fmt.Errorf("configure smtp: option \"tls\": invalid value %q (want none, starttls or implicit)", opts["tls"])
	}
	if c.Port == 0 {
		switch c.TLS {
		case TLSImplicit:
			c.Port = 465
		case TLSStartTLS:
			c.Port = 587
		default:
			c.Port = 25
		}
	}

	c.Username = opts["username"]
	if c.Username == "" {
		c.Username = getenv("EMAIL_USER")
	}
	c.Password = opts["password"]
	if c.Password == "" {
		c.Password = getenv("EMAIL_PASS")
	}

	switch v := strings.ToLower(get("auth")); v {
	case AuthNone, AuthPlain, AuthLogin:
		c.Auth = v
	case "":
		c.Auth = AuthNone
		if c.Username != "" {
			c.Auth = AuthPlain
		}
	default:
		return nil, fmt.Errorf("configure smtp: option \"auth\": invalid value %q (want plain, login or none)", opts["auth"])
	}
	if c.Auth != AuthNone && c.Username == "" {
		return nil, fmt.Errorf("configure smtp: option \"auth\" = %q needs a username (option \"username\" or EMAIL_USER)", c.Auth)
	}
	if c.Auth != AuthNone && c.Password == "" {
		return nil, fmt.Errorf("configure smtp: option \"auth\" = %q needs a password (option \"password\" or EMAIL_PASS)", c.Auth)
	}

	c.Helo = get("helo")
	if c.Helo == "" {
		c.Helo = defaultHelo()
	}
	if strings.ContainsAny(c.Helo, " \t\r\n\x00") {
		return nil, fmt.Errorf("configure smtp: option \"helo\": invalid value %q", c.Helo)
	}

	var err error
	if c.Timeout, err = parseDuration(opts, "timeout", DefaultTimeout); err != nil {
		return nil, err
	}
	if c.IdleTimeout, err = parseDuration(opts, "idle_timeout", DefaultIdleTimeout); err != nil {
		return nil, err
	}
	if v := get("max_connections"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, fmt.Errorf("configure smtp: option \"max_connections\": invalid value %q (want 1-1000)", v)
		}
		c.MaxConnections = n
	}
	if c.InsecureSkipVerify, err = parseBool(opts, "insecure_skip_verify"); err != nil {
		return nil, err
	}
	if c.AllowInsecureAuth, err = parseBool(opts, "allow_insecure_auth"); err != nil {
		return nil, err
	}

	if c.Auth != AuthNone && c.TLS == TLSNone && !c.AllowInsecureAuth && !isLoopback(c.Host) {
		return nil, fmt.Errorf("configure smtp: auth %q with tls = \"none\" would send the password in clear to %s; use tls = \"starttls\" or \"implicit\" (or allow_insecure_auth = true)", c.Auth, c.Host)
	}
	if c.DKIM, err = parseDKIM(opts); err != nil {
		return nil, err
	}
	return c, nil
}

func parseDuration(opts map[string]string, key string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(opts[key])
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("configure smtp: option %q: invalid duration %q (e.g. \"30s\")", key, v)
	}
	return d, nil
}

func parseBool(opts map[string]string, key string) (bool, error) {
	v := strings.TrimSpace(opts[key])
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("configure smtp: option %q: invalid boolean %q", key, v)
	}
	return b, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// defaultHelo is the machine's host name, or "localhost" when it has none.
// Servers that check HELO want a fully qualified name: set helo then.
func defaultHelo() string {
	h, err := os.Hostname()
	if err != nil || h == "" || strings.ContainsAny(h, " \t") {
		return "localhost"
	}
	return h
}
