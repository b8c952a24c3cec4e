package main

import (
	"context"
	"io"
	"runtime"
)

func (a *app) cmdVersion(args []string) error {
	if _, err := a.parse(a.flags("version"), args, 0, 0, "version"); err != nil {
		return err
	}
	v := map[string]string{"version": version, "go": runtime.Version()}
	return a.print(v, func(w io.Writer) { fprintf(w, "campaignd %s (%s)\n", version, runtime.Version()) })
}

// checkedConfig is what config check prints: the effective configuration,
// secrets redacted.
type checkedConfig struct {
	File     string `json:"file"`
	Database string `json:"database"`
	Socket   string `json:"socket"`
	Plugins  string `json:"plugin_dir"`
	// DatabaseExists is false until init, campaign create or serve creates it.
	DatabaseExists bool                         `json:"database_exists"`
	LogLevel       string                       `json:"log_level"`
	CLILogLevel    string                       `json:"cli_log_level"`
	LogFormat      string                       `json:"log_format"`
	DefaultSender  string                       `json:"default_sender"`
	Queue          QueueConfig                  `json:"queue"`
	Senders        map[string]checkedSenderConf `json:"senders"`
}

type checkedSenderConf struct {
	Plugin  string            `json:"plugin"`
	Path    string            `json:"path"`
	SHA256  string            `json:"sha256,omitempty"`
	Options map[string]string `json:"options"`
}

func (a *app) cmdConfig(_ context.Context, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		return usagef("config: missing subcommand (check)")
	}
	if _, err := a.parse(a.flags("config check"), args[1:], 0, 0, "config check"); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	out := checkedConfig{File: cfg.path, Database: cfg.Database, Socket: cfg.socketPath(), Plugins: cfg.PluginDir,
		DatabaseExists: cfg.databaseExists() == nil, LogLevel: cfg.LogLevel, CLILogLevel: cfg.CLILogLevel, LogFormat: cfg.LogFormat,
		DefaultSender: cfg.DefaultSender, Queue: cfg.Queue, Senders: map[string]checkedSenderConf{}}
	if out.File == "" {
		out.File = "(none: defaults; " + cfg.lookedIn() + ")"
	}
	pcs := pluginConfigs(cfg, a.log)
	for name, pc := range pcs {
		path, _ := pc.Path()
		out.Senders[name] = checkedSenderConf{Plugin: pc.Plugin, Path: path, SHA256: pc.SHA256, Options: redacted(pc.Options)}
	}
	return a.print(out, func(w io.Writer) {
		exists := "exists"
		if !out.DatabaseExists {
			exists = "does not exist yet: `campaignd init` creates it"
		}
		fprintf(w, "config %s is valid\ndatabase:   %s (%s)\nsocket:     %s\nplugin_dir: %s\n", out.File, out.Database, exists, out.Socket, out.Plugins)
		fprintf(w, "logs:       log_level %s (serve), cli_log_level %s (other commands), log_format %s\n", out.LogLevel, out.CLILogLevel, out.LogFormat)
		if out.DefaultSender != "" {
			fprintf(w, "default_sender: %s\n", out.DefaultSender)
		}
		fprintf(w, "queue:      batch_size %d, default_concurrency %d, max_attempts %d, in_doubt %s, tick_timeout %s\n",
			cfg.Queue.BatchSize, cfg.Queue.DefaultConcurrency, cfg.Queue.MaxAttempts, cfg.Queue.InDoubt, cfg.Queue.TickTimeout)
		if cfg.HTTP.SendGridUnsigned {
			fprintf(w, "warning: sendgrid_webhook_unsigned = true: anyone who reaches [http] listen can bounce, suppress and unsubscribe any recipient; set sendgrid_public_key instead\n")
		}
		for _, name := range cfg.senderNames() {
			s := out.Senders[name]
			fprintf(w, "sender %s: plugin %s (%s) options %v\n", name, s.Plugin, s.Path, s.Options)
		}
	})
}
