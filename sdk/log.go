package sdk

import (
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// LogLevelEnv is the environment variable through which the host tells a
// plugin its log level ("trace", "debug", "info", "warn", "error" or "off").
// sdk/plugin's Launch sets it from PluginConfig.Logger's level; Logger
// reads it.
const LogLevelEnv = "CAMPAIGND_PLUGIN_LOG_LEVEL"

var (
	// pluginStderr is the process's standard error as it was at start-up:
	// go-plugin's Serve later points os.Stderr at an internal pipe, while
	// the host parses log lines from the real one.
	pluginStderr = os.Stderr

	loggerOnce   sync.Once
	pluginLogger hclog.Logger
)

// Logger returns the plugin-side logger for plugin code. Lines are written
// as hclog JSON to the process's original standard error, where the host
// reads them and re-logs them under the sender's name at the same level, so
// they appear in campaignd's log. The level is the host's (LogLevelEnv),
// info when unset or unknown, so debug lines cost nothing unless the host
// logs at debug. It always returns the same logger, is safe for concurrent
// use, and may be called before plugin.Serve (e.g. from main or
// Configure).
func Logger() hclog.Logger {
	loggerOnce.Do(func() {
		level := hclog.LevelFromString(os.Getenv(LogLevelEnv))
		if level == hclog.NoLevel {
			level = hclog.Info
		}
		pluginLogger = hclog.New(&hclog.LoggerOptions{
			Level:      level,
			Output:     pluginStderr,
			JSONFormat: true,
		})
	})
	return pluginLogger
}
