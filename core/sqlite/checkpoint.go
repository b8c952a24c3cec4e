package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// checkpointInterval is the least time between two background checkpoints.
const checkpointInterval = 500 * time.Millisecond

// checkpointer copies committed WAL frames back into the database file from
// its own connection, off the writers' path: SQLite's automatic checkpoint
// would otherwise run inside the commit that crosses the threshold, so one
// execute of a million recipients would also pay for copying them. A
// PASSIVE checkpoint takes no write lock and waits for no reader or writer.
// It runs at most every checkpointInterval, after writes.
type checkpointer struct {
	db   *sql.DB
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	err  error // the last failure, reported by close
}

func startCheckpointer(ctx context.Context, path string) (*checkpointer, error) {
	db, err := sql.Open(driverName, dsn(path, false, 1024))
	if err != nil {
		return nil, fmt.Errorf("open checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, openError(path, err)
	}
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

// nudge tells the checkpointer that something was committed. It never
// blocks; a nil checkpointer (read-only handle) ignores it.
func (c *checkpointer) nudge() {
	if c == nil {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	last := time.Time{}
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		if wait := time.Until(last.Add(checkpointInterval)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-c.stop:
				t.Stop()
				return
			case <-t.C:
			}
		}
		last = time.Now()
		var busy, frames, backfilled int
		err := c.db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &backfilled)
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
	}
}

func (c *checkpointer) close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	err := c.db.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return fmt.Errorf("background checkpoint: %w", c.err)
	}
	if err != nil {
		return fmt.Errorf("close checkpointer: %w", err)
	}
	return nil
}
