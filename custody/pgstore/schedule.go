package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/jackc/pgx/v5"
)

// Scheduling, quotas and the waiting list (migration 0006): the sites'
// capacity, the claims appends take and the slots open offers hold,
// counted per site, day and product; the quotas and the bookings counted
// against them per month; the waiting list. Whatever reads a count to
// check it and changes it locks schedule_lock first, so checks by any
// instance see the counts the others committed; an append with claims or
// a quota use locks it after the log head, in the same transaction as its
// record.

var (
	_ custody.ScheduleStore = (*Store)(nil)
	_ custody.QuotaStore    = (*Store)(nil)
)

// slot is a site's day and product (empty: apheresis chairs), as claims
// and holds count against it.
type slot struct{ site, day, product string }

func slotOf(c custody.Claim) slot { return slot{c.Site, c.Date, c.Product} }

// claimOf is a claim held by a chain.
type claimOf struct {
	slot
	coi custody.COI
}

// quotaKey is a quota key in a period (YYYY-MM).
type quotaKey struct{ period, key string }

// needsSchedule reports whether the draft takes or frees claims or quota
// uses, which its append checks against the counts.
func needsSchedule(d *custody.Draft) bool {
	return len(d.Claims) > 0 || len(d.Releases) > 0 || d.Quota != nil || d.QuotaRelease
}

func validClaim(c custody.Claim) error {
	if c.Site == "" || len(c.Date) != len(custody.DateLayout) || strings.IndexByte(c.Site+c.Date+c.Product, 0) >= 0 {
		return fmt.Errorf("claim %s is malformed: %w", c.ID(), custody.ErrInvalid)
	}
	return nil
}

func validQuotaUse(u custody.QuotaUse) error {
	if u.Key == "" || len(u.Period) != 7 || strings.IndexByte(u.Key+u.Period, 0) >= 0 {
		return fmt.Errorf("quota use %s %s is malformed: %w", u.Key, u.Period, custody.ErrInvalid)
	}
	return nil
}

// schedState is what an append batch's drafts check their claims and
// quota uses against, read under schedule_lock in the batch's
// transaction and changed as drafts link; the writes are queued as they
// apply, the counts' changes once at the end (flush).
type schedState struct {
	caps    map[string]*custody.Capacity // nil: the site has none
	used    map[slot]int                 // read counts of the slots the drafts name
	delta   map[slot]int                 // changes to them and others
	claims  map[claimOf]bool             // claims the batch's chains hold
	holds   map[custody.COI]slot         // slots the batch's chains' offers hold
	quotas  map[string]*custody.Quota    // nil: no quota for the key
	qused   map[quotaKey]int             // read counts of the drafts' quota uses
	qdelta  map[quotaKey]int
	qchain  map[custody.COI]quotaKey // the quota use each of the batch's chains holds
	damaged error                    // a stored value read was malformed
}

// queueScheduleReads queues onto b, after the log head's lock, the lock of
// the counts and the reads of what the drafts' claims and quota uses are
// checked against; the returned state is filled when b runs.
func queueScheduleReads(b *pgx.Batch, reqs []*appendReq) *schedState {
	st := &schedState{caps: map[string]*custody.Capacity{}, used: map[slot]int{}, delta: map[slot]int{},
		claims: map[claimOf]bool{}, holds: map[custody.COI]slot{}, quotas: map[string]*custody.Quota{},
		qused: map[quotaKey]int{}, qdelta: map[quotaKey]int{}, qchain: map[custody.COI]quotaKey{}}
	var cois, sites, qkeys []string
	var ss, sd, sp, qp, qk []string
	for _, r := range reqs {
		d := &r.d
		if !needsSchedule(d) {
			continue
		}
		cois = append(cois, string(d.Record.Chain))
		for _, c := range append(append([]custody.Claim{}, d.Claims...), d.Releases...) {
			if validClaim(c) != nil {
				continue // refused by check; PostgreSQL's text takes no zero byte
			}
			sites = append(sites, c.Site)
			ss, sd, sp = append(ss, c.Site), append(sd, c.Date), append(sp, c.Product)
		}
		if d.Quota != nil && validQuotaUse(*d.Quota) == nil {
			qkeys = append(qkeys, d.Quota.Key)
			qp, qk = append(qp, d.Quota.Period), append(qk, d.Quota.Key)
		}
	}
	b.Queue(`SELECT 1 FROM schedule_lock WHERE id FOR UPDATE`)
	b.Queue(`SELECT site, value FROM capacity WHERE site = ANY($1)`, sites).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var site string
			var v []byte
			if err := rows.Scan(&site, &v); err != nil {
				return err
			}
			cp := new(custody.Capacity)
			if err := json.Unmarshal(v, cp); err != nil {
				st.damaged = fmt.Errorf("capacity of %s: malformed: %v: %w", site, err, custody.ErrDamaged)
			}
			st.caps[site] = cp
		}
		return rows.Err()
	})
	b.Queue(slotUsedSQL, ss, sd, sp).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var k slot
			var n int
			if err := rows.Scan(&k.site, &k.day, &k.product, &n); err != nil {
				return err
			}
			st.used[k] = n
		}
		return rows.Err()
	})
	b.Queue(`SELECT site, day, product, coi FROM slot_claims WHERE coi = ANY($1)`, cois).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var c claimOf
			if err := rows.Scan(&c.site, &c.day, &c.product, &c.coi); err != nil {
				return err
			}
			st.claims[c] = true
		}
		return rows.Err()
	})
	b.Queue(`SELECT coi, site, day, product FROM slot_holds WHERE coi = ANY($1)`, cois).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var coi string
			var k slot
			if err := rows.Scan(&coi, &k.site, &k.day, &k.product); err != nil {
				return err
			}
			st.holds[custody.COI(coi)] = k
		}
		return rows.Err()
	})
	b.Queue(`SELECT key, value FROM quotas WHERE key = ANY($1)`, qkeys).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var key string
			var v []byte
			if err := rows.Scan(&key, &v); err != nil {
				return err
			}
			q := new(custody.Quota)
			if err := json.Unmarshal(v, q); err != nil {
				st.damaged = fmt.Errorf("quota %s: malformed: %v: %w", key, err, custody.ErrDamaged)
			}
			st.quotas[key] = q
		}
		return rows.Err()
	})
	b.Queue(quotaUsedSQL, qp, qk).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var k quotaKey
			var n int
			if err := rows.Scan(&k.period, &k.key, &n); err != nil {
				return err
			}
			st.qused[k] = n
		}
		return rows.Err()
	})
	b.Queue(`SELECT coi, period, key FROM quota_chain WHERE coi = ANY($1)`, cois).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var coi string
			var k quotaKey
			if err := rows.Scan(&coi, &k.period, &k.key); err != nil {
				return err
			}
			st.qchain[custody.COI(coi)] = k
		}
		return rows.Err()
	})
	return st
}

func (st *schedState) count(k slot) int      { return st.used[k] + st.delta[k] }
func (st *schedState) qcount(k quotaKey) int { return st.qused[k] + st.qdelta[k] }

// check refuses the draft's claims, releases and quota use without
// changing anything: a release the chain does not hold or a claim it
// holds already (ErrConflict), a claim the site cannot give
// (ErrSlotTaken), a quota used up (ErrQuotaExhausted).
func (st *schedState) check(d *custody.Draft) error {
	if st.damaged != nil {
		return st.damaged
	}
	coi := d.Record.Chain
	for _, r := range d.Releases {
		if err := validClaim(r); err != nil {
			return err
		}
		if !st.claims[claimOf{slotOf(r), coi}] {
			return fmt.Errorf("chain %s holds no claim %s to free: %w", coi, r.ID(), custody.ErrConflict)
		}
	}
	for i, cl := range d.Claims {
		if err := validClaim(cl); err != nil {
			return err
		}
		for _, o := range d.Claims[:i] {
			if o == cl {
				return fmt.Errorf("claim %s is given twice: %w", cl.ID(), custody.ErrInvalid)
			}
		}
		for _, r := range d.Releases {
			if r == cl {
				return fmt.Errorf("claim %s is both freed and taken: %w", cl.ID(), custody.ErrInvalid)
			}
		}
		if st.claims[claimOf{slotOf(cl), coi}] {
			return fmt.Errorf("chain %s holds claim %s already: %w", coi, cl.ID(), custody.ErrConflict)
		}
		if h, ok := st.holds[coi]; ok && h == slotOf(cl) {
			continue // the chain's offer holds the slot, counted already
		}
		if err := custody.CheckClaim(st.caps[cl.Site], cl, st.count(slotOf(cl))); err != nil {
			return err
		}
	}
	if d.Quota != nil {
		u := *d.Quota
		if err := validQuotaUse(u); err != nil {
			return err
		}
		k := quotaKey{u.Period, u.Key}
		n := st.qcount(k)
		if old, ok := st.qchain[coi]; ok && old == k {
			n-- // the chain's own use, freed by this draft
		}
		if err := custody.CheckQuota(st.quotas[u.Key], u, n); err != nil {
			return err
		}
	}
	return nil
}

// apply takes the checked draft's claims, releases and quota use, stored
// as record seq, and queues the writes of the claims, holds and quota
// uses onto w.
func (st *schedState) apply(w *pgx.Batch, d *custody.Draft, seq uint64) {
	coi := d.Record.Chain
	for _, r := range d.Releases {
		k := slotOf(r)
		delete(st.claims, claimOf{k, coi})
		st.delta[k]--
		w.Queue(`DELETE FROM slot_claims WHERE site = $1 AND day = $2 AND product = $3 AND coi = $4`, k.site, k.day, k.product, string(coi))
	}
	for _, cl := range d.Claims {
		k := slotOf(cl)
		st.claims[claimOf{k, coi}] = true
		w.Queue(`INSERT INTO slot_claims (site, day, product, coi, seq) VALUES ($1, $2, $3, $4, $5)`,
			k.site, k.day, k.product, string(coi), int64(seq))
		if h, ok := st.holds[coi]; ok && h == k {
			// The hold becomes the claim: the count stays.
			delete(st.holds, coi)
			w.Queue(`DELETE FROM slot_holds WHERE coi = $1`, string(coi))
			continue
		}
		st.delta[k]++
	}
	if d.Quota == nil && !d.QuotaRelease {
		return
	}
	if old, ok := st.qchain[coi]; ok {
		st.qdelta[old]--
		delete(st.qchain, coi)
		w.Queue(`DELETE FROM quota_chain WHERE coi = $1`, string(coi))
	}
	if d.Quota != nil {
		k := quotaKey{d.Quota.Period, d.Quota.Key}
		st.qdelta[k]++
		st.qchain[coi] = k
		w.Queue(`INSERT INTO quota_chain (coi, period, key) VALUES ($1, $2, $3)`, string(coi), k.period, k.key)
	}
}

// flush queues onto w the counts' changes: added to the stored counts,
// and the counts that fall to zero removed.
func (st *schedState) flush(w *pgx.Batch) {
	var ss, sd, sp []string
	var sn []int32
	for k, n := range st.delta {
		if n != 0 {
			ss, sd, sp, sn = append(ss, k.site), append(sd, k.day), append(sp, k.product), append(sn, int32(n))
		}
	}
	if len(ss) > 0 {
		w.Queue(`INSERT INTO slot_used (site, day, product, used) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[])
			ON CONFLICT (site, day, product) DO UPDATE SET used = slot_used.used + excluded.used`, ss, sd, sp, sn)
		w.Queue(slotUsedZeroSQL, ss, sd, sp)
	}
	var qp, qk []string
	var qn []int32
	for k, n := range st.qdelta {
		if n != 0 {
			qp, qk, qn = append(qp, k.period), append(qk, k.key), append(qn, int32(n))
		}
	}
	if len(qp) > 0 {
		w.Queue(`INSERT INTO quota_used (period, key, used) SELECT * FROM unnest($1::text[], $2::text[], $3::int[])
			ON CONFLICT (period, key) DO UPDATE SET used = quota_used.used + excluded.used`, qp, qk, qn)
		w.Queue(quotaUsedZeroSQL, qp, qk)
	}
}

// The statements of a batch that read or remove the counts of its slots
// and quota keys name the rows by their key's leading column (= ANY), so
// that the plan a connection caches, made on a new store's empty tables,
// finds them through the primary key rather than scanning tables that
// grow with the years (TestAppendPlansUseKeys).
const (
	slotUsedSQL = `SELECT s.site, s.day, s.product, s.used FROM slot_used s
		JOIN unnest($1::text[], $2::text[], $3::text[]) AS w (site, day, product)
		ON s.site = w.site AND s.day = w.day AND s.product = w.product
		WHERE s.site = ANY($1) AND s.day = ANY($2)`
	quotaUsedSQL = `SELECT q.period, q.key, q.used FROM quota_used q
		JOIN unnest($1::text[], $2::text[]) AS w (period, key) ON q.period = w.period AND q.key = w.key
		WHERE q.period = ANY($1)`
	slotUsedZeroSQL = `DELETE FROM slot_used s USING unnest($1::text[], $2::text[], $3::text[]) AS w (site, day, product)
		WHERE s.site = w.site AND s.day = w.day AND s.product = w.product AND s.site = ANY($1) AND s.day = ANY($2) AND s.used <= 0`
	quotaUsedZeroSQL = `DELETE FROM quota_used q USING unnest($1::text[], $2::text[]) AS w (period, key)
		WHERE q.period = w.period AND q.key = w.key AND q.period = ANY($1) AND q.used <= 0`
)

// lockSchedule takes schedule_lock inside tx.
func lockSchedule(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM schedule_lock WHERE id FOR UPDATE`); err != nil {
		return fmt.Errorf("lock the schedule: %w", err)
	}
	return nil
}

// updateValue runs fn on the value stored under key in table (columns
// col and value) and stores what it returns with its audit entries, in
// one transaction holding schedule_lock; also, if set, runs in it before
// the value is written. A nil value deletes the key, or is refused
// (ErrInvalid, nothing written) when keep.
func (s *Store) updateValue(ctx context.Context, what, table, col, key string, keep bool, fn func(old []byte) ([]byte, []custody.AuditEntry, error),
	also func(tx pgx.Tx, value []byte) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockSchedule(ctx, tx); err != nil {
			return err
		}
		var old []byte
		err := tx.QueryRow(ctx, `SELECT value FROM `+table+` WHERE `+col+` = $1`, key).Scan(&old)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%s %s: %w", what, key, err)
		}
		v, as, err := fn(old)
		if err != nil {
			return err
		}
		if v == nil && keep {
			return fmt.Errorf("%s %s: empty value: %w", what, key, custody.ErrInvalid)
		}
		if also != nil {
			if err := also(tx, v); err != nil {
				return err
			}
		}
		if v == nil {
			_, err = tx.Exec(ctx, `DELETE FROM `+table+` WHERE `+col+` = $1`, key)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO `+table+` (`+col+`, value) VALUES ($1, $2)
				ON CONFLICT (`+col+`) DO UPDATE SET value = excluded.value`, key, v)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", what, key, err)
		}
		for _, a := range as {
			if _, err := putAudit(ctx, tx, a); err != nil {
				return err
			}
		}
		return nil
	})
}

// UpdateCapacity implements custody.ScheduleStore.
func (s *Store) UpdateCapacity(ctx context.Context, site string, fn func(old []byte) ([]byte, custody.AuditEntry, error)) error {
	if site == "" {
		return fmt.Errorf("capacity: empty site: %w", custody.ErrInvalid)
	}
	return s.updateValue(ctx, "capacity", "capacity", "site", site, true, func(old []byte) ([]byte, []custody.AuditEntry, error) {
		v, a, err := fn(old)
		if err == nil && len(v) == 0 {
			v = nil
		}
		return v, []custody.AuditEntry{a}, err
	}, nil)
}

// Capacity implements custody.ScheduleStore.
func (s *Store) Capacity(ctx context.Context, site string) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM capacity WHERE site = $1`, site).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("site %s has no capacity defined: %w", site, custody.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("capacity of %s: %w", site, err)
	}
	return v, nil
}

// SiteSlots implements custody.ScheduleStore: in one snapshot, the sites'
// capacities, then the counts of their days.
func (s *Store) SiteSlots(ctx context.Context, sites []string, after string, limit int, from, to string) ([]custody.SiteSlots, error) {
	out := []custody.SiteSlots{}
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var rows pgx.Rows
		var err error
		switch {
		case len(sites) > 0:
			rows, err = tx.Query(ctx, `SELECT site, value FROM capacity WHERE site = ANY($1)`, sites)
		case limit > 0:
			rows, err = tx.Query(ctx, `SELECT site, value FROM capacity WHERE site > $1 ORDER BY site LIMIT $2`, after, limit)
		default:
			rows, err = tx.Query(ctx, `SELECT site, value FROM capacity WHERE site > $1 ORDER BY site`, after)
		}
		if err != nil {
			return err
		}
		found := map[string][]byte{}
		var order []string
		for rows.Next() {
			var site string
			var v []byte
			if err := rows.Scan(&site, &v); err != nil {
				rows.Close()
				return err
			}
			found[site] = v
			order = append(order, site)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(sites) > 0 { // in the order asked
			order = order[:0]
			for _, site := range sites {
				if _, ok := found[site]; ok {
					order = append(order, site)
				}
			}
		}
		idx := map[string][]int{}
		for _, site := range order {
			idx[site] = append(idx[site], len(out))
			out = append(out, custody.SiteSlots{Site: site, Capacity: found[site]})
		}
		if len(order) == 0 {
			return nil
		}
		rows, err = tx.Query(ctx, `SELECT site, day, product, used FROM slot_used WHERE site = ANY($1) AND day >= $2 AND day <= $3
			ORDER BY site, day, product`, order, from, to)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var site string
			var u custody.SlotUse
			if err := rows.Scan(&site, &u.Date, &u.Product, &u.Used); err != nil {
				return err
			}
			for _, i := range idx[site] {
				out[i].Uses = append(out[i].Uses, u)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("site slots: %w", err)
	}
	return out, nil
}

// SiteClaims implements custody.ScheduleStore.
func (s *Store) SiteClaims(ctx context.Context, site, from, to string, limit int) ([]custody.HeldClaim, error) {
	sql, args := `SELECT day, product, coi, seq FROM slot_claims WHERE site = $1 AND day >= $2 AND day <= $3 ORDER BY day, product, coi`,
		[]any{site, from, to}
	if limit > 0 {
		sql, args = sql+` LIMIT $4`, append(args, limit)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("claims at %s: %w", site, err)
	}
	defer rows.Close()
	out := []custody.HeldClaim{}
	for rows.Next() {
		h := custody.HeldClaim{Claim: custody.Claim{Site: site}}
		var coi string
		var seq int64
		if err := rows.Scan(&h.Date, &h.Product, &coi, &seq); err != nil {
			return nil, fmt.Errorf("claims at %s: %w", site, err)
		}
		h.COI, h.Seq = custody.COI(coi), uint64(seq)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claims at %s: %w", site, err)
	}
	return out, nil
}

// UpdateQuota implements custody.QuotaStore.
func (s *Store) UpdateQuota(ctx context.Context, key string, fn func(old []byte) ([]byte, custody.AuditEntry, error)) error {
	if key == "" {
		return fmt.Errorf("quota: empty key: %w", custody.ErrInvalid)
	}
	return s.updateValue(ctx, "quota", "quotas", "key", key, false, func(old []byte) ([]byte, []custody.AuditEntry, error) {
		v, a, err := fn(old)
		return v, []custody.AuditEntry{a}, err
	}, nil)
}

// Quotas implements custody.QuotaStore.
func (s *Store) Quotas(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, value FROM quotas`)
	if err != nil {
		return nil, fmt.Errorf("quotas: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("quotas: %w", err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("quotas: %w", err)
	}
	return out, nil
}

// QuotasAfter implements custody.QuotaStore: a range of the quotas
// table's primary key (COLLATE "C": byte order).
func (s *Store) QuotasAfter(ctx context.Context, after string, limit int) ([]custody.StoredValue, error) {
	if limit < 1 {
		return nil, fmt.Errorf("quotas: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	rows, err := s.pool.Query(ctx, `SELECT key, value FROM quotas WHERE key > $1 ORDER BY key LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("quotas: %w", err)
	}
	defer rows.Close()
	out := []custody.StoredValue{}
	for rows.Next() {
		var e custody.StoredValue
		if err := rows.Scan(&e.Key, &e.Value); err != nil {
			return nil, fmt.Errorf("quotas: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("quotas: %w", err)
	}
	return out, nil
}

// QuotaUses implements custody.QuotaStore.
func (s *Store) QuotaUses(ctx context.Context, period string) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, used FROM quota_used WHERE period = $1`, period)
	if err != nil {
		return nil, fmt.Errorf("quota uses: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("quota uses: %w", err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("quota uses: %w", err)
	}
	return out, nil
}

// UpdateWaitlist implements custody.QuotaStore.
func (s *Store) UpdateWaitlist(ctx context.Context, coi custody.COI, fn func(old []byte) ([]byte, []custody.AuditEntry, error)) error {
	return s.updateWaitlist(ctx, coi, false, nil, fn)
}

// UpdateWaitlistHold implements custody.QuotaStore.
func (s *Store) UpdateWaitlistHold(ctx context.Context, coi custody.COI, hold *custody.Claim,
	fn func(old []byte) ([]byte, []custody.AuditEntry, error)) error {
	return s.updateWaitlist(ctx, coi, true, hold, fn)
}

// updateWaitlist stores fn's entry of chain coi and its audit entries,
// and, when setHold, replaces the slot the chain's offer holds with hold;
// an entry removed frees its hold.
func (s *Store) updateWaitlist(ctx context.Context, coi custody.COI, setHold bool, hold *custody.Claim,
	fn func(old []byte) ([]byte, []custody.AuditEntry, error)) error {
	if coi == "" {
		return fmt.Errorf("waiting list: empty chain: %w", custody.ErrInvalid)
	}
	return s.updateValue(ctx, "waiting list", "waitlist", "coi", string(coi), false, fn, func(tx pgx.Tx, v []byte) error {
		if v == nil {
			if hold != nil {
				return fmt.Errorf("waiting list: a slot held for a chain off the list: %w", custody.ErrInvalid)
			}
			setHold = true
		}
		if !setHold {
			return nil
		}
		return setSlotHold(ctx, tx, coi, hold)
	})
}

// setSlotHold frees the slot chain coi's offer holds, if any, then holds
// slot hold (nil: none) while the site can give it (ErrSlotTaken
// otherwise), inside tx, which holds schedule_lock.
func setSlotHold(ctx context.Context, tx pgx.Tx, coi custody.COI, hold *custody.Claim) error {
	var old slot
	err := tx.QueryRow(ctx, `SELECT site, day, product FROM slot_holds WHERE coi = $1`, string(coi)).Scan(&old.site, &old.day, &old.product)
	had := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("hold of %s: %w", coi, err)
	}
	if hold != nil {
		if err := validClaim(*hold); err != nil {
			return err
		}
		k := slotOf(*hold)
		if had && old == k {
			return nil // held already
		}
		if hold.Product == "" {
			return fmt.Errorf("an offer holds a manufacturing slot, not a chair: %w", custody.ErrInvalid)
		}
		var n int
		err := tx.QueryRow(ctx, `SELECT count(*) FROM slot_claims WHERE site = $1 AND day = $2 AND product = $3 AND coi = $4`,
			k.site, k.day, k.product, string(coi)).Scan(&n)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("chain %s holds claim %s already: %w", coi, hold.ID(), custody.ErrConflict)
		}
		var cp *custody.Capacity
		var v []byte
		switch err := tx.QueryRow(ctx, `SELECT value FROM capacity WHERE site = $1`, k.site).Scan(&v); {
		case err == nil:
			cp = new(custody.Capacity)
			if err := json.Unmarshal(v, cp); err != nil {
				return fmt.Errorf("capacity of %s: malformed: %v: %w", k.site, err, custody.ErrDamaged)
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		used := 0
		err = tx.QueryRow(ctx, `SELECT used FROM slot_used WHERE site = $1 AND day = $2 AND product = $3`, k.site, k.day, k.product).Scan(&used)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err := custody.CheckClaim(cp, *hold, used); err != nil {
			return err
		}
	}
	var b pgx.Batch
	if had {
		b.Queue(`DELETE FROM slot_holds WHERE coi = $1`, string(coi))
		b.Queue(`UPDATE slot_used SET used = used - 1 WHERE site = $1 AND day = $2 AND product = $3`, old.site, old.day, old.product)
		b.Queue(`DELETE FROM slot_used WHERE used <= 0`)
	}
	if hold != nil {
		k := slotOf(*hold)
		b.Queue(`INSERT INTO slot_holds (coi, site, day, product) VALUES ($1, $2, $3, $4)`, string(coi), k.site, k.day, k.product)
		b.Queue(`INSERT INTO slot_used (site, day, product, used) VALUES ($1, $2, $3, 1)
			ON CONFLICT (site, day, product) DO UPDATE SET used = slot_used.used + 1`, k.site, k.day, k.product)
	}
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, &b).Close()
}

// Waitlist implements custody.QuotaStore.
func (s *Store) Waitlist(ctx context.Context) ([][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT value FROM waitlist ORDER BY coi`)
	if err != nil {
		return nil, fmt.Errorf("waiting list: %w", err)
	}
	defer rows.Close()
	out := [][]byte{}
	for rows.Next() {
		var v []byte
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("waiting list: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("waiting list: %w", err)
	}
	return out, nil
}
