package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/bounce"
	"github.com/campaignd/campaignd/core/web"
	"github.com/campaignd/campaignd/sdk/plugin"
)

// Config is campaignd.toml. Every key has a default, so a missing file
// works; campaignd.toml.example documents each one.
type Config struct {
	Database        string   `toml:"database"`
	Socket          string   `toml:"socket"`
	SocketMode      string   `toml:"socket_mode"`
	SocketGroup     string   `toml:"socket_group"`
	AllowUIDs       []int    `toml:"allow_uids"`
	PluginDir       string   `toml:"plugin_dir"`
	LogLevel        string   `toml:"log_level"`
	CLILogLevel     string   `toml:"cli_log_level"`
	LogFormat       string   `toml:"log_format"`
	TickInterval    duration `toml:"tick_interval"`
	LockTimeout     duration `toml:"lock_timeout"`
	ShutdownTimeout duration `toml:"shutdown_timeout"`
	DefaultFrom     string   `toml:"default_from"`
	DefaultSender   string   `toml:"default_sender"`

	Queue   QueueConfig             `toml:"queue"`
	Senders map[string]SenderConfig `toml:"senders"`
	HTTP    HTTPConfig              `toml:"http"`
	Admin   AdminConfig             `toml:"admin"`
	Bounces BouncesConfig           `toml:"bounces"`

	path   string   // the file it came from (absolute), "" for defaults
	looked []string // where loadConfig looked, for messages when path is ""
	dbFlag bool     // Database came from --db, not from the file
	// envRefs maps a key (e.g. "http.cron_secret",
	// "senders.mail.options.password") to the ${VAR}s its value was
	// expanded from, so config check can name a secret's variable instead
	// of printing its value.
	envRefs map[string][]string
}

// QueueConfig is the [queue] table: the engine's limits.
type QueueConfig struct {
	BatchSize          int      `toml:"batch_size" json:"batch_size"`
	DefaultConcurrency int      `toml:"default_concurrency" json:"default_concurrency"`
	MaxAttempts        int      `toml:"max_attempts" json:"max_attempts"`
	InDoubt            string   `toml:"in_doubt" json:"in_doubt"`
	TickTimeout        duration `toml:"tick_timeout" json:"tick_timeout"`
	LeaseMargin        duration `toml:"lease_margin" json:"lease_margin"`
	RetryBase          duration `toml:"retry_base" json:"retry_base"`
	RetryMax           duration `toml:"retry_max" json:"retry_max"`
	ThrottleDelay      duration `toml:"throttle_delay" json:"throttle_delay"`
	MessageIDDomain    string   `toml:"message_id_domain" json:"message_id_domain"`
	RenderTimeout      duration `toml:"render_timeout" json:"render_timeout"`
	RenderMaxBytes     int64    `toml:"render_max_bytes" json:"render_max_bytes"`
}

// HTTPConfig is the [http] table: the optional public listener (webhooks,
// one-click unsubscribe, the cron endpoints). Off while Listen is empty.
type HTTPConfig struct {
	Listen            string `toml:"listen"`
	PublicURL         string `toml:"public_url"`
	UnsubscribeSecret string `toml:"unsubscribe_secret"`
	CronSecret        string `toml:"cron_secret"`
	SendGridPublicKey string `toml:"sendgrid_public_key"`
	// SendGridUnsigned opts in to unsigned SendGrid webhook posts; see
	// web.Config.SendGridUnsigned.
	SendGridUnsigned bool `toml:"sendgrid_webhook_unsigned"`
}

// AdminConfig is the [admin] table: the admin listener (the dashboard,
// /metrics, /healthz and /readyz). Off while Listen is empty; see
// AdminConfig.validate.
type AdminConfig struct {
	Listen string `toml:"listen"`
	// AdminToken logs in to the dashboard; MetricsToken, when set, is
	// required of /metrics as a bearer token.
	AdminToken   string `toml:"admin_token"`
	MetricsToken string `toml:"metrics_token"`
}

// BouncesConfig is the [bounces] table: the bounce mailbox the daemon
// reads every Interval (and `campaignd bounces fetch` once), and the VERP
// return path every message is sent with. The mailbox is off while Host is
// empty; ReturnPath works without it (another reader, or none yet).
type BouncesConfig struct {
	Protocol   string   `toml:"protocol" json:"protocol"`
	Host       string   `toml:"host" json:"host"`
	Port       int      `toml:"port" json:"port"`
	TLS        string   `toml:"tls" json:"tls"`
	Username   string   `toml:"username" json:"username"`
	Password   string   `toml:"password" json:"-"`
	Interval   duration `toml:"interval" json:"interval"`
	ReturnPath string   `toml:"return_path" json:"return_path"`
}

// mailbox reports whether a bounce mailbox is configured.
func (b BouncesConfig) mailbox() bool { return b.Host != "" }

// validate checks [bounces] after ${VAR} expansion and fills the port
// from the TLS mode. Errors are EINVALID and name the key.
func (b *BouncesConfig) validate() error {
	bad := func(key, format string, args ...any) error {
		return core.Errorf(core.EINVALID, "config: bounces.%s: %s", key, fmt.Sprintf(format, args...))
	}
	if b.Protocol != "pop3" {
		return bad("protocol", "%q is not supported: use \"pop3\" (IMAP is not)", b.Protocol)
	}
	switch bounce.TLSMode(b.TLS) {
	case bounce.TLSImplicit, bounce.TLSStartTLS, bounce.TLSNone:
	default:
		return bad("tls", "%q must be \"tls\" (implicit, port 995), \"starttls\" (port 110) or \"none\" (a server on this host only)", b.TLS)
	}
	if b.Port < 0 || b.Port > 65535 {
		return bad("port", "%d is outside 1..65535", b.Port)
	}
	if !b.mailbox() {
		if b.Username != "" || b.Password != "" {
			return bad("host", "required when username or password is set: the POP3 server of the bounce mailbox")
		}
		return nil
	}
	if isIPv6(b.Host) {
		b.Host = strings.Trim(b.Host, "[]") // Addr adds the brackets
	} else if strings.ContainsAny(b.Host, " /:@[]") {
		return bad("host", "%q must be a host name or IP address (the port goes in bounces.port)", b.Host)
	}
	if b.Port == 0 {
		b.Port = 110
		if b.TLS == string(bounce.TLSImplicit) {
			b.Port = 995
		}
	}
	if b.TLS == string(bounce.TLSNone) && !loopbackHost(b.Host) {
		return bad("tls", "\"none\" would send the mailbox password in clear text to %s: use \"tls\" or \"starttls\" (\"none\" is for a server on this host)", b.Host)
	}
	if b.Username == "" {
		return bad("username", "required when bounces.host is set")
	}
	if strings.ContainsAny(b.Username, "\r\n") {
		return bad("username", "must not contain line breaks")
	}
	if strings.ContainsAny(b.Password, "\r\n") {
		return bad("password", "must not contain line breaks")
	}
	if b.Interval.Duration <= 0 {
		return bad("interval", "must be positive (e.g. \"5m\"): how often the daemon reads the mailbox")
	}
	return nil
}

// credentials checks what only reading the mailbox needs: its password.
// It is not part of validate, so a command that never reads the mailbox
// (an operator's `campaign list`, a cron tick) runs where the password's
// variable is not set (password = "${BOUNCES_PASSWORD:-}"); serve, bounces
// fetch and config check call it. EINVALID naming the key.
func (b BouncesConfig) credentials() error {
	if b.mailbox() && b.Password == "" {
		return core.Errorf(core.EINVALID, "config: bounces.password: required to read the mailbox at bounces.host: set it, e.g. password = \"${BOUNCES_PASSWORD:-}\" with BOUNCES_PASSWORD set where `campaignd serve` and `campaignd bounces fetch` run")
	}
	return nil
}

// pop3 is the mailbox's client configuration.
func (b BouncesConfig) pop3() bounce.Config {
	return bounce.Config{Host: b.Host, Port: b.Port, TLS: bounce.TLSMode(b.TLS), Username: b.Username, Password: b.Password}
}

// isIPv6 reports whether host is an IPv6 address, bracketed or not.
func isIPv6(host string) bool {
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.To4() == nil
}

// SenderConfig is one [senders.NAME] table.
type SenderConfig struct {
	Plugin  string         `toml:"plugin"`
	SHA256  string         `toml:"sha256"`
	Options map[string]any `toml:"options"`
	// Rate is the sender's quota: a list of "N/unit" windows (see
	// core.ParseRate); one string is taken as a list of one.
	Rate any `toml:"rate"`
	// options is Options rendered to strings with ${ENV} expanded.
	options map[string]string
	// rates is Rate parsed.
	rates []core.Rate
}

// duration is a TOML string such as "50s" or "5m".
type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (use e.g. \"30s\", \"5m\")", b)
	}
	d.Duration = v
	return nil
}

func (d duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// defaultConfig returns the configuration used when no file is given.
func defaultConfig() *Config {
	l := core.DefaultLimits()
	return &Config{
		Database:        "./campaignd.db",
		SocketMode:      "0600",
		LogLevel:        "info",
		CLILogLevel:     "warn",
		LogFormat:       "text",
		LockTimeout:     duration{60 * time.Second},
		ShutdownTimeout: duration{30 * time.Second},
		DefaultFrom:     "${SUPPORT_EMAIL:-}",
		Queue: QueueConfig{
			BatchSize: l.BatchSize, DefaultConcurrency: l.DefaultConcurrency, MaxAttempts: l.MaxAttempts,
			InDoubt: string(l.InDoubt), TickTimeout: duration{l.TickTimeout}, LeaseMargin: duration{l.LeaseMargin},
			RetryBase: duration{l.RetryBase}, RetryMax: duration{l.RetryMax}, ThrottleDelay: duration{l.ThrottleDelay},
			RenderTimeout: duration{l.RenderTimeout}, RenderMaxBytes: l.RenderMaxBytes,
		},
		Senders: map[string]SenderConfig{},
		HTTP: HTTPConfig{
			// Expanded by finish like any ${VAR}, which records where the
			// value came from for config check.
			CronSecret:        "${CRON_SECRET:-}",
			UnsubscribeSecret: "${CAMPAIGND_UNSUBSCRIBE_SECRET:-}",
		},
		Bounces: BouncesConfig{Protocol: "pop3", TLS: string(bounce.TLSImplicit), Interval: duration{5 * time.Minute}},
	}
}

// systemConfig is the last place loadConfig looks for a configuration.
const systemConfig = "/etc/campaignd/campaignd.toml"

// loadConfig finds and reads the configuration: path (--config), else
// $CAMPAIGND_CONFIG, else ./campaignd.toml, else systemConfig, else
// defaults only. A file named by --config or $CAMPAIGND_CONFIG must exist.
// Relative paths in a file (database, socket, plugin_dir, a plugin given as
// a path, the outbox's dir, the smtp plugin's dkim_private_key_file) are
// relative to the file's directory, so the working directory of a cron job
// changes nothing; without a file they are relative to the working
// directory. Unknown keys, bad values and unset
// ${ENV} references are EINVALID errors naming the key and, where known,
// the line.
func loadConfig(path string) (*Config, error) {
	cfg := defaultConfig()
	type place struct {
		path     string
		explicit bool
	}
	var places []place
	if path != "" {
		places = append(places, place{path, true})
	} else if env := os.Getenv("CAMPAIGND_CONFIG"); env != "" {
		places = append(places, place{env, true})
	} else {
		places = append(places, place{"campaignd.toml", false}, place{systemConfig, false})
	}
	for _, p := range places {
		data, err := os.ReadFile(p.path)
		if err != nil {
			if !p.explicit && errors.Is(err, os.ErrNotExist) {
				cfg.looked = append(cfg.looked, lookedName(p.path))
				continue
			}
			return nil, core.Errorf(core.EINVALID, "config: %v", err)
		}
		if err := decodeConfig(p.path, data, cfg); err != nil {
			return nil, err
		}
		if cfg.path, err = filepath.Abs(p.path); err != nil {
			return nil, core.Errorf(core.EINVALID, "config %s: %v", p.path, err)
		}
		break
	}
	return cfg.finish()
}

// lookedName is how a place loadConfig looked in reads in a message.
func lookedName(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// source says which configuration is in use, for messages: the file, or
// that none was found and where loadConfig looked.
func (c *Config) source() string {
	src := "config: " + c.file()
	if c.dbFlag {
		src = "from --db; " + src
	}
	return src
}

// file is the configuration file in use, or that none was found and
// where loadConfig looked: source without its label, for a line that
// has its own (status's "config:").
func (c *Config) file() string {
	if c.path == "" {
		return "none found; " + c.lookedIn()
	}
	return c.path
}

// lookedIn lists the places loadConfig looked in, in order.
func (c *Config) lookedIn() string {
	return "looked in --config, $CAMPAIGND_CONFIG, " + strings.Join(c.looked, ", ")
}

// pathOptions are the first-party plugins' options that hold a path:
// resolvePaths makes them absolute like the file's other paths.
var pathOptions = map[string][]string{"outbox": {"dir"}, "smtp": {"dkim_private_key_file"}}

// resolvePaths makes every relative path key absolute against the config
// file's directory (the working directory when there is no file).
func (c *Config) resolvePaths() error {
	base := filepath.Dir(c.path)
	if c.path == "" {
		wd, err := os.Getwd()
		if err != nil {
			return core.Errorf(core.EINVALID, "config: working directory: %v", err)
		}
		base = wd
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	c.Database, c.Socket, c.PluginDir = canonicalPath(abs(c.Database)), abs(c.Socket), abs(c.PluginDir)
	for name, s := range c.Senders {
		// A plugin given by short name lives in plugin_dir; one given as
		// a path is a path like any other.
		if strings.Contains(s.Plugin, "/") {
			s.Plugin = abs(s.Plugin)
		}
		for _, k := range pathOptions[s.Plugin] {
			if s.options[k] != "" {
				s.options[k] = abs(s.options[k])
			}
		}
		c.Senders[name] = s
	}
	return nil
}

// canonicalPath resolves the symbolic links of an absolute database path
// (the file's when it exists, else its directory's), because the lock
// file, the default socket and the default outbox are derived from it: one
// database reached through two paths (a symlinked directory, a symlink to
// the file) must have one lock, or two daemons would run on it. A path
// that does not resolve (a missing directory) is returned as is, for the
// open to report.
func canonicalPath(p string) string {
	if p == "" {
		return p
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	dir, base := filepath.Split(p)
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		return filepath.Join(r, base)
	}
	return p
}

func decodeConfig(path string, data []byte, cfg *Config) error {
	md, err := toml.Decode(string(data), cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return core.Errorf(core.EINVALID, "config %s: line %d: %s", path, pe.Position.Line, pe.Message)
		}
		return core.Errorf(core.EINVALID, "config %s: %v", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		line := keyLine(data, k)
		where := ""
		if line > 0 {
			where = fmt.Sprintf("line %d: ", line)
		}
		return core.Errorf(core.EINVALID, "config %s: %sunknown key %q", path, where, k.String())
	}
	return nil
}

// keyLine finds the line defining a dotted key by tracking [table] headers;
// 0 when not found. BurntSushi/toml keeps key positions private.
func keyLine(data []byte, key toml.Key) int {
	if len(key) == 0 {
		return 0
	}
	table, last := strings.Join(key[:len(key)-1], "."), key[len(key)-1]
	if len(key) >= 1 && tableLine(data, key.String()) > 0 {
		return tableLine(data, key.String())
	}
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "[") {
			cur = strings.Trim(l, "[] ")
			continue
		}
		if cur == table {
			if name, _, ok := strings.Cut(l, "="); ok && strings.Trim(strings.TrimSpace(name), `"`) == last {
				return n
			}
		}
	}
	return 0
}

func tableLine(data []byte, table string) int {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "[") && strings.Trim(l, "[] ") == table {
			return n
		}
	}
	return 0
}

// expandEnv replaces ${VAR} and ${VAR:-default}, where default may itself
// hold references (${A:-${B:-x}}) expanded only when used. An unset VAR
// without a default, and a "${" that does not start a well-formed
// reference (unterminated, or not a variable name), are errors naming the
// key: a value is never accepted with a literal "${" left in it (a value
// that truly needs one comes from a variable, whose value is not
// expanded). It records in c.envRefs the set variables key's value came
// from.
func (c *Config) expandEnv(key, s string) (string, error) {
	out, rest, err := c.expandDepth(key, s, s, false, true, 0)
	if err == nil && rest != "" {
		err = fmt.Errorf("unexpected %s", quoteAt(key, s, rest))
	}
	if err != nil {
		return "", core.Errorf(core.EINVALID, "config: %s: %v", key, err)
	}
	return out, nil
}

// maxEnvDepth bounds the nesting of defaults, so a hostile file cannot
// recurse without end.
const maxEnvDepth = 8

// expandDepth expands s up to its end or, inside a default (nested), up to
// the "}" that closes it, returning the expansion and what follows that
// "}" (the "}" included). Without eval it only parses: a default that is
// not used names no variable and may name unset ones. src is key's whole
// value, s a suffix of it: errors place s in src (quoteAt).
func (c *Config) expandDepth(key, src, s string, nested, eval bool, depth int) (string, string, error) {
	if depth > maxEnvDepth {
		return "", "", fmt.Errorf("${...} nested more than %d deep", maxEnvDepth)
	}
	var b strings.Builder
	for len(s) > 0 {
		if nested && s[0] == '}' {
			return b.String(), s, nil
		}
		if !strings.HasPrefix(s, "${") {
			b.WriteByte(s[0])
			s = s[1:]
			continue
		}
		body := s[2:]
		n := 0
		for n < len(body) && (body[n] == '_' || body[n] >= 'A' && body[n] <= 'Z' || body[n] >= 'a' && body[n] <= 'z' || n > 0 && body[n] >= '0' && body[n] <= '9') {
			n++
		}
		name, after := body[:n], body[n:]
		if name == "" {
			return "", "", fmt.Errorf("%s is not a ${VAR} reference", quoteAt(key, src, s))
		}
		v, set := os.LookupEnv(name)
		var def string
		hasDef := false
		switch {
		case strings.HasPrefix(after, "}"):
			after = after[1:]
		case strings.HasPrefix(after, ":-"):
			d, rest, err := c.expandDepth(key, src, after[2:], true, eval && !set, depth+1)
			if err != nil {
				return "", "", err
			}
			if !strings.HasPrefix(rest, "}") {
				return "", "", fmt.Errorf("%s is not closed by }", quoteAt(key, src, s))
			}
			def, hasDef, after = d, true, rest[1:]
		default:
			return "", "", fmt.Errorf("%s is not a ${VAR} or ${VAR:-default} reference", quoteAt(key, src, s))
		}
		switch {
		case !eval:
		case set:
			if c.envRefs == nil {
				c.envRefs = map[string][]string{}
			}
			c.envRefs[key] = append(c.envRefs[key], name)
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		default:
			return "", "", fmt.Errorf("environment variable %s is not set", name)
		}
		s = after
	}
	if nested {
		return "", "", errors.New("a ${VAR:-default} is not closed by }")
	}
	return b.String(), "", nil
}

// quoteAt shows rest, a suffix of key's value src, in an error: quoted
// (at most 32 bytes of it), or, when key is secret (secretKey), as its
// byte offset in src, so a typo in a password prints none of it.
func quoteAt(key, src, rest string) string {
	if secretKey(key) {
		return fmt.Sprintf("the text at byte offset %d", len(src)-len(rest))
	}
	if len(rest) > 32 {
		return strconv.Quote(rest[:32] + "...")
	}
	return strconv.Quote(rest)
}

// finish expands ${ENV}, fills derived defaults and validates every value.
func (c *Config) finish() (*Config, error) {
	var err error
	for _, f := range []struct {
		key string
		p   *string
	}{{"database", &c.Database}, {"socket", &c.Socket}, {"socket_mode", &c.SocketMode}, {"socket_group", &c.SocketGroup},
		{"plugin_dir", &c.PluginDir}, {"log_level", &c.LogLevel}, {"cli_log_level", &c.CLILogLevel}, {"log_format", &c.LogFormat},
		{"default_from", &c.DefaultFrom}, {"default_sender", &c.DefaultSender},
		{"queue.in_doubt", &c.Queue.InDoubt}, {"queue.message_id_domain", &c.Queue.MessageIDDomain},
		{"http.listen", &c.HTTP.Listen}, {"http.public_url", &c.HTTP.PublicURL}, {"http.unsubscribe_secret", &c.HTTP.UnsubscribeSecret},
		{"http.cron_secret", &c.HTTP.CronSecret}, {"http.sendgrid_public_key", &c.HTTP.SendGridPublicKey},
		{"admin.listen", &c.Admin.Listen}, {"admin.admin_token", &c.Admin.AdminToken}, {"admin.metrics_token", &c.Admin.MetricsToken},
		{"bounces.protocol", &c.Bounces.Protocol}, {"bounces.host", &c.Bounces.Host}, {"bounces.tls", &c.Bounces.TLS},
		{"bounces.username", &c.Bounces.Username}, {"bounces.password", &c.Bounces.Password},
		{"bounces.return_path", &c.Bounces.ReturnPath}} {
		if *f.p, err = c.expandEnv(f.key, *f.p); err != nil {
			return nil, err
		}
	}
	if c.Database == "" {
		return nil, core.Errorf(core.EINVALID, "config: database: must not be empty")
	}
	if c.PluginDir == "" {
		if exe, err := os.Executable(); err == nil {
			c.PluginDir = filepath.Dir(exe)
		}
	}
	if _, err := c.socketMode(); err != nil {
		return nil, err
	}
	for _, f := range []struct{ key, v string }{{"log_level", c.LogLevel}, {"cli_log_level", c.CLILogLevel}} {
		switch strings.ToLower(f.v) {
		case "trace", "debug", "info", "warn", "error", "off":
		default:
			return nil, core.Errorf(core.EINVALID, "config: %s: %q must be trace, debug, info, warn, error or off", f.key, f.v)
		}
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return nil, core.Errorf(core.EINVALID, "config: log_format: %q must be text or json", c.LogFormat)
	}
	if c.TickInterval.Duration < 0 {
		return nil, core.Errorf(core.EINVALID, "config: tick_interval: must not be negative")
	}
	if err := c.limits().Validate(); err != nil {
		return nil, core.Errorf(core.EINVALID, "config: %s", core.ErrorMessage(err))
	}
	if d := c.Queue.MessageIDDomain; d != "" && !validMessageIDDomain(d) {
		return nil, core.Errorf(core.EINVALID,
			"config: queue.message_id_domain: %q must be a host name (letters, digits, - and . only), as it ends every Message-ID", d)
	}
	if c.HTTP.PublicURL != "" {
		u, err := url.Parse(c.HTTP.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, core.Errorf(core.EINVALID, "config: http.public_url: %q must be an http(s) URL", c.HTTP.PublicURL)
		}
		if u.User != nil {
			// It is written into every message's List-Unsubscribe header.
			return nil, core.Errorf(core.EINVALID, "config: http.public_url: must not carry a user or password (%s): every recipient would see it", u.Redacted())
		}
		if len(c.HTTP.UnsubscribeSecret) < 16 {
			return nil, core.Errorf(core.EINVALID, "config: http.unsubscribe_secret: must be set (at least 16 characters) when http.public_url is")
		}
	}
	if c.HTTP.Listen != "" {
		// What serve's listener would refuse, refused now (and by config check).
		if err := c.webConfig().Validate(); err != nil {
			return nil, core.Errorf(core.EINVALID, "config: [http]: %s", core.ErrorMessage(err))
		}
	}
	if err := c.Admin.validate(); err != nil {
		return nil, err
	}
	if err := c.Bounces.validate(); err != nil {
		return nil, err
	}
	if _, ok := c.Senders["outbox"]; !ok {
		// The embedded default: a first run needs no mail server.
		c.Senders["outbox"] = SenderConfig{Plugin: "outbox"}
	}
	for name, s := range c.Senders {
		if !validSenderName(name) {
			return nil, core.Errorf(core.EINVALID, "config: senders.%s: a sender name may use only letters, digits, - and _", name)
		}
		for _, f := range []struct {
			key string
			p   *string
		}{{"plugin", &s.Plugin}, {"sha256", &s.SHA256}} {
			if *f.p, err = c.expandEnv("senders."+name+"."+f.key, *f.p); err != nil {
				return nil, err
			}
		}
		if s.Plugin == "" {
			return nil, core.Errorf(core.EINVALID, "config: senders.%s.plugin: required (e.g. \"smtp\")", name)
		}
		if s.SHA256 != "" {
			if b := strings.TrimSpace(s.SHA256); len(b) != 64 || strings.Trim(strings.ToLower(b), "0123456789abcdef") != "" {
				return nil, core.Errorf(core.EINVALID, "config: senders.%s.sha256: must be 64 hex digits", name)
			}
		}
		if s.rates, err = parseSenderRates(name, s.Rate); err != nil {
			return nil, err
		}
		s.options = map[string]string{}
		for k, v := range s.Options {
			key := "senders." + name + ".options." + k
			var str string
			switch v := v.(type) {
			case string:
				str = v
			case int64, float64, bool:
				str = fmt.Sprint(v)
			case []any:
				parts := make([]string, len(v))
				for i, e := range v {
					parts[i] = fmt.Sprint(e)
				}
				str = strings.Join(parts, ",")
			default:
				return nil, core.Errorf(core.EINVALID, "config: %s: must be a string, number, boolean or array", key)
			}
			if str, err = c.expandEnv(key, str); err != nil {
				return nil, err
			}
			s.options[k] = str
		}
		c.Senders[name] = s
	}
	if c.DefaultSender != "" {
		if _, ok := c.Senders[c.DefaultSender]; !ok {
			return nil, core.Errorf(core.EINVALID, "config: default_sender: %q is not a configured sender (configured: %s)",
				c.DefaultSender, strings.Join(c.senderNames(), ", "))
		}
	}
	if err := c.resolvePaths(); err != nil {
		return nil, err
	}
	return c, nil
}

// validMessageIDDomain reports whether d can be the right-hand side of a
// Message-ID as a dot-atom a receiving server accepts: an ASCII host name
// of at most 253 characters, labels of letters, digits and "-" of 1..63
// characters. Anything else (a space, ">", CR/LF, non-ASCII) would make
// every message of every campaign fail, so it is refused where it is
// given.
func validMessageIDDomain(d string) bool {
	if len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !(b == '-' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z') {
				return false
			}
		}
	}
	return true
}

func validSenderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func (c *Config) socketMode() (os.FileMode, error) {
	m, err := strconv.ParseUint(c.SocketMode, 8, 32)
	if err != nil || m > 0o777 {
		return 0, core.Errorf(core.EINVALID, "config: socket_mode: %q must be an octal mode such as \"0600\"", c.SocketMode)
	}
	return os.FileMode(m), nil
}

// socketPath is the control socket: the configured one, or campaignd.sock
// beside the database.
func (c *Config) socketPath() string {
	if c.Socket != "" {
		return c.Socket
	}
	return filepath.Join(filepath.Dir(c.Database), "campaignd.sock")
}

// outboxDir is where the built-in outbox sender writes when its dir option
// is not set: an "outbox" directory beside the database.
func (c *Config) outboxDir() string {
	return filepath.Join(filepath.Dir(c.Database), "outbox")
}

// dryRunDir reports whether the named sender is the outbox plugin, which
// delivers nothing, and the directory its .eml files go to.
func (c *Config) dryRunDir(sender string) (string, bool) {
	s, ok := c.Senders[sender]
	if !ok || s.Plugin != "outbox" {
		return "", false
	}
	if dir := s.options["dir"]; dir != "" {
		return dir, true
	}
	return c.outboxDir(), true
}

// defaultSender is the sender of a campaign created without --sender:
// default_sender, else the built-in outbox while it is the only sender. With
// a real sender configured and no default_sender, guessing would either
// send mail the operator meant to test, or "send" a newsletter into .eml
// files counted as SENT: it is an EINVALID error naming the senders.
func (c *Config) defaultSender() (string, error) {
	if c.DefaultSender != "" {
		return c.DefaultSender, nil
	}
	var real []string
	for _, name := range c.senderNames() {
		if _, dry := c.dryRunDir(name); !dry {
			real = append(real, name)
		}
	}
	if len(real) == 0 {
		return "outbox", nil
	}
	return "", core.Errorf(core.EINVALID,
		"sender: required: configured senders are %s (outbox writes .eml files and delivers nothing): pass --sender NAME, or set default_sender",
		strings.Join(c.senderNames(), ", "))
}

// unsubscriber returns the one-click unsubscribe token maker, or nil when
// http.public_url is not set (messages then carry no List-Unsubscribe).
func (c *Config) unsubscriber() (*core.Unsubscriber, error) {
	if c.HTTP.PublicURL == "" {
		return nil, nil
	}
	return core.NewUnsubscriber(c.HTTP.UnsubscribeSecret, c.HTTP.PublicURL)
}

// webConfig is the public listener's configuration as [http] gives it;
// serve adds the unsubscriber and the logger.
func (c *Config) webConfig() web.Config {
	return web.Config{Listen: c.HTTP.Listen, CronSecret: c.HTTP.CronSecret, SendGridPublicKey: c.HTTP.SendGridPublicKey,
		SendGridWebhook: c.hasSendGridSender(), SendGridUnsigned: c.HTTP.SendGridUnsigned}
}

// hasSendGridSender reports whether a sender uses the SendGrid plugin (by
// name or by a path to its binary): only then is its webhook served.
func (c *Config) hasSendGridSender() bool {
	for _, s := range c.Senders {
		if s.Plugin == "sendgrid" || filepath.Base(s.Plugin) == plugin.PluginPrefix+"sendgrid" {
			return true
		}
	}
	return false
}

// engineOptions are the engine options every process builds the same way.
func (c *Config) engineOptions() ([]core.EngineOption, error) {
	u, err := c.unsubscriber()
	if err != nil || u == nil {
		return nil, err
	}
	return []core.EngineOption{core.WithUnsubscribeURL(u.URL)}, nil
}

// limits converts [queue] to the engine's Limits.
func (c *Config) limits() core.Limits {
	q := c.Queue
	return core.Limits{
		BatchSize: q.BatchSize, DefaultConcurrency: q.DefaultConcurrency, MaxAttempts: q.MaxAttempts,
		InDoubt: core.InDoubtPolicy(q.InDoubt), TickTimeout: q.TickTimeout.Duration, LeaseMargin: q.LeaseMargin.Duration,
		RetryBase: q.RetryBase.Duration, RetryMax: q.RetryMax.Duration, ThrottleDelay: q.ThrottleDelay.Duration,
		MessageIDDomain: q.MessageIDDomain, ReturnPath: c.Bounces.ReturnPath,
		RenderTimeout: q.RenderTimeout.Duration, RenderMaxBytes: q.RenderMaxBytes,
		Rates: c.rateTable(),
	}
}

// rateTable is every sender's rate, parsed; nil when no sender has one.
func (c *Config) rateTable() *core.RateTable {
	rates := map[string][]core.Rate{}
	for name, s := range c.Senders {
		if len(s.rates) > 0 {
			rates[name] = s.rates
		}
	}
	if len(rates) == 0 {
		return nil
	}
	return core.NewRateTable(rates)
}

// parseSenderRates reads [senders.NAME] rate: a list of "N/unit" strings
// (or one string). EINVALID naming senders.NAME.rate and the bad entry.
func parseSenderRates(name string, v any) ([]core.Rate, error) {
	key := "senders." + name + ".rate"
	var list []string
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		list = []string{v}
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, core.Errorf(core.EINVALID, "config: %s: %v is not a string: write e.g. rate = [\"30/minute\", \"500/day\"]", key, e)
			}
			list = append(list, s)
		}
	default:
		return nil, core.Errorf(core.EINVALID, "config: %s: must be a list of strings such as [\"30/minute\", \"500/day\"]", key)
	}
	rates, err := core.ParseRates(list)
	if err != nil {
		return nil, core.Errorf(core.EINVALID, "config: %s: %s", key, core.ErrorMessage(err))
	}
	return rates, nil
}

// secretWords mark option keys whose values config check never prints.
var secretWords = []string{"pass", "secret", "key", "token", "credential", "auth", "bearer", "dsn", "cookie", "private", "signature", "session"}

// secretKey reports whether the value of key (an option name, or a dotted
// config key such as "http.cron_secret") is kept from messages: key holds
// one of secretWords anywhere, erring on the safe side. A key ending in
// "_file" names where a secret is kept (dkim_private_key_file), not the
// secret: the operator checking the config needs to see that path.
func secretKey(key string) bool {
	key = strings.ToLower(key)
	if strings.HasSuffix(key, "_file") {
		return false
	}
	for _, w := range secretWords {
		if strings.Contains(key, w) {
			return true
		}
	}
	return false
}

// redacted returns the sender options safe to print. A plugin's options
// are its own, so which hold secrets is guessed on the safe side: a value
// is hidden when its key names a secret (secretWords); a URL's password
// is hidden, and a value that looks like user:password@host without
// parsing as such a URL is hidden whole.
func redacted(opts map[string]string) map[string]string {
	out := make(map[string]string, len(opts))
	for k, v := range opts {
		out[k] = v
		if v == "" {
			continue
		}
		switch u, err := url.Parse(strings.TrimSpace(v)); {
		case secretKey(k):
			out[k] = "(set, redacted)"
		case err == nil && u.User != nil:
			out[k] = u.Redacted()
		case strings.Contains(v[:max(strings.LastIndexByte(v, '@'), 0)], ":"):
			// user:password@host without a scheme, or a URL that does
			// not parse: hide it all rather than guess.
			out[k] = "(set, redacted)"
		}
	}
	return out
}

// senderNames returns the configured sender names, sorted.
func (c *Config) senderNames() []string {
	names := make([]string, 0, len(c.Senders))
	for n := range c.Senders {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
