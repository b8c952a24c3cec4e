package sgsender

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/campaignd/campaignd/sdk"
)

// Defaults for the options.
const (
	// DefaultAPIURL is SendGrid's global API; EU subusers use
	// https://api.eu.sendgrid.com.
	DefaultAPIURL = "https://api.sendgrid.com"
	// DefaultTimeout bounds one mail/send request, connection included.
	DefaultTimeout = 30 * time.Second
	// APIKeyEnv is read when the api_key option is empty.
	APIKeyEnv = "SENDGRID_API_KEY"
	// MailSendPath is the v3 Mail Send endpoint, appended to api_url.
	MailSendPath = "/v3/mail/send"
)

// Documented request limits the options are checked against.
const (
	maxCategories  = 10
	maxCategoryLen = 255
)

// Config is the validated form of a [senders.NAME.options] table.
type Config struct {
	// APIKey is the bearer key. It is never logged and never appears in
	// an error: String and GoString leave it out.
	APIKey string
	// APIKeyFromEnv is true when APIKey came from SENDGRID_API_KEY.
	APIKeyFromEnv bool
	// APIURL is the API base URL without a trailing slash.
	APIURL string
	// Endpoint is APIURL + MailSendPath.
	Endpoint string
	// Timeout bounds one request (connect, TLS, upload, answer).
	Timeout time.Duration
	// Sandbox sets mail_settings.sandbox_mode: SendGrid validates the
	// request and answers 200 without delivering anything.
	Sandbox bool
	// Categories are sent with every message (at most 10, unique, ASCII,
	// at most 255 characters each).
	Categories []string
	// ASMGroupID is the unsubscribe group (asm.group_id); 0 means none.
	ASMGroupID int
}

// String describes c without its API key.
func (c *Config) String() string {
	return fmt.Sprintf("sendgrid config{api_url=%s timeout=%s sandbox=%t categories=%q asm_group_id=%d api_key=[redacted]}",
		c.APIURL, c.Timeout, c.Sandbox, c.Categories, c.ASMGroupID)
}

// GoString is String, so that %#v does not print the API key either.
func (c *Config) GoString() string { return c.String() }

// knownOptions lists every option; anything else is a configuration error
// naming it.
var knownOptions = []string{"api_key", "api_url", "timeout", "sandbox", "categories", "asm_group_id"}

// secretOptions are the options whose values the host never prints.
var secretOptions = []string{"api_key"}

// ParseOptions validates the plugin options, applies the defaults and the
// SENDGRID_API_KEY fallback (getenv is os.Getenv when nil). Every error is
// a ClassConfig *sdk.Error that names the option; none contains the API
// key.
func ParseOptions(opts map[string]string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if err := sdk.UnknownOption(opts, knownOptions...); err != nil {
		return nil, sdk.ConfigError("configure sendgrid: %v", err)
	}
	get := func(k string) string { return strings.TrimSpace(opts[k]) }
	c := &Config{Timeout: DefaultTimeout}

	c.APIKey = get("api_key")
	if c.APIKey == "" {
		c.APIKey, c.APIKeyFromEnv = strings.TrimSpace(getenv(APIKeyEnv)), true
	}
	if err := checkAPIKey(c.APIKey, c.APIKeyFromEnv); err != nil {
		return nil, err
	}

	raw := get("api_url")
	if raw == "" {
		raw = DefaultAPIURL
	}
	base, err := parseAPIURL(raw)
	if err != nil {
		return nil, sdk.ConfigError("configure sendgrid: option \"api_url\": %v", err)
	}
	c.APIURL, c.Endpoint = base, base+MailSendPath

	if v := get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, sdk.ConfigError("configure sendgrid: option \"timeout\": invalid value %q (want a positive duration such as 30s)", v)
		}
		c.Timeout = d
	}

	if v := get("sandbox"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, sdk.ConfigError("configure sendgrid: option \"sandbox\": invalid value %q (want true or false)", v)
		}
		c.Sandbox = b
	}

	if v := get("categories"); v != "" {
		cats, err := parseCategories(v)
		if err != nil {
			return nil, sdk.ConfigError("configure sendgrid: option \"categories\": %v", err)
		}
		c.Categories = cats
	}

	if v := get("asm_group_id"); v != "" {
		id, err := strconv.Atoi(v)
		if err != nil || id <= 0 {
			return nil, sdk.ConfigError("configure sendgrid: option \"asm_group_id\": invalid value %q (want a positive integer unsubscribe group id)", v)
		}
		c.ASMGroupID = id
	}
	return c, nil
}

// checkAPIKey rejects a missing or malformed key without ever quoting it.
func checkAPIKey(key string, fromEnv bool) error {
	source := `option "api_key"`
	if fromEnv {
		source = APIKeyEnv
	}
	switch {
	case key == "":
		return sdk.ConfigError("configure sendgrid: option \"api_key\" is required (or set %s)", APIKeyEnv)
	case strings.HasPrefix(key, "${"):
		// The host expands ${VAR}; a literal reference means the variable
		// was not expanded, and sending it would only earn a 401 per send.
		return sdk.ConfigError("configure sendgrid: %s holds an unexpanded ${...} reference", source)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c > '~' {
			// Go's HTTP client would refuse the header anyway; saying so
			// here names the option instead of failing every send.
			return sdk.ConfigError("configure sendgrid: %s contains a space, control or non-ASCII character", source)
		}
	}
	return nil
}

// parseAPIURL validates the base URL and returns it without a trailing
// slash or a trailing /v3/mail/send. Plain http is allowed only to a
// loopback host (a local fake or proxy): anywhere else the API key would
// cross the network in clear text.
func parseAPIURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("invalid URL %q: scheme must be https (or http to a loopback host)", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("invalid URL %q: no host", raw)
	}
	if u.User != nil {
		return "", fmt.Errorf("invalid URL %q: credentials in the URL are not supported (use api_key)", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("invalid URL %q: a query or fragment is not supported", raw)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("refusing plain http to %s: the API key would travel unencrypted (use https)", u.Host)
	}
	base := strings.TrimRight(u.String(), "/")
	base = strings.TrimSuffix(base, MailSendPath)
	return strings.TrimRight(base, "/"), nil
}

// isLoopback reports whether host is localhost or a loopback IP.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseCategories splits a comma-separated list and checks it against the
// documented limits, so a bad list fails at start-up instead of as a 400
// on every message.
func parseCategories(v string) ([]string, error) {
	var out []string
	for part := range strings.SplitSeq(v, ",") {
		c := strings.TrimSpace(part)
		if c == "" {
			continue
		}
		switch {
		case len(c) > maxCategoryLen:
			return nil, fmt.Errorf("category %.20q... is longer than %d characters", c, maxCategoryLen)
		case slices.Contains(out, c):
			return nil, fmt.Errorf("category %q is listed twice", c)
		}
		for i := 0; i < len(c); i++ {
			if c[i] < ' ' || c[i] > '~' {
				return nil, fmt.Errorf("category %q contains a non-ASCII or control character", c)
			}
		}
		out = append(out, c)
	}
	if len(out) > maxCategories {
		return nil, fmt.Errorf("%d categories given, SendGrid allows at most %d", len(out), maxCategories)
	}
	if len(out) == 0 {
		return nil, errors.New("no category in a non-empty value")
	}
	return out, nil
}
