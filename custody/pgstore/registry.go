package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/coid-project/coid/custody"
	"github.com/jackc/pgx/v5"
)

var (
	_ custody.AuditLog      = (*Store)(nil)
	_ custody.RegistryStore = (*Store)(nil)
)

// putAudit validates a, seals it as the trail's next entry, linked to its
// last, and stores it inside tx; it returns a as stored.
func putAudit(ctx context.Context, tx pgx.Tx, a custody.AuditEntry) (custody.AuditEntry, error) {
	if err := a.Validate(); err != nil {
		return a, err
	}
	var last int64
	if err := tx.QueryRow(ctx, `SELECT seq FROM audit_head WHERE id FOR UPDATE`).Scan(&last); err != nil {
		return a, fmt.Errorf("lock the audit trail: %w", err)
	}
	var prev *custody.AuditEntry
	if last > 0 {
		var raw []byte
		if err := tx.QueryRow(ctx, `SELECT body FROM audit WHERE seq = $1`, last).Scan(&raw); err != nil {
			return a, fmt.Errorf("audit entry %d: %w", last, err)
		}
		prev = new(custody.AuditEntry)
		if err := json.Unmarshal(raw, prev); err != nil {
			return a, fmt.Errorf("audit entry %d: malformed: %v: %w", last, err, custody.ErrDamaged)
		}
	}
	if err := custody.SealAuditEntry(&a, uint64(last+1), prev); err != nil {
		return a, err
	}
	v, err := json.Marshal(a)
	if err != nil {
		return a, err
	}
	var b pgx.Batch
	b.Queue(`INSERT INTO audit (seq, kind, code, actor, time, body) VALUES ($1, $2, $3, $4, $5, $6)`,
		int64(a.Seq), string(a.Kind), a.Code, a.Actor, a.Time.UnixNano(), v)
	b.Queue(`UPDATE audit_head SET seq = $1 WHERE id`, int64(a.Seq))
	return a, tx.SendBatch(ctx, &b).Close()
}

// AppendAudit implements custody.AuditLog.
func (s *Store) AppendAudit(ctx context.Context, e custody.AuditEntry) (custody.AuditEntry, error) {
	var out custody.AuditEntry
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = putAudit(ctx, tx, e)
		return err
	})
	return out, err
}

// AuditEntries implements custody.AuditLog: the filter runs in the
// database, through the trail's indexes; with Newest, the last Limit
// entries that match, in order.
func (s *Store) AuditEntries(ctx context.Context, f custody.AuditFilter) ([]custody.AuditEntry, error) {
	sql := `SELECT body FROM audit WHERE seq > $1`
	args := []any{int64(f.After)}
	cond := func(c string, v any) {
		args = append(args, v)
		sql += fmt.Sprintf(" AND %s $%d", c, len(args))
	}
	if f.Kind != "" {
		cond("kind =", string(f.Kind))
	}
	if f.Code != "" {
		cond("code =", f.Code)
	}
	if f.Actor != "" {
		cond("actor =", f.Actor)
	}
	if !f.From.IsZero() {
		cond("time >=", f.From.UnixNano())
	}
	if !f.To.IsZero() {
		cond("time <", f.To.UnixNano())
	}
	if f.Newest {
		sql += " ORDER BY seq DESC"
	} else {
		sql += " ORDER BY seq"
	}
	if f.Limit > 0 {
		args = append(args, f.Limit)
		sql += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("audit entries: %w", err)
	}
	defer rows.Close()
	out := []custody.AuditEntry{}
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("audit entries: %w", err)
		}
		var a custody.AuditEntry
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("audit entry: malformed: %v: %w", err, custody.ErrDamaged)
		}
		if f.Match(a) {
			out = append(out, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit entries: %w", err)
	}
	if f.Newest {
		slices.Reverse(out)
	}
	return out, nil
}

// checkKind refuses a kind that is not a registry.
func checkKind(kind custody.RegistryKind) error {
	if !kind.Valid() {
		return fmt.Errorf("registry %q: no such registry: %w", kind, custody.ErrInvalid)
	}
	return nil
}

// CreateEntry implements custody.RegistryStore.
func (s *Store) CreateEntry(ctx context.Context, kind custody.RegistryKind, code string, value []byte, a custody.AuditEntry) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	if code == "" || len(value) == 0 {
		return fmt.Errorf("%s: empty code or value: %w", kind, custody.ErrInvalid)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO registry_entries (kind, code, value) VALUES ($1, $2, $3)`, string(kind), code, value); err != nil {
			return err
		}
		if err := indexExpiries(ctx, tx, kind, code, value); err != nil {
			return err
		}
		_, err := putAudit(ctx, tx, a)
		return err
	})
	if isUniqueViolation(err, "registry_entries_pkey") {
		return fmt.Errorf("%s %s is already registered: %w", kind, code, custody.ErrConflict)
	}
	return err
}

// UpdateEntry implements custody.RegistryStore: fn runs on the entry read
// under its row lock; its value and audit entry are stored in the same
// transaction.
func (s *Store) UpdateEntry(ctx context.Context, kind custody.RegistryKind, code string, fn func(old []byte) ([]byte, custody.AuditEntry, error)) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var old []byte
		err := tx.QueryRow(ctx, `SELECT value FROM registry_entries WHERE kind = $1 AND code = $2 FOR UPDATE`, string(kind), code).Scan(&old)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%s %s is not registered: %w", kind, code, custody.ErrNotFound)
		}
		if err != nil {
			return err
		}
		v, a, err := fn(old)
		if err != nil {
			return err
		}
		if len(v) == 0 {
			return fmt.Errorf("%s %s: empty value: %w", kind, code, custody.ErrInvalid)
		}
		if _, err := tx.Exec(ctx, `UPDATE registry_entries SET value = $3 WHERE kind = $1 AND code = $2`, string(kind), code, v); err != nil {
			return err
		}
		if err := indexExpiries(ctx, tx, kind, code, v); err != nil {
			return err
		}
		_, err = putAudit(ctx, tx, a)
		return err
	})
}

// Entry implements custody.RegistryStore.
func (s *Store) Entry(ctx context.Context, kind custody.RegistryKind, code string) ([]byte, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM registry_entries WHERE kind = $1 AND code = $2`, string(kind), code).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s %s is not registered: %w", kind, code, custody.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, code, err)
	}
	return v, nil
}

// Entries implements custody.RegistryStore: codes in byte order (the
// column's collation is "C"), after the code after, at most limit.
func (s *Store) Entries(ctx context.Context, kind custody.RegistryKind, after string, limit int) ([][]byte, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	sql := `SELECT value FROM registry_entries WHERE kind = $1 AND code > $2 ORDER BY code`
	args := []any{string(kind), after}
	if limit > 0 {
		sql += ` LIMIT $3`
		args = append(args, limit)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s entries: %w", kind, err)
	}
	defer rows.Close()
	out := [][]byte{}
	for rows.Next() {
		var v []byte
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("%s entries: %w", kind, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
