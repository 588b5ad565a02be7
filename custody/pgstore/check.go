package pgstore

import (
	"context"
	"fmt"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/jackc/pgx/v5"
)

// Check checks, for coid verify, what the store keeps beside the ledger's
// hash chains, in one snapshot: that the tree holds the whole log and
// each stored hash is the one recomputed from its record's bytes and its
// children (so proofs hold), and that the counts of claims, holds and
// quota uses are what the claims, holds and uses stored add up to, and
// that the access-request and follow-up indexes hold the rows the
// chains' records fold to, the index of the chains by sites and state
// what their summaries say, and the chains marked as waiting in a
// terminal state exactly those whose summaries do. The first problem
// found is returned, wrapping custody.ErrChainBroken.
func (s *Store) Check(ctx context.Context) error {
	return s.readTx(ctx, func(tx pgx.Tx) error {
		if err := checkTree(ctx, tx); err != nil {
			return err
		}
		if err := checkCounts(ctx, tx); err != nil {
			return err
		}
		if err := checkExpiries(ctx, tx); err != nil {
			return err
		}
		if err := checkSiteIndex(ctx, tx); err != nil {
			return err
		}
		if err := checkTerminalIssues(ctx, tx); err != nil {
			return err
		}
		return checkIndexes(ctx, tx)
	})
}

// checkTree recomputes the tree from the records (keeping only the
// frontier between them) and compares it with the stored hashes, which
// must be exactly the tree's from keptLevel up (those below, which
// earlier versions wrote, may be there or not, and must match when they
// are), and the head's frontier.
func checkTree(ctx context.Context, tx pgx.Tx) error {
	var seq, size int64
	var frontier []byte
	if err := tx.QueryRow(ctx, `SELECT seq, tree_size, frontier FROM log_head WHERE id`).Scan(&seq, &size, &frontier); err != nil {
		return fmt.Errorf("check the tree: %w", err)
	}
	if size != seq {
		return fmt.Errorf("check the tree: it holds %d records, the log %d: %w", size, seq, custody.ErrChainBroken)
	}
	t := &treeState{edge: &verifiable.Edge{}, all: true}
	rows, err := tx.Query(ctx, `SELECT seq, body FROM records ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("check the tree: %w", err)
	}
	var want []int64
	var wantHash []verifiable.Hash
	for rows.Next() {
		var n int64
		var body []byte
		if err := rows.Scan(&n, &body); err != nil {
			rows.Close()
			return fmt.Errorf("check the tree: %w", err)
		}
		if n != t.size+1 {
			rows.Close()
			return fmt.Errorf("check the tree: record %d is missing: %w", t.size+1, custody.ErrChainBroken)
		}
		if err := t.addLeaf(body); err != nil {
			rows.Close()
			return fmt.Errorf("check the tree: record %d: %w", n, err)
		}
		for i, x := range t.idx {
			want, wantHash = append(want, x), append(wantHash, verifiable.Hash(t.add[i]))
		}
		t.idx, t.add = t.idx[:0], t.add[:0]
		t.frontier() // keep only what later records need
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check the tree: %w", err)
	}
	if t.size != seq {
		return fmt.Errorf("check the tree: %d records stored, the head says %d: %w", t.size, seq, custody.ErrChainBroken)
	}
	below := func(x int64) bool { level, _ := verifiable.SplitStoredHashIndex(x); return level < keptLevel }
	hrows, err := tx.Query(ctx, `SELECT idx, hash FROM tree_hashes ORDER BY idx`)
	if err != nil {
		return fmt.Errorf("check the tree: %w", err)
	}
	defer hrows.Close()
	i := 0
	for hrows.Next() {
		var x int64
		var h []byte
		if err := hrows.Scan(&x, &h); err != nil {
			return fmt.Errorf("check the tree: %w", err)
		}
		for i < len(want) && want[i] < x && below(want[i]) {
			i++ // not written since the table keeps only keptLevel and up
		}
		if i >= len(want) || x != want[i] {
			return fmt.Errorf("check the tree: stored hash %d is not one of the tree of %d records: %w", x, seq, custody.ErrChainBroken)
		}
		if len(h) != custody.HashSize || verifiable.Hash(h) != wantHash[i] {
			return fmt.Errorf("check the tree: stored hash %d does not match the records (proofs would fail): %w", x, custody.ErrChainBroken)
		}
		i++
	}
	if err := hrows.Err(); err != nil {
		return fmt.Errorf("check the tree: %w", err)
	}
	for i < len(want) && below(want[i]) {
		i++
	}
	if i != len(want) {
		return fmt.Errorf("check the tree: stored hash %d is missing: %w", want[i], custody.ErrChainBroken)
	}
	if fr := t.frontier(); string(fr) != string(frontier) {
		return fmt.Errorf("check the tree: the head's frontier is not the tree's: %w", custody.ErrChainBroken)
	}
	return nil
}

// checkCounts checks the stored counts of claims and holds per slot and
// of quota uses per period and key against what they count.
func checkCounts(ctx context.Context, tx pgx.Tx) error {
	checks := []struct{ what, sql string }{
		{"slot counts", `SELECT site || '/' || day || '/' || product FROM (
			SELECT site, day, product, used FROM slot_used) u FULL JOIN (
			SELECT site, day, product, count(*) AS n FROM (
				SELECT site, day, product FROM slot_claims UNION ALL SELECT site, day, product FROM slot_holds) a
			GROUP BY site, day, product) c USING (site, day, product)
			WHERE coalesce(u.used, 0) <> coalesce(c.n, 0) LIMIT 1`},
		{"quota counts", `SELECT period || '/' || key FROM quota_used u FULL JOIN (
			SELECT period, key, count(*) AS n FROM quota_chain GROUP BY period, key) c USING (period, key)
			WHERE coalesce(u.used, 0) <> coalesce(c.n, 0) LIMIT 1`},
	}
	for _, c := range checks {
		rows, err := tx.Query(ctx, c.sql)
		if err != nil {
			return fmt.Errorf("check the %s: %w", c.what, err)
		}
		var bad string
		found := rows.Next()
		if found {
			err = rows.Scan(&bad)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			return fmt.Errorf("check the %s: %w", c.what, err)
		}
		if found {
			return fmt.Errorf("check the %s: %s does not count what is stored: %w", c.what, bad, custody.ErrChainBroken)
		}
	}
	return nil
}
