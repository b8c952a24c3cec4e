package main

import (
	"context"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/campaignd/campaignd/core"
	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
	"github.com/hashicorp/go-hclog"
)

// fallbackEnv are the environment variables a first-party plugin reads when
// its options leave a value empty. Plugins inherit nothing else from the
// host's environment, so one sender's secrets never reach another plugin;
// third-party plugins take secrets through ${VAR} in their options.
var fallbackEnv = map[string][]string{
	"smtp":     {"EMAIL_HOST", "EMAIL_USER", "EMAIL_PASS"},
	"sendgrid": {"SENDGRID_API_KEY"},
}

// fallbackOption is the option each fallbackEnv variable stands in for,
// so config check can show where an option left empty takes its value.
var fallbackOption = map[string]string{
	"EMAIL_HOST": "host", "EMAIL_USER": "username", "EMAIL_PASS": "password",
	"SENDGRID_API_KEY": "api_key",
}

// senderSet adapts the configured [senders] to core.SenderProvider. The
// plugin pool is created on first use, so a command that sends nothing
// (an idle tick, a create) starts no plugin.
type senderSet struct {
	mu      sync.Mutex
	configs map[string]plugin.PluginConfig
	log     hclog.Logger
	pool    *plugin.Pool
}

var _ core.SenderProvider = (*senderSet)(nil)

func newSenderSet(cfg *Config, log hclog.Logger) *senderSet {
	return &senderSet{configs: pluginConfigs(cfg, log), log: log}
}

// pluginConfigs turns [senders.NAME] tables into plugin launch configs.
func pluginConfigs(cfg *Config, log hclog.Logger) map[string]plugin.PluginConfig {
	out := make(map[string]plugin.PluginConfig, len(cfg.Senders))
	for name, s := range cfg.Senders {
		opts := make(map[string]string, len(s.options)+1)
		for k, v := range s.options {
			opts[k] = v
		}
		if dir, ok := cfg.dryRunDir(name); ok {
			opts["dir"] = dir
		}
		var env []string
		for _, k := range fallbackEnv[s.Plugin] {
			if v, ok := os.LookupEnv(k); ok {
				env = append(env, k+"="+v)
			}
		}
		out[name] = plugin.PluginConfig{
			Name: name, Plugin: s.Plugin, Dir: cfg.PluginDir, SHA256: s.SHA256,
			Options: opts, Logger: log.Named(name), Env: env,
		}
	}
	return out
}

// Sender returns the named sender, starting its plugin on first use.
func (s *senderSet) Sender(ctx context.Context, name string) (sdk.Sender, error) {
	s.mu.Lock()
	if s.pool == nil {
		s.pool = plugin.NewPool(s.log, s.configs)
	}
	pool := s.pool
	s.mu.Unlock()
	return pool.Sender(ctx, name)
}

// Restarts is the plugin pool's restart count per sender (none before the
// first send).
func (s *senderSet) Restarts() map[string]uint64 {
	s.mu.Lock()
	pool := s.pool
	s.mu.Unlock()
	if pool == nil {
		return map[string]uint64{}
	}
	return pool.Restarts()
}

// Has reports whether a sender is configured.
func (s *senderSet) Has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.configs[name]
	return ok
}

// Names returns the configured senders' names, sorted.
func (s *senderSet) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.configs))
}

// Reconfigure applies a reloaded configuration (SIGHUP): plugins whose
// configuration changed restart on next use.
func (s *senderSet) Reconfigure(cfg *Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.configs = pluginConfigs(cfg, s.log)
	if s.pool != nil {
		s.pool.Reconfigure(s.configs)
	}
}

// Close stops every plugin process.
func (s *senderSet) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pool != nil {
		_ = s.pool.Close()
		s.pool = nil
	}
}

// running returns the pid of the named sender's plugin process while one
// runs, else 0 (see plugin.Pool.Running).
func (s *senderSet) running(name string) int {
	s.mu.Lock()
	pool := s.pool
	s.mu.Unlock()
	if pool == nil {
		return 0
	}
	return pool.Running(name)
}
