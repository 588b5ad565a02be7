package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/jackc/pgx/v5"
)

// ErrNotEmpty is returned by Import when the target database already
// holds data: a migration only ever fills an empty store.
var ErrNotEmpty = errors.New("the target store is not empty")

// importTables are the tables an empty store has no rows in (the
// singleton head rows aside, checked by value).
var importTables = []string{"records", "chains", "phi", "coi_sequences", "users", "user_tokens", "readings",
	"quarantine", "audit", "registry_entries", "capacity", "slot_claims", "slot_holds", "quotas", "quota_chain",
	"waitlist", "checkpoints", "cosignatures", "witness_states"}

// ImportStats counts what Import stored.
type ImportStats struct {
	Records, Chains, Users, Tokens, RegistryEntries, AuditEntries int
	Claims, Holds, QuotaUses, Cosignatures                        int
}

// Empty returns ErrNotEmpty (naming the first table found with rows) when
// the store holds anything.
func (s *Store) Empty(ctx context.Context) error {
	return s.readTx(ctx, func(tx pgx.Tx) error { return checkEmpty(ctx, tx) })
}

func checkEmpty(ctx context.Context, q querier) error {
	var seq int64
	if err := q.QueryRow(ctx, `SELECT seq FROM log_head WHERE id`).Scan(&seq); err != nil {
		return fmt.Errorf("check the target is empty: %w", err)
	}
	if seq != 0 {
		return fmt.Errorf("its ledger holds %d records: %w", seq, ErrNotEmpty)
	}
	for _, t := range importTables {
		var any bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+t+`)`).Scan(&any); err != nil {
			return fmt.Errorf("check the target is empty: %w", err)
		}
		if any {
			return fmt.Errorf("table %s holds rows: %w", t, ErrNotEmpty)
		}
	}
	return nil
}

// Import stores, in one transaction, the ledger's records byte for byte
// (each checked against its stored hash and linked to the one before, the
// last one being e's head), the chain summaries and what e keeps beside
// them, into this store, which must be empty (ErrNotEmpty, nothing
// written, otherwise), with the Merkle tree it hashes from them as they
// go by. progress, when not nil, is called with the number of records
// copied so far every progressEvery records. Then it builds the access
// and follow-up indexes from the records, and stores the readings (a batch per transaction). The quarantine,
// checkpoints and witness states are for the caller to copy through the
// store's methods. It must not run beside appends through s (the target
// being empty, there are none to have cached).
func (s *Store) Import(ctx context.Context, e *custody.Export, progressEvery int, progress func(records int)) (ImportStats, error) {
	var st ImportStats
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE log_head IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		if err := checkEmpty(ctx, tx); err != nil {
			return err
		}
		excursions := map[custody.COI]bool{}
		n, err := copyRecords(ctx, tx, e, excursions, progressEvery, progress)
		if err != nil {
			return err
		}
		st.Records = n
		if err := importRest(ctx, tx, e, excursions, &st); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE log_head SET seq = $1, hash = $2 WHERE id`,
			int64(e.HeadSeq), e.HeadHash[:])
		return err
	})
	if err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	if err := s.buildIndexes(ctx); err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	if err := s.buildExpiryIndex(ctx); err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	if e.Readings != nil {
		if err := e.Readings(func(rs []custody.Reading) error {
			_, err := s.AddReadings(ctx, rs)
			return err
		}); err != nil {
			return st, fmt.Errorf("import readings: %w", err)
		}
	}
	return st, nil
}

// recordSource feeds COPY the records of an export, checking each.
type recordSource struct {
	next  func() (custody.LogEntry, bool)
	row   []any
	err   error
	n     int
	prev  custody.Hash
	every int
	prog  func(int)
	exc   map[custody.COI]bool
	// tree is the Merkle tree of the records so far (its frontier);
	// treeIdx and treeHash are the stored hashes it added, for the
	// tree_hashes table.
	tree     *treeState
	treeIdx  []int64
	treeHash [][]byte
}

var excursionStep = []byte(`"step":"excursion"`)

func (r *recordSource) Next() bool {
	le, ok := r.next()
	if !ok || r.err != nil {
		return false
	}
	l, err := custody.ReadLinks(le.Body, le.Hash)
	if err == nil && (l.Seq != le.Key || l.Seq != uint64(r.n)+1 || l.Prev != r.prev) {
		err = fmt.Errorf("record %d does not follow record %d: %w", le.Key, r.n, custody.ErrChainBroken)
	}
	if err == nil && bytes.Contains(le.Body, excursionStep) {
		var rec custody.Record
		if rec, err = custody.DecodeRecord(le.Body, le.Hash); err == nil && rec.Step == custody.StepExcursion {
			r.exc[l.Chain] = true
		}
	}
	if err != nil {
		r.err = fmt.Errorf("record %d: %w", le.Key, err)
		return false
	}
	if err := r.tree.addLeaf(le.Body); err != nil {
		r.err = fmt.Errorf("record %d: %w", le.Key, err)
		return false
	}
	r.treeIdx, r.treeHash = append(r.treeIdx, r.tree.idx...), append(r.treeHash, r.tree.add...)
	r.tree.idx, r.tree.add = r.tree.idx[:0], r.tree.add[:0]
	if r.n%1024 == 0 {
		r.tree.frontier() // keep only what later records need
	}
	r.row = []any{int64(l.Seq), string(l.Chain), int64(l.ChainSeq), le.Hash[:], le.Body}
	r.prev, r.n = le.Hash, r.n+1
	if r.prog != nil && r.every > 0 && r.n%r.every == 0 {
		r.prog(r.n)
	}
	return true
}

func (r *recordSource) Values() ([]any, error) { return r.row, nil }
func (r *recordSource) Err() error             { return r.err }

// copyRecords streams the export's records into the records table with
// COPY, in the export's one read.
func copyRecords(ctx context.Context, tx pgx.Tx, e *custody.Export, exc map[custody.COI]bool, every int, prog func(int)) (int, error) {
	entries := make(chan custody.LogEntry, 1024)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		defer close(entries)
		errStop := errors.New("stopped")
		err := e.Records(func(le custody.LogEntry) error {
			// The entry's slices are valid only during the call.
			le.Body = bytes.Clone(le.Body)
			select {
			case entries <- le:
				return nil
			case <-stop:
				return errStop
			}
		})
		if errors.Is(err, errStop) {
			err = nil
		}
		done <- err
	}()
	src := &recordSource{every: every, prog: prog, exc: exc, tree: &treeState{hashes: map[int64]verifiable.Hash{}}, next: func() (custody.LogEntry, bool) {
		le, ok := <-entries
		return le, ok
	}}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"records"}, []string{"seq", "chain", "chain_seq", "hash", "body"}, src)
	close(stop)
	for range entries { // let the reader end
	}
	if rerr := <-done; err == nil {
		err = rerr
	}
	if src.err != nil {
		// COPY reports the source's error as the server's text: keep
		// the record's own, and what it wraps.
		err = src.err
	}
	if err != nil {
		return src.n, fmt.Errorf("copy the records: %w", err)
	}
	if uint64(src.n) != e.HeadSeq || src.prev != e.HeadHash {
		return src.n, fmt.Errorf("copy the records: %d records end with %s, the head says %d %s: %w",
			src.n, src.prev, e.HeadSeq, e.HeadHash, custody.ErrChainBroken)
	}
	// The tree, hashed from the records as they streamed by, goes in with
	// them, so the store need not read them back to build it.
	if len(src.treeIdx) > 0 {
		rows := make([][]any, len(src.treeIdx))
		for i, x := range src.treeIdx {
			rows[i] = []any{x, src.treeHash[i]}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"tree_hashes"}, []string{"idx", "hash"}, pgx.CopyFromRows(rows)); err != nil {
			return src.n, fmt.Errorf("copy the tree: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE log_head SET tree_size = $1, frontier = $2 WHERE id`, src.tree.size, src.tree.frontier()); err != nil {
		return src.n, fmt.Errorf("copy the tree: %w", err)
	}
	if prog != nil {
		prog(src.n)
	}
	return src.n, nil
}

// importRest stores, in the import's transaction, what the export keeps
// beside the records.
func importRest(ctx context.Context, tx pgx.Tx, e *custody.Export, excursions map[custody.COI]bool, st *ImportStats) error {
	copyRows := func(table string, cols []string, rows [][]any) error {
		if len(rows) == 0 {
			return nil
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		if err != nil {
			return fmt.Errorf("copy %s: %w", table, err)
		}
		return nil
	}
	var chains, exc [][]any
	for _, ci := range e.Chains {
		v, err := encodeChain(ci)
		if err != nil {
			return err
		}
		chains = append(chains, []any{string(ci.COI), string(ci.State), v})
		if excursions[ci.COI] {
			exc = append(exc, []any{string(ci.COI), openExcursions(ci)})
		}
	}
	st.Chains = len(chains)
	var phi, seqs, users, tokens, reg, audit, capacity, quotas, waitlist [][]any
	for coi, v := range e.PHI {
		phi = append(phi, []any{string(coi), v})
	}
	for p, n := range e.COISequences {
		seqs = append(seqs, []any{p, int64(n)})
	}
	for id, v := range e.Users {
		users = append(users, []any{id, v})
	}
	for _, t := range e.Tokens {
		tokens = append(tokens, []any{t.Hash[:], t.UserID, zeroNil(t.Created), zeroNil(t.LastUsed)})
	}
	for _, r := range e.Registry {
		reg = append(reg, []any{string(r.Kind), r.Code, r.Value})
	}
	var auditHead int64
	for _, a := range e.Audit {
		body, err := json.Marshal(a)
		if err != nil {
			return err
		}
		audit = append(audit, []any{int64(a.Seq), string(a.Kind), a.Code, a.Actor, a.Time.UnixNano(), body})
		auditHead = max(auditHead, int64(a.Seq))
	}
	for k, v := range e.Capacity {
		capacity = append(capacity, []any{k, v})
	}
	for k, v := range e.Quotas {
		quotas = append(quotas, []any{k, v})
	}
	for coi, v := range e.Waitlist {
		waitlist = append(waitlist, []any{string(coi), v})
	}
	type slot struct{ site, day, product string }
	used := map[slot]int{}
	var claims, holds, quotaChain, quotaUsed, slotUsed, cosigs [][]any
	for _, c := range e.Claims {
		claims = append(claims, []any{c.Site, c.Date, c.Product, string(c.COI), int64(c.Seq)})
		used[slot{c.Site, c.Date, c.Product}]++
	}
	for coi, c := range e.Holds {
		holds = append(holds, []any{string(coi), c.Site, c.Date, c.Product})
		used[slot{c.Site, c.Date, c.Product}]++
	}
	for k, n := range used {
		slotUsed = append(slotUsed, []any{k.site, k.day, k.product, int32(n)})
	}
	quse := map[custody.QuotaUse]int{}
	for coi, u := range e.QuotaChains {
		quotaChain = append(quotaChain, []any{string(coi), u.Period, u.Key})
		quse[u]++
	}
	for u, n := range quse {
		quotaUsed = append(quotaUsed, []any{u.Period, u.Key, int32(n)})
	}
	for _, c := range e.Cosignatures {
		cosigs = append(cosigs, []any{c.Size, c.Witness, c.Time.Unix(), c.Line})
	}
	st.Users, st.Tokens, st.RegistryEntries, st.AuditEntries = len(users), len(tokens), len(reg), len(audit)
	st.Claims, st.Holds, st.QuotaUses, st.Cosignatures = len(claims), len(holds), len(quotaChain), len(cosigs)
	steps := []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"chains", []string{"coi", "state", "info"}, chains},
		{"excursion_chains", []string{"coi", "open"}, exc},
		{"phi", []string{"coi", "body"}, phi},
		{"coi_sequences", []string{"prefix", "last"}, seqs},
		{"users", []string{"id", "body"}, users},
		{"user_tokens", []string{"hash", "user_id", "created", "last_used"}, tokens},
		{"registry_entries", []string{"kind", "code", "value"}, reg},
		{"audit", []string{"seq", "kind", "code", "actor", "time", "body"}, audit},
		{"capacity", []string{"site", "value"}, capacity},
		{"quotas", []string{"key", "value"}, quotas},
		{"waitlist", []string{"coi", "value"}, waitlist},
		{"slot_claims", []string{"site", "day", "product", "coi", "seq"}, claims},
		{"slot_holds", []string{"coi", "site", "day", "product"}, holds},
		{"slot_used", []string{"site", "day", "product", "used"}, slotUsed},
		{"quota_chain", []string{"coi", "period", "key"}, quotaChain},
		{"quota_used", []string{"period", "key", "used"}, quotaUsed},
		{"cosignatures", []string{"size", "witness", "time", "line"}, cosigs},
	}
	for _, s := range steps {
		if err := copyRows(s.table, s.cols, s.rows); err != nil {
			return err
		}
	}
	var b pgx.Batch
	b.Queue(`UPDATE audit_head SET seq = $1 WHERE id`, auditHead)
	// The access and follow-up indexes are built from the records once
	// the import has committed (buildIndexes).
	b.Queue(`DELETE FROM index_builds`)
	b.Queue(`DELETE FROM access_rows`)
	b.Queue(`DELETE FROM followup_pending`)
	return tx.SendBatch(ctx, &b).Close()
}

// zeroNil is n, or NULL for zero.
func zeroNil(n int64) *int64 {
	if n == 0 {
		return nil
	}
	return &n
}

// CheckTarget connects to the database at url and refuses, with
// ErrNotEmpty and before anything is written, a schema (the first of the
// connection's search_path) that holds tables other than a coid store's:
// Open would create coid's tables beside another application's. A coid
// store's schema is left to Empty, once opened.
func CheckTarget(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	var tables []string
	err = conn.QueryRow(ctx, `SELECT coalesce(array_agg(table_name::text ORDER BY table_name), '{}')
		FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&tables)
	if err != nil {
		return fmt.Errorf("list the target's tables: %w", err)
	}
	if len(tables) > 0 && !slices.Contains(tables, "coid_schema") {
		return fmt.Errorf("its schema holds %d tables of another application (%s, ...): %w", len(tables), tables[0], ErrNotEmpty)
	}
	return nil
}
