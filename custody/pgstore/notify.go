package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/coid-project/coid/custody"
	"github.com/jackc/pgx/v5"
)

// Broadcasts are PostgreSQL notifications (NOTIFY, LISTEN). Channels
// belong to the database, not to a schema: a channel's name carries a
// digest of the schema, so stores in different schemas do not hear each
// other. A payload is at most 8000 bytes (PostgreSQL's limit).

// channelName returns the notification channel of name in the store's
// schema.
func (s *Store) channelName(ctx context.Context, q querier, name string) (string, error) {
	var schema string
	if err := q.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", fmt.Errorf("notification channel: %w", err)
	}
	d := sha256.Sum256([]byte(schema))
	return "coid_" + name + "_" + hex.EncodeToString(d[:8]), nil
}

// Broadcast implements custody.Broadcaster in one round trip: the
// channel's name is computed by the server from the schema.
func (s *Store) Broadcast(ctx context.Context, channel string, payload []byte) error {
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify('coid_' || $1 || '_' || left(encode(sha256(convert_to(current_schema(), 'UTF8')), 'hex'), 16), $2)`,
		channel, string(payload)); err != nil {
		return fmt.Errorf("broadcast on %s: %w", channel, err)
	}
	return nil
}

// Listen implements custody.Broadcaster on a connection of its own,
// outside the pool; after a broken connection it waits LeaderPoll before
// it connects again.
func (s *Store) Listen(ctx context.Context, channel string, fn func([]byte)) error {
	for {
		err := s.listenOnce(ctx, channel, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("notifications: the listening connection broke; connecting again (messages sent meanwhile are missed)",
			"channel", channel, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.after(s.leaderPoll):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, channel string, fn func([]byte)) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer closeConn(conn)
	ch, err := s.channelName(ctx, conn, channel)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn([]byte(n.Payload))
	}
}

var _ custody.Broadcaster = (*Store)(nil)
