package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/jackc/pgx/v5"
)

// The log's key (migration log_key): every instance on one database signs
// the checkpoints of one log, so they must sign with one key, or auditors
// and witnesses would see two logs. The database records the log's
// verifier key when the first checkpoint is signed; an instance binds its
// key at start (BindLogKey), which refuses a key other than the one
// recorded, and every checkpoint kept checks the binding again inside its
// transaction, so two instances started together with different keys
// cannot both sign.

// ErrLogKey is the refusal of a checkpoint signing key that is not the
// log's: the database recorded another verifier key, or the log's latest
// checkpoint was signed by another key. It also wraps custody.ErrConflict.
var ErrLogKey = errors.New("this instance's checkpoint signing key is not the log's")

// logBinding is the key BindLogKey bound: its verifier key, and why it
// may not sign (nil: it may).
type logBinding struct {
	verifier string
	refused  error
}

// BindLogKey checks that verifier (a signed-note verifier key, public) is
// the log's checkpoint key and makes it the key AddCheckpoint checks; it
// writes nothing. The log's key is the one recorded in the database; when
// none is recorded yet, any key will do whose signature the latest kept
// checkpoint (if any) carries, so a store signed before the key was
// recorded keeps its key. A key other than the log's is ErrLogKey; after
// that or any other failure AddCheckpoint refuses every checkpoint with
// the error.
func (s *Store) BindLogKey(ctx context.Context, verifier string) error {
	var err error
	if origin, _, _ := strings.Cut(verifier, "+"); origin == "" {
		err = fmt.Errorf("bind checkpoint key: verifier key %q: %w", verifier, custody.ErrInvalid)
	} else {
		err = s.logKeyRefusal(ctx, verifier)
	}
	if err != nil {
		// Refused, or not checked: AddCheckpoint keeps nothing signed
		// with it.
		s.logKey.Store(&logBinding{verifier: verifier, refused: err})
		return err
	}
	s.logKey.Store(&logBinding{verifier: verifier})
	return nil
}

// logKeyRefusal is why verifier may not sign the log's checkpoints (nil:
// it may).
func (s *Store) logKeyRefusal(ctx context.Context, verifier string) error {
	var recorded string
	err := s.pool.QueryRow(ctx, `SELECT verifier FROM log_key WHERE id = 1`).Scan(&recorded)
	if err == nil {
		if recorded != verifier {
			return fmt.Errorf("%w: the database records the log's verifier key %s, and this instance's key is %s: "+
				"give every instance the log's key file (--checkpoint-key): %w", ErrLogKey, recorded, verifier, custody.ErrConflict)
		}
		return nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("bind checkpoint key: %w", err)
	}
	latest, err := s.LatestCheckpoint(ctx)
	if errors.Is(err, custody.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bind checkpoint key: %w", err)
	}
	if _, err := verifiable.Open(latest, verifier); err != nil {
		return fmt.Errorf("%w: the log's latest checkpoint was not signed by this instance's key %s (%v): "+
			"give every instance the key that signed it (--checkpoint-key): %w", ErrLogKey, verifier, err, custody.ErrConflict)
	}
	return nil
}

// LogKey returns the log's verifier key as the database records it;
// ErrNotFound before the first checkpoint signed by a bound key.
func (s *Store) LogKey(ctx context.Context) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT verifier FROM log_key WHERE id = 1`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("the log's checkpoint key: none recorded yet: %w", custody.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("the log's checkpoint key: %w", err)
	}
	return v, nil
}

// checkLogKey records the bound key as the log's if none is, and refuses
// (ErrLogKey) when another is, inside tx: the caller keeps a checkpoint in
// the same transaction. A store whose key was never bound checks nothing.
func (s *Store) checkLogKey(ctx context.Context, tx pgx.Tx) error {
	b := s.logKey.Load()
	if b == nil {
		return nil
	}
	if b.refused != nil {
		return b.refused
	}
	p := &b.verifier
	origin, _, _ := strings.Cut(*p, "+")
	if _, err := tx.Exec(ctx, `INSERT INTO log_key (id, origin, verifier) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING`, origin, *p); err != nil {
		return fmt.Errorf("record the log's checkpoint key: %w", err)
	}
	var recorded string
	if err := tx.QueryRow(ctx, `SELECT verifier FROM log_key WHERE id = 1`).Scan(&recorded); err != nil {
		return fmt.Errorf("the log's checkpoint key: %w", err)
	}
	if recorded != *p {
		return fmt.Errorf("%w: the database records the log's verifier key %s, and this instance's key is %s: %w",
			ErrLogKey, recorded, *p, custody.ErrConflict)
	}
	return nil
}

// ReplaceLogKey makes verifier next the log's key in place of old, as a
// rotation of the key does: the database must record old (ErrLogKey
// otherwise, nothing changed) or no key yet (nothing to change). It binds
// next.
func (s *Store) ReplaceLogKey(ctx context.Context, old, next string) error {
	origin, _, _ := strings.Cut(next, "+")
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var recorded string
		err := tx.QueryRow(ctx, `SELECT verifier FROM log_key WHERE id = 1 FOR UPDATE`).Scan(&recorded)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("replace the log's checkpoint key: %w", err)
		}
		if recorded != old {
			return fmt.Errorf("%w: the database records the log's verifier key %s, not %s: %w", ErrLogKey, recorded, old, custody.ErrConflict)
		}
		if _, err := tx.Exec(ctx, `UPDATE log_key SET origin = $1, verifier = $2, recorded = now() WHERE id = 1`, origin, next); err != nil {
			return fmt.Errorf("replace the log's checkpoint key: %w", err)
		}
		return nil
	})
	if err == nil {
		s.logKey.Store(&logBinding{verifier: next})
	}
	return err
}
