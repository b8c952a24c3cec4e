package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/campaignd/campaignd/core"
)

// databaseExists returns nil when the configured database exists, and
// otherwise an ENOTFOUND error naming it, the configuration in use and what
// to do. Only init, campaign create and serve may create a database: any
// other command finding none was run with the wrong configuration or
// working directory, and an empty new database would hide that.
func (c *Config) databaseExists() error {
	_, err := os.Stat(c.Database)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return core.Errorf(core.ENOTFOUND, "database %s does not exist (%s): run `campaignd init` to create it, or pass --config",
			c.Database, c.source())
	default:
		return core.Errorf(core.EUNAVAILABLE, "database %s: %v", c.Database, err)
	}
}

// initResult is what init prints.
type initResult struct {
	Database string `json:"database"`
	Config   string `json:"config"` // the file in use, "" for none
	Created  bool   `json:"created"`
}

// cmdInit creates the configured database (and its directory) when it does
// not exist, and says where it is either way.
func (a *app) cmdInit(ctx context.Context, args []string) error {
	if _, err := a.parse(a.flags("init"), args, 0, 0, "init"); err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	res := initResult{Database: cfg.Database, Config: cfg.path}
	if cfg.databaseExists() != nil {
		if err := os.MkdirAll(filepath.Dir(cfg.Database), 0o750); err != nil {
			return fmt.Errorf("init: create the database directory: %w", err)
		}
		s, err := a.open(ctx, createAccess, "campaignd init")
		if err != nil {
			return err
		}
		s.Close()
		res.Created = true
	}
	return a.print(res, func(w io.Writer) {
		what := "already exists"
		if res.Created {
			what = "created"
		}
		fprintf(w, "database %s %s (%s)\n", res.Database, what, cfg.source())
	})
}
