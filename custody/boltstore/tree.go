package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	bolt "go.etcd.io/bbolt"
)

// The Merkle tree over the log (package verifiable): its stored hashes,
// written by the batch that writes the records, and the signed
// checkpoints.
var (
	bucketTree        = []byte("tree")        // kept hash index (keptIndex) / hashGroup (8 bytes BE) -> hashGroup hashes (32 each): the full groups
	bucketCheckpoints = []byte("checkpoints") // sequence (8 bytes BE) -> size (8 bytes BE) || signed note
	keyTreeSize       = []byte("tree_size")   // in meta: records whose hashes are stored (8 bytes BE)
	keyTreeTail       = []byte("tree_tail")   // in meta: the last group, not full: its index (8 bytes BE) || its hashes
	keyTreeLayout     = []byte("tree_layout") // in meta: treeLayout, the layout of the stored hashes
	treeBuckets       = [][]byte{bucketTree, bucketCheckpoints, bucketCosignatures, bucketWitnessStates}
)

var _ verifiable.Source = (*Store)(nil)

// treeBuildChunk is how many records one transaction of the tree's
// building (upgrade) hashes: a crash loses at most that much work.
const treeBuildChunk = 1 << 18

// hashGroup is how many consecutive stored hashes one entry of the tree
// bucket holds: a proof reads a few entries, and 7 entries of 512 bytes
// fill a page.
const hashGroup = 16

// treeLayout names how the tree's hashes are kept. The file keeps the
// hashes of the tree's nodes at level treeLow and above (keptIndex), not
// those below: a node below treeLow covers at most 2^treeLow - 1 records
// and is recomputed from them when a proof or a tile needs it (keptTree).
// The kept hashes are about 2 / 2^treeLow a record (4 bytes), where every
// hash would be about two (64 bytes): the tree adds next to nothing to
// the pages a commit writes. They are stored in groups of hashGroup in the
// tree bucket, the last group, while it is not full, in meta (keyTreeTail),
// which every commit changes anyway (the head). A tree of another layout
// (1: every hash, groups of 64; 2: every hash, groups of hashGroup) is
// rebuilt at the next writer's open; a read-only open sees no tree.
const treeLayout = 3

// treeLow is the lowest level of the tree whose nodes' hashes the file
// keeps: a proof recomputes at most 2^treeLow - 1 leaves from their
// records.
const treeLow = 4

// keptIndex returns where the file keeps the hash of node n at level
// (treeLow or above): the kept hashes are the stored hashes (in the
// order of verifiable.StoredHashIndex) of the tree whose leaves are the
// nodes at treeLow.
func keptIndex(level int, n int64) int64 { return verifiable.StoredHashIndex(level-treeLow, n) }

// keptCount returns how many hashes the file keeps for a tree of size
// records: its complete nodes at treeLow and above.
func keptCount(size int64) int64 { return verifiable.StoredHashCount(size >> treeLow) }

// addKept adds the leaf of hash leaf to edge and appends to hs the hashes
// the leaf completes that the file keeps (levels treeLow and up), in the
// order of keptIndex.
func addKept(edge *verifiable.Edge, leaf verifiable.Hash, hs []verifiable.Hash) []verifiable.Hash {
	mark := len(hs)
	hs = edge.Add(leaf, hs) // levels 0, 1, ... of the nodes completed
	if len(hs)-mark <= treeLow {
		return hs[:mark]
	}
	return append(hs[:mark], hs[mark+treeLow:]...)
}

// treeHashes reads and writes the kept hashes (by keptIndex) inside a
// transaction.
// Hashes added are kept in pending, by group, until flush puts them, and
// are read from there meanwhile. The tree only grows at its end, so a
// group is only ever appended to.
type treeHashes struct {
	b, meta *bolt.Bucket
	tailG   int64            // the group kept in meta
	tail    []byte           // its hashes
	pending map[int64][]byte // group -> its whole value, as it will be
	// read, when not nil, keeps the groups read from b, for a reader that
	// adds nothing (checkTree): consecutive records' hashes lie in the
	// same few groups. It is emptied when it holds maxReadGroups.
	read map[int64][]byte
}

// maxReadGroups bounds treeHashes.read: 4,096 groups of 16 hashes.
const maxReadGroups = 4096

func newTreeHashes(b, meta *bolt.Bucket) *treeHashes {
	r := &treeHashes{b: b, meta: meta, pending: map[int64][]byte{}}
	r.tailG, r.tail = readTreeTail(meta)
	return r
}

// readTreeTail returns the group kept in meta and its hashes (group 0,
// none, in a tree with no hashes).
func readTreeTail(meta *bolt.Bucket) (int64, []byte) {
	v := meta.Get(keyTreeTail)
	if len(v) < 8 {
		return 0, nil
	}
	return int64(binary.BigEndian.Uint64(v)), v[8:]
}

func (r *treeHashes) group(g int64) []byte {
	if v, ok := r.pending[g]; ok {
		return v
	}
	if g == r.tailG {
		return r.tail
	}
	if r.read == nil {
		return r.b.Get(u64(uint64(g)))
	}
	v, ok := r.read[g]
	if !ok {
		if len(r.read) >= maxReadGroups {
			clear(r.read)
		}
		v = r.b.Get(u64(uint64(g)))
		r.read[g] = v
	}
	return v
}

// hash returns the kept hash at idx (keptIndex), if the file holds it.
func (r *treeHashes) hash(idx int64) (verifiable.Hash, bool) {
	var h verifiable.Hash
	if idx < 0 {
		return h, false
	}
	v := r.group(idx / hashGroup)
	off := int(idx%hashGroup) * custody.HashSize
	if len(v) < off+custody.HashSize {
		return h, false
	}
	copy(h[:], v[off:])
	return h, true
}

// keptTree reads the hashes of a tree of size records by their
// verifiable.StoredHashIndex (it is a verifiable.HashReader): the kept
// ones from the tree's groups, those below treeLow recomputed from the
// records in the log.
type keptTree struct {
	kept *treeHashes
	logB *bolt.Bucket
	size int64
	c    *bolt.Cursor
}

// ReadHashes implements verifiable.HashReader.
func (r *keptTree) ReadHashes(indexes []int64) ([]verifiable.Hash, error) {
	out := make([]verifiable.Hash, len(indexes))
	for i, idx := range indexes {
		if idx < 0 {
			return nil, fmt.Errorf("tree hash %d is not stored: %w", idx, custody.ErrNotFound)
		}
		level, n := verifiable.SplitStoredHashIndex(idx)
		if level > 62-treeLow || n >= (r.size>>level) {
			return nil, fmt.Errorf("tree hash %d is not stored: %w", idx, custody.ErrNotFound)
		}
		if level < treeLow {
			h, err := r.below(level, n)
			if err != nil {
				return nil, err
			}
			out[i] = h
			continue
		}
		h, ok := r.kept.hash(keptIndex(level, n))
		if !ok {
			return nil, fmt.Errorf("tree hash %d is not stored: %w", idx, custody.ErrNotFound)
		}
		out[i] = h
	}
	return out, nil
}

// below recomputes the hash of node n at level (below treeLow) from its
// records.
func (r *keptTree) below(level int, n int64) (verifiable.Hash, error) {
	var hs [1 << treeLow]verifiable.Hash
	w := 1 << level
	first := uint64(n)<<level + 1
	if r.c == nil {
		r.c = r.logB.Cursor()
	}
	k, v := r.c.Seek(u64(first))
	for i := range w {
		seq := first + uint64(i)
		if k == nil || binary.BigEndian.Uint64(k) != seq || len(v) < custody.HashSize {
			return verifiable.Hash{}, fmt.Errorf("tree: record %d is missing: %w", seq, custody.ErrChainBroken)
		}
		hs[i] = verifiable.LeafHash(v[custody.HashSize:])
		k, v = r.c.Next()
	}
	for ; w > 1; w /= 2 {
		for j := range w / 2 {
			hs[j] = verifiable.NodeHash(hs[2*j], hs[2*j+1])
		}
	}
	return hs[0], nil
}

// add appends the kept hashes hs at idx, which must be the next one.
func (r *treeHashes) add(idx int64, hs []verifiable.Hash) error {
	for len(hs) > 0 {
		g := idx / hashGroup
		v, ok := r.pending[g]
		if !ok {
			v = append(make([]byte, 0, hashGroup*custody.HashSize), r.group(g)...)
		}
		if len(v) != int(idx%hashGroup)*custody.HashSize {
			return fmt.Errorf("tree hash %d: the tree holds %d hashes of its group: %w", idx, len(v)/custody.HashSize, custody.ErrChainBroken)
		}
		n := min(len(hs), hashGroup-int(idx%hashGroup))
		for _, h := range hs[:n] {
			v = append(v, h[:]...)
		}
		r.pending[g] = v
		idx, hs = idx+int64(n), hs[n:]
	}
	return nil
}

// flush puts the groups changed, in order: the full ones in the tree
// bucket, the last one, not full, in meta.
func (r *treeHashes) flush() error {
	if len(r.pending) == 0 {
		return nil
	}
	gs := slices.Sorted(maps.Keys(r.pending))
	last := gs[len(gs)-1]
	tailG, tail := last+1, []byte(nil)
	for _, g := range gs {
		v := r.pending[g]
		if len(v) < hashGroup*custody.HashSize {
			if g != last {
				return fmt.Errorf("tree group %d is not full but not the last: %w", g, custody.ErrChainBroken)
			}
			tailG, tail = g, v
			continue
		}
		if err := r.b.Put(u64(uint64(g)), v); err != nil {
			return err
		}
	}
	if err := r.meta.Put(keyTreeTail, append(u64(uint64(tailG)), tail...)); err != nil {
		return err
	}
	r.tailG, r.tail = tailG, tail
	clear(r.pending)
	return nil
}

// putHashes writes the kept hashes hs, which begin at idx, the tree's
// next: the groups they fill in the tree bucket, the rest in meta. It is
// the append path's write of a batch's hashes, add and flush in one pass
// over a single buffer; nothing may be pending.
func (r *treeHashes) putHashes(idx int64, hs []verifiable.Hash) error {
	if len(r.pending) != 0 || idx != r.tailG*hashGroup+int64(len(r.tail)/custody.HashSize) {
		return fmt.Errorf("tree hash %d: the tree holds %d: %w", idx, r.tailG*hashGroup+int64(len(r.tail)/custody.HashSize), custody.ErrChainBroken)
	}
	if len(hs) == 0 {
		return nil
	}
	const full = hashGroup * custody.HashSize
	// bbolt keeps the values until the commit: one buffer, cut in groups,
	// the tail's key in front of the rest.
	buf := make([]byte, 0, 8+len(r.tail)+len(hs)*custody.HashSize)
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.tailG))
	buf = append(buf, r.tail...)
	for _, h := range hs {
		buf = append(buf, h[:]...)
	}
	g, v := r.tailG, buf[8:]
	for len(v) >= full {
		if err := r.b.Put(u64(uint64(g)), v[:full:full]); err != nil {
			return err
		}
		g, v = g+1, v[full:]
	}
	// The rest, not a full group, goes to meta after its group's index:
	// the buffer as it is if no group filled, else a copy (the bytes
	// before it are the last full group's).
	tail := buf
	if g != r.tailG {
		tail = append(u64(uint64(g)), v...)
	}
	if err := r.meta.Put(keyTreeTail, tail); err != nil {
		return err
	}
	r.tailG, r.tail = g, tail[8:]
	return nil
}

// The tree under many writers: a commit of a large batch may leave its
// leaves' hashes to a later commit (the tree lags the log), so that the
// tree bucket's pages are written once every few commits rather than by
// each. What the file says stays true: the tree's size (keyTreeSize) only
// ever counts records whose hashes are stored with it, so a checkpoint or
// a proof never covers a record whose hashes are not durable. The records
// themselves are durable at their commit, as ever; the hashes left over
// are written by the next commit of a small batch, by a commit once
// treeLagMax hashes wait, by catchUpTree once the writer has been idle
// treeIdleWait, at Close, or, after a crash, at the next open (buildTree).
const (
	// treeLagMin is the smallest batch whose commit may leave its tree
	// hashes to a later one: smaller batches come from a lightly loaded
	// ledger, where each commit brings the tree up to date.
	treeLagMin = 16
	// treeLagMax is how many kept hashes (about one every eight records)
	// may wait in memory: the commit that reaches it writes them.
	treeLagMax = 512
	// treeIdleWait is how long after the last commit that left hashes
	// waiting the writer, if no commit wrote them meanwhile, catches the
	// tree up in a transaction of its own.
	treeIdleWait = 50 * time.Millisecond
)

// edgeCache is the committing goroutine's state of the tree: the right
// edge of the tree of every committed record, and the kept hashes of
// the records committed after the file's tree, not written yet. A batch
// uses it only when the file's tree size and head are the ones it was
// left at (else it reads the edge back and hashes the records the tree
// lacks from the log), and it is replaced only after a batch committed,
// so it never holds what the file does not.
type edgeCache struct {
	edge    *verifiable.Edge  // the tree of the committed records; nil: not loaded
	durable int64             // the file's tree size the pending hashes follow
	pending []verifiable.Hash // the kept hashes from keptCount(durable) on
	// hashing is the last committed batch when its commit left its hashes
	// waiting: its leaves may still be hashed on its goroutine, and its
	// edge and hashes become edge and pending once that is over (settle).
	hashing *treeBatch
	// The memory of batches over, for the next ones (a batch of appends
	// otherwise allocates its leaves' list, grown record by record, and
	// its edge): spareEdge, the edge a batch replaced, and spareLeaves,
	// the leaves' lists of those whose hashing is over, emptied. Two
	// lists serve in turn, one batch committing while the last one's
	// hashing may still read its own.
	spareEdge   *verifiable.Edge
	spareLeaves [][][]byte
}

// takeLeaves returns an empty list for a batch's leaves, a spare one if
// there is one.
func (c *edgeCache) takeLeaves() [][]byte {
	n := len(c.spareLeaves)
	if n == 0 {
		return nil
	}
	l := c.spareLeaves[n-1]
	c.spareLeaves = c.spareLeaves[:n-1]
	return l
}

// recycle keeps the leaves' list and the edge of a batch whose hashing is
// over (nil: none) for the next ones. The list is emptied: the records'
// buffers it points to are not kept alive.
func (c *edgeCache) recycle(leaves [][]byte, edge *verifiable.Edge) {
	if cap(leaves) > 0 && len(c.spareLeaves) < 2 {
		clear(leaves)
		c.spareLeaves = append(c.spareLeaves, leaves[:0])
	}
	if edge != nil {
		c.spareEdge = edge
	}
}

// settle waits for the hashing of the last committed batch, if its commit
// did not, and takes its edge and hashes: edge and pending are the
// committed tree's after it.
func (c *edgeCache) settle() {
	t := c.hashing
	if t == nil {
		return
	}
	t.wait()
	c.edge, c.pending, c.hashing = t.edge, t.hs, nil
	c.recycle(t.leaves, nil)
}

// treeAsyncMin is the smallest batch whose leaves are hashed on another
// goroutine while the committing one writes the batch's chain entries:
// below it, handing the work over costs about what it saves.
const treeAsyncMin = 8

// treeBatch is the tree's part of one batch of appends: the records'
// canonical encodings, in order, hashed at the batch's commit.
type treeBatch struct {
	size   int64    // the file's tree size at the batch's start
	head   int64    // the records committed before the batch
	leaves [][]byte // the batch's records' encodings, leaf head+i the i-th
	edge   *verifiable.Edge
	hs     []verifiable.Hash // the kept hashes from keptCount(size) on
	done   chan struct{}     // closed once hs is complete (start's goroutine)
}

// add takes the encoding of leaf n, which must be the batch's next.
func (t *treeBatch) add(n int64, enc []byte) error {
	if want := t.head + int64(len(t.leaves)); n != want {
		return fmt.Errorf("tree leaf %d: the tree's next is %d: %w", n, want, custody.ErrChainBroken)
	}
	t.leaves = append(t.leaves, enc)
	return nil
}

// start begins hashing the batch's leaves after the hashes waiting in
// cache, if it follows the file, or else after the records the file's
// tree lacks, read from logB: on another goroutine for treeAsyncMin
// leaves or more, which only reads the encodings (the batch's buffers,
// or copies) and its own edge, and empties the batch's list of them (the
// committing goroutine reads only its length).
func (t *treeBatch) start(cache *edgeCache, tree *treeHashes, logB *bolt.Bucket) error {
	if len(t.leaves) == 0 {
		return nil
	}
	if cache != nil {
		cache.settle()
	}
	encs := t.leaves
	if cache != nil && cache.edge != nil && cache.edge.Size() == t.head && cache.durable == t.size {
		// The batch's hashes go after the waiting ones, in their array:
		// the cache sees only its own length of it until the batch
		// committed.
		t.edge, t.hs = cache.edge.CloneTo(cache.spareEdge), cache.pending
		cache.spareEdge = nil
	} else {
		// Room for the kept hashes and for the ones addKept drops.
		t.hs = make([]verifiable.Hash, 0, keptCount(t.head+int64(len(t.leaves)))-keptCount(t.size)+64)
		var err error
		if t.edge, err = verifiable.LoadEdge(t.size, &keptTree{kept: tree, logB: logB, size: t.size}); err != nil {
			return err
		}
		if t.size < t.head {
			encs = nil
			c := logB.Cursor()
			seq := uint64(t.size) + 1
			for k, v := c.Seek(u64(seq)); seq <= uint64(t.head); k, v = c.Next() {
				if k == nil || binary.BigEndian.Uint64(k) != seq || len(v) < custody.HashSize {
					return fmt.Errorf("tree: record %d is missing: %w", seq, custody.ErrChainBroken)
				}
				encs = append(encs, bytes.Clone(v[custody.HashSize:]))
				seq++
			}
			encs = append(encs, t.leaves...)
		}
	}
	// Once hashed, the records' buffers are let go: a batch whose hashes
	// wait is kept until the next one settles it, its records need not be.
	if len(encs) < treeAsyncMin {
		t.hs = hashLeaves(t.edge, encs, t.hs)
		clear(t.leaves)
		return nil
	}
	t.done = make(chan struct{})
	go func() {
		defer close(t.done)
		t.hs = hashLeaves(t.edge, encs, t.hs)
		clear(t.leaves)
	}()
	return nil
}

// wait returns once the hashing start began, if any, is over.
func (t *treeBatch) wait() {
	if t.done != nil {
		<-t.done
	}
}

// finish waits for the hashes start began and writes them, unless the
// batch is large, the writer keeps them (cache) and not too many wait
// then: the batch's commit then does not wait for its hashing, which
// goes on beside it (the cache takes its result, committed). It returns
// the file's tree size after the batch.
func (t *treeBatch) finish(tree *treeHashes, cache *edgeCache) (int64, error) {
	if len(t.leaves) == 0 {
		return t.size, nil
	}
	// The hashes the batch will hold, known before they are computed.
	waiting := keptCount(t.head+int64(len(t.leaves))) - keptCount(t.size)
	if cache != nil && len(t.leaves) >= treeLagMin && waiting < treeLagMax {
		return t.size, nil
	}
	t.wait()
	if err := tree.putHashes(keptCount(t.size), t.hs); err != nil {
		return 0, err
	}
	return t.edge.Size(), nil
}

// committed updates cache once the batch's transaction committed, the
// file's tree then holding size records.
func (t *treeBatch) committed(cache *edgeCache, size int64) {
	if cache == nil || t.edge == nil {
		return
	}
	cache.durable = size
	old := cache.edge // the edge the batch's was copied from, or nil
	if old == t.edge {
		old = nil
	}
	if size < t.head+int64(len(t.leaves)) {
		// The batch's hashes wait in memory, perhaps not all computed.
		cache.edge, cache.pending, cache.hashing = nil, nil, t
		cache.recycle(nil, old)
		return
	}
	// The hashes are written (finish waited for them): their array, and
	// the leaves' list, serve the next batches.
	cache.edge, cache.pending, cache.hashing = t.edge, t.hs[:0], nil
	cache.recycle(t.leaves, old)
}

// catchUpTree writes the tree hashes the writer left waiting, once it has
// been idle (treeIdleWait) or at Close: the tree then holds every record.
// It runs apart from the writer, in a transaction of its own; the
// writer's next batch finds the tree's size changed and reads its edge
// back.
func (s *Store) catchUpTree() {
	var behind bool
	if err := s.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		head, _ := readHead(meta)
		behind = treeCurrent(meta) && uint64(readTreeSize(meta)) < head
		return nil
	}); err != nil || !behind {
		return
	}
	if err := s.completeTree(); err != nil {
		s.log.Error("writing the tree hashes of the last records failed: the next commit or open writes them", "err", err)
	}
}

// hashLeaves appends to hs the kept hashes the leaves of encs add along
// edge: on every core for a batch of many blocks (buildHashes), on this
// goroutine otherwise.
func hashLeaves(edge *verifiable.Edge, encs [][]byte, hs []verifiable.Hash) []verifiable.Hash {
	if len(encs) >= 2*leafHashBlock {
		return buildHashes(edge, encs, hs)
	}
	for _, enc := range encs {
		hs = addKept(edge, verifiable.LeafHash(enc), hs)
	}
	return hs
}

// leafHashBlock is how many leaves a goroutine of buildHashes hashes at
// a time.
const leafHashBlock = 4096

// buildHashes appends to hs the kept hashes the leaves of encs add to
// the tree whose edge is edge, in order. The leaves are hashed on
// GOMAXPROCS goroutines, block by block, while this one adds each block
// done along the edge: the in-order part overlaps the hashing.
func buildHashes(edge *verifiable.Edge, encs [][]byte, hs []verifiable.Hash) []verifiable.Hash {
	leaves := make([]verifiable.Hash, len(encs))
	blocks := (len(encs) + leafHashBlock - 1) / leafHashBlock
	done := make([]chan struct{}, blocks)
	for i := range done {
		done[i] = make(chan struct{})
	}
	span := func(b int) (int, int) { return b * leafHashBlock, min((b+1)*leafHashBlock, len(encs)) }
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), blocks) {
		wg.Go(func() {
			for b := int(next.Add(1) - 1); b < blocks; b = int(next.Add(1) - 1) {
				lo, hi := span(b)
				for i := lo; i < hi; i++ {
					leaves[i] = verifiable.LeafHash(encs[i])
				}
				close(done[b])
			}
		})
	}
	for b := range blocks {
		<-done[b]
		lo, hi := span(b)
		for _, h := range leaves[lo:hi] {
			hs = addKept(edge, h, hs)
		}
	}
	wg.Wait()
	return hs
}

func readTreeSize(meta *bolt.Bucket) int64 {
	v := meta.Get(keyTreeSize)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// buildTree hashes the records the tree does not hold yet: a ledger
// written before the tree existed, once, at its first open by this
// version (or one whose tree has an older layout, which it drops first).
// It commits every treeBuildChunk records, so an interrupted build
// resumes where it stopped. The leaves are hashed on every core, the
// interior nodes in one pass along the tree's edge, and the groups
// written in order.
func (s *Store) buildTree() error {
	if err := s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyTreeLayout); len(v) == 8 && binary.BigEndian.Uint64(v) == treeLayout {
			return nil
		}
		if tx.Bucket(bucketTree) != nil {
			if err := tx.DeleteBucket(bucketTree); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucket(bucketTree); err != nil {
			return err
		}
		for _, k := range [][]byte{keyTreeSize, keyTreeTail} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return meta.Put(keyTreeLayout, u64(treeLayout))
	}); err != nil {
		return fmt.Errorf("build the tree: %w", err)
	}
	return s.completeTree()
}

// completeTree hashes the records the tree does not hold yet (buildTree),
// treeBuildChunk at a time.
func (s *Store) completeTree() error {
	for {
		done := false
		err := s.update(func(tx *bolt.Tx) error {
			meta, treeB, logB := tx.Bucket(bucketMeta), tx.Bucket(bucketTree), tx.Bucket(bucketLog)
			treeB.FillPercent = 1.0
			tree := newTreeHashes(treeB, meta)
			size := readTreeSize(meta)
			head, _ := readHead(meta)
			if uint64(size) >= head {
				done = true
				return nil
			}
			end := min(uint64(size)+treeBuildChunk, head)
			// The records' bytes (valid for the transaction), then their
			// leaf hashes on every core and, overlapping, the interior
			// hashes in order.
			encs := make([][]byte, 0, end-uint64(size))
			c := logB.Cursor()
			seq := uint64(size) + 1
			for k, v := c.Seek(u64(seq)); seq <= end; k, v = c.Next() {
				if k == nil || binary.BigEndian.Uint64(k) != seq || len(v) < custody.HashSize {
					return fmt.Errorf("build the tree: record %d is missing: %w", seq, custody.ErrChainBroken)
				}
				encs = append(encs, v[custody.HashSize:])
				seq++
			}
			edge, err := verifiable.LoadEdge(size, &keptTree{kept: tree, logB: logB, size: size})
			if err != nil {
				return fmt.Errorf("build the tree: %w", err)
			}
			hs := make([]verifiable.Hash, 0, keptCount(int64(end))-keptCount(size)+64)
			hs = buildHashes(edge, encs, hs)
			if err := tree.add(keptCount(size), hs); err != nil {
				return err
			}
			if err := tree.flush(); err != nil {
				return err
			}
			return meta.Put(keyTreeSize, u64(end))
		})
		if err != nil || done {
			return err
		}
	}
}

// treeCurrent reports whether the file's tree has this version's layout
// (a read-only open of an older file may find another, or none).
func treeCurrent(meta *bolt.Bucket) bool {
	v := meta.Get(keyTreeLayout)
	return len(v) == 8 && binary.BigEndian.Uint64(v) == treeLayout
}

// TreeSize implements verifiable.Source.
func (s *Store) TreeSize(ctx context.Context) (int64, error) {
	var n int64
	err := s.view(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); treeCurrent(meta) {
			n = readTreeSize(meta)
		}
		return nil
	})
	return n, err
}

// ReadHashes implements verifiable.Source.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]verifiable.Hash, error) {
	var out []verifiable.Hash
	err := s.view(func(tx *bolt.Tx) error {
		tree, meta := tx.Bucket(bucketTree), tx.Bucket(bucketMeta)
		if tree == nil || !treeCurrent(meta) {
			return fmt.Errorf("the tree is not built: %w", custody.ErrNotFound)
		}
		var err error
		kt := &keptTree{kept: newTreeHashes(tree, meta), logB: tx.Bucket(bucketLog), size: readTreeSize(meta)}
		out, err = kt.ReadHashes(indexes)
		return err
	})
	return out, err
}

// ReadEntries implements verifiable.Source.
func (s *Store) ReadEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	var out [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLog).Cursor()
		seq := uint64(start) + 1
		for k, v := c.Seek(u64(seq)); seq <= uint64(end); k, v = c.Next() {
			if k == nil || binary.BigEndian.Uint64(k) != seq || len(v) < custody.HashSize {
				return fmt.Errorf("record %d: %w", seq, custody.ErrNotFound)
			}
			out = append(out, append([]byte(nil), v[custody.HashSize:]...))
			seq++
		}
		return nil
	})
	return out, err
}

// AddCheckpoint implements verifiable.Source.
func (s *Store) AddCheckpoint(ctx context.Context, size int64, signed []byte) error {
	if s.readOnly {
		return fmt.Errorf("keep checkpoint: store opened read-only: %w", custody.ErrClosed)
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCheckpoints)
		b.FillPercent = 1.0
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(u64(seq), append(u64(uint64(size)), signed...))
	})
}

// LatestCheckpoint implements verifiable.Source.
func (s *Store) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCheckpoints)
		if b == nil {
			return fmt.Errorf("no checkpoint signed yet: %w", custody.ErrNotFound)
		}
		_, v := b.Cursor().Last()
		if len(v) <= 8 {
			return fmt.Errorf("no checkpoint signed yet: %w", custody.ErrNotFound)
		}
		out = append([]byte(nil), v[8:]...)
		return nil
	})
	return out, err
}

// Checkpoints calls fn with every signed checkpoint kept, oldest first.
func (s *Store) Checkpoints(ctx context.Context, fn func(size int64, signed []byte) error) error {
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCheckpoints)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			if len(v) <= 8 {
				return fmt.Errorf("a kept checkpoint is damaged: %w", custody.ErrChainBroken)
			}
			return fn(int64(binary.BigEndian.Uint64(v[:8])), append([]byte(nil), v[8:]...))
		})
	})
}

// checkTree checks, for coid verify, that the kept tree hashes are the
// tree of the records the log holds: each record's leaf hash and the
// nodes it completes recomputed from the record's bytes along the tree's
// edge, and each kept one compared with the file's. A ledger whose tree
// is not built yet (an older file opened read-only) has the part built
// checked; one of an older layout, rebuilt by the next writer's open, is
// not checked. Records before from are taken as they are: the edge of
// their tree is read from the kept hashes (and the few records below
// treeLow) and only feeds the checks of later ones (from 1 checks all).
func checkTree(ctx context.Context, tx *bolt.Tx, from uint64) error {
	treeB, meta := tx.Bucket(bucketTree), tx.Bucket(bucketMeta)
	if treeB == nil || !treeCurrent(meta) {
		return nil
	}
	size := readTreeSize(meta)
	head, _ := readHead(meta)
	if uint64(size) > head {
		return &FileDamage{Bucket: string(bucketTree), Problem: fmt.Sprintf("the tree holds %d records, the log %d", size, head)}
	}
	logB := tx.Bucket(bucketLog)
	r := newTreeHashes(treeB, meta)
	r.read = map[int64][]byte{} // nothing is added: what is read is kept
	start := min(int64(max(from, 1)-1), size)
	edge, err := verifiable.LoadEdge(start, &keptTree{kept: r, logB: logB, size: size})
	if err != nil {
		return &FileDamage{Bucket: string(bucketTree), Key: strconv.FormatInt(start+1, 10), Problem: "the tree hashes below the record's are missing"}
	}
	next := keptCount(start)
	hs := make([]verifiable.Hash, 0, 64)
	c := logB.Cursor()
	seq := uint64(start) + 1
	for k, v := c.Seek(u64(seq)); seq <= uint64(size); k, v = c.Next() {
		if seq%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if k == nil || binary.BigEndian.Uint64(k) != seq || len(v) < custody.HashSize {
			return &FileDamage{Bucket: string(bucketLog), Key: strconv.FormatUint(seq, 10), Problem: "the record is missing"}
		}
		hs = addKept(edge, verifiable.LeafHash(v[custody.HashSize:]), hs[:0])
		for _, want := range hs {
			got, ok := r.hash(next)
			if !ok {
				return &FileDamage{Bucket: string(bucketTree), Key: strconv.FormatUint(seq, 10), Problem: "the record's tree hashes are missing"}
			}
			if got != want {
				return &FileDamage{Bucket: string(bucketTree), Key: strconv.FormatUint(seq, 10), Problem: "the record's tree hashes do not match it (proofs would fail)"}
			}
			next++
		}
		seq++
	}
	// Nothing beyond the tree's last hash: the full groups before the
	// one in meta, which holds the rest.
	n := keptCount(size)
	beyond := &FileDamage{Bucket: string(bucketTree), Problem: fmt.Sprintf("the tree holds hashes beyond its %d records", size)}
	if r.tailG != n/hashGroup || int64(len(r.tail)) != n%hashGroup*custody.HashSize {
		return beyond
	}
	k, v := treeB.Cursor().Last()
	if k != nil && (int64(binary.BigEndian.Uint64(k)) != r.tailG-1 || len(v) != hashGroup*custody.HashSize) {
		return beyond
	}
	return nil
}
