package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// MaxQuarantine is how many refused payloads the quarantine keeps; beyond
// it the oldest are dropped, and the store logs their IDs.
const MaxQuarantine = 1000

// readingsReq is one caller's batch queued for the readings writer.
type readingsReq struct {
	readings   []custody.Reading
	quarantine *custody.QuarantineEntry
}

// newReadingsWriter starts the readings' group commit.
func (s *Store) newReadingsWriter() (*custody.GroupCommit[readingsReq, custody.IngestResult], error) {
	return custody.NewGroupCommit(custody.GroupCommitConfig[readingsReq, custody.IngestResult]{
		Begin:     func() custody.BatchTxn[readingsReq, custody.IngestResult] { return &readingsTx{s: s} },
		Queue:     8192,
		MaxBatch:  4096,
		Weight:    func(r *readingsReq) int { return len(r.readings) },
		FollowMin: 4,
		FollowMax: followMax,
	})
}

// readingsTx is one batch of the readings writer.
type readingsTx struct {
	s     *Store
	batch []*readingsReq
}

// Add implements custody.BatchTxn.
func (t *readingsTx) Add(r *readingsReq) { t.batch = append(t.batch, r) }

// AddReadingsAsync implements custody.ReadingSink: done is called once the
// transaction holding the batch has committed, or with the error that
// prevented it (custody.ErrReadingConflict: nothing of the batch, not even
// q, was written).
func (s *Store) AddReadingsAsync(readings []custody.Reading, q *custody.QuarantineEntry, done func(custody.IngestResult, error)) error {
	if err := s.readings.Submit(context.Background(), readingsReq{readings: readings, quarantine: q}, done); err != nil {
		return fmt.Errorf("add readings: %w", err)
	}
	return nil
}

// AddReadings implements custody.TelemetryStore.
func (s *Store) AddReadings(ctx context.Context, readings []custody.Reading) (custody.IngestResult, error) {
	return s.readings.Do(ctx, readingsReq{readings: readings})
}

// Quarantine implements custody.TelemetryStore.
func (s *Store) Quarantine(ctx context.Context, q custody.QuarantineEntry) error {
	_, err := s.readings.Do(ctx, readingsReq{quarantine: &q})
	return err
}

// Commit implements custody.BatchTxn: in one transaction it locks the
// watermark row (so instances ingest one after another), reads the stored
// readings under the batch's identities, and stores what is new. A
// request holding a reading that differs from the one stored (or taken
// earlier in the batch) under its identity is refused whole
// (custody.ErrReadingConflict); an identical one is a duplicate, counted
// and skipped.
func (t *readingsTx) Commit(out []custody.Outcome[custody.IngestResult]) error {
	ctx := context.Background()
	var keys [][]byte
	for _, req := range t.batch {
		for i := range req.readings {
			keys = append(keys, req.readings[i].Key())
		}
	}
	var dropped int64
	err := pgx.BeginFunc(ctx, t.s.pool, func(tx pgx.Tx) error {
		var wm int64
		if err := tx.QueryRow(ctx, `SELECT watermark FROM readings_meta WHERE id FOR UPDATE`).Scan(&wm); err != nil {
			return fmt.Errorf("lock the watermark: %w", err)
		}
		stored := map[string][]byte{} // key -> canonical content
		if len(keys) > 0 {
			rows, err := tx.Query(ctx, `SELECT key, content FROM readings WHERE key = ANY($1)`, keys)
			if err != nil {
				return err
			}
			for rows.Next() {
				var k, c []byte
				if err := rows.Scan(&k, &c); err != nil {
					return err
				}
				stored[string(k)] = c
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		var ins readingColumns
		var quarantined []*custody.QuarantineEntry
		for i, req := range t.batch {
			start := len(ins.key)
			res, conflict := custody.IngestResult{}, (*custody.Reading)(nil)
			for j := range req.readings {
				r := &req.readings[j]
				k := r.Key()
				c := r.AppendCanonical(nil)
				if prev, ok := stored[string(k)]; ok {
					if bytes.Equal(prev, c) {
						res.Duplicates++
					} else if conflict == nil {
						conflict = r
					}
					continue
				}
				body, err := json.Marshal(r)
				if err != nil {
					return err
				}
				stored[string(k)] = c
				ins.add(k, r, c, body)
			}
			if conflict != nil {
				// Refused whole: forget what it would have added.
				for _, k := range ins.key[start:] {
					delete(stored, string(k))
				}
				ins.truncate(start)
				out[i].Err = conflictError(conflict)
				continue
			}
			res.Stored = len(ins.key) - start
			out[i].Value = res
			if req.quarantine != nil {
				quarantined = append(quarantined, req.quarantine)
			}
		}
		var batch pgx.Batch
		if len(ins.key) > 0 {
			wm++
			ins.watermark(wm)
			batch.Queue(`INSERT INTO readings (key, shipper, device_time, watermark, content, body)
				SELECT * FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::bigint[], $5::bytea[], $6::bytea[])`,
				ins.key, ins.shipper, ins.deviceTime, ins.wm, ins.content, ins.body)
			batch.Queue(`UPDATE readings_meta SET watermark = $1 WHERE id`, wm)
		}
		for _, q := range quarantined {
			batch.Queue(`INSERT INTO quarantine (topic, received, reason, size, payload) VALUES ($1, $2, $3, $4, $5)`,
				q.Topic, q.Received.UTC().Format(time.RFC3339Nano), q.Reason, q.Size, q.Payload)
		}
		if len(quarantined) > 0 {
			batch.Queue(`DELETE FROM quarantine WHERE id <= (SELECT max(id) FROM quarantine) - $1`, MaxQuarantine).Exec(func(tag pgconn.CommandTag) error {
				dropped = tag.RowsAffected()
				return nil
			})
		}
		for i := range out {
			out[i].Value.Watermark = uint64(wm)
		}
		if batch.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return fmt.Errorf("add readings: commit failed, nothing was written: %w", err)
	}
	if dropped > 0 {
		t.s.log.Warn("telemetry quarantine full: oldest entries dropped", "dropped", dropped, "max_entries", MaxQuarantine)
	}
	return nil
}

// conflictError says which reading conflicts with the one stored under
// its identity.
func conflictError(r *custody.Reading) error {
	id := "device time " + r.DeviceTime.UTC().Format(time.RFC3339Nano)
	if r.HasSeq {
		id = fmt.Sprintf("seq %d", r.Seq)
	}
	return fmt.Errorf("add readings: shipper %s %s is already stored, or appears earlier in the message, with different content; nothing of the message was stored: %w",
		r.Shipper, id, custody.ErrReadingConflict)
}

// readingColumns are the batch's new readings, column by column, as the
// insert over arrays takes them.
type readingColumns struct {
	key, content, body [][]byte
	shipper            []string
	deviceTime, wm     []int64
}

func (c *readingColumns) add(k []byte, r *custody.Reading, content, body []byte) {
	c.key, c.content, c.body = append(c.key, k), append(c.content, content), append(c.body, body)
	c.shipper, c.deviceTime = append(c.shipper, r.Shipper), append(c.deviceTime, r.DeviceTime.UnixNano())
}

func (c *readingColumns) truncate(n int) {
	c.key, c.content, c.body = c.key[:n], c.content[:n], c.body[:n]
	c.shipper, c.deviceTime = c.shipper[:n], c.deviceTime[:n]
}

// watermark sets every reading's watermark to wm.
func (c *readingColumns) watermark(wm int64) {
	c.wm = make([]int64, len(c.key))
	for i := range c.wm {
		c.wm[i] = wm
	}
}

// ShipperReadings implements custody.ReadingStore.
func (s *Store) ShipperReadings(ctx context.Context, shipper string, from, to time.Time, through uint64) ([]custody.Reading, uint64, error) {
	var out []custody.Reading
	var wm int64
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT watermark FROM readings_meta WHERE id`).Scan(&wm); err != nil {
			return err
		}
		lo, hi, th := int64(-1<<63), int64(1<<63-1), int64(1<<63-1)
		if !from.IsZero() {
			lo = from.UnixNano()
		}
		if !to.IsZero() {
			hi = to.UnixNano()
		}
		if through > 0 {
			th = int64(through)
		}
		var err error
		out, err = queryReadings(ctx, tx, `SELECT body FROM readings WHERE shipper = $1 AND device_time BETWEEN $2 AND $3 AND watermark <= $4
			ORDER BY device_time, key`, shipper, lo, hi, th)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("shipper readings %s: %w", shipper, err)
	}
	slices.SortStableFunc(out, custody.CompareReadings)
	return out, uint64(wm), nil
}

// ShipperReadingsPage implements custody.ReadingStore: the device time of
// the limit-th reading from from bounds the page, so that it holds every
// reading of its last instant; both reads are ranges of the (shipper,
// device_time) order.
func (s *Store) ShipperReadingsPage(ctx context.Context, shipper string, from, to time.Time, limit int) ([]custody.Reading, error) {
	if limit < 1 {
		return nil, fmt.Errorf("shipper readings %s: limit %d must be 1 or more: %w", shipper, limit, custody.ErrInvalid)
	}
	lo, hi := int64(-1<<63), int64(1<<63-1)
	if !from.IsZero() {
		lo = from.UnixNano()
	}
	if !to.IsZero() {
		hi = to.UnixNano()
	}
	var out []custody.Reading
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = queryReadings(ctx, tx, `SELECT body FROM readings WHERE shipper = $1 AND device_time BETWEEN $2 AND
			COALESCE((SELECT device_time FROM readings WHERE shipper = $1 AND device_time BETWEEN $2 AND $3
				ORDER BY device_time OFFSET $4 - 1 LIMIT 1), $3)
			ORDER BY device_time, key`, shipper, lo, hi, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("shipper readings %s: %w", shipper, err)
	}
	if out == nil {
		out = []custody.Reading{}
	}
	slices.SortStableFunc(out, custody.CompareReadings)
	return out, nil
}

// ReadingsCount implements custody.TelemetryStore.
func (s *Store) ReadingsCount(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&n); err != nil {
		return 0, fmt.Errorf("readings count: %w", err)
	}
	return n, nil
}

// QuarantineList implements custody.QuarantineLister: newest first, at
// most limit (limit <= 0: all that are kept).
func (s *Store) QuarantineList(ctx context.Context, before uint64, limit int) ([]custody.QuarantineEntry, error) {
	if limit <= 0 {
		limit = MaxQuarantine
	}
	rows, err := s.pool.Query(ctx, `SELECT id, topic, received, reason, size, payload FROM quarantine
		WHERE $2 = 0 OR id < $2 ORDER BY id DESC LIMIT $1`, limit, int64(before))
	if err != nil {
		return nil, fmt.Errorf("quarantine list: %w", err)
	}
	defer rows.Close()
	out := []custody.QuarantineEntry{}
	for rows.Next() {
		var e custody.QuarantineEntry
		var id int64
		var received string
		if err := rows.Scan(&id, &e.Topic, &received, &e.Reason, &e.Size, &e.Payload); err != nil {
			return nil, fmt.Errorf("quarantine list: %w", err)
		}
		e.ID = uint64(id)
		if e.Received, err = time.Parse(time.RFC3339Nano, received); err != nil {
			return nil, fmt.Errorf("quarantine entry %d: %w", id, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ReadingsSince implements custody.ReadingLog. Every committed batch has
// its own watermark (taken under the watermark row's lock, so watermarks
// commit in order across instances), and the readings_watermark index
// answers the page: its cost grows with the page, not with the store. The
// log is complete from the first reading, so a page is never Incomplete.
func (s *Store) ReadingsSince(ctx context.Context, after uint64, limit int) (custody.ReadingsPage, error) {
	if limit <= 0 {
		limit = custody.DefaultReadingsPage
	}
	page := custody.ReadingsPage{Through: after}
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		// The batch whose readings bring the page to limit: the page ends
		// with it, whole.
		var last *int64
		if err := tx.QueryRow(ctx, `SELECT max(watermark) FROM (SELECT watermark FROM readings
			WHERE watermark > $1 ORDER BY watermark LIMIT $2) AS p`, int64(after), limit).Scan(&last); err != nil {
			return err
		}
		if last == nil {
			return nil
		}
		var err error
		page.Readings, err = queryReadings(ctx, tx, `SELECT body FROM readings WHERE watermark > $1 AND watermark <= $2 ORDER BY watermark`,
			int64(after), *last)
		if err != nil {
			return err
		}
		page.Through = uint64(*last)
		return tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM readings WHERE watermark > $1)`, *last).Scan(&page.More)
	})
	if err != nil {
		return custody.ReadingsPage{}, fmt.Errorf("readings since %d: %w", after, err)
	}
	return page, nil
}

// queryReadings runs a query whose one column is a stored reading's body
// and decodes the readings in the order the query gives; a body that does
// not decode is ErrChainBroken.
func queryReadings(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]custody.Reading, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []custody.Reading
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var r custody.Reading
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("stored reading: %v: %w", err, custody.ErrChainBroken)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// QuarantineCount returns how many refused payloads the quarantine holds
// (for the operators' gauge).
func (s *Store) QuarantineCount(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM quarantine`).Scan(&n); err != nil {
		return 0, fmt.Errorf("quarantine count: %w", err)
	}
	return n, nil
}
