package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/jackc/pgx/v5"
)

// The verifiable log (migration 0007): the Merkle tree's stored hashes,
// written by the append transaction that writes their records, the signed
// checkpoints and the witnesses' cosignatures.
//
// The table keeps the hashes of the tree's nodes at keptLevel and above,
// about one every eight records, not those below: a node below keptLevel
// covers at most 2^keptLevel - 1 records and is recomputed from them when
// a proof or a tile needs it (ReadHashes). Hashes below keptLevel written
// by earlier versions stay where they are, checked but never read.
//
// An append needs, of the tree already stored, only the hashes of the
// complete subtrees along its right edge (the frontier): the log head row
// keeps them, so the append transaction adds its records' hashes from
// what it reads with the head (or from what this instance wrote last),
// never from the tree itself.

var (
	_ verifiable.Source        = (*Store)(nil)
	_ custody.CosignatureStore = (*Store)(nil)
)

// keptLevel is the lowest level of the tree whose nodes' hashes the
// tree_hashes table keeps.
const keptLevel = 4

// treeState is the tree as one append transaction sees it: its edge (the
// frontier of the tree of size leaves, then the leaves it adds) and the
// hashes it adds that the table keeps (keptLevel and up, or every one
// with all), to write.
type treeState struct {
	size int64
	edge *verifiable.Edge
	idx  []int64
	add  [][]byte
	all  bool
	hs   []verifiable.Hash // addLeaf's scratch
}

// newTreeState returns the tree of size leaves whose frontier (as the log
// head keeps it) is frontier; malformed: ErrChainBroken.
func newTreeState(size int64, frontier []byte) (*treeState, error) {
	if len(frontier)%custody.HashSize != 0 {
		return nil, fmt.Errorf("the tree's frontier of %d records holds %d bytes: %w", size, len(frontier), custody.ErrChainBroken)
	}
	roots := make([]verifiable.Hash, len(frontier)/custody.HashSize)
	for i := range roots {
		copy(roots[i][:], frontier[i*custody.HashSize:])
	}
	edge, err := verifiable.NewEdge(size, roots)
	if err != nil {
		return nil, fmt.Errorf("the tree's frontier of %d records holds %d bytes: %w", size, len(frontier), err)
	}
	return &treeState{size: size, edge: edge}, nil
}

// addLeaf adds the hashes of the next leaf, whose canonical encoding is
// body.
func (t *treeState) addLeaf(body []byte) error {
	first := verifiable.StoredHashIndex(0, t.size)
	t.hs = t.edge.Add(verifiable.LeafHash(body), t.hs[:0])
	for i := range t.hs { // t.hs[i] is at level i
		if i >= keptLevel || t.all {
			h := t.hs[i]
			t.idx = append(t.idx, first+int64(i))
			t.add = append(t.add, h[:])
		}
	}
	t.size++
	return nil
}

// frontier returns the frontier of the tree as it now is, as the log head
// keeps it.
func (t *treeState) frontier() []byte { return frontierOf(t.edge) }

// frontierOf returns the frontier of the tree whose edge is e as the log
// head keeps it: the roots of its complete subtrees, largest first, one
// after the other.
func frontierOf(e *verifiable.Edge) []byte {
	roots := e.Roots()
	out := make([]byte, 0, len(roots)*custody.HashSize)
	for _, h := range roots {
		out = append(out, h[:]...)
	}
	return out
}

// clone returns a copy whose changes leave t as it is.
func (t *treeState) clone() *treeState {
	return &treeState{size: t.size, edge: t.edge.Clone(), all: t.all}
}

// queueWrites queues the added hashes and the head's tree columns onto w.
func (t *treeState) queueWrites(w *pgx.Batch) {
	if len(t.idx) > 0 {
		w.Queue(`INSERT INTO tree_hashes (idx, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, t.idx, t.add)
	}
	w.Queue(`UPDATE log_head SET tree_size = $1, frontier = $2 WHERE id`, t.size, t.frontier())
	t.idx, t.add = nil, nil
}

// treeBuildChunk is how many records one transaction of the tree's
// building hashes.
const treeBuildChunk = 1 << 14

// buildTree hashes the records the tree does not hold yet (those of a
// database written before the tree was kept), at open, a chunk per
// transaction holding the log head, so an interrupted build resumes where
// it stopped. Appends meanwhile leave the tree to it (their batch sees
// the tree behind the log).
func (s *Store) buildTree(ctx context.Context) error {
	for {
		done := false
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var seq, size int64
			var frontier []byte
			if err := tx.QueryRow(ctx, `SELECT seq, tree_size, frontier FROM log_head WHERE id FOR UPDATE`).Scan(&seq, &size, &frontier); err != nil {
				return err
			}
			if size >= seq {
				done = true
				return nil
			}
			t, err := newTreeState(size, frontier)
			if err != nil {
				return err
			}
			end := min(size+treeBuildChunk, seq)
			rows, err := tx.Query(ctx, `SELECT seq, body FROM records WHERE seq > $1 AND seq <= $2 ORDER BY seq`, size, end)
			if err != nil {
				return err
			}
			for rows.Next() {
				var n int64
				var body []byte
				if err := rows.Scan(&n, &body); err != nil {
					rows.Close()
					return err
				}
				if n != t.size+1 {
					rows.Close()
					return fmt.Errorf("build the tree: record %d is missing: %w", t.size+1, custody.ErrChainBroken)
				}
				if err := t.addLeaf(body); err != nil {
					rows.Close()
					return err
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if t.size != end {
				return fmt.Errorf("build the tree: record %d is missing: %w", t.size+1, custody.ErrChainBroken)
			}
			var w pgx.Batch
			t.queueWrites(&w)
			return tx.SendBatch(ctx, &w).Close()
		})
		if err != nil {
			return fmt.Errorf("build the tree: %w", err)
		}
		if done {
			return nil
		}
	}
}

// TreeSize implements verifiable.Source.
func (s *Store) TreeSize(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT tree_size FROM log_head WHERE id`).Scan(&n); err != nil {
		return 0, fmt.Errorf("tree size: %w", err)
	}
	return n, nil
}

// ReadHashes implements verifiable.Source: the hashes of the nodes at
// keptLevel and above from the table, those below recomputed from their
// records, in one read-only transaction; a node the tree does not hold
// whole is ErrNotFound.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]verifiable.Hash, error) {
	out := make([]verifiable.Hash, len(indexes))
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var size int64
		if err := tx.QueryRow(ctx, `SELECT tree_size FROM log_head WHERE id`).Scan(&size); err != nil {
			return err
		}
		var kept, seqs []int64
		for _, x := range indexes {
			if x < 0 {
				return fmt.Errorf("tree hash %d is not stored: %w", x, custody.ErrNotFound)
			}
			level, n := verifiable.SplitStoredHashIndex(x)
			if level > 62 || n >= size>>level {
				return fmt.Errorf("tree hash %d is not stored: %w", x, custody.ErrNotFound)
			}
			if level >= keptLevel {
				kept = append(kept, x)
				continue
			}
			for seq := n<<level + 1; seq <= (n+1)<<level; seq++ {
				seqs = append(seqs, seq)
			}
		}
		got := make(map[int64]verifiable.Hash, len(kept))
		if len(kept) > 0 {
			rows, err := tx.Query(ctx, `SELECT idx, hash FROM tree_hashes WHERE idx = ANY($1)`, kept)
			if err != nil {
				return err
			}
			for rows.Next() {
				var x int64
				var b []byte
				if err := rows.Scan(&x, &b); err != nil {
					rows.Close()
					return err
				}
				if len(b) != custody.HashSize {
					rows.Close()
					return fmt.Errorf("tree hash %d is damaged: %w", x, custody.ErrChainBroken)
				}
				got[x] = verifiable.Hash(b)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		leaves := make(map[int64]verifiable.Hash, len(seqs))
		if len(seqs) > 0 {
			rows, err := tx.Query(ctx, `SELECT seq, body FROM records WHERE seq = ANY($1)`, seqs)
			if err != nil {
				return err
			}
			for rows.Next() {
				var seq int64
				var body []byte
				if err := rows.Scan(&seq, &body); err != nil {
					rows.Close()
					return err
				}
				leaves[seq] = verifiable.LeafHash(body)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		for i, x := range indexes {
			level, n := verifiable.SplitStoredHashIndex(x)
			if level >= keptLevel {
				h, ok := got[x]
				if !ok {
					return fmt.Errorf("tree hash %d is not stored: %w", x, custody.ErrNotFound)
				}
				out[i] = h
				continue
			}
			h, err := subtreeHash(leaves, n<<level+1, 1<<level)
			if err != nil {
				return err
			}
			out[i] = h
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tree hashes: %w", err)
	}
	return out, nil
}

// subtreeHash returns the hash of the complete subtree of the w records
// from seq first on, from their leaf hashes.
func subtreeHash(leaves map[int64]verifiable.Hash, first, w int64) (verifiable.Hash, error) {
	hs := make([]verifiable.Hash, w)
	for i := range hs {
		h, ok := leaves[first+int64(i)]
		if !ok {
			return verifiable.Hash{}, fmt.Errorf("tree: record %d is missing: %w", first+int64(i), custody.ErrChainBroken)
		}
		hs[i] = h
	}
	for ; w > 1; w /= 2 {
		for j := range w / 2 {
			hs[j] = verifiable.NodeHash(hs[2*j], hs[2*j+1])
		}
	}
	return hs[0], nil
}

// ReadEntries implements verifiable.Source.
func (s *Store) ReadEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, body FROM records WHERE seq > $1 AND seq <= $2 ORDER BY seq`, start, end)
	if err != nil {
		return nil, fmt.Errorf("tree entries: %w", err)
	}
	defer rows.Close()
	out := make([][]byte, 0, max(end-start, 0))
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, fmt.Errorf("tree entries: %w", err)
		}
		if seq != start+int64(len(out))+1 {
			break
		}
		out = append(out, body)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tree entries: %w", err)
	}
	if int64(len(out)) != end-start {
		return nil, fmt.Errorf("record %d: %w", start+int64(len(out))+1, custody.ErrNotFound)
	}
	return out, nil
}

// AddCheckpoint implements verifiable.Source.
func (s *Store) AddCheckpoint(ctx context.Context, size int64, signed []byte) error {
	// The log's key is checked (and recorded the first time) in the
	// transaction that keeps the checkpoint (logkey.go).
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.checkLogKey(ctx, tx); err != nil {
			return fmt.Errorf("keep checkpoint: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO checkpoints (size, signed) VALUES ($1, $2)`, size, signed); err != nil {
			return fmt.Errorf("keep checkpoint: %w", err)
		}
		return nil
	})
}

// LatestCheckpoint implements verifiable.Source.
func (s *Store) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	var out []byte
	err := s.pool.QueryRow(ctx, `SELECT signed FROM checkpoints ORDER BY id DESC LIMIT 1`).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("no checkpoint signed yet: %w", custody.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("latest checkpoint: %w", err)
	}
	return out, nil
}

// Checkpoints calls fn with every signed checkpoint kept, oldest first.
func (s *Store) Checkpoints(ctx context.Context, fn func(size int64, signed []byte) error) error {
	rows, err := s.pool.Query(ctx, `SELECT size, signed FROM checkpoints ORDER BY id`)
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var size int64
		var signed []byte
		if err := rows.Scan(&size, &signed); err != nil {
			return fmt.Errorf("checkpoints: %w", err)
		}
		if err := fn(size, signed); err != nil {
			return err
		}
	}
	return rows.Err()
}

// AddCosignature implements custody.CosignatureStore.
func (s *Store) AddCosignature(ctx context.Context, c custody.Cosignature) error {
	if c.Size < 0 || c.Witness == "" {
		return fmt.Errorf("keep cosignature: size %d, witness %q: %w", c.Size, c.Witness, custody.ErrInvalid)
	}
	if err := custody.CheckSignatureLine(c.Witness, c.Line); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO cosignatures (size, witness, time, line) VALUES ($1, $2, $3, $4)
		ON CONFLICT (size, witness) DO UPDATE SET time = excluded.time, line = excluded.line`, c.Size, c.Witness, c.Time.Unix(), c.Line)
	if err != nil {
		return fmt.Errorf("keep cosignature: %w", err)
	}
	return nil
}

// Cosignatures implements custody.CosignatureStore.
func (s *Store) Cosignatures(ctx context.Context, size int64) ([]custody.Cosignature, error) {
	rows, err := s.pool.Query(ctx, `SELECT witness, time, line FROM cosignatures WHERE size = $1 ORDER BY witness`, size)
	if err != nil {
		return nil, fmt.Errorf("cosignatures: %w", err)
	}
	defer rows.Close()
	out := []custody.Cosignature{}
	for rows.Next() {
		c := custody.Cosignature{Size: size}
		var at int64
		if err := rows.Scan(&c.Witness, &at, &c.Line); err != nil {
			return nil, fmt.Errorf("cosignatures: %w", err)
		}
		c.Time = time.Unix(at, 0).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cosignatures: %w", err)
	}
	return out, nil
}

// CosignedCheckpoints implements custody.CosignatureStore.
func (s *Store) CosignedCheckpoints(ctx context.Context, after int64, limit int) ([]custody.CosignedCheckpoint, error) {
	if limit < 1 || limit > custody.MaxCosignedPage || after < 0 {
		return nil, fmt.Errorf("cosigned checkpoints after %d, %d of them: %w", after, limit, custody.ErrInvalid)
	}
	rows, err := s.pool.Query(ctx, `SELECT size, array_agg(witness ORDER BY witness) FROM cosignatures WHERE size > $1
		GROUP BY size ORDER BY size LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("cosigned checkpoints: %w", err)
	}
	defer rows.Close()
	out := []custody.CosignedCheckpoint{}
	for rows.Next() {
		var c custody.CosignedCheckpoint
		if err := rows.Scan(&c.Size, &c.Witnesses); err != nil {
			return nil, fmt.Errorf("cosigned checkpoints: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cosigned checkpoints: %w", err)
	}
	return out, nil
}
