package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/core/bounce"
	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
)

// checkTimeout bounds each sender's plugin start and configuration, and
// separately its --connect session.
const checkTimeout = 30 * time.Second

// checkedConfig is what config check prints: the effective configuration,
// each secret shown as the ${VAR} it came from or as "(set, redacted)",
// never its value, and what became of each sender's check.
type checkedConfig struct {
	File        string `json:"file"`
	Database    string `json:"database"`
	Socket      string `json:"socket"`
	SocketMode  string `json:"socket_mode"`
	SocketGroup string `json:"socket_group,omitempty"`
	AllowUIDs   []int  `json:"allow_uids,omitempty"`
	Plugins     string `json:"plugin_dir"`
	LogLevel    string `json:"log_level"`
	CLILogLevel string `json:"cli_log_level"`
	LogFormat   string `json:"log_format"`
	// DatabaseExists is false until init, campaign create or serve creates it.
	DatabaseExists  bool           `json:"database_exists"`
	DefaultSender   string         `json:"default_sender"`
	TickInterval    string         `json:"tick_interval"`
	LockTimeout     string         `json:"lock_timeout"`
	ShutdownTimeout string         `json:"shutdown_timeout"`
	DefaultFrom     string         `json:"default_from"`
	Queue           QueueConfig    `json:"queue"`
	HTTP            checkedHTTP    `json:"http"`
	Bounces         checkedBounces `json:"bounces"`
	// Env maps each key whose value came from the environment (e.g.
	// "http.cron_secret", "senders.mail.plugin") to its ${VAR} references;
	// sender options are in their sender's Env.
	Env     map[string]string            `json:"env,omitempty"`
	Senders map[string]checkedSenderConf `json:"senders"`
}

// checkedHTTP is the [http] table as config check prints it.
type checkedHTTP struct {
	Listen            string `json:"listen"`
	PublicURL         string `json:"public_url"`
	UnsubscribeSecret string `json:"unsubscribe_secret"`
	CronSecret        string `json:"cron_secret"`
	SendGridPublicKey string `json:"sendgrid_public_key"`
}

// checkedBounces is the [bounces] table as config check prints it.
type checkedBounces struct {
	Protocol   string `json:"protocol"`
	Host       string `json:"host"`
	Port       int    `json:"port"`
	TLS        string `json:"tls"`
	Username   string `json:"username"`
	Password   string `json:"password"`
	Interval   string `json:"interval"`
	ReturnPath string `json:"return_path"`
	// Connect, with --connect and a mailbox only: "ok" when a POP3
	// session logged in, else what went wrong.
	Connect string `json:"connect,omitempty"`
}

type checkedSenderConf struct {
	Plugin  string            `json:"plugin"`
	Path    string            `json:"path"`
	SHA256  string            `json:"sha256,omitempty"`
	Options map[string]string `json:"options"`
	// Rate is the sender's quota windows, as configured.
	Rate []string `json:"rate,omitempty"`
	// Env maps each option whose value came from the environment (a
	// ${VAR} in the file, or the plugin's fallback variable for an option
	// left empty) to its ${VAR}.
	Env map[string]string `json:"env,omitempty"`
	// Check is "ok" when the plugin started and accepted its options,
	// else what went wrong.
	Check string `json:"check"`
	// Connect, with --connect only: "ok", "not supported" (the plugin has
	// no Check call), or what went wrong.
	Connect string `json:"connect,omitempty"`
	// DNSRecords are the records the plugin asks the operator to publish
	// for this configuration (a DKIM key's TXT record), from its Info.
	DNSRecords []sdk.DNSRecord `json:"dns_records,omitempty"`
}

// Check outcomes as printed.
const (
	checkOK           = "ok"
	checkNotSupported = "not supported"
)

// configCheck is `campaignd config check`.
func (a *app) configCheck(ctx context.Context, args []string) error {
	fs := a.flags("config check")
	connect := fs.Bool("connect", false, "also open one real session through each sender (SMTP: connect, EHLO, STARTTLS, AUTH, QUIT; SendGrid: one read-only authenticated request)")
	if _, err := a.parse(fs, args, 0, 0, "config check [--connect]"); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	pcs := pluginConfigs(cfg, a.log)
	out := describeConfig(cfg, pcs)
	problems := checkSenders(ctx, cfg, pcs, *connect, out.Senders)
	if err := cfg.Bounces.credentials(); err != nil {
		problems = append(problems, core.ErrorMessage(err))
	}
	if *connect && cfg.Bounces.mailbox() {
		out.Bounces.Connect = checkMailbox(ctx, cfg)
		if out.Bounces.Connect != checkOK {
			problems = append(problems, "bounces: "+out.Bounces.Connect)
		}
	}
	if err := a.print(out, func(w io.Writer) { printConfig(w, cfg, out, *connect) }); err != nil {
		return err
	}
	if len(problems) == 0 {
		return nil
	}
	for _, p := range problems[:len(problems)-1] {
		fprintf(a.stderr, "campaignd: %s\n", p)
	}
	return core.Errorf(core.EINVALID, "%s", problems[len(problems)-1])
}

// describeConfig is cfg as config check prints it, before any plugin runs.
func describeConfig(cfg *Config, pcs map[string]plugin.PluginConfig) checkedConfig {
	out := checkedConfig{
		File: cfg.path, Database: cfg.Database, Socket: cfg.socketPath(), SocketMode: cfg.SocketMode,
		SocketGroup: cfg.SocketGroup, AllowUIDs: cfg.AllowUIDs, Plugins: cfg.PluginDir, LogLevel: cfg.LogLevel,
		TickInterval: cfg.TickInterval.String(), LockTimeout: cfg.LockTimeout.String(),
		ShutdownTimeout: cfg.ShutdownTimeout.String(), DefaultFrom: cfg.DefaultFrom, Queue: cfg.Queue,
		CLILogLevel: cfg.CLILogLevel, LogFormat: cfg.LogFormat, DatabaseExists: cfg.databaseExists() == nil,
		DefaultSender: cfg.DefaultSender,
		Env:           map[string]string{}, Senders: map[string]checkedSenderConf{},
	}
	if out.File == "" {
		out.File = "(none: defaults; " + cfg.lookedIn() + ")"
	}
	top := map[string]string{
		"http.listen": cfg.HTTP.Listen, "http.public_url": cfg.HTTP.PublicURL,
		"http.unsubscribe_secret": cfg.HTTP.UnsubscribeSecret, "http.cron_secret": cfg.HTTP.CronSecret,
		"http.sendgrid_public_key": cfg.HTTP.SendGridPublicKey,
	}
	b := cfg.Bounces
	top["bounces.password"], top["bounces.username"], top["bounces.host"] = b.Password, b.Username, b.Host
	shown := shownValues(top, cfg.envRefs)
	out.Bounces = checkedBounces{Protocol: b.Protocol, Host: shown["bounces.host"], Port: b.Port, TLS: b.TLS,
		Username: shown["bounces.username"], Password: shown["bounces.password"], Interval: b.Interval.String(),
		ReturnPath: b.ReturnPath}
	out.HTTP = checkedHTTP{Listen: shown["http.listen"], PublicURL: shown["http.public_url"],
		UnsubscribeSecret: shown["http.unsubscribe_secret"], CronSecret: shown["http.cron_secret"],
		SendGridPublicKey: shown["http.sendgrid_public_key"]}
	for key, vars := range cfg.envRefs {
		if !strings.Contains(key, ".options.") { // options are in their sender's Env
			out.Env[key] = refs(vars)
		}
	}
	for name, pc := range pcs {
		path, _ := pc.Path()
		opts, sources := effectiveOptions(cfg, name, pc)
		s := checkedSenderConf{Plugin: pc.Plugin, Path: path, SHA256: pc.SHA256,
			Options: shownOptions(opts, sources, nil), Env: map[string]string{}}
		for _, r := range cfg.Senders[name].rates {
			s.Rate = append(s.Rate, r.String())
		}
		for k, vars := range sources {
			s.Env[k] = refs(vars)
		}
		out.Senders[name] = s
	}
	return out
}

// checkMailbox logs in to the bounce mailbox and quits, deleting
// nothing: "ok", or what went wrong.
func checkMailbox(ctx context.Context, cfg *Config) string {
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	c, err := bounce.Dial(cctx, cfg.Bounces.pop3())
	if err == nil {
		err = c.Quit()
	}
	if err != nil {
		return err.Error()
	}
	return checkOK
}

// effectiveOptions returns a sender's options as its plugin sees them,
// including the values its fallback variables give options left empty,
// and for each option the variables it came from.
func effectiveOptions(cfg *Config, name string, pc plugin.PluginConfig) (map[string]string, map[string][]string) {
	opts := maps.Clone(pc.Options)
	sources := map[string][]string{}
	prefix := "senders." + name + ".options."
	for key, vars := range cfg.envRefs {
		if k, ok := strings.CutPrefix(key, prefix); ok {
			sources[k] = vars
		}
	}
	for _, kv := range pc.Env {
		v, val, _ := strings.Cut(kv, "=")
		if k := fallbackOption[v]; k != "" && opts[k] == "" && val != "" {
			opts[k], sources[k] = val, []string{v}
		}
	}
	return opts, sources
}

// shownOptions is a sender's options as config check prints them: only an
// option the plugin declared (info, from its Info call; nil before the
// plugin ran or when it could not start) and did not declare secret is
// shown as is, and then only when redacted would show it; every other
// value is hidden, as its ${VAR} references when it came from the
// environment. So a plugin built before it could declare its options has
// them all hidden, and a secret whose key no word list would guess
// ("pw", "api") is hidden once its plugin says so.
func shownOptions(values map[string]string, sources map[string][]string, info *sdk.Info) map[string]string {
	out := shownValues(values, sources)
	for k, v := range values {
		public := info != nil && slices.Contains(info.Options, k) && !slices.Contains(info.SecretOptions, k)
		if public || v == "" {
			continue
		}
		out[k] = "(set, redacted)"
		if len(sources[k]) > 0 {
			out[k] = refs(sources[k])
		}
	}
	return out
}

// shownValues is redacted(values), except that a hidden value that came
// from the environment is shown as its ${VAR} references instead.
func shownValues(values map[string]string, sources map[string][]string) map[string]string {
	out := redacted(values)
	for k, v := range out {
		if v != values[k] && len(sources[k]) > 0 {
			out[k] = refs(sources[k])
		}
	}
	return out
}

// refs renders variable names as ${A}, ${B}.
func refs(vars []string) string {
	parts := make([]string, len(vars))
	for i, v := range vars {
		parts[i] = "${" + v + "}"
	}
	return strings.Join(slices.Compact(parts), ", ")
}

// checkSenders starts every configured sender's plugin at once, lets it
// validate its options (Configure) and, with connect, open one real
// session (the optional sdk.Checker call). It records each outcome in
// senders and returns one line per problem, sorted by sender name.
func checkSenders(ctx context.Context, cfg *Config, pcs map[string]plugin.PluginConfig, connect bool, senders map[string]checkedSenderConf) []string {
	var mu sync.Mutex
	var wg sync.WaitGroup
	problems := map[string]string{}
	for name, pc := range pcs {
		wg.Go(func() {
			check, conn, problem, info := checkSender(ctx, cfg, pc, connect)
			mu.Lock()
			defer mu.Unlock()
			s := senders[name]
			s.Check, s.Connect = check, conn
			if info != nil {
				opts, sources := effectiveOptions(cfg, name, pc)
				s.Options = shownOptions(opts, sources, info)
				s.DNSRecords = info.DNSRecords
			}
			senders[name] = s
			if problem != "" {
				problems[name] = "senders." + name + ": " + problem
			}
		})
	}
	wg.Wait()
	var out []string
	for _, name := range slices.Sorted(maps.Keys(problems)) {
		out = append(out, problems[name])
	}
	return out
}

// checkSender runs one sender's checks; problem is "" when they passed.
// info is what the plugin says of itself once configured (its options,
// which are secret, the DNS records to publish), nil when it could not
// start or would not say.
func checkSender(ctx context.Context, cfg *Config, pc plugin.PluginConfig, connect bool) (check, conn, problem string, info *sdk.Info) {
	lctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	p, err := plugin.Launch(lctx, pc)
	if err != nil {
		msg := launchProblem(cfg, pc, err)
		if connect {
			conn = "not attempted"
		}
		return msg, conn, msg, nil
	}
	defer p.Close()
	if i, err := p.Info(lctx); err == nil {
		info = &i
	}
	if !connect {
		return checkOK, "", "", info
	}
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	switch err := p.Check(cctx); {
	case err == nil:
		return checkOK, checkOK, "", info
	case errors.Is(err, sdk.ErrCheckUnsupported):
		return checkOK, checkNotSupported, "", info
	default:
		msg := describeSendError(err)
		return checkOK, msg, msg, info
	}
}

// launchProblem says why a plugin could not be started and configured,
// without repeating the sender's name.
func launchProblem(cfg *Config, pc plugin.PluginConfig, err error) string {
	path, _ := pc.Path()
	if errors.Is(err, plugin.ErrNotFound) {
		if strings.Contains(pc.Plugin, "/") {
			return fmt.Sprintf("plugin %q not found: no executable %s", pc.Plugin, path)
		}
		return fmt.Sprintf("plugin %q not found: no executable %s (a plugin named %q is the file %s%s in plugin_dir %s)",
			pc.Plugin, path, pc.Plugin, plugin.PluginPrefix, pc.Plugin, cfg.PluginDir)
	}
	var e *sdk.Error
	if errors.As(err, &e) && !errors.Is(err, plugin.ErrChecksum) {
		// The plugin's own verdict on its options.
		return describeSendError(e)
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "launch plugin "+pc.Name+": "); ok {
		msg = rest
	}
	return msg
}

// describeSendError is a plugin's error as the operator reads it: its
// text and, when the provider gave them, its SMTP or HTTP codes. The class
// is left out: config check has no retry to decide.
func describeSendError(err error) string {
	e := sdk.AsError(err)
	msg := e.Message
	switch {
	case e.SMTPCode != 0:
		msg += fmt.Sprintf(" (SMTP %d%s)", e.SMTPCode, strings.TrimRight(" "+e.EnhancedCode, " "))
	case e.HTTPStatus != 0:
		msg += fmt.Sprintf(" (HTTP %d)", e.HTTPStatus)
	}
	return msg
}

// printConfig is config check's human output.
func printConfig(w io.Writer, cfg *Config, out checkedConfig, connect bool) {
	from := func(key, v string) string {
		if r := out.Env[key]; r != "" && v != r {
			return v + " (from " + r + ")"
		}
		return v
	}
	orNone := func(v string) string {
		if v == "" {
			return "(not set)"
		}
		return v
	}
	fprintf(w, "config:        %s\n", out.File)
	exists := "exists"
	if !out.DatabaseExists {
		exists = "does not exist yet: `campaignd init` creates it"
	}
	fprintf(w, "database:      %s (%s)\n", from("database", out.Database), exists)
	fprintf(w, "socket:        %s (mode %s", from("socket", out.Socket), out.SocketMode)
	if out.SocketGroup != "" {
		fprintf(w, ", group %s", out.SocketGroup)
	}
	if len(out.AllowUIDs) > 0 {
		fprintf(w, ", allow_uids %v", out.AllowUIDs)
	}
	fprintf(w, ")\nplugin_dir:    %s\n", from("plugin_dir", out.Plugins))
	fprintf(w, "logs:          log_level %s (serve), cli_log_level %s (other commands), log_format %s\n",
		from("log_level", out.LogLevel), out.CLILogLevel, out.LogFormat)
	fprintf(w, "tick_interval: %s, lock_timeout %s, shutdown_timeout %s\n", out.TickInterval, out.LockTimeout, out.ShutdownTimeout)
	fprintf(w, "default_from:  %s\n", from("default_from", orNone(out.DefaultFrom)))
	fprintf(w, "default_sender: %s\n", orNone(out.DefaultSender))
	fprintf(w, "queue:         batch_size %d, default_concurrency %d, max_attempts %d, in_doubt %s, tick_timeout %s\n",
		cfg.Queue.BatchSize, cfg.Queue.DefaultConcurrency, cfg.Queue.MaxAttempts, cfg.Queue.InDoubt, cfg.Queue.TickTimeout)
	h := out.HTTP
	fprintf(w, "http:          listen %s, public_url %s, cron_secret %s, unsubscribe_secret %s, sendgrid_public_key %s\n",
		from("http.listen", orNone(h.Listen)), from("http.public_url", orNone(h.PublicURL)), orNone(h.CronSecret),
		orNone(h.UnsubscribeSecret), orNone(h.SendGridPublicKey))
	if cfg.HTTP.SendGridUnsigned {
		fprintf(w, "warning: sendgrid_webhook_unsigned = true: anyone who reaches [http] listen can bounce, suppress and unsubscribe any recipient; set sendgrid_public_key instead\n")
	}
	printBounces(w, cfg, out.Bounces, orNone)
	failed := 0
	for _, name := range cfg.senderNames() {
		s := out.Senders[name]
		fprintf(w, "sender %s: plugin %s (%s)\n", name, s.Plugin, s.Path)
		if len(s.Rate) > 0 {
			fprintf(w, "  rate: %s (sliding windows, shared by every campaign of the sender)\n", strings.Join(s.Rate, ", "))
		}
		for _, k := range slices.Sorted(maps.Keys(s.Options)) {
			v := s.Options[k]
			if r := s.Env[k]; r != "" && v != r {
				v += " (from " + r + ")"
			}
			fprintf(w, "  %s = %s\n", k, v)
		}
		for _, r := range s.DNSRecords {
			fprintf(w, "  publish in DNS: %s\n", zoneLine(r))
		}
		verdict := "options accepted"
		switch {
		case s.Check != checkOK:
			verdict, failed = "FAILED: "+s.Check, failed+1
		case s.Connect == checkOK:
			verdict = "options accepted, session opened"
		case s.Connect == checkNotSupported:
			verdict = "options accepted; --connect not supported by this plugin (it has no Check call)"
		case s.Connect != "":
			verdict, failed = "options accepted; connect FAILED: "+s.Connect, failed+1
		}
		fprintf(w, "  => %s\n", verdict)
	}
	if out.Bounces.Connect != "" && out.Bounces.Connect != checkOK {
		failed++
	}
	switch {
	case failed > 0:
		fprintf(w, "config %s: %d sender(s) or the bounce mailbox failed the check\n", out.File, failed)
	case connect:
		fprintf(w, "config %s is valid; every sender that supports it opened a session\n", out.File)
	default:
		fprintf(w, "config %s is valid (use --connect to also open a session through each sender)\n", out.File)
	}
}

// maxTXTString is the longest character-string a TXT record holds (RFC
// 1035 3.3): a longer value, like a DKIM RSA key, is published as several
// strings, which resolvers hand back concatenated.
const maxTXTString = 255

// zoneLine is r as a zone-file line, owner name fully qualified:
// `mail._domainkey.example.com. IN TXT "v=DKIM1; k=rsa; p=MIIB..." "..."`.
// A TXT value is quoted (with '"' and '\' escaped) and split into strings
// of at most maxTXTString octets; other types are printed as given.
func zoneLine(r sdk.DNSRecord) string {
	value := r.Value
	if strings.EqualFold(r.Type, "TXT") {
		var b strings.Builder
		rest := r.Value
		for first := true; first || rest != ""; first = false {
			chunk := rest[:min(len(rest), maxTXTString)]
			rest = rest[len(chunk):]
			if !first {
				b.WriteByte(' ')
			}
			b.WriteByte('"')
			for i := 0; i < len(chunk); i++ {
				if c := chunk[i]; c == '"' || c == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(chunk[i])
			}
			b.WriteByte('"')
		}
		value = b.String()
	}
	return strings.TrimSuffix(r.Name, ".") + ". IN " + strings.ToUpper(r.Type) + " " + value
}

// printBounces is the [bounces] part of config check's human output. It
// warns when VERP is set while a sender cannot use it: SendGrid sets its
// own envelope sender, so only the Message-ID maps its bounces.
func printBounces(w io.Writer, cfg *Config, b checkedBounces, orNone func(string) string) {
	mailbox := "(not set: no bounce mailbox is read)"
	if cfg.Bounces.mailbox() {
		mailbox = fmt.Sprintf("%s %s:%d (tls = %q), username %s, password %s, every %s",
			b.Protocol, b.Host, b.Port, b.TLS, b.Username, orNone(b.Password), b.Interval)
	}
	fprintf(w, "bounces:       %s\n", mailbox)
	fprintf(w, "return_path:   %s\n", orNone(b.ReturnPath))
	switch b.Connect {
	case "":
	case checkOK:
		fprintf(w, "  => bounce mailbox: session opened\n")
	default:
		fprintf(w, "  => bounce mailbox: connect FAILED: %s\n", b.Connect)
	}
	if b.ReturnPath != "" && cfg.hasSendGridSender() {
		fprintf(w, "note: bounces.return_path (VERP) is used by the smtp plugin only: SendGrid sets its own envelope sender, so its bounces reach this mailbox only if forwarded, and are then matched by Message-ID\n")
	}
}
