package pgstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrationFiles are the schema's versions: migrations/NNNN_name.sql, each
// applied once, in number order, in the transaction that opens the store.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// SchemaNewerError refuses a database whose schema was migrated by a newer
// binary than this one: its tables may mean what this binary does not
// know, so it writes nothing there.
type SchemaNewerError struct {
	// Database is the schema version the database is at; Binary the
	// newest this binary knows.
	Database, Binary int
}

// Error implements error.
func (e *SchemaNewerError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this coid's %d: upgrade coid", e.Database, e.Binary)
}

// migrations returns the embedded schema changes in version order; their
// numbers must run 1, 2, 3 ... without a gap.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, path := range names {
		base := strings.TrimPrefix(path, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with its number", base)
		}
		b, err := migrationFiles.ReadFile(path)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.name, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the newest schema version this binary knows.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrationLock is the advisory lock key that serializes instances
// migrating the same database at once.
const migrationLock = 0x636f6964 // "coid"

// migrate brings the schema the connection's search path points at to this
// binary's version in one transaction: all missing versions are applied or
// none. A database at a newer version is refused (*SchemaNewerError).
func migrate(ctx context.Context, conn interface {
	Begin(context.Context) (pgx.Tx, error)
}) (err error) {
	ms, err := migrations()
	if err != nil {
		return err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(ctx)
		}
	}()
	if _, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return err
	}
	if _, err = tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS coid_schema (version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	var have int
	if err = tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM coid_schema`).Scan(&have); err != nil {
		return err
	}
	if have > len(ms) {
		return &SchemaNewerError{Database: have, Binary: len(ms)}
	}
	for _, m := range ms[have:] {
		if _, err = tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err = tx.Exec(ctx, `INSERT INTO coid_schema (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}
