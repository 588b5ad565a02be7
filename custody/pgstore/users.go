package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// uniqueViolation is PostgreSQL's SQLSTATE for a duplicate key.
const uniqueViolation = "23505"

// isUniqueViolation reports whether err is a duplicate key of the
// constraint named.
func isUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == uniqueViolation && pe.ConstraintName == constraint
}

// CreateUser implements custody.UserStore: the user and its first token
// are stored in one transaction; ErrConflict if the ID is taken.
func (s *Store) CreateUser(ctx context.Context, u custody.User, token custody.Hash) error {
	return s.createUser(ctx, u, token, nil)
}

// createUser stores a new user and its first token and, when audit is
// set, the audit entry, in one transaction.
func (s *Store) createUser(ctx context.Context, u custody.User, token custody.Hash, audit *custody.AuditEntry) error {
	v, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.ID, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, body) VALUES ($1, $2)`, u.ID, v); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO user_tokens (hash, user_id, created) VALUES ($1, $2, $3)
			ON CONFLICT (hash) DO UPDATE SET user_id = excluded.user_id, created = excluded.created, last_used = NULL`,
			token[:], u.ID, nanos(u.Created)); err != nil {
			return err
		}
		if audit != nil {
			_, err := putAudit(ctx, tx, *audit)
			return err
		}
		return nil
	})
	if isUniqueViolation(err, "users_pkey") {
		return fmt.Errorf("user %s already exists: %w", u.ID, custody.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.ID, err)
	}
	return nil
}

// nanos is t as a time column (tokens, index rows): Unix nanoseconds,
// NULL when zero.
func nanos(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.UnixNano()
	return &n
}

// fromNanos reads a time column nanos wrote.
func fromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// userRow reads the user id with q; lock takes its row for an update.
func userRow(ctx context.Context, q querier, id string, lock bool) (custody.User, error) {
	sql := `SELECT body FROM users WHERE id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	var raw []byte
	err := q.QueryRow(ctx, sql, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return custody.User{}, fmt.Errorf("user %s: %w", id, custody.ErrNotFound)
	}
	if err != nil {
		return custody.User{}, fmt.Errorf("user %s: %w", id, err)
	}
	var u custody.User
	if err := json.Unmarshal(raw, &u); err != nil {
		return custody.User{}, fmt.Errorf("user %s: %w", id, err)
	}
	return u, nil
}

// User implements custody.UserStore.
func (s *Store) User(ctx context.Context, id string) (custody.User, error) {
	return userRow(ctx, s.pool, id, false)
}

// UserByToken implements custody.UserStore.
func (s *Store) UserByToken(ctx context.Context, token custody.Hash) (custody.User, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT u.body FROM user_tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1`, token[:]).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return custody.User{}, fmt.Errorf("token: %w", custody.ErrNotFound)
	}
	if err != nil {
		return custody.User{}, fmt.Errorf("token: %w", err)
	}
	var u custody.User
	if err := json.Unmarshal(raw, &u); err != nil {
		return custody.User{}, fmt.Errorf("token: %w", err)
	}
	return u, nil
}

// AddToken implements custody.UserStore.
func (s *Store) AddToken(ctx context.Context, id string, token custody.Hash) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO user_tokens (hash, user_id) SELECT $1, id FROM users WHERE id = $2
		ON CONFLICT (hash) DO UPDATE SET user_id = excluded.user_id`, token[:], id)
	if err != nil {
		return fmt.Errorf("add token for %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("add token: user %s: %w", id, custody.ErrNotFound)
	}
	return nil
}

// UpdateUser implements custody.UserStore: fn runs on the user read under
// its row lock, and its result is stored in the same transaction; fn's
// error changes nothing. The ID cannot change.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*custody.User) error) (custody.User, error) {
	return s.changeUser(ctx, id, fn, nil)
}

// changeUser reads the user under its row lock, changes it with fn and
// stores it, with the audit entry audit makes of the change unless audit
// is nil, in one transaction. fn's error changes nothing.
func (s *Store) changeUser(ctx context.Context, id string, fn func(*custody.User) error, audit func(before, after custody.User) custody.AuditEntry) (custody.User, error) {
	var u custody.User
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := userRow(ctx, tx, id, true)
		if err != nil {
			return err
		}
		u = before
		u.PasswordHistory = slices.Clone(before.PasswordHistory)
		if err := fn(&u); err != nil {
			return err
		}
		u.ID = id
		v, err := json.Marshal(u)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET body = $2 WHERE id = $1`, id, v); err != nil {
			return err
		}
		if audit != nil {
			_, err = putAudit(ctx, tx, audit(before.Public(), u.Public()))
		}
		return err
	})
	if err != nil {
		return custody.User{}, err
	}
	return u, nil
}

// Users implements custody.UserStore: every user in ID order, without
// password hashes.
func (s *Store) Users(ctx context.Context) ([]custody.User, error) {
	return s.queryUsers(ctx, `SELECT body FROM users ORDER BY id`)
}

// UsersAfter implements custody.UserStore.
func (s *Store) UsersAfter(ctx context.Context, after string, limit int) ([]custody.User, error) {
	if limit < 1 {
		return nil, fmt.Errorf("users: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	return s.queryUsers(ctx, `SELECT body FROM users WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
}

// queryUsers runs a query of users' bodies and returns them without
// password hashes, in the query's order.
func (s *Store) queryUsers(ctx context.Context, query string, args ...any) ([]custody.User, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	defer rows.Close()
	out := []custody.User{}
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("users: %w", err)
		}
		var u custody.User
		if err := json.Unmarshal(raw, &u); err != nil {
			return nil, fmt.Errorf("users: %w", err)
		}
		out = append(out, u.Public())
	}
	return out, rows.Err()
}
