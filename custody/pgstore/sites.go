package pgstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/coid-project/coid/custody"
)

// The index of the chains by site names and state (custody.ChainSiteIndex,
// migration 16): the rows of chain_sites with its chain_sites_page index,
// and the counts of chain_site_counts, both written in the append's
// transaction (batchTx.link) and built at open for the chains written
// before the store kept them (buildSiteIndex).

var _ custody.ChainSiteIndex = (*Store)(nil)

// builtSites is the index's name in index_builds.
const builtSites = "chain_sites"

// siteBuildChunk is how many chains one transaction of buildSiteIndex
// gives their rows.
var siteBuildChunk = 2000

// sitePair is a pair of site names and state, as chain_site_counts keys
// its rows.
type sitePair struct {
	sites custody.Sites
	state custody.State
}

// key is the pair's row key: the state and the three names, each after
// its length, 4 bytes big-endian.
func (p sitePair) key() []byte {
	fields := [4]string{string(p.state), p.sites.Collection, p.sites.Manufacturing, p.sites.Treatment}
	n := 0
	for _, f := range fields {
		n += 4 + len(f)
	}
	b := make([]byte, 0, n)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// siteName is a site name as a bytea column holds it (never NULL).
func siteName(s string) []byte {
	return append([]byte{}, s...)
}

// siteDeltas are changes to the counts, by pair.
type siteDeltas map[sitePair]int64

// move counts a chain with sites that was in state from ("": it did not
// exist) and is now in state to.
func (d siteDeltas) move(sites custody.Sites, from, to custody.State) {
	if from == to {
		return
	}
	if from != "" {
		d[sitePair{sites, from}]--
	}
	d[sitePair{sites, to}]++
}

// siteChanges are a batch's changes to the index: the rows of the chains
// it enrolls, the states of those it moves to another state, and the
// counts.
type siteChanges struct {
	fresh  siteRowColumns
	moved  struct{ coi, state []string }
	counts siteDeltas
}

// move notes that chain ci, in state from before the batch ("": it did
// not exist), is now in its state (another).
func (x *siteChanges) move(ci *custody.ChainInfo, from custody.State) {
	if x.counts == nil {
		x.counts = siteDeltas{}
	}
	x.counts.move(ci.Sites, from, ci.State)
	if from == "" {
		x.fresh.add(ci.COI, ci.Sites, ci.State)
	} else {
		x.moved.coi, x.moved.state = append(x.moved.coi, string(ci.COI)), append(x.moved.state, string(ci.State))
	}
}

// queue queues onto w, in the append's transaction, the statements that
// write the rows and apply the counts' deltas, those there is something
// for. The rows are inserted and updated apart: an upsert writes more to
// the WAL for each row.
func (x *siteChanges) queue(w *pgx.Batch) {
	if len(x.fresh.coi) > 0 {
		x.fresh.queueInsert(w)
	}
	if len(x.moved.coi) > 0 {
		w.Queue(siteStatesSQL, x.moved.coi, x.moved.state)
	}
	var c siteCountColumns
	for _, p := range slices.SortedFunc(maps.Keys(x.counts), comparePairs) {
		if n := x.counts[p]; n != 0 {
			c.add(p, n)
		}
	}
	if len(c.key) > 0 {
		w.Queue(siteCountsSQL, c.key, c.state, c.collection, c.manufacturing, c.treatment, c.n)
	}
}

// siteRowColumns are rows of chain_sites, column by column.
type siteRowColumns struct {
	coi, state                           []string
	collection, manufacturing, treatment [][]byte
}

func (c *siteRowColumns) add(coi custody.COI, s custody.Sites, st custody.State) {
	c.coi, c.state = append(c.coi, string(coi)), append(c.state, string(st))
	c.collection = append(c.collection, siteName(s.Collection))
	c.manufacturing = append(c.manufacturing, siteName(s.Manufacturing))
	c.treatment = append(c.treatment, siteName(s.Treatment))
}

// queueInsert queues onto w the insert of the rows c holds.
func (c *siteRowColumns) queueInsert(w *pgx.Batch) {
	w.Queue(`INSERT INTO chain_sites (coi, collection, manufacturing, treatment, state)
		SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::bytea[], $5::text[])`,
		c.coi, c.collection, c.manufacturing, c.treatment, c.state)
}

// siteStatesSQL sets the states ($2) of the rows of chains $1 (their
// sites never change). The key's "= ANY" is what lets the plan find the
// rows through the primary key (TestAppendPlansUseKeys).
const siteStatesSQL = `UPDATE chain_sites SET state = u.state FROM unnest($1::text[], $2::text[]) AS u (coi, state)
	WHERE chain_sites.coi = ANY($1) AND chain_sites.coi = u.coi`

func comparePairs(a, b sitePair) int { return bytes.Compare(a.key(), b.key()) }

// siteCountColumns are rows of chain_site_counts, column by column.
type siteCountColumns struct {
	key, collection, manufacturing, treatment [][]byte
	state                                     []string
	n                                         []int64
}

func (c *siteCountColumns) add(p sitePair, n int64) {
	c.key, c.state, c.n = append(c.key, p.key()), append(c.state, string(p.state)), append(c.n, n)
	c.collection = append(c.collection, siteName(p.sites.Collection))
	c.manufacturing = append(c.manufacturing, siteName(p.sites.Manufacturing))
	c.treatment = append(c.treatment, siteName(p.sites.Treatment))
}

// siteCountsSQL adds the deltas $6 to the counts of the pairs keyed $1
// ($2 to $5 their state and names, for a pair that has no row yet), and
// deletes a row that reaches 0. The key's "= ANY" is what lets the plan
// find the rows through the primary key: joined to the arrays alone, the
// generic plan a connection caches while the table is small scans every
// row (TestAppendPlansUseKeys). The appends of all instances take the
// log's head row first, so no two run this at once.
const siteCountsSQL = `MERGE INTO chain_site_counts c
	USING unnest($1::bytea[], $2::text[], $3::bytea[], $4::bytea[], $5::bytea[], $6::bigint[])
		AS d (key, state, collection, manufacturing, treatment, n)
	ON c.key = ANY($1) AND c.key = d.key
	WHEN MATCHED AND c.n + d.n = 0 THEN DELETE
	WHEN MATCHED THEN UPDATE SET n = c.n + d.n
	WHEN NOT MATCHED THEN INSERT (key, state, collection, manufacturing, treatment, n)
		VALUES (d.key, d.state, d.collection, d.manufacturing, d.treatment, d.n)`

// SiteStateCounts implements custody.ChainSiteIndex: the rows of
// chain_site_counts.
func (s *Store) SiteStateCounts(ctx context.Context) ([]custody.SiteStateCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, collection, manufacturing, treatment, n FROM chain_site_counts`)
	if err != nil {
		return nil, fmt.Errorf("chains by sites and state: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (custody.SiteStateCount, error) {
		var c custody.SiteStateCount
		var state string
		var col, man, tre []byte
		err := row.Scan(&state, &col, &man, &tre, &c.N)
		c.State, c.Sites = custody.State(state), custody.Sites{Collection: string(col), Manufacturing: string(man), Treatment: string(tre)}
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("chains by sites and state: %w", err)
	}
	return out, nil
}

// ChainsOfSitesAfter implements custody.ChainSiteIndex: a range of the
// chain_sites_page index, each chain's summary read by its key.
func (s *Store) ChainsOfSitesAfter(ctx context.Context, sites custody.Sites, st custody.State, after custody.COI, limit int) ([]custody.ChainInfo, error) {
	if limit < 1 {
		return nil, fmt.Errorf("chains by sites: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	return s.queryChains(ctx, "chains by sites", nil, chainsOfSitesSQL, siteName(sites.Collection), siteName(sites.Manufacturing),
		siteName(sites.Treatment), string(st), string(after), limit)
}

// chainsOfSitesSQL is a page of one pair's chains ($1 to $3 the names,
// $4 the state) after COI $5, at most $6 of them.
const chainsOfSitesSQL = `SELECT c.info FROM chain_sites s JOIN chains c ON c.coi = s.coi
	WHERE s.collection = $1 AND s.manufacturing = $2 AND s.treatment = $3 AND s.state = $4 AND s.coi COLLATE "C" > $5
	ORDER BY s.coi COLLATE "C" LIMIT $6`

// buildSiteIndex gives the chains written before the store kept the
// index their rows, a chunk per transaction, each holding the log's head
// so that no append runs meanwhile; the chunks done stay done, so an
// interrupted build resumes at the next open. The transaction that finds
// none left makes the counts from the rows and marks the index built.
// Once built, it is not read again at open.
func (s *Store) buildSiteIndex(ctx context.Context) error {
	var built bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM index_builds WHERE name = $1)`, builtSites).Scan(&built); err != nil {
		return fmt.Errorf("build the index of chains by sites: %w", err)
	}
	after := ""
	for !built {
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM index_builds WHERE name = $1) FROM log_head WHERE id FOR UPDATE`,
				builtSites).Scan(&built); err != nil || built {
				return err // another instance built it meanwhile
			}
			rows, err := tx.Query(ctx, `SELECT info FROM chains c
				WHERE coi > $1 AND NOT EXISTS (SELECT 1 FROM chain_sites s WHERE s.coi = c.coi) ORDER BY coi LIMIT $2`,
				after, siteBuildChunk)
			if err != nil {
				return err
			}
			var rs siteRowColumns
			if err := eachChain(rows, func(ci custody.ChainInfo) error {
				rs.add(ci.COI, ci.Sites, ci.State)
				return nil
			}); err != nil {
				return err
			}
			if len(rs.coi) > 0 {
				after = rs.coi[len(rs.coi)-1]
				var w pgx.Batch
				rs.queueInsert(&w)
				if err := tx.SendBatch(ctx, &w).Close(); err != nil {
					return err
				}
			}
			if len(rs.coi) == siteBuildChunk {
				return nil // more, maybe
			}
			// The walk is past the last chain. A chain given no row
			// behind it meanwhile (by a binary older than the index) is
			// found by walking again.
			var left bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM chains c WHERE NOT EXISTS (SELECT 1 FROM chain_sites s WHERE s.coi = c.coi))`).
				Scan(&left); err != nil || left {
				after = ""
				return err
			}
			built = true
			return makeSiteCounts(ctx, tx)
		})
		if err != nil {
			return fmt.Errorf("build the index of chains by sites: %w", err)
		}
	}
	return nil
}

// makeSiteCounts replaces, in tx, the counts with those of the rows of
// chain_sites, and marks the index built.
func makeSiteCounts(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT state, collection, manufacturing, treatment, count(*) FROM chain_sites
		GROUP BY state, collection, manufacturing, treatment`)
	if err != nil {
		return err
	}
	var c siteCountColumns
	for rows.Next() {
		var state string
		var col, man, tre []byte
		var n int64
		if err := rows.Scan(&state, &col, &man, &tre, &n); err != nil {
			rows.Close()
			return err
		}
		c.add(sitePair{custody.Sites{Collection: string(col), Manufacturing: string(man), Treatment: string(tre)}, custody.State(state)}, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var w pgx.Batch
	w.Queue(`DELETE FROM chain_site_counts`)
	c.queueInsert(&w)
	w.Queue(`INSERT INTO index_builds (name) VALUES ($1) ON CONFLICT DO NOTHING`, builtSites)
	return tx.SendBatch(ctx, &w).Close()
}

// queueInsert queues onto w the insert of the rows c holds.
func (c *siteCountColumns) queueInsert(w *pgx.Batch) {
	if len(c.key) > 0 {
		w.Queue(`INSERT INTO chain_site_counts (key, state, collection, manufacturing, treatment, n)
			SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::bytea[], $5::bytea[], $6::bigint[])`,
			c.key, c.state, c.collection, c.manufacturing, c.treatment, c.n)
	}
}

// checkSiteIndex compares the index, once built, with the summaries:
// every chain must have a row (and nothing else one) with its summary's
// sites and state, and the counts must be what the summaries add up to,
// each under its pair's key. A difference is an error wrapping
// custody.ErrChainBroken.
func checkSiteIndex(ctx context.Context, tx pgx.Tx) error {
	var built bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM index_builds WHERE name = $1)`, builtSites).Scan(&built); err != nil || !built {
		return err
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("check the index of chains by sites: "+format+": %w", append(args, custody.ErrChainBroken)...)
	}
	var stray string
	err := tx.QueryRow(ctx, `SELECT coi FROM chain_sites s WHERE NOT EXISTS (SELECT 1 FROM chains c WHERE c.coi = s.coi) LIMIT 1`).Scan(&stray)
	if err == nil {
		return fail("%s has a row but no chain", stray)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("check the index of chains by sites: %w", err)
	}
	want := map[string]int64{}
	rows, err := tx.Query(ctx, `SELECT c.info, s.state, s.collection, s.manufacturing, s.treatment FROM chains c LEFT JOIN chain_sites s USING (coi)`)
	if err != nil {
		return fmt.Errorf("check the index of chains by sites: %w", err)
	}
	for rows.Next() {
		var state *string
		var col, man, tre, info []byte
		if err := rows.Scan(&info, &state, &col, &man, &tre); err != nil {
			rows.Close()
			return fmt.Errorf("check the index of chains by sites: %w", err)
		}
		ci, err := decodeChain(info)
		if err != nil {
			rows.Close()
			return fmt.Errorf("check the index of chains by sites: %w", err)
		}
		switch {
		case state == nil:
			rows.Close()
			return fail("chain %s has no row", ci.COI)
		case string(col) != ci.Sites.Collection || string(man) != ci.Sites.Manufacturing || string(tre) != ci.Sites.Treatment:
			rows.Close()
			return fail("chain %s is filed under sites %q, %q, %q, its summary's are %+v", ci.COI, col, man, tre, ci.Sites)
		case *state != string(ci.State):
			rows.Close()
			return fail("chain %s is filed under state %q, its summary's is %q", ci.COI, *state, ci.State)
		}
		want[string(sitePair{ci.Sites, ci.State}.key())]++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check the index of chains by sites: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT key, state, collection, manufacturing, treatment, n FROM chain_site_counts`)
	if err != nil {
		return fmt.Errorf("check the index of chains by sites: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, col, man, tre []byte
		var state string
		var n int64
		if err := rows.Scan(&key, &state, &col, &man, &tre, &n); err != nil {
			return fmt.Errorf("check the index of chains by sites: %w", err)
		}
		p := sitePair{custody.Sites{Collection: string(col), Manufacturing: string(man), Treatment: string(tre)}, custody.State(state)}
		switch {
		case !bytes.Equal(key, p.key()):
			return fail("the count of %+v in state %s is under another pair's key", p.sites, p.state)
		case want[string(key)] != n:
			return fail("%d chains with sites %+v are in state %s, the count says %d", want[string(key)], p.sites, p.state, n)
		}
		delete(want, string(key))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check the index of chains by sites: %w", err)
	}
	if len(want) > 0 {
		k := slices.Min(slices.Collect(maps.Keys(want)))
		return fail("%d chains of one pair of sites and state (key %x) have no count", want[k], k)
	}
	return nil
}
