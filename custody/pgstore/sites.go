package pgstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/coid-project/coid/custody"
)

// The index of the chains by site names and state (custody.ChainSiteIndex,
// migration 16): the chains table's collection, manufacturing and
// treatment columns with its chains_sites index, and the counts of
// chain_site_counts, both written in the append's transaction
// (batchTx.link) and built at open for the chains written before the
// store kept them (buildSiteIndex).

var _ custody.ChainSiteIndex = (*Store)(nil)

// builtSites is the index's name in index_builds.
const builtSites = "chain_sites"

// siteBuildChunk is how many chains one transaction of buildSiteIndex
// gives their site names.
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

// siteName is a site name as a bytea column holds it: never NULL, which
// is what a chain not yet given its sites has.
func siteName(s string) []byte {
	return append([]byte{}, s...)
}

// siteDeltas are the changes of a batch to the counts, by pair.
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

// queue queues onto w, in the append's transaction, the one statement
// that applies the deltas, if any is not zero.
func (d siteDeltas) queue(w *pgx.Batch) {
	var c siteCountColumns
	for _, p := range slices.SortedFunc(maps.Keys(d), comparePairs) {
		if n := d[p]; n != 0 {
			c.add(p, n)
		}
	}
	if len(c.key) > 0 {
		w.Queue(siteCountsSQL, c.key, c.state, c.collection, c.manufacturing, c.treatment, c.n)
	}
}

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
// chains_sites index.
func (s *Store) ChainsOfSitesAfter(ctx context.Context, sites custody.Sites, st custody.State, after custody.COI, limit int) ([]custody.ChainInfo, error) {
	if limit < 1 {
		return nil, fmt.Errorf("chains by sites: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	rows, err := s.pool.Query(ctx, chainsOfSitesSQL, siteName(sites.Collection), siteName(sites.Manufacturing), siteName(sites.Treatment),
		string(st), string(after), limit)
	if err != nil {
		return nil, fmt.Errorf("chains by sites: %w", err)
	}
	defer rows.Close()
	out := []custody.ChainInfo{}
	if err := eachChain(rows, func(ci custody.ChainInfo) error {
		out = append(out, ci)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("chains by sites: %w", err)
	}
	return out, nil
}

// chainsOfSitesSQL is a page of one pair's chains ($1 to $3 the names,
// $4 the state) after COI $5, at most $6 of them.
const chainsOfSitesSQL = `SELECT info FROM chains
	WHERE collection = $1 AND manufacturing = $2 AND treatment = $3 AND state = $4 AND coi COLLATE "C" > $5
	ORDER BY coi COLLATE "C" LIMIT $6`

// buildSiteIndex gives the chains written before the store kept the
// index their site names, a chunk per transaction, each holding the log's
// head so that no append runs meanwhile; the chunks done stay done, so an
// interrupted build resumes at the next open. The transaction that finds
// none left makes the counts from the columns and marks the index built.
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
			rows, err := tx.Query(ctx, `SELECT info FROM chains WHERE coi > $1 AND collection IS NULL ORDER BY coi LIMIT $2`,
				after, siteBuildChunk)
			if err != nil {
				return err
			}
			var cs struct {
				coi                                  []string
				collection, manufacturing, treatment [][]byte
			}
			if err := eachChain(rows, func(ci custody.ChainInfo) error {
				cs.coi = append(cs.coi, string(ci.COI))
				cs.collection = append(cs.collection, siteName(ci.Sites.Collection))
				cs.manufacturing = append(cs.manufacturing, siteName(ci.Sites.Manufacturing))
				cs.treatment = append(cs.treatment, siteName(ci.Sites.Treatment))
				return nil
			}); err != nil {
				return err
			}
			if len(cs.coi) > 0 {
				after = cs.coi[len(cs.coi)-1]
				if _, err := tx.Exec(ctx, `UPDATE chains SET collection = u.collection, manufacturing = u.manufacturing, treatment = u.treatment
					FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::bytea[]) AS u (coi, collection, manufacturing, treatment)
					WHERE chains.coi = ANY($1) AND chains.coi = u.coi`, cs.coi, cs.collection, cs.manufacturing, cs.treatment); err != nil {
					return err
				}
			}
			if len(cs.coi) == siteBuildChunk {
				return nil // more, maybe
			}
			// The walk is past the last chain. A chain given no sites
			// behind it meanwhile (by a binary older than the index) is
			// found by walking again.
			var left bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM chains WHERE collection IS NULL)`).Scan(&left); err != nil || left {
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

// makeSiteCounts replaces, in tx, the counts with those of the chains'
// columns, and marks the index built.
func makeSiteCounts(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT state, collection, manufacturing, treatment, count(*) FROM chains
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
// every chain's columns must be its summary's sites and state, and the
// counts what the summaries add up to, each row under its pair's key. A
// difference is an error wrapping custody.ErrChainBroken.
func checkSiteIndex(ctx context.Context, tx pgx.Tx) error {
	var built bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM index_builds WHERE name = $1)`, builtSites).Scan(&built); err != nil || !built {
		return err
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("check the index of chains by sites: "+format+": %w", append(args, custody.ErrChainBroken)...)
	}
	want := map[string]int64{}
	rows, err := tx.Query(ctx, `SELECT state, collection, manufacturing, treatment, info FROM chains`)
	if err != nil {
		return fmt.Errorf("check the index of chains by sites: %w", err)
	}
	for rows.Next() {
		var state string
		var col, man, tre, info []byte
		if err := rows.Scan(&state, &col, &man, &tre, &info); err != nil {
			rows.Close()
			return fmt.Errorf("check the index of chains by sites: %w", err)
		}
		ci, err := decodeChain(info)
		if err != nil {
			rows.Close()
			return fmt.Errorf("check the index of chains by sites: %w", err)
		}
		switch {
		case col == nil || man == nil || tre == nil:
			rows.Close()
			return fail("chain %s has no site names", ci.COI)
		case string(col) != ci.Sites.Collection || string(man) != ci.Sites.Manufacturing || string(tre) != ci.Sites.Treatment:
			rows.Close()
			return fail("chain %s is filed under sites %q, %q, %q, its summary's are %+v", ci.COI, col, man, tre, ci.Sites)
		case state != string(ci.State):
			rows.Close()
			return fail("chain %s is filed under state %q, its summary's is %q", ci.COI, state, ci.State)
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
