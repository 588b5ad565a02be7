package pgstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotEmpty is returned by Import when the target database already
// holds data: a migration only ever fills an empty store.
var ErrNotEmpty = errors.New("the target store is not empty")

// importTables are the tables an empty store has no rows in (the
// singleton head rows aside, checked by value).
var importTables = []string{"records", "chains", "chain_sites", "phi", "coi_sequences", "users", "user_tokens", "readings",
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
		bulk, err := dropIndexes(ctx, tx)
		if err != nil {
			return fmt.Errorf("drop the indexes for the load: %w", err)
		}
		excursions := map[custody.COI]bool{}
		n, err := copyRecords(ctx, tx, e, excursions, progressEvery, progress, bulk)
		if err != nil {
			return err
		}
		st.Records = n
		if bulk {
			if err := execAll(ctx, tx, createLoadIndexes); err != nil {
				return fmt.Errorf("build the indexes after the load: %w", err)
			}
		}
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

// dropLoadIndexes and createLoadIndexes drop the records' and the tree
// hashes' indexes (those of migrations 0001 and 0007, under the names
// PostgreSQL gave them) before an import's COPY, and build them again
// after it, in its transaction: a B-tree built once from the sorted rows
// costs a fraction of one kept up to date row by row, above all the
// (chain, chain_seq) index, which records of interleaved chains fill in
// no order. The transaction holds the tables meanwhile, and a failed
// import rolls the drop back with the rest. A duplicate fails the build,
// and the import with it.
var (
	dropLoadIndexes = []string{
		`ALTER TABLE records DROP CONSTRAINT records_pkey, DROP CONSTRAINT records_chain_chain_seq_key`,
		`ALTER TABLE tree_hashes DROP CONSTRAINT tree_hashes_pkey`,
		// Emptied in this transaction (they hold nothing: checked), the
		// tables take COPY's FREEZE: the rows are stored already visible
		// to every later transaction, so the verification's first read
		// does not rewrite every page to note that their transaction
		// committed, and vacuum need not freeze them later.
		`TRUNCATE records, tree_hashes`,
	}
	createLoadIndexes = []string{
		// Room to sort in memory, and for parallel workers to share.
		`SET LOCAL maintenance_work_mem = '256MB'`,
		`ALTER TABLE records ADD CONSTRAINT records_pkey PRIMARY KEY (seq)`,
		`ALTER TABLE records ADD CONSTRAINT records_chain_chain_seq_key UNIQUE (chain, chain_seq)`,
		`ALTER TABLE tree_hashes ADD CONSTRAINT tree_hashes_pkey PRIMARY KEY (idx)`,
	}
)

// dropIndexes runs dropLoadIndexes in tx and reports whether it did: a
// role that may write the tables but does not own them (ALTER and
// TRUNCATE are the owner's) imports with the indexes kept up to date row
// by row, and without FREEZE, as before.
func dropIndexes(ctx context.Context, tx pgx.Tx) (bool, error) {
	if _, err := tx.Exec(ctx, `SAVEPOINT load_indexes`); err != nil {
		return false, err
	}
	err := execAll(ctx, tx, dropLoadIndexes)
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == insufficientPrivilege {
		_, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT load_indexes`)
		return false, err
	}
	if err != nil {
		return false, err
	}
	_, err = tx.Exec(ctx, `RELEASE SAVEPOINT load_indexes`)
	return err == nil, err
}

// insufficientPrivilege is PostgreSQL's SQLSTATE for a statement the role
// may not run, here one only a table's owner may.
const insufficientPrivilege = "42501"

// execAll runs the statements in tx, one after the other.
func execAll(ctx context.Context, tx pgx.Tx, stmts []string) error {
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// copyChunk is how many bytes of COPY data the encoder hands the
// connection at a time.
const copyChunk = 256 << 10

// copyHeader starts a COPY stream in PostgreSQL's binary format: the
// signature, no flags, no header extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// copyTrailer ends a binary COPY stream.
var copyTrailer = []byte{0xff, 0xff}

// appendTuple appends one row of the binary COPY format: the field count
// and each field's length and bytes, as given (already in the column
// type's binary form).
func appendTuple(b []byte, fields ...[]byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(fields)))
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// recordEncoder checks the records of an export as they stream by and
// encodes them for COPY: each checked against its stored hash and linked
// to the one before, the chains holding an excursion record noted, the
// Merkle tree's hashes added.
type recordEncoder struct {
	n     int
	prev  custody.Hash
	every int
	prog  func(int)
	exc   map[custody.COI]bool
	// tree is the right edge of the Merkle tree of the records so far;
	// treeRows are the stored hashes it added, encoded for the
	// tree_hashes table, and hashes the ones of the last record.
	tree     verifiable.Edge
	treeRows []byte
	hashes   []verifiable.Hash
}

// excursionStep is how an excursion record's step reads in its canonical
// bytes, and excursionHint a part of it whose first byte is rare in
// records, looked for first: most records hold no excursion, and a search
// starting at every quote of a JSON text costs more than the record's
// hash.
var (
	excursionStep = []byte(`"step":"excursion"`)
	excursionHint = []byte(`xcursion"`)
)

// add checks record le and appends its row to b.
func (r *recordEncoder) add(b []byte, le custody.LogEntry) ([]byte, error) {
	l, err := custody.ReadLinks(le.Body, le.Hash)
	if err == nil && (l.Seq != le.Key || l.Seq != uint64(r.n)+1 || l.Prev != r.prev) {
		err = fmt.Errorf("record %d does not follow record %d: %w", le.Key, r.n, custody.ErrChainBroken)
	}
	if err == nil && bytes.Contains(le.Body, excursionHint) && bytes.Contains(le.Body, excursionStep) {
		var rec custody.Record
		if rec, err = custody.DecodeRecord(le.Body, le.Hash); err == nil && rec.Step == custody.StepExcursion {
			r.exc[l.Chain] = true
		}
	}
	if err != nil {
		return b, fmt.Errorf("record %d: %w", le.Key, err)
	}
	first := verifiable.StoredHashIndex(0, r.tree.Size())
	r.hashes = r.tree.Add(verifiable.LeafHash(le.Body), r.hashes[:0])
	for i := keptLevel; i < len(r.hashes); i++ { // r.hashes[i] is at level i
		var idx [8]byte
		binary.BigEndian.PutUint64(idx[:], uint64(first)+uint64(i))
		r.treeRows = appendTuple(r.treeRows, idx[:], r.hashes[i][:])
	}
	var seq, chainSeq [8]byte
	binary.BigEndian.PutUint64(seq[:], l.Seq)
	binary.BigEndian.PutUint64(chainSeq[:], l.ChainSeq)
	b = appendTuple(b, seq[:], []byte(l.Chain), chainSeq[:], le.Hash[:], le.Body)
	r.prev, r.n = le.Hash, r.n+1
	if r.prog != nil && r.every > 0 && r.n%r.every == 0 {
		r.prog(r.n)
	}
	return b, nil
}

// frontier returns the tree's frontier as the log head keeps it.
func (r *recordEncoder) frontier() []byte { return frontierOf(&r.tree) }

// chunkReader reads the chunks sent on c, handing each one back on free
// once read, then the error left in err (io.EOF once the stream is
// whole).
type chunkReader struct {
	c    <-chan []byte
	free chan<- []byte
	cur  []byte
	last []byte
	err  *error
}

// Read implements io.Reader.
func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.last != nil {
			c.free <- c.last[:0] // never blocks: free holds every buffer
			c.last = nil
		}
		b, ok := <-c.c
		if !ok {
			return 0, *c.err
		}
		c.cur, c.last = b, b
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// copyBuffers is how many chunks of COPY data are in use at a time: one
// being filled, the rest queued for or being read by the connection.
const copyBuffers = 4

// copyRecords streams the export's records into the records table with
// COPY in binary format, in the export's one read, then the tree's hashes
// into tree_hashes. Two goroutines share the work: the export's read,
// which checks each record and encodes its row as it is handed over (its
// bytes copied once, into the COPY data), and the connection's sending,
// so the client keeps up with the server. The chunks of COPY data go
// round between them, a fixed few, so the copy allocates next to nothing
// per record.
func copyRecords(ctx context.Context, tx pgx.Tx, e *custody.Export, exc map[custody.COI]bool, every int, prog func(int), freeze bool) (int, error) {
	chunks := make(chan []byte, copyBuffers)
	free := make(chan []byte, copyBuffers)
	for range copyBuffers {
		free <- make([]byte, 0, copyChunk+64<<10)
	}
	stop := make(chan struct{})
	errStop := errors.New("stopped")
	// A record adds two stored hashes on average, each a row of 50 bytes.
	enc := &recordEncoder{every: every, prog: prog, exc: exc, treeRows: make([]byte, 0, min(e.HeadSeq, 1<<20)*100)}
	// encErr is the read's verdict, read by the connection's goroutine
	// once chunks is closed: io.EOF when every record checked.
	var encErr error
	encDone := make(chan struct{})
	go func() {
		defer close(encDone)
		defer close(chunks)
		send := func(b []byte) bool {
			select {
			case chunks <- b:
				return true
			case <-stop:
				return false
			}
		}
		next := func() ([]byte, bool) {
			select {
			case b := <-free:
				return b, true
			case <-stop:
				return nil, false
			}
		}
		buf, _ := next()
		buf = append(buf, copyHeader...)
		err := e.Records(func(le custody.LogEntry) error {
			// The entry's slices are valid only during the call: add
			// checks the record and copies its bytes into buf.
			var err error
			if buf, err = enc.add(buf, le); err != nil {
				return err
			}
			if len(buf) >= copyChunk {
				var ok bool
				if !send(buf) {
					return errStop
				}
				if buf, ok = next(); !ok {
					return errStop
				}
			}
			return nil
		})
		switch {
		case err != nil:
			encErr = err
		case send(append(buf, copyTrailer...)):
			encErr = io.EOF
		default:
			encErr = errStop
		}
	}()
	format := `(FORMAT binary)`
	if freeze {
		format = `(FORMAT binary, FREEZE)`
	}
	_, err := tx.Conn().PgConn().CopyFrom(ctx, &chunkReader{c: chunks, free: free, err: &encErr},
		`COPY records (seq, chain, chain_seq, hash, body) FROM STDIN `+format)
	close(stop)
	<-encDone
	if encErr != nil && encErr != io.EOF && encErr != errStop {
		// COPY reports the read's error as the server's text: keep the
		// record's own, and what it wraps.
		err = encErr
	}
	if err != nil {
		return enc.n, fmt.Errorf("copy the records: %w", err)
	}
	if uint64(enc.n) != e.HeadSeq || enc.prev != e.HeadHash {
		return enc.n, fmt.Errorf("copy the records: %d records end with %s, the head says %d %s: %w",
			enc.n, enc.prev, e.HeadSeq, e.HeadHash, custody.ErrChainBroken)
	}
	// The tree, hashed from the records as they streamed by, goes in with
	// them, so the store need not read them back to build it.
	if len(enc.treeRows) > 0 {
		rows := slices.Concat(copyHeader, enc.treeRows, copyTrailer)
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(rows), `COPY tree_hashes (idx, hash) FROM STDIN `+format); err != nil {
			return enc.n, fmt.Errorf("copy the tree: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE log_head SET tree_size = $1, frontier = $2 WHERE id`, enc.tree.Size(), enc.frontier()); err != nil {
		return enc.n, fmt.Errorf("copy the tree: %w", err)
	}
	if prog != nil {
		prog(enc.n)
	}
	return enc.n, nil
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
	var chains, exc, sites [][]any
	counts := siteDeltas{}
	for _, ci := range e.Chains {
		v, err := encodeChain(ci)
		if err != nil {
			return err
		}
		chains = append(chains, []any{string(ci.COI), string(ci.State), v, custody.WaitsInTerminalState(&ci)})
		sites = append(sites, []any{string(ci.COI), siteName(ci.Sites.Collection), siteName(ci.Sites.Manufacturing),
			siteName(ci.Sites.Treatment), string(ci.State)})
		counts.move(ci.Sites, "", ci.State)
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
		{"chains", []string{"coi", "state", "info", "waiting"}, chains},
		{"chain_sites", []string{"coi", "collection", "manufacturing", "treatment", "state"}, sites},
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
	// The counts of the index of the chains by sites and state (its rows
	// copied above) are made from the summaries here.
	var sc siteCountColumns
	for _, p := range slices.SortedFunc(maps.Keys(counts), comparePairs) {
		sc.add(p, counts[p])
	}
	b.Queue(`DELETE FROM chain_site_counts`)
	sc.queueInsert(&b)
	b.Queue(`INSERT INTO index_builds (name) VALUES ($1)`, builtSites)
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
