// Package pgstore keeps coid's ledger in PostgreSQL, for sites that run
// several coid instances on one managed or replicated database: it owns
// the database schema (versioned migrations applied at open) and the
// implementation of custody's store contract on it.
//
// Appends from any number of instances keep one global order and one
// hash chain: each group-committed batch takes the log's head row under a
// row lock inside its transaction, links its drafts with custody.Link and
// writes them, their chain summaries, their PHI and the new head before
// it commits; the optimistic chain check is custody's.
//
// Implemented: the ledger (appends, reads, verification's raw
// access, COI sequence numbers), the chain summaries, the PHI, users and
// accounts with their API tokens, telemetry readings and the quarantine,
// the audit trail, the registries, scheduling (capacities, the claims
// appends take, checked in the append's transaction), quotas and the
// waiting list, the verifiable log (the Merkle tree's hashes, written
// with the records, the signed checkpoints and their cosignatures), the
// excursion, access-request and overdue follow-up indexes, the index of
// the chains by site names and state, and Backup; for
// several instances on one database, the leadership of a job that runs on
// one of them at a time (leader.go), the state they share outside the
// ledger (web sessions, sign-in counts: shared.go), and broadcasts between
// them (notify.go).
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options configures Open.
type Options struct {
	// Logger hears of what the store does on its own; nil discards.
	Logger *slog.Logger
	// MaxConns caps the connection pool; zero keeps pgxpool's default
	// (at least 4, or the number of CPUs) unless the URL sets
	// pool_max_conns.
	MaxConns int32
	// MaxBatch caps how many drafts one append transaction holds; zero
	// means custody.GroupCommit's default.
	MaxBatch int
	// LeaderPoll is how often Lead tries to take a leadership another
	// instance holds, and how often the leader checks its hold; zero means
	// DefaultLeaderPoll.
	LeaderPoll time.Duration
	// After is the clock Lead waits on; nil means time.After.
	After func(time.Duration) <-chan time.Time
}

// Store is custody's store contract on PostgreSQL. It is safe for
// concurrent use, also by several processes on one database.
type Store struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	appends *custody.GroupCommit[appendReq, custody.Record]
	// known is the append writer's view of the database as of its last
	// commit (knownHeads); only the committing goroutine uses it.
	known knownHeads
	// readings is the telemetry writer (telemetry.go).
	readings *custody.GroupCommit[readingsReq, custody.IngestResult]
	// leaderPoll and after pace Lead (leader.go).
	leaderPoll time.Duration
	after      func(time.Duration) <-chan time.Time
	// logKey is the checkpoint verifier key bound by BindLogKey (logkey.go).
	logKey atomic.Pointer[logBinding]
	// holds are the leaderships this store holds (leader.go).
	holds leaderHolds
}

// appendReq is one draft queued for the group commit, with its encoding
// prepared in the caller's goroutine.
type appendReq struct {
	d   custody.Draft
	pre custody.Presealed
}

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string; a search_path parameter selects the schema), migrates
// its schema to this binary's version and starts the writer. A database
// at a newer schema version is refused with *SchemaNewerError.
func Open(ctx context.Context, url string, opt Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %v: %w", err, custody.ErrInvalid)
	}
	if opt.MaxConns > 0 {
		cfg.MaxConns = opt.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: migrate schema: %w", err)
	}
	s := &Store{pool: pool, log: opt.Logger, leaderPoll: opt.LeaderPoll, after: opt.After}
	if s.leaderPoll <= 0 {
		s.leaderPoll = DefaultLeaderPoll
	}
	if s.after == nil {
		s.after = time.After
	}
	if err := s.buildTree(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := s.buildIndexes(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := s.buildExpiryIndex(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := s.buildSiteIndex(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.appends, err = custody.NewGroupCommit(custody.GroupCommitConfig[appendReq, custody.Record]{
		Begin:     func() custody.BatchTxn[appendReq, custody.Record] { return &batchTx{s: s} },
		MaxBatch:  opt.MaxBatch,
		FollowMin: 4,
		FollowMax: followMax,
	})
	if err == nil {
		s.readings, err = s.newReadingsWriter()
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	return s, nil
}

// followMax caps how long the writer waits, after a busy commit, for the
// callers it answered to append again: a commit to PostgreSQL takes about
// a millisecond (a round trip and the WAL flush), so waiting a fraction of
// it lets nearly every writer ride each commit.
const followMax = 500 * time.Microsecond

// Close stops the writer after the appends already queued and closes the
// connections.
func (s *Store) Close() error {
	if s.appends != nil {
		s.appends.Close()
	}
	if s.readings != nil {
		s.readings.Close()
	}
	s.pool.Close()
	return nil
}

// chainJSON is a chain summary as stored: custody.ChainInfo with its open
// issue counts and progress, which custody.ChainInfo leaves out of its
// JSON.
type chainJSON struct {
	custody.ChainInfo
	Issues   custody.IssueCounts `json:"open_issues"`
	Progress *custody.Progress   `json:"progress,omitempty"`
}

func encodeChain(ci custody.ChainInfo) ([]byte, error) {
	return json.Marshal(chainJSON{ChainInfo: ci, Issues: ci.OpenIssues, Progress: ci.Progress})
}

func decodeChain(b []byte) (custody.ChainInfo, error) {
	var c chainJSON
	if err := json.Unmarshal(b, &c); err != nil {
		return custody.ChainInfo{}, fmt.Errorf("chain summary: %v: %w", err, custody.ErrChainBroken)
	}
	c.ChainInfo.OpenIssues, c.ChainInfo.Progress = c.Issues, c.Progress
	return c.ChainInfo, nil
}

// hashOf copies a stored hash; a stored value of the wrong length yields
// the zero hash, which verification reports as a mismatch.
func hashOf(b []byte) custody.Hash {
	var h custody.Hash
	if len(b) == custody.HashSize {
		copy(h[:], b)
	}
	return h
}

// Append implements custody.Ledger: the draft rides the next group
// commit, and Append returns once that transaction has committed.
func (s *Store) Append(ctx context.Context, d custody.Draft) (custody.Record, error) {
	rec, err := s.appends.Do(ctx, appendReq{d: d, pre: d.Record.Preseal()})
	if err != nil && (err == custody.ErrClosed || err == ctx.Err()) { // not queued
		return custody.Record{}, fmt.Errorf("append: %w", err)
	}
	return rec, err
}

// batchTx is one group commit's transaction: Add gathers the drafts while
// the previous commit runs, Commit links and writes them.
type batchTx struct {
	s    *Store
	reqs []*appendReq
}

// Add implements custody.BatchTxn.
func (b *batchTx) Add(r *appendReq) { b.reqs = append(b.reqs, r) }

// Commit implements custody.BatchTxn: in one transaction it locks the
// log's head row, links each draft to the head and its chain's summary (a
// refused draft fails alone), writes the records, summaries, PHI and the
// new head, and commits.
//
// Round trips to the server are what an append waits for, above all on a
// busy machine, so the transaction is pipelined. While no other instance
// has appended since this one's last commit, the head and the summaries
// this instance wrote are what the database holds: the fast path links
// the batch against them and sends the whole transaction at once, with a
// check that fails it if the head moved meanwhile (another instance
// appended) or a chain it enrolls exists. Otherwise, or when the check
// fails, the slow path takes two round trips: begin, lock the head and
// read the chains; then write and commit.
func (b *batchTx) Commit(out []custody.Outcome[custody.Record]) error {
	ctx := context.Background()
	conn, err := b.s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("append: commit failed, nothing was written: %w", err)
	}
	defer conn.Release()
	k := &b.s.known
	if k.ok && b.cached() && !b.scheduling() && !b.fencing() {
		err := b.fast(ctx, conn.Conn(), out)
		if err == nil {
			return nil
		}
		rollback(ctx, conn)
		k.forget()
		clear(out)
		if conn.Conn().IsClosed() {
			return fmt.Errorf("append: commit failed, nothing was written: %w", err)
		}
	}
	if err := b.slow(ctx, conn.Conn(), out); err != nil {
		rollback(ctx, conn)
		k.forget()
		return fmt.Errorf("append: commit failed, nothing was written: %w", err)
	}
	return nil
}

// rollback ends the transaction a failed pipeline left open, if any; a
// connection in doubt is closed rather than put back.
func rollback(ctx context.Context, conn *pgxpool.Conn) {
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		_ = conn.Conn().Close(ctx)
	}
}

// knownHeads is the committing goroutine's view of the database as of its
// last commit: the log's head and the summaries of the chains it wrote or
// read then. It is exact while the head has not moved since.
type knownHeads struct {
	ok     bool
	seq    uint64
	hash   custody.Hash
	chains map[custody.COI]custody.ChainInfo
	// treeSize is the records the tree holds; tree is its frontier when
	// that is the whole log (nil: the tree is behind, being built).
	treeSize int64
	tree     *treeState
}

// knownChains bounds knownHeads.chains: about 4096 active chains at once.
const knownChains = 4096

func (k *knownHeads) forget() { k.ok, k.chains, k.tree = false, nil, nil }

// remember records a committed transaction's head and summaries.
func (k *knownHeads) remember(seq uint64, hash custody.Hash, treeSize int64, tree *treeState, chains map[custody.COI]*custody.ChainInfo) {
	if !k.ok || k.chains == nil {
		k.chains = map[custody.COI]custody.ChainInfo{}
	}
	k.ok, k.seq, k.hash, k.treeSize, k.tree = true, seq, hash, treeSize, tree
	for coi, ci := range chains {
		if _, ok := k.chains[coi]; !ok && len(k.chains) >= knownChains {
			for c := range k.chains { // evict one at random
				delete(k.chains, c)
				break
			}
		}
		k.chains[coi] = *ci
	}
}

// scheduling reports whether a draft of the batch takes or frees claims
// or quota uses: the batch then reads the counts under their lock (slow).
func (b *batchTx) scheduling() bool {
	for _, r := range b.reqs {
		if needsSchedule(&r.d) {
			return true
		}
	}
	return false
}

// cached reports whether every draft's chain is known, or is enrolled by
// the draft (the fast path's insert then checks it does not exist).
func (b *batchTx) cached() bool {
	for _, r := range b.reqs {
		if _, ok := b.s.known.chains[r.d.Record.Chain]; !ok && !r.d.NewChain {
			return false
		}
	}
	return true
}

// fast is the one-round-trip transaction: linked against knownHeads, it
// fails as a whole (division by zero) if the head moved, and on a unique
// violation if a chain it enrolls exists.
func (b *batchTx) fast(ctx context.Context, conn *pgx.Conn, out []custody.Outcome[custody.Record]) error {
	k := &b.s.known
	chains := map[custody.COI]*custody.ChainInfo{}
	for _, r := range b.reqs {
		if ci, ok := k.chains[r.d.Record.Chain]; ok {
			chains[r.d.Record.Chain] = &ci
		}
	}
	var tx pgx.Batch
	tx.Queue("BEGIN")
	tx.Queue(`SELECT 1 / (CASE WHEN seq = $1 AND hash = $2 AND tree_size = $3 THEN 1 ELSE 0 END) FROM log_head WHERE id FOR UPDATE`,
		int64(k.seq), k.hash[:], k.treeSize)
	var tree *treeState
	if k.tree != nil {
		tree = k.tree.clone()
	}
	seq, hash, touched, err := b.link(&tx, k.seq, k.hash, chains, nil, tree, out)
	if err != nil {
		return err
	}
	tx.Queue("COMMIT")
	if err := conn.SendBatch(ctx, &tx).Close(); err != nil {
		return err
	}
	treeSize := k.treeSize
	if tree != nil {
		treeSize = tree.size
	}
	k.remember(seq, hash, treeSize, tree, touched)
	return nil
}

// slow is the two-round-trip transaction: begin, lock the head and read
// the batch's chains; then link, write and commit.
func (b *batchTx) slow(ctx context.Context, conn *pgx.Conn, out []custody.Outcome[custody.Record]) error {
	cois := make([]string, 0, len(b.reqs))
	for _, r := range b.reqs {
		cois = append(cois, string(r.d.Record.Chain))
	}
	var read pgx.Batch
	read.Queue("BEGIN")
	var seq, treeSize int64
	var hb, frontier []byte
	read.Queue(`SELECT seq, hash, tree_size, frontier FROM log_head WHERE id FOR UPDATE`).QueryRow(func(row pgx.Row) error {
		return row.Scan(&seq, &hb, &treeSize, &frontier)
	})
	chains := map[custody.COI]*custody.ChainInfo{}
	read.Queue(`SELECT info FROM chains WHERE coi = ANY($1)`, cois).Query(func(rows pgx.Rows) error {
		return eachChain(rows, func(ci custody.ChainInfo) error {
			chains[ci.COI] = &ci
			return nil
		})
	})
	var sched *schedState
	if b.scheduling() {
		sched = queueScheduleReads(&read, b.reqs)
	}
	var epochs map[string]int64
	if b.fencing() {
		epochs = b.queueFenceReads(&read)
	}
	if err := conn.SendBatch(ctx, &read).Close(); err != nil {
		return fmt.Errorf("lock the log head: %w", err)
	}
	b.refuseFenced(epochs, out) // drafts of a superseded leader (leader.go)
	// The summaries known from this instance's last commit are stale if
	// another instance appended since.
	if k := &b.s.known; k.ok && (k.seq != uint64(seq) || k.hash != hashOf(hb) || k.treeSize != treeSize) {
		k.forget()
	}
	var write pgx.Batch
	// The tree is extended with the log only once it holds the whole log
	// (buildTree catches up on a log written before it was kept).
	var tree *treeState
	if treeSize == seq {
		var err error
		if tree, err = newTreeState(treeSize, frontier); err != nil {
			return err
		}
	}
	headSeq, headHash, _, err := b.link(&write, uint64(seq), hashOf(hb), chains, sched, tree, out)
	if err != nil {
		return err
	}
	write.Queue("COMMIT")
	if err := conn.SendBatch(ctx, &write).Close(); err != nil {
		return err
	}
	// Every summary read or written here is what the database holds now.
	if tree != nil {
		treeSize = tree.size
	}
	b.s.known.remember(headSeq, headHash, treeSize, tree, chains)
	return nil
}

// link links the batch's drafts after the head (seq, hash) and the
// chains' summaries (nil: the chain does not exist; changed as drafts
// link), checking and taking their claims and quota uses against sched
// (nil: no draft has any) and adding their hashes to tree (nil: the tree
// is behind the log), setting each draft's outcome in out, and queues the writes onto
// w: the records, the PHI, the summaries and the new head. A chain a
// draft enrolls is inserted without replacing one, so an enroll linked
// against a stale view fails the transaction. It returns the new head and
// the summaries of the chains it changed.
func (b *batchTx) link(w *pgx.Batch, seq uint64, hash custody.Hash, chains map[custody.COI]*custody.ChainInfo, sched *schedState,
	tree *treeState, out []custody.Outcome[custody.Record]) (uint64, custody.Hash, map[custody.COI]*custody.ChainInfo, error) {
	touched := map[custody.COI]*custody.ChainInfo{}
	enrolled := map[custody.COI]bool{}
	excursions := map[custody.COI]bool{}      // chains the batch appends an excursion record to
	before := map[custody.COI]custody.State{} // the chains' states before the batch ("": none)
	var indexes indexChanges
	// The batch's records go in as one statement over arrays, one per
	// column: the server plans and runs one insert, not one per record.
	var rs recordColumns
	for i, r := range b.reqs {
		if out[i].Err != nil {
			continue // refused before linking (refuseFenced)
		}
		d := r.d
		coi := d.Record.Chain
		var prev custody.State
		if c := chains[coi]; c != nil {
			prev = c.State
		}
		if _, ok := before[coi]; !ok {
			before[coi] = prev
		}
		rec, ci, body, err := custody.LinkPresealed(custody.LinkHeads{LogSeq: seq, LogHash: hash, Chain: chains[coi]}, d, r.pre, nil)
		if err != nil {
			out[i].Err = err
			continue
		}
		if needsSchedule(&d) {
			if sched == nil {
				return 0, hash, nil, errors.New("a draft with claims or a quota use in a batch that did not read the counts")
			}
			if err := sched.check(&d); err != nil {
				out[i].Err = err
				continue
			}
			sched.apply(w, &d, rec.Seq)
		}
		if d.PHI != nil {
			p, err := json.Marshal(d.PHI)
			if err != nil {
				return 0, hash, nil, err
			}
			w.Queue(`INSERT INTO phi (coi, body) VALUES ($1, $2)`, string(coi), p)
		}
		if d.NewChain {
			enrolled[coi] = true
		}
		rs.add(rec, body)
		if tree != nil {
			if err := tree.addLeaf(body); err != nil {
				return 0, hash, nil, err
			}
		}
		chains[coi], touched[coi] = &ci, &ci
		if rec.Step == custody.StepExcursion {
			excursions[coi] = true
		}
		indexes.note(prev, &d)
		seq, hash = rec.Seq, rec.Hash
		out[i].Value = rec
	}
	if len(touched) == 0 {
		return seq, hash, touched, nil
	}
	if sched != nil {
		sched.flush(w)
	}
	if tree != nil && len(tree.idx) > 0 {
		w.Queue(`INSERT INTO tree_hashes (idx, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, tree.idx, tree.add)
		tree.idx, tree.add = nil, nil
	}
	w.Queue(`INSERT INTO records (seq, chain, chain_seq, hash, body)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bytea[], $5::bytea[])`,
		rs.seq, rs.chain, rs.chainSeq, rs.hash, rs.body)
	var fresh, changed chainColumns
	var sites siteChanges
	for coi, ci := range touched {
		cs := &changed
		if enrolled[coi] {
			cs = &fresh
		}
		if err := cs.add(*ci); err != nil {
			return 0, hash, nil, err
		}
		if from := before[coi]; from != ci.State {
			sites.move(ci, from)
		}
	}
	if len(fresh.coi) > 0 {
		w.Queue(`INSERT INTO chains (coi, state, info, waiting) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::boolean[])`,
			fresh.coi, fresh.state, fresh.info, fresh.waiting)
	}
	sites.queue(w)
	if len(changed.coi) > 0 {
		w.Queue(replaceChainsSQL, changed.coi, changed.state, changed.info, changed.waiting)
	}
	queueExcursionIndex(w, touched, excursions)
	indexes.queue(w)
	// The head row is updated once: each update of it is a new row
	// version, written to the WAL and left for vacuum.
	if tree != nil {
		w.Queue(`UPDATE log_head SET seq = $1, hash = $2, tree_size = $3, frontier = $4 WHERE id`, int64(seq), hash[:], tree.size, tree.frontier())
	} else {
		w.Queue(`UPDATE log_head SET seq = $1, hash = $2 WHERE id`, int64(seq), hash[:])
	}
	return seq, hash, touched, nil
}

// replaceChainsSQL replaces the summaries of existing chains ($1 the
// COIs, $2 their states, $3 their summaries, $4 whether each waits in a
// terminal state, custody.WaitsInTerminalState). The key's "= ANY" is what
// lets the plan read the rows through the primary key: joined to the
// arrays alone, the generic plan a connection caches after the
// statement's first executions, chosen while the table was small, is a
// hash join over a scan of every summary, a pass over the whole table
// each batch until an ANALYZE replans it (TestAppendPlansUseKeys).
const replaceChainsSQL = `UPDATE chains SET state = u.state, info = u.info, waiting = u.waiting
	FROM unnest($1::text[], $2::text[], $3::bytea[], $4::boolean[]) AS u (coi, state, info, waiting)
	WHERE chains.coi = ANY($1) AND chains.coi = u.coi`

// recordColumns are a batch's records, column by column, as the insert
// over arrays takes them.
type recordColumns struct {
	seq, chainSeq []int64
	chain         []string
	hash, body    [][]byte
}

func (c *recordColumns) add(r custody.Record, body []byte) {
	c.seq, c.chainSeq = append(c.seq, int64(r.Seq)), append(c.chainSeq, int64(r.ChainSeq))
	c.chain = append(c.chain, string(r.Chain))
	c.hash, c.body = append(c.hash, r.Hash[:]), append(c.body, body)
}

// chainColumns are a batch's chain summaries, column by column, with
// whether each waits in a terminal state (custody.WaitsInTerminalState).
type chainColumns struct {
	coi, state []string
	info       [][]byte
	waiting    []bool
}

func (c *chainColumns) add(ci custody.ChainInfo) error {
	v, err := encodeChain(ci)
	if err != nil {
		return err
	}
	c.coi, c.state, c.info = append(c.coi, string(ci.COI)), append(c.state, string(ci.State)), append(c.info, v)
	c.waiting = append(c.waiting, custody.WaitsInTerminalState(&ci))
	return nil
}

// NextCOISequence implements custody.Ledger: the counter row is bumped in
// its own committed transaction, so a number is never handed out twice.
func (s *Store) NextCOISequence(ctx context.Context, fin string, year int) (uint64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `INSERT INTO coi_sequences (prefix, last) VALUES ($1, 1)
		ON CONFLICT (prefix) DO UPDATE SET last = coi_sequences.last + 1 RETURNING last`,
		fmt.Sprintf("%s%02d", fin, year%100)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("next coi sequence: %w", err)
	}
	return uint64(n), nil
}

// Record implements custody.Ledger.
func (s *Store) Record(ctx context.Context, seq uint64) (custody.Record, error) {
	var hb, body []byte
	err := s.pool.QueryRow(ctx, `SELECT hash, body FROM records WHERE seq = $1`, int64(seq)).Scan(&hb, &body)
	if errors.Is(err, pgx.ErrNoRows) {
		return custody.Record{}, fmt.Errorf("record %d: %w", seq, custody.ErrNotFound)
	}
	if err != nil {
		return custody.Record{}, fmt.Errorf("record %d: %w", seq, err)
	}
	r, err := custody.DecodeRecord(body, hashOf(hb))
	if err != nil {
		return custody.Record{}, fmt.Errorf("record %d: %w", seq, err)
	}
	if r.Seq != seq {
		return custody.Record{}, fmt.Errorf("record %d: stored at the wrong position (says %d): %w", seq, r.Seq, custody.ErrChainBroken)
	}
	return r, nil
}

// Records implements custody.Ledger: each record is checked against its
// hash, must be the chain's next one linked to the one before, and the
// last must be the summary's head.
func (s *Store) Records(ctx context.Context, coi custody.COI) ([]custody.Record, error) {
	var out []custody.Record
	var want uint64
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		ci, err := chainIn(ctx, tx, coi)
		if err != nil {
			return err
		}
		want = ci.Records
		out = make([]custody.Record, 0, ci.Records)
		var prev custody.Hash
		return scanChainRows(ctx, tx, coi, func(seq uint64, h custody.Hash, body []byte) error {
			r, err := custody.DecodeRecord(body, h)
			if err != nil {
				return fmt.Errorf("chain %s: record %d: %w", coi, seq, err)
			}
			switch {
			case r.Seq != seq || r.Chain != coi || r.ChainSeq != uint64(len(out)+1):
				return fmt.Errorf("chain %s: record %d is not stored where it says: %w", coi, seq, custody.ErrChainBroken)
			case r.ChainPrev != prev:
				return fmt.Errorf("chain %s: record %d does not link to the chain's record before it: %w", coi, seq, custody.ErrChainBroken)
			}
			prev = r.Hash
			out = append(out, r)
			if uint64(len(out)) == ci.Records && (r.Hash != ci.HeadHash || r.Seq != ci.HeadSeq) {
				return fmt.Errorf("chain %s: record %d is not the summary's head (record %d): %w", coi, seq, ci.HeadSeq, custody.ErrChainBroken)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if uint64(len(out)) != want {
		return nil, fmt.Errorf("chain %s: %d records stored, the summary counts %d: %w", coi, len(out), want, custody.ErrChainBroken)
	}
	return out, nil
}

// readTx runs fn in one read-only transaction that sees one snapshot.
func (s *Store) readTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// querier is what reads need of a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func chainIn(ctx context.Context, q querier, coi custody.COI) (custody.ChainInfo, error) {
	var raw []byte
	err := q.QueryRow(ctx, `SELECT info FROM chains WHERE coi = $1`, string(coi)).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return custody.ChainInfo{}, fmt.Errorf("chain %s: %w", coi, custody.ErrNotFound)
	}
	if err != nil {
		return custody.ChainInfo{}, fmt.Errorf("chain %s: %w", coi, err)
	}
	return decodeChain(raw)
}

// scanChainRows calls fn for the chain's stored records in chain order;
// body is only valid during the call.
func scanChainRows(ctx context.Context, q querier, coi custody.COI, fn func(seq uint64, h custody.Hash, body []byte) error) error {
	rows, err := q.Query(ctx, `SELECT seq, hash, body FROM records WHERE chain = $1 ORDER BY chain_seq`, string(coi))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var hb, body []byte
		if err := rows.Scan(&seq, &hb, &body); err != nil {
			return err
		}
		if err := fn(uint64(seq), hashOf(hb), body); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Chain implements custody.ChainStore.
func (s *Store) Chain(ctx context.Context, coi custody.COI) (custody.ChainInfo, error) {
	return chainIn(ctx, s.pool, coi)
}

// Chains implements custody.ChainStore.
func (s *Store) Chains(ctx context.Context, state custody.State) ([]custody.ChainInfo, error) {
	var out []custody.ChainInfo
	err := scanChains(ctx, s.pool, state, func(ci custody.ChainInfo) error {
		out = append(out, ci)
		return nil
	})
	return out, err
}

// ChainsAfter implements custody.ChainStore: a range of the chains
// table's primary key (coi), or of its chains_state (state, coi) index
// when a state is asked for.
func (s *Store) ChainsAfter(ctx context.Context, state custody.State, after custody.COI, limit int) ([]custody.ChainInfo, error) {
	if limit < 1 {
		return nil, fmt.Errorf("chains: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	sql, args := `SELECT info FROM chains WHERE coi > $1 ORDER BY coi LIMIT $2`, []any{string(after), limit}
	if state != "" {
		sql, args = `SELECT info FROM chains WHERE state = $1 AND coi > $2 ORDER BY coi LIMIT $3`, []any{string(state), string(after), limit}
	}
	return s.queryChains(ctx, "chains", nil, sql, args...)
}

// queryChains runs sql, a query of chain summaries (one info column),
// and returns them in its order, each passed to check first when check
// is not nil; what names the list in errors.
func (s *Store) queryChains(ctx context.Context, what string, check func(*custody.ChainInfo) error, sql string, args ...any) ([]custody.ChainInfo, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := []custody.ChainInfo{}
	if err := eachChain(rows, func(ci custody.ChainInfo) error {
		if check != nil {
			if err := check(&ci); err != nil {
				return err
			}
		}
		out = append(out, ci)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// CountChainsInState implements custody.ChainStateCounter: the sum of the
// state's counts in chain_site_counts (sites.go), at the cost of the
// network's routes, not of the chains.
func (s *Store) CountChainsInState(ctx context.Context, st custody.State) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, stateCountSQL, string(st)).Scan(&n); err != nil {
		return 0, fmt.Errorf("chains in state %s: %w", st, err)
	}
	return n, nil
}

// stateCountSQL is how many chains are in state $1.
const stateCountSQL = `SELECT coalesce(sum(n), 0)::bigint FROM chain_site_counts WHERE state = $1`

// ScanChains implements custody.LogSource.
func (s *Store) ScanChains(ctx context.Context, fn func(custody.ChainInfo) error) error {
	return s.readTx(ctx, func(tx pgx.Tx) error { return scanChains(ctx, tx, "", fn) })
}

// scanChains calls fn for every chain summary in COI order, only those in
// state unless it is empty.
func scanChains(ctx context.Context, q querier, state custody.State, fn func(custody.ChainInfo) error) error {
	sql, args := `SELECT info FROM chains ORDER BY coi`, []any{}
	if state != "" {
		sql, args = `SELECT info FROM chains WHERE state = $1 ORDER BY coi`, []any{string(state)}
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("chains: %w", err)
	}
	defer rows.Close()
	return eachChain(rows, fn)
}

// eachChain decodes the chain summaries rows (one info column) holds and
// calls fn for each.
func eachChain(rows pgx.Rows, fn func(custody.ChainInfo) error) error {
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return err
		}
		ci, err := decodeChain(raw)
		if err != nil {
			return err
		}
		if err := fn(ci); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PHI implements custody.PHIStore.
func (s *Store) PHI(ctx context.Context, coi custody.COI) (custody.PHI, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT body FROM phi WHERE coi = $1`, string(coi)).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return custody.PHI{}, fmt.Errorf("patient identity for %s: %w", coi, custody.ErrNotFound)
	}
	if err != nil {
		return custody.PHI{}, fmt.Errorf("patient identity for %s: %w", coi, err)
	}
	var p custody.PHI
	if err := json.Unmarshal(raw, &p); err != nil {
		return custody.PHI{}, fmt.Errorf("patient identity for %s: %w", coi, err)
	}
	return p, nil
}

// ReadLog implements custody.LogSource in one repeatable-read snapshot.
func (s *Store) ReadLog(ctx context.Context, fn func(v custody.LogView) error) error {
	return s.readTx(ctx, func(tx pgx.Tx) error {
		var v custody.LogView
		var seq int64
		var hb []byte
		if err := tx.QueryRow(ctx, `SELECT seq, hash FROM log_head WHERE id`).Scan(&seq, &hb); err != nil {
			return fmt.Errorf("read the log head: %w", err)
		}
		v.HeadSeq, v.HeadHash = uint64(seq), hashOf(hb)
		var scanErr error
		v.Entries = func(yield func(custody.LogEntry) bool) {
			rows, err := tx.Query(ctx, `SELECT seq, hash, body FROM records ORDER BY seq`)
			if err != nil {
				scanErr = err
				return
			}
			defer rows.Close()
			for rows.Next() {
				var key int64
				var hb, body []byte // fresh slices: entries stay valid until fn returns
				if err := rows.Scan(&key, &hb, &body); err != nil {
					scanErr = err
					return
				}
				if !yield(custody.LogEntry{Key: uint64(key), Hash: hashOf(hb), Body: body}) {
					return
				}
			}
			scanErr = rows.Err()
		}
		v.Chains = func(fn func(custody.ChainInfo) error) error { return scanChains(ctx, tx, "", fn) }
		if err := fn(v); err != nil {
			return err
		}
		if scanErr != nil {
			return fmt.Errorf("read the log: %w", scanErr)
		}
		return nil
	})
}

// ScanChain implements custody.LogSource.
func (s *Store) ScanChain(ctx context.Context, coi custody.COI, fn func(key uint64, hash custody.Hash, body []byte) error) error {
	return s.readTx(ctx, func(tx pgx.Tx) error {
		if _, err := chainIn(ctx, tx, coi); err != nil {
			return err
		}
		return scanChainRows(ctx, tx, coi, fn)
	})
}

// Head implements custody.LogSource.
func (s *Store) Head(ctx context.Context) (uint64, custody.Hash, error) {
	var seq int64
	var hb []byte
	if err := s.pool.QueryRow(ctx, `SELECT seq, hash FROM log_head WHERE id`).Scan(&seq, &hb); err != nil {
		return 0, custody.Hash{}, fmt.Errorf("read the log head: %w", err)
	}
	return uint64(seq), hashOf(hb), nil
}

// backupTables are the tables Backup copies, in the order it writes them.
var backupTables = []string{"coid_schema", "log_head", "records", "chains", "chain_sites", "chain_site_counts", "excursion_chains", "phi", "coi_sequences", "users", "user_tokens",
	"readings_meta", "readings", "quarantine", "audit_head", "audit", "registry_entries",
	"capacity", "slot_used", "slot_claims", "slot_holds", "quotas", "quota_used", "quota_chain", "waitlist",
	"tree_hashes", "checkpoints", "cosignatures", "witness_states",
	"access_rows", "followup_pending", "index_builds", "qualification_expiries", "log_key"}

// Backup implements custody.Backuper: every table of the store, in one
// repeatable-read snapshot, as PostgreSQL's COPY text format, each after a
// "-- table NAME" line. It is a consistent logical copy for archiving;
// pg_dump or the database's own point-in-time recovery are the way to
// restore a whole database.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		for _, t := range backupTables {
			if _, err := fmt.Fprintf(cw, "-- table %s\n", t); err != nil {
				return err
			}
			if _, err := tx.Conn().PgConn().CopyTo(ctx, cw, "COPY "+t+" TO STDOUT"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return cw.n, fmt.Errorf("backup: %w", err)
	}
	return cw.n, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

// Write implements io.Writer.
func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
