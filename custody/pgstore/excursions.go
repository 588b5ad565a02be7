package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/coid-project/coid/custody"
)

// openExcursions reports whether the excursion index lists a chain with
// summary ci among those with open excursions: when it counts some, or
// keeps no counts (the caller folds the chain to know).
func openExcursions(ci custody.ChainInfo) bool {
	return !ci.OpenIssues.Kept || ci.OpenIssues.Excursions > 0
}

// queueExcursionIndex queues onto w, in the append's transaction, the
// excursion index's changes for the chains a batch touched: a chain it
// appended an excursion record to enters the index, and each indexed
// chain's open flag follows its summary.
func queueExcursionIndex(w *pgx.Batch, touched map[custody.COI]*custody.ChainInfo, excursions map[custody.COI]bool) {
	var added, changed struct {
		coi  []string
		open []bool
	}
	for coi, ci := range touched {
		cs := &changed
		if excursions[coi] {
			cs = &added
		}
		cs.coi, cs.open = append(cs.coi, string(coi)), append(cs.open, openExcursions(*ci))
	}
	if len(added.coi) > 0 {
		w.Queue(`INSERT INTO excursion_chains (coi, open) SELECT * FROM unnest($1::text[], $2::boolean[])
			ON CONFLICT (coi) DO UPDATE SET open = EXCLUDED.open`, added.coi, added.open)
	}
	if len(changed.coi) > 0 {
		w.Queue(excursionOpenSQL, changed.coi, changed.open)
	}
}

// excursionOpenSQL sets the open flag ($2) of the indexed chains among
// $1 whose flag differs. The key's "= ANY" is what lets the plan read
// the rows through the primary key: joined to the arrays alone, the plan
// cached while the table was small scans every row
// (TestAppendPlansUseKeys).
const excursionOpenSQL = `UPDATE excursion_chains SET open = u.open FROM unnest($1::text[], $2::boolean[]) AS u (coi, open)
	WHERE excursion_chains.coi = ANY($1) AND excursion_chains.coi = u.coi AND excursion_chains.open <> u.open`

// ExcursionChains implements custody.ChainStore.
func (s *Store) ExcursionChains(ctx context.Context, open bool, before custody.COI, limit int) ([]custody.COI, error) {
	if limit < 1 {
		return nil, fmt.Errorf("excursion chains: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	// Two statements, so that the open list is planned on its partial
	// index.
	sql := `SELECT coi FROM excursion_chains WHERE ($1 = '' OR coi < $1) ORDER BY coi DESC LIMIT $2`
	if open {
		sql = `SELECT coi FROM excursion_chains WHERE open AND ($1 = '' OR coi < $1) ORDER BY coi DESC LIMIT $2`
	}
	rows, err := s.pool.Query(ctx, sql, string(before), limit)
	if err != nil {
		return nil, fmt.Errorf("excursion chains: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (custody.COI, error) {
		var c string
		err := r.Scan(&c)
		return custody.COI(c), err
	})
	if err != nil {
		return nil, fmt.Errorf("excursion chains: %w", err)
	}
	return out, nil
}
