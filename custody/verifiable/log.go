package verifiable

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coid-project/coid/custody"
	"golang.org/x/mod/sumdb/tlog"
)

// Source is what a store keeps of the tree: its stored hashes, written in
// the transaction that writes the records or, under load, a later one
// (the tree may lag the log by the last records committed), the records'
// canonical encodings, and the signed checkpoints.
type Source interface {
	// TreeSize returns how many records the tree holds: only records
	// whose stored hashes are durable, so that whatever is signed or
	// proved at that size stays provable.
	TreeSize(ctx context.Context) (int64, error)
	// ReadHashes returns the stored hashes at indexes (StoredHashIndex),
	// in order; ErrNotFound (wrapped) when one is not stored.
	ReadHashes(ctx context.Context, indexes []int64) ([]Hash, error)
	// ReadEntries returns the canonical encodings of the leaves start to
	// end-1 (records start+1 to end).
	ReadEntries(ctx context.Context, start, end int64) ([][]byte, error)
	// AddCheckpoint keeps a signed checkpoint of size records.
	AddCheckpoint(ctx context.Context, size int64, signed []byte) error
	// LatestCheckpoint returns the last signed checkpoint kept;
	// ErrNotFound when there is none.
	LatestCheckpoint(ctx context.Context) ([]byte, error)
}

// WitnessedSource is a Source that keeps the witnesses' cosignatures
// (custody.CosignatureStore) and finds the checkpoints they witnessed.
type WitnessedSource interface {
	// LatestWitnessed returns the last signed checkpoint kept, of min
	// records or more, that quorum (1 or more) of the witnesses named
	// cosigned, and those witnesses' cosignatures of it; ErrNotFound
	// when none has.
	LatestWitnessed(ctx context.Context, min int64, witnesses []string, quorum int) ([]byte, []custody.Cosignature, error)
}

// TileHeight is the height of the tiles served (C2SP tlog-tiles: 8, 256
// hashes or entries a full tile).
const TileHeight = 8

// Log serves a ledger's tree: signed checkpoints, proofs and tiles.
type Log struct {
	src  Source
	keys *Keys
	now  func() time.Time
	log  *slog.Logger

	mu         sync.Mutex // serializes signing
	signedSize int64      // the size last signed by this Log; -1 none
	onSigned   func()     // told of each checkpoint kept; nil none

	witnesses []string // the configured witnesses' names (SetWitnesses)
	quorum    int      // how many must cosign; 0: no witnesses
}

// NewLog returns the Log of src signed with keys. now is the clock of the
// periodic signing; logger hears of signing failures (never a key).
func NewLog(src Source, keys *Keys, now func() time.Time, logger *slog.Logger) *Log {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Log{src: src, keys: keys, now: now, log: logger, signedSize: -1}
}

// OnSigned sets fn to be called after each checkpoint the log signs and
// keeps (to hand it to the witnesses); fn must not block. Set it before
// the log is used.
func (l *Log) OnSigned(fn func()) { l.onSigned = fn }

// SetWitnesses names the witnesses the log's checkpoints are submitted
// to and how many of them must cosign one (quorum, 1 or more) for it to
// count as witnessed: Bundle then carries the latest checkpoint that
// reached the quorum, with their cosignatures. Set it before the log is
// used.
func (l *Log) SetWitnesses(names []string, quorum int) {
	l.witnesses, l.quorum = slices.Clone(names), quorum
}

// Keys returns the log's keys.
func (l *Log) Keys() *Keys { return l.keys }

// hashReader reads the source's stored hashes with ctx.
func (l *Log) hashReader(ctx context.Context) HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]Hash, error) { return l.src.ReadHashes(ctx, idx) })
}

// Sign signs a checkpoint of the tree as it is now and keeps it; it
// returns the signed note and its body.
func (l *Log) Sign(ctx context.Context) ([]byte, Checkpoint, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sign(ctx)
}

func (l *Log) sign(ctx context.Context) ([]byte, Checkpoint, error) {
	size, err := l.src.TreeSize(ctx)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	root, err := TreeHash(size, l.hashReader(ctx))
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("checkpoint: tree root at %d: %w", size, err)
	}
	c := Checkpoint{Origin: l.keys.Origin(), Size: size, Root: root}
	signed, err := Sign(c, l.keys.Signer())
	if err != nil {
		return nil, Checkpoint{}, err
	}
	if err := l.src.AddCheckpoint(ctx, size, signed); err != nil {
		return nil, Checkpoint{}, fmt.Errorf("checkpoint: keep: %w", err)
	}
	l.signedSize = size
	if l.onSigned != nil {
		l.onSigned()
	}
	return signed, c, nil
}

// SignIfGrown signs a checkpoint when the tree has grown since the last
// one kept (or none is); it reports whether it signed.
func (l *Log) SignIfGrown(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	size, err := l.src.TreeSize(ctx)
	if err != nil {
		return false, err
	}
	if l.signedSize < 0 {
		if last, err := l.src.LatestCheckpoint(ctx); err == nil {
			if c, err := ParseCheckpoint(body(last)); err == nil {
				l.signedSize = c.Size
			}
		} else if !errors.Is(err, custody.ErrNotFound) {
			return false, err
		}
	}
	if l.signedSize >= 0 && size <= l.signedSize {
		return false, nil
	}
	_, _, err = l.sign(ctx)
	return err == nil, err
}

// Run signs a checkpoint after commits, at most once per interval: every
// interval (after returns the channel of one wait, time.After outside
// tests) it signs if the tree grew. It returns when ctx ends.
func (l *Log) Run(ctx context.Context, interval time.Duration, after func(time.Duration) <-chan time.Time) {
	for {
		if _, err := l.SignIfGrown(ctx); err != nil && ctx.Err() == nil {
			l.log.Error("signing a checkpoint failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-after(interval):
		}
	}
}

// Latest returns the last signed checkpoint kept, signing one first if
// none is.
func (l *Log) Latest(ctx context.Context) ([]byte, Checkpoint, error) {
	signed, err := l.src.LatestCheckpoint(ctx)
	if errors.Is(err, custody.ErrNotFound) {
		return l.Sign(ctx)
	}
	if err != nil {
		return nil, Checkpoint{}, err
	}
	c, err := ParseCheckpoint(body(signed))
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("stored checkpoint: %v: %w", err, custody.ErrChainBroken)
	}
	return signed, c, nil
}

// Inclusion is an inclusion proof of one record.
type Inclusion struct {
	// Seq is the record's position in the ledger; LeafIndex is Seq-1.
	Seq       uint64 `json:"seq"`
	LeafIndex int64  `json:"leaf_index"`
	// TreeSize and Root are the tree the proof is against.
	TreeSize int64 `json:"tree_size"`
	Root     Hash  `json:"root"`
	// LeafHash is the RFC 6962 leaf hash of the record's canonical
	// encoding.
	LeafHash Hash `json:"leaf_hash"`
	// Proof is the audit path, base64 hashes, leaf to root.
	Proof []Hash `json:"proof"`
}

// Consistency is a consistency proof between two tree sizes.
type Consistency struct {
	From     int64  `json:"from"`
	To       int64  `json:"to"`
	FromRoot Hash   `json:"from_root"`
	ToRoot   Hash   `json:"to_root"`
	Proof    []Hash `json:"proof"`
}

// size checks a requested tree size against the tree: 0 means the tree's
// current size.
func (l *Log) size(ctx context.Context, size int64) (int64, error) {
	cur, err := l.src.TreeSize(ctx)
	if err != nil {
		return 0, err
	}
	if size == 0 {
		return cur, nil
	}
	if size < 0 || size > cur {
		return 0, fmt.Errorf("tree size %d: the tree holds %d records: %w", size, cur, custody.ErrNotFound)
	}
	return size, nil
}

// Inclusion returns the proof that record seq is in the tree of size
// records (0: the current tree).
func (l *Log) Inclusion(ctx context.Context, seq uint64, size int64) (Inclusion, error) {
	size, err := l.size(ctx, size)
	if err != nil {
		return Inclusion{}, err
	}
	if seq == 0 || seq > uint64(size) {
		return Inclusion{}, fmt.Errorf("record %d is not in the tree of %d records: %w", seq, size, custody.ErrNotFound)
	}
	hr := l.hashReader(ctx)
	leaf := int64(seq - 1)
	p, err := InclusionProof(leaf, size, hr)
	if err != nil {
		return Inclusion{}, err
	}
	root, err := TreeHash(size, hr)
	if err != nil {
		return Inclusion{}, err
	}
	lh, err := l.src.ReadHashes(ctx, []int64{StoredHashIndex(0, leaf)})
	if err != nil {
		return Inclusion{}, err
	}
	return Inclusion{Seq: seq, LeafIndex: leaf, TreeSize: size, Root: root, LeafHash: lh[0], Proof: nonNil(p)}, nil
}

// Consistency returns the proof that the tree of to records extends the
// tree of from records (to 0: the current tree).
func (l *Log) Consistency(ctx context.Context, from, to int64) (Consistency, error) {
	to, err := l.size(ctx, to)
	if err != nil {
		return Consistency{}, err
	}
	if from <= 0 || from > to {
		return Consistency{}, fmt.Errorf("consistency proof from %d to %d records: want 0 < from <= to: %w", from, to, custody.ErrInvalid)
	}
	hr := l.hashReader(ctx)
	p, err := ConsistencyProof(from, to, hr)
	if err != nil {
		return Consistency{}, err
	}
	fr, err := TreeHash(from, hr)
	if err != nil {
		return Consistency{}, err
	}
	tr, err := TreeHash(to, hr)
	if err != nil {
		return Consistency{}, err
	}
	return Consistency{From: from, To: to, FromRoot: fr, ToRoot: tr, Proof: nonNil(p)}, nil
}

func nonNil(p []Hash) []Hash {
	if p == nil {
		return []Hash{}
	}
	return p
}

// MaxEntrySize is the largest record a C2SP entry bundle can hold (a
// 16-bit length prefix).
const MaxEntrySize = 1<<16 - 1

// Tile returns the tile at path, relative to the log's prefix as C2SP
// tlog-tiles names it: tile/<L>/<N>[.p/<W>] (hashes) or
// tile/entries/<N>[.p/<W>] (entry bundles, each entry a big-endian
// 16-bit length and the record's canonical encoding). full reports a tile
// of 256 hashes or entries, which never changes; a partial tile is the
// prefix of the tile at the current size. A path that is not a tile, or
// a tile beyond the tree, is ErrNotFound.
func (l *Log) Tile(ctx context.Context, path string) (data []byte, full bool, err error) {
	rest, ok := strings.CutPrefix(path, "tile/")
	if !ok {
		return nil, false, fmt.Errorf("log path %q: %w", path, custody.ErrNotFound)
	}
	var libPath string
	if e, ok := strings.CutPrefix(rest, "entries/"); ok {
		libPath = "tile/8/data/" + e
	} else {
		libPath = "tile/8/" + rest
	}
	t, err := tlog.ParseTilePath(libPath)
	if err != nil || t.Path() != libPath {
		return nil, false, fmt.Errorf("log path %q is not a tile: %w", path, custody.ErrNotFound)
	}
	size, err := l.src.TreeSize(ctx)
	if err != nil {
		return nil, false, err
	}
	w := int64(t.W)
	full = t.W == 1<<TileHeight
	level := t.L
	if level < 0 {
		level = 0
	}
	// The tile's last hash covers leaves up to (N*256+W) << (8*L): the
	// tree must hold every one. No ledger reaches 2^48 records.
	if level >= 6 || t.N >= 1<<40 {
		return nil, false, fmt.Errorf("tile %q: beyond the tree: %w", path, custody.ErrNotFound)
	}
	need := (t.N<<TileHeight + w) << (uint(level) * TileHeight)
	if need > size || need <= 0 {
		return nil, false, fmt.Errorf("tile %q: the tree holds %d records: %w", path, size, custody.ErrNotFound)
	}
	if t.L >= 0 {
		data, err = tlog.ReadTileData(t, l.hashReader(ctx))
		if err != nil {
			return nil, false, fmt.Errorf("tile %q: %w", path, err)
		}
		return data, full, nil
	}
	start := t.N << TileHeight
	entries, err := l.src.ReadEntries(ctx, start, start+w)
	if err != nil {
		return nil, false, fmt.Errorf("entry bundle %q: %w", path, err)
	}
	for i, e := range entries {
		if len(e) > MaxEntrySize {
			return nil, false, fmt.Errorf("entry bundle %q: record %d is %d bytes, more than a bundle holds: %w",
				path, start+int64(i)+1, len(e), custody.ErrInvalid)
		}
		data = binary.BigEndian.AppendUint16(data, uint16(len(e)))
		data = append(data, e...)
	}
	return data, full, nil
}
