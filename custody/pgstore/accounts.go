package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/jackc/pgx/v5"
)

var _ custody.AccountStore = (*Store)(nil)

// ChangeUser implements custody.AccountStore: the user is read under its
// row lock, changed by fn and stored with the audit entry of the change in
// one transaction.
func (s *Store) ChangeUser(ctx context.Context, id string, fn func(*custody.User) error, audit func(before, after custody.User) custody.AuditEntry) (custody.User, error) {
	return s.changeUser(ctx, id, fn, audit)
}

// CreateUserAudited implements custody.AccountStore.
func (s *Store) CreateUserAudited(ctx context.Context, u custody.User, token custody.Hash, audit custody.AuditEntry) error {
	return s.createUser(ctx, u, token, &audit)
}

// AddTokenAt implements custody.AccountStore.
func (s *Store) AddTokenAt(ctx context.Context, id string, token custody.Hash, created time.Time, audit custody.AuditEntry) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := userRow(ctx, tx, id, true); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO user_tokens (hash, user_id, created) VALUES ($1, $2, $3)
			ON CONFLICT (hash) DO UPDATE SET user_id = excluded.user_id, created = excluded.created, last_used = NULL`,
			token[:], id, nanos(created)); err != nil {
			return err
		}
		_, err := putAudit(ctx, tx, audit)
		return err
	})
}

// tokenRow is a token as user_tokens keeps it.
type tokenRow struct {
	hash            []byte
	user            string
	created, lastID *int64
}

func (t tokenRow) info() custody.TokenInfo {
	return custody.TokenInfo{ID: custody.TokenID(hashOf(t.hash)), User: t.user, Created: fromNanos(t.created), LastUsed: fromNanos(t.lastID)}
}

// Token implements custody.AccountStore.
func (s *Store) Token(ctx context.Context, token custody.Hash) (custody.TokenInfo, error) {
	var t tokenRow
	err := s.pool.QueryRow(ctx, `SELECT hash, user_id, created, last_used FROM user_tokens WHERE hash = $1`, token[:]).
		Scan(&t.hash, &t.user, &t.created, &t.lastID)
	if errors.Is(err, pgx.ErrNoRows) {
		return custody.TokenInfo{}, fmt.Errorf("token: %w", custody.ErrNotFound)
	}
	if err != nil {
		return custody.TokenInfo{}, fmt.Errorf("token: %w", err)
	}
	return t.info(), nil
}

// userTokens lists id's tokens, oldest first (then by ID), with their
// hashes by token ID; lock takes their rows for a change.
func userTokens(ctx context.Context, q querier, id string, lock bool) ([]custody.TokenInfo, map[string][]byte, error) {
	sql := `SELECT hash, user_id, created, last_used FROM user_tokens WHERE user_id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	rows, err := q.Query(ctx, sql, id)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	out := []custody.TokenInfo{}
	hashes := map[string][]byte{}
	for rows.Next() {
		var t tokenRow
		if err := rows.Scan(&t.hash, &t.user, &t.created, &t.lastID); err != nil {
			return nil, nil, err
		}
		info := t.info()
		out = append(out, info)
		hashes[info.ID] = t.hash
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	slices.SortFunc(out, func(a, b custody.TokenInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, hashes, nil
}

// Tokens implements custody.AccountStore.
func (s *Store) Tokens(ctx context.Context, id string) ([]custody.TokenInfo, error) {
	var out []custody.TokenInfo
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		if _, err := userRow(ctx, tx, id, false); err != nil {
			return err
		}
		var err error
		out, _, err = userTokens(ctx, tx, id, false)
		return err
	})
	return out, err
}

// RevokeTokens implements custody.AccountStore: all the tokens named are
// revoked with one audit entry, or none is (ErrNotFound: the user has no
// such token).
func (s *Store) RevokeTokens(ctx context.Context, id string, tokenIDs []string, audit func(revoked []custody.TokenInfo) custody.AuditEntry) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := userRow(ctx, tx, id, true); err != nil {
			return err
		}
		toks, hashes, err := userTokens(ctx, tx, id, true)
		if err != nil {
			return err
		}
		var revoked []custody.TokenInfo
		var del [][]byte
		for _, tid := range tokenIDs {
			h, ok := hashes[tid]
			if !ok {
				return fmt.Errorf("user %s has no token %s: %w", id, tid, custody.ErrNotFound)
			}
			delete(hashes, tid) // named twice: revoked once
			del = append(del, h)
			for _, t := range toks {
				if t.ID == tid {
					revoked = append(revoked, t)
				}
			}
		}
		if len(revoked) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM user_tokens WHERE hash = ANY($1)`, del); err != nil {
			return err
		}
		_, err = putAudit(ctx, tx, audit(revoked))
		return err
	})
}

// TouchToken implements custody.AccountStore.
func (s *Store) TouchToken(ctx context.Context, token custody.Hash, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE user_tokens SET last_used = $2 WHERE hash = $1`, token[:], nanos(at))
	if err != nil {
		return fmt.Errorf("touch token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("token: %w", custody.ErrNotFound)
	}
	return nil
}
