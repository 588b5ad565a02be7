package pgstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/jackc/pgx/v5"
)

// UpdateShared implements custody.SharedState: the keys are held, in
// sorted order so that two updates cannot wait on each other, by
// transaction-scoped advisory locks (an absent key has no row to lock),
// keyed like the leadership by the schema too. Each update also deletes a
// few expired entries.
func (s *Store) UpdateShared(ctx context.Context, keys []string, now time.Time, fn func([]custody.SharedEntry) ([]custody.SharedEntry, error)) error {
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, k := range sorted {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('coid-shared:' || current_schema()), hashtext($1))`, k); err != nil {
				return fmt.Errorf("shared state: lock: %w", err)
			}
		}
		rows, err := tx.Query(ctx, `SELECT key, subject, value, expires FROM shared_state WHERE key = ANY($1) AND expires > $2`, sorted, now)
		if err != nil {
			return fmt.Errorf("shared state: read: %w", err)
		}
		found := map[string]custody.SharedEntry{}
		for rows.Next() {
			var e custody.SharedEntry
			if err := rows.Scan(&e.Key, &e.Subject, &e.Value, &e.Expires); err != nil {
				rows.Close()
				return fmt.Errorf("shared state: read: %w", err)
			}
			found[e.Key] = e
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("shared state: read: %w", err)
		}
		cur := make([]custody.SharedEntry, len(keys))
		for i, k := range keys {
			if e, ok := found[k]; ok {
				cur[i] = e
			} else {
				cur[i] = custody.SharedEntry{Key: k}
			}
		}
		out, err := fn(cur)
		if err != nil {
			return err
		}
		var b pgx.Batch
		for _, e := range out {
			if !slices.Contains(sorted, e.Key) {
				return fmt.Errorf("shared state: key %q was not read in the update: %w", e.Key, custody.ErrInvalid)
			}
			if e.Value == nil {
				b.Queue(`DELETE FROM shared_state WHERE key = $1`, e.Key)
				continue
			}
			b.Queue(`INSERT INTO shared_state (key, subject, value, expires) VALUES ($1, $2, $3, $4)
				ON CONFLICT (key) DO UPDATE SET subject = excluded.subject, value = excluded.value, expires = excluded.expires`,
				e.Key, e.Subject, e.Value, e.Expires)
		}
		b.Queue(`DELETE FROM shared_state WHERE key IN (SELECT key FROM shared_state WHERE expires <= $1 LIMIT 16 FOR UPDATE SKIP LOCKED)`, now)
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return fmt.Errorf("shared state: write: %w", err)
		}
		return nil
	})
}

// SharedBySubject implements custody.SharedState.
func (s *Store) SharedBySubject(ctx context.Context, prefix, subject string, now time.Time) ([]custody.SharedEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, subject, value, expires FROM shared_state
		WHERE subject = $1 AND starts_with(key, $2) AND expires > $3 ORDER BY key`, subject, prefix, now)
	if err != nil {
		return nil, fmt.Errorf("shared state: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (custody.SharedEntry, error) {
		var e custody.SharedEntry
		err := r.Scan(&e.Key, &e.Subject, &e.Value, &e.Expires)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("shared state: %w", err)
	}
	return out, nil
}

var _ custody.SharedState = (*Store)(nil)
