// Command campaignd-sender-outbox is the outbox sender plugin: instead of
// delivering mail it writes each message as an RFC 5322 .eml file into a
// directory. It is the embedded default for a first run and for dry runs.
//
// Options:
//
//	dir  (required) the outbox directory; created with mode 0700 if missing.
//
// Check (config check --connect) creates and removes a temporary file in
// dir, proving it is writable.
//
// Each message becomes <dir>/<campaignID>-<recipientID>.eml, written to a
// temporary file in the same directory, synced, then renamed over the final
// name, so a reader never sees a partial file and a resend of the same
// recipient overwrites instead of duplicating. The Receipt's ProviderID is
// the file name. A message that cannot be rendered fails permanently; a
// file-system failure (disk full, permissions) fails transiently.
package main

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"sync"

	"github.com/campaignd/campaignd/sdk"
	"github.com/campaignd/campaignd/sdk/plugin"
)

// version is the plugin's version, reported by Info.
const version = "1.0.0"

type outbox struct {
	mu  sync.RWMutex
	dir string
}

func (o *outbox) Configure(_ context.Context, options map[string]string) error {
	if err := sdk.UnknownOption(options, "dir"); err != nil {
		return sdk.ConfigError("outbox: %v", err)
	}
	dir := options["dir"]
	if dir == "" {
		return sdk.ConfigError("outbox: option dir is required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return sdk.ConfigError("outbox: create dir: %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return sdk.ConfigError("outbox: %s is not a directory", dir)
	}
	o.mu.Lock()
	o.dir = dir
	o.mu.Unlock()
	return nil
}

func (o *outbox) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "outbox", Version: version, Options: []string{"dir"}}, nil
}

// Check implements sdk.Checker: it proves the directory still exists and
// takes files by creating and removing a temporary file in it, as Send's
// atomic write would. A failure is ClassConfig naming the directory.
func (o *outbox) Check(context.Context) error {
	o.mu.RLock()
	dir := o.dir
	o.mu.RUnlock()
	if dir == "" {
		return sdk.ConfigError("outbox: not configured")
	}
	f, err := os.CreateTemp(dir, ".outbox-check-*.tmp")
	if err != nil {
		return sdk.ConfigError("outbox: dir %s is not writable: %v", dir, err)
	}
	name := f.Name()
	err = f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	if err != nil {
		return sdk.ConfigError("outbox: dir %s: %v", dir, err)
	}
	return nil
}

func (o *outbox) Send(ctx context.Context, msg *sdk.Message) (*sdk.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return nil, sdk.Transient("outbox: %v", err)
	}
	o.mu.RLock()
	dir := o.dir
	o.mu.RUnlock()
	if dir == "" {
		return nil, sdk.ConfigError("outbox: not configured")
	}
	var buf bytes.Buffer
	if msg.ReturnPath != "" {
		// What a delivering MTA records of the envelope sender, so the
		// file shows where this message's bounces would go (VERP).
		rp, err := mail.ParseAddress(msg.ReturnPath)
		if err != nil {
			return nil, sdk.ConfigError("outbox: invalid ReturnPath %q: %v", msg.ReturnPath, err)
		}
		buf.WriteString("Return-Path: <" + rp.Address + ">\r\n")
	}
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil, sdk.Permanent("outbox: render message: %v", err)
	}
	name := fmt.Sprintf("%d-%d.eml", msg.CampaignID, msg.RecipientID)
	if err := writeAtomic(dir, name, buf.Bytes()); err != nil {
		return nil, sdk.Transient("outbox: %v", err)
	}
	return &sdk.Receipt{ProviderID: name, Response: "written to " + filepath.Join(dir, name)}, nil
}

// writeAtomic writes data to dir/name through a synced temporary file and a
// rename, then syncs the directory so the rename survives a crash.
func writeAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".outbox-*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

func main() { plugin.Serve(&outbox{}) }
