package pgstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coid-project/coid/custody"
)

// The access-request index (custody.AccessIndex, table access_rows) and
// the overdue follow-up index (custody.FollowUpIndex, table
// followup_pending): the rows the drafts carry, written in the append's
// transaction (batchTx.link), and built at open for the chains written
// before the store kept them (buildIndexes).

var (
	_ custody.AccessIndex   = (*Store)(nil)
	_ custody.FollowUpIndex = (*Store)(nil)
)

// The names index_builds holds for the two indexes once they hold every
// chain.
const (
	builtAccess   = "access"
	builtFollowUp = "followup"
)

// accessStates are the journey states of request chains: those that
// have an access row.
var accessStates = []string{string(custody.AccessSubmitted), string(custody.AccessInfoRequested), string(custody.AccessDecided),
	string(custody.AccessEnrolled), string(custody.AccessWithdrawn)}

// accessEntry is an access row with the journey state it is filed under.
type accessEntry struct {
	state custody.State
	row   custody.AccessRow
}

// indexChanges are the index rows a batch changes, the last draft of each
// chain deciding: a nil entry removes the chain's row.
type indexChanges struct {
	access   map[custody.COI]*accessEntry
	followUp map[custody.COI]*custody.FollowUpPending
	// unbuilt is set by a request draft without a row: its chain's row is
	// removed and the index rebuilt at the next open.
	unbuilt bool
}

// note records the index changes of draft d, linked after the chain was
// in state prev (empty: it did not exist).
func (x *indexChanges) note(prev custody.State, d *custody.Draft) {
	coi := d.Record.Chain
	if d.Access != nil || d.State.Access() || prev.Access() {
		if x.access == nil {
			x.access = map[custody.COI]*accessEntry{}
		}
		if d.Access == nil || !d.State.Access() {
			x.access[coi] = nil
			x.unbuilt = x.unbuilt || d.State.Access()
		} else {
			row := *d.Access
			row.ID = coi
			x.access[coi] = &accessEntry{state: d.State, row: row}
		}
	}
	if d.FollowUp != nil || prev == custody.StateInfused || x.followUp[coi] != nil {
		if x.followUp == nil {
			x.followUp = map[custody.COI]*custody.FollowUpPending{}
		}
		if d.FollowUp == nil || d.State != custody.StateInfused {
			x.followUp[coi] = nil
		} else {
			p := *d.FollowUp
			p.COI = coi
			x.followUp[coi] = &p
		}
	}
}

// queue queues the changes onto w, in the append's transaction.
func (x *indexChanges) queue(w *pgx.Batch) {
	var gone []string
	var ac accessColumns
	for _, coi := range slices.Sorted(maps.Keys(x.access)) {
		if e := x.access[coi]; e != nil {
			ac.add(e)
		} else {
			gone = append(gone, string(coi))
		}
	}
	if len(gone) > 0 {
		w.Queue(`DELETE FROM access_rows WHERE coi = ANY($1)`, gone)
	}
	if x.unbuilt {
		w.Queue(`DELETE FROM index_builds WHERE name = $1`, builtAccess)
	}
	if len(ac.coi) > 0 {
		ac.queueUpsert(w)
	}
	gone = gone[:0]
	var fc followUpColumns
	for _, coi := range slices.Sorted(maps.Keys(x.followUp)) {
		if p := x.followUp[coi]; p != nil {
			fc.add(p)
		} else {
			gone = append(gone, string(coi))
		}
	}
	if len(gone) > 0 {
		w.Queue(`DELETE FROM followup_pending WHERE coi = ANY($1)`, gone)
	}
	if len(fc.coi) > 0 {
		fc.queueUpsert(w)
	}
}

// accessColumns are access rows, column by column, as the insert over
// arrays takes them.
type accessColumns struct {
	coi, state, view, urgency, treatment, manufacturing, assignee []string
	submitted, decided, waiting                                   []*int64
	paused                                                        []int64
}

func (c *accessColumns) add(e *accessEntry) {
	w := &e.row
	c.coi, c.state, c.view = append(c.coi, string(w.ID)), append(c.state, string(e.state)), append(c.view, string(w.State))
	c.urgency, c.treatment = append(c.urgency, string(w.Urgency)), append(c.treatment, w.Treatment)
	c.manufacturing, c.assignee = append(c.manufacturing, w.Manufacturing), append(c.assignee, w.Assignee)
	c.submitted, c.decided, c.waiting = append(c.submitted, nanos(w.Submitted)), append(c.decided, nanos(w.Decided)), append(c.waiting, nanos(w.WaitingSince))
	c.paused = append(c.paused, int64(w.Paused))
}

func (c *accessColumns) queueUpsert(w *pgx.Batch) {
	w.Queue(`INSERT INTO access_rows (coi, state, view_state, urgency, treatment, manufacturing, submitted, decided, paused, waiting_since, assignee)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[],
			$10::bigint[], $11::text[])
		ON CONFLICT (coi) DO UPDATE SET state = EXCLUDED.state, view_state = EXCLUDED.view_state, urgency = EXCLUDED.urgency,
			treatment = EXCLUDED.treatment, manufacturing = EXCLUDED.manufacturing, submitted = EXCLUDED.submitted,
			decided = EXCLUDED.decided, paused = EXCLUDED.paused, waiting_since = EXCLUDED.waiting_since, assignee = EXCLUDED.assignee`,
		c.coi, c.state, c.view, c.urgency, c.treatment, c.manufacturing, c.submitted, c.decided, c.paused, c.waiting, c.assignee)
}

// followUpColumns are follow-up entries, column by column. The recorded
// time points go in as text (an array literal each): a two-dimensional
// array cannot hold lists of different lengths.
type followUpColumns struct {
	coi, product, collection, manufacturing, treatment, done []string
	infused                                                  []*int64
}

func (c *followUpColumns) add(p *custody.FollowUpPending) {
	c.coi, c.product = append(c.coi, string(p.COI)), append(c.product, p.Product)
	c.collection, c.manufacturing, c.treatment = append(c.collection, p.Sites.Collection), append(c.manufacturing, p.Sites.Manufacturing),
		append(c.treatment, p.Sites.Treatment)
	c.infused = append(c.infused, nanos(p.Infused))
	b := []byte{'{'}
	for i, d := range p.Done {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, "%d", d)
	}
	c.done = append(c.done, string(append(b, '}')))
}

func (c *followUpColumns) queueUpsert(w *pgx.Batch) {
	w.Queue(`INSERT INTO followup_pending (coi, product, collection, manufacturing, treatment, infused, done)
		SELECT coi, product, collection, manufacturing, treatment, infused, done::integer[]
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[])
			AS u (coi, product, collection, manufacturing, treatment, infused, done)
		ON CONFLICT (coi) DO UPDATE SET product = EXCLUDED.product, collection = EXCLUDED.collection,
			manufacturing = EXCLUDED.manufacturing, treatment = EXCLUDED.treatment, infused = EXCLUDED.infused, done = EXCLUDED.done`,
		c.coi, c.product, c.collection, c.manufacturing, c.treatment, c.infused, c.done)
}

// accessRowColumns is the select list scanAccessRow reads.
const accessRowColumns = `coi, state, view_state, urgency, treatment, manufacturing, submitted, decided, paused, waiting_since, assignee`

func scanAccessRow(row pgx.CollectableRow) (accessEntry, error) {
	var e accessEntry
	var coi, state, view, urgency string
	var submitted, decided, waiting *int64
	var paused int64
	w := &e.row
	if err := row.Scan(&coi, &state, &view, &urgency, &w.Treatment, &w.Manufacturing, &submitted, &decided, &paused, &waiting, &w.Assignee); err != nil {
		return e, err
	}
	e.state = custody.State(state)
	w.ID, w.State, w.Urgency = custody.COI(coi), custody.State(view), custody.Urgency(urgency)
	w.Submitted, w.Decided, w.WaitingSince, w.Paused = fromNanos(submitted), fromNanos(decided), fromNanos(waiting), time.Duration(paused)
	return e, nil
}

// followUpColumnsSQL is the select list scanFollowUp reads.
const followUpColumnsSQL = `coi, product, collection, manufacturing, treatment, infused, done`

func scanFollowUp(row pgx.CollectableRow) (custody.FollowUpPending, error) {
	var p custody.FollowUpPending
	var coi string
	var infused *int64
	var done []int32
	if err := row.Scan(&coi, &p.Product, &p.Sites.Collection, &p.Sites.Manufacturing, &p.Sites.Treatment, &infused, &done); err != nil {
		return p, err
	}
	p.COI, p.Infused, p.Done = custody.COI(coi), fromNanos(infused), make([]int, 0, len(done))
	for _, d := range done {
		p.Done = append(p.Done, int(d))
	}
	return p, nil
}

// AccessRows implements custody.AccessIndex.
func (s *Store) AccessRows(ctx context.Context, states ...custody.State) ([]custody.AccessRow, error) {
	names := make([]string, len(states))
	for i, st := range states {
		names[i] = string(st)
	}
	var built bool
	var out []custody.AccessRow
	var b pgx.Batch
	b.Queue(`SELECT EXISTS (SELECT 1 FROM index_builds WHERE name = $1)`, builtAccess).QueryRow(func(row pgx.Row) error {
		return row.Scan(&built)
	})
	b.Queue(`SELECT `+accessRowColumns+` FROM unnest($1::text[]) WITH ORDINALITY AS s (state, n) JOIN access_rows USING (state)
		ORDER BY s.n, coi`, names).Query(func(rows pgx.Rows) error {
		es, err := pgx.CollectRows(rows, scanAccessRow)
		out = make([]custody.AccessRow, 0, len(es))
		for _, e := range es {
			out = append(out, e.row)
		}
		return err
	})
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("access index: %w", err)
	}
	if !built {
		// A request record was appended without its row: the index is
		// rebuilt at the next open.
		return nil, fmt.Errorf("access index: not built yet: %w", errors.ErrUnsupported)
	}
	return out, nil
}

// followUpPage is how many entries FollowUpPending reads at a time.
const followUpPage = 1000

// FollowUpPending implements custody.FollowUpIndex: the entries are read
// a page at a time, each page in one statement.
func (s *Store) FollowUpPending(ctx context.Context, after custody.COI, fn func(custody.FollowUpPending) bool) error {
	for {
		rows, err := s.pool.Query(ctx, `SELECT `+followUpColumnsSQL+` FROM followup_pending WHERE coi > $1 ORDER BY coi LIMIT $2`,
			string(after), followUpPage)
		if err != nil {
			return fmt.Errorf("follow-up index: %w", err)
		}
		page, err := pgx.CollectRows(rows, scanFollowUp)
		if err != nil {
			return fmt.Errorf("follow-up index: %w", err)
		}
		for _, p := range page {
			if !fn(p) {
				return nil
			}
		}
		if len(page) < followUpPage {
			return nil
		}
		after = page[len(page)-1].COI
	}
}

// foldIndexes folds the records of the request chains and the infused
// chains into the rows the two indexes should hold.
func foldIndexes(ctx context.Context, q querier) (map[custody.COI]*accessEntry, map[custody.COI]*custody.FollowUpPending, error) {
	infos := map[custody.COI]custody.ChainInfo{}
	rows, err := q.Query(ctx, `SELECT info FROM chains WHERE state = ANY($1)`, append(slices.Clip(accessStates), string(custody.StateInfused)))
	if err != nil {
		return nil, nil, err
	}
	err = eachChain(rows, func(ci custody.ChainInfo) error {
		infos[ci.COI] = ci
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	access, followUp := map[custody.COI]*accessEntry{}, map[custody.COI]*custody.FollowUpPending{}
	var coi custody.COI
	var recs []custody.Record
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		ci := infos[coi]
		if ci.State == custody.StateInfused {
			if p := custody.FollowUpPendingOf(coi, ci.Product, ci.Sites, recs); p != nil {
				followUp[coi] = p
			}
		} else {
			w, err := custody.AccessRowOf(recs)
			if err != nil {
				return fmt.Errorf("request %s: %w", coi, err)
			}
			w.ID = coi
			access[coi] = &accessEntry{state: ci.State, row: w}
		}
		recs = recs[:0]
		return nil
	}
	rows, err = q.Query(ctx, `SELECT r.chain, r.hash, r.body FROM records r JOIN chains c ON c.coi = r.chain
		WHERE c.state = ANY($1) ORDER BY r.chain, r.chain_seq`, append(slices.Clip(accessStates), string(custody.StateInfused)))
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var chain string
		var hb, body []byte
		if err := rows.Scan(&chain, &hb, &body); err != nil {
			return nil, nil, err
		}
		if custody.COI(chain) != coi {
			if err := flush(); err != nil {
				return nil, nil, err
			}
			coi = custody.COI(chain)
		}
		r, err := custody.DecodeRecord(body, hashOf(hb))
		if err != nil {
			return nil, nil, fmt.Errorf("chain %s: %w", chain, err)
		}
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if err := flush(); err != nil {
		return nil, nil, err
	}
	return access, followUp, nil
}

// buildIndexes gives the chains written before the store kept the two
// indexes (or, for the access index, since a request record was appended
// without its row) their rows, in one transaction that holds the log's
// head, so no append runs meanwhile, and marks the indexes built. Once
// built, an index is not read again at open.
func (s *Store) buildIndexes(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var built []string
		if err := tx.QueryRow(ctx, `SELECT array_agg(name) FROM index_builds`).Scan(&built); err != nil {
			return err
		}
		needAccess, needFollowUp := !slices.Contains(built, builtAccess), !slices.Contains(built, builtFollowUp)
		if !needAccess && !needFollowUp {
			return nil
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM log_head WHERE id FOR UPDATE`); err != nil {
			return err
		}
		access, followUp, err := foldIndexes(ctx, tx)
		if err != nil {
			return err
		}
		var w pgx.Batch
		var x indexChanges
		if needAccess {
			w.Queue(`DELETE FROM access_rows`)
			x.access = access
			w.Queue(`INSERT INTO index_builds (name) VALUES ($1) ON CONFLICT DO NOTHING`, builtAccess)
		}
		if needFollowUp {
			w.Queue(`DELETE FROM followup_pending`)
			x.followUp = followUp
			w.Queue(`INSERT INTO index_builds (name) VALUES ($1) ON CONFLICT DO NOTHING`, builtFollowUp)
		}
		x.queue(&w)
		return tx.SendBatch(ctx, &w).Close()
	})
	if err != nil {
		return fmt.Errorf("build the access and follow-up indexes: %w", err)
	}
	return nil
}

// checkIndexes compares the rows of each built index with the ones the
// chains' records fold to: a row missing, extra or different is an error
// wrapping custody.ErrChainBroken.
func checkIndexes(ctx context.Context, tx pgx.Tx) error {
	var built []string
	if err := tx.QueryRow(ctx, `SELECT array_agg(name) FROM index_builds`).Scan(&built); err != nil {
		return fmt.Errorf("check the indexes: %w", err)
	}
	access, followUp, err := foldIndexes(ctx, tx)
	if err != nil {
		return fmt.Errorf("check the indexes: %w", err)
	}
	if slices.Contains(built, builtAccess) {
		rows, err := tx.Query(ctx, `SELECT `+accessRowColumns+` FROM access_rows ORDER BY coi`)
		if err != nil {
			return fmt.Errorf("check the access index: %w", err)
		}
		stored, err := pgx.CollectRows(rows, scanAccessRow)
		if err != nil {
			return fmt.Errorf("check the access index: %w", err)
		}
		for _, e := range stored {
			want := access[e.row.ID]
			switch {
			case want == nil:
				return fmt.Errorf("check the access index: %s has a row but is not a request: %w", e.row.ID, custody.ErrChainBroken)
			case want.state != e.state:
				return fmt.Errorf("check the access index: %s is filed under state %q, the chain is %q: %w", e.row.ID, e.state, want.state, custody.ErrChainBroken)
			case !sameAccessRow(e.row, want.row):
				return fmt.Errorf("check the access index: the row of %s %+v disagrees with its records (%+v): %w", e.row.ID, e.row, want.row, custody.ErrChainBroken)
			}
			delete(access, e.row.ID)
		}
		if len(access) > 0 {
			return fmt.Errorf("check the access index: request %s has no row: %w", slices.Min(slices.Collect(maps.Keys(access))), custody.ErrChainBroken)
		}
	}
	if slices.Contains(built, builtFollowUp) {
		rows, err := tx.Query(ctx, `SELECT `+followUpColumnsSQL+` FROM followup_pending ORDER BY coi`)
		if err != nil {
			return fmt.Errorf("check the follow-up index: %w", err)
		}
		stored, err := pgx.CollectRows(rows, scanFollowUp)
		if err != nil {
			return fmt.Errorf("check the follow-up index: %w", err)
		}
		for _, p := range stored {
			want := followUp[p.COI]
			switch {
			case want == nil:
				return fmt.Errorf("check the follow-up index: %s has an entry but is not infused: %w", p.COI, custody.ErrChainBroken)
			case want.Product != p.Product || want.Sites != p.Sites || !want.Infused.Equal(p.Infused) || !slices.Equal(want.Done, p.Done):
				return fmt.Errorf("check the follow-up index: the entry of %s %+v disagrees with its records (%+v): %w", p.COI, p, *want, custody.ErrChainBroken)
			}
			delete(followUp, p.COI)
		}
		if len(followUp) > 0 {
			return fmt.Errorf("check the follow-up index: infused chain %s has no entry: %w", slices.Min(slices.Collect(maps.Keys(followUp))), custody.ErrChainBroken)
		}
	}
	return nil
}

// sameAccessRow compares two rows, times by instant.
func sameAccessRow(a, b custody.AccessRow) bool {
	return a.ID == b.ID && a.State == b.State && a.Urgency == b.Urgency && a.Treatment == b.Treatment &&
		a.Manufacturing == b.Manufacturing && a.Assignee == b.Assignee && a.Submitted.Equal(b.Submitted) &&
		a.Decided.Equal(b.Decided) && a.WaitingSince.Equal(b.WaitingSince) && a.Paused == b.Paused
}
