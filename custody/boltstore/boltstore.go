// Package boltstore keeps the coid ledger, chain summaries, PHI, users
// (with their tokens and the tokens' metadata), the registries, the one
// hash-linked audit trail of account and registry changes (audit.go),
// telemetry readings and the quarantine of refused payloads in one bbolt
// file. It is the only package that imports bbolt. Appends go through a
// single writer goroutine (a custody.GroupCommit) that commits many records
// per transaction, links and checks each with custody.LinkPresealed (which
// refuses a draft whose chain grew since it was checked, custody.ErrRetry),
// and answers each caller only after the transaction is durable; readings
// have a group commit of their own that stores each reading identity once.
package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the name of the database file inside the data directory.
const FileName = "coid.db"

var (
	bucketLog    = []byte("log")     // seq (8 bytes BE) -> hash (32) || canonical record
	bucketChains = []byte("chains")  // COI -> chainEntry JSON (summary and the chain's record positions)
	bucketMeta   = []byte("meta")    // "head" -> seq (8) || hash (32); "format"
	bucketPHI    = []byte("phi")     // COI -> PHI JSON
	bucketCOISeq = []byte("coi_seq") // FIN+yy -> bucket whose NextSequence issues COIs
	bucketUsers  = []byte("users")   // user ID -> User JSON
	bucketTokens = []byte("tokens")  // token hash -> user ID
	keyHead      = []byte("head")
	keyFormat    = []byte("format")
)

// formatVersion identifies this file layout, stamped in meta (keyFormat)
// by every writable open. "coid-bolt-2" files may hold readings in blocks
// and the tree's kept hashes (treeLayout 3), which a coid of
// "coid-bolt-1" does not read: such a coid refuses a file of another
// stamp, where it would otherwise append beside what it cannot see.
const formatVersion = "coid-bolt-2"

// formatV1 is the stamp of the files written before formatVersion: read
// as they are, and stamped formatVersion by the first writable open, as
// that open may add what only this format holds.
const formatV1 = "coid-bolt-1"

// knownFormat reports whether a file stamped f is one this coid reads.
func knownFormat(f []byte) bool { return string(f) == formatVersion || string(f) == formatV1 }

// Options tunes a Store.
type Options struct {
	// LockTimeout is how long Open waits for another process to release the
	// file before failing with custody.ErrInUse. Zero means 1 second.
	LockTimeout time.Duration
	// MaxBatch caps the records committed in one transaction. Zero means 4096.
	MaxBatch int
	// ReadOnly opens the file without taking the write lock's exclusivity,
	// for offline verification.
	ReadOnly bool
	// RefreshPages is how many pages bbolt may allocate before the store
	// closes and reopens its file (see Store.refresh). Zero means
	// DefaultRefreshPages; a negative value never reopens.
	RefreshPages int
	// Logger, when set, hears of what the store does on its own (a reopen
	// it had to give up). Nil discards.
	Logger *slog.Logger
}

// DefaultRefreshPages bounds what bbolt's in-memory free-page bookkeeping
// grows to between reopens: it keeps an entry for each page handed out from
// its free list that is still in use, and drops them only when the file is
// reopened, so under sustained ingest it grows with the file. 32768 pages
// (128 MiB of 4 KiB pages written) keeps it near 1 MB.
const DefaultRefreshPages = 1 << 15

// Store is a custody.Store and a custody.TelemetryStore on bbolt.
type Store struct {
	// dbmu guards db: every transaction holds it shared for its whole
	// life, refresh exclusively while it reopens the file. longmu is held
	// shared, before dbmu, by reads of the whole file (backup, log scans),
	// which refresh does not wait for: it only runs when none is open.
	dbmu   sync.RWMutex
	longmu sync.RWMutex
	db     *bolt.DB
	dbErr  error // set when a reopen failed: the store is unusable
	// broken is set once bbolt panicked on a damaged page: it may have
	// kept its locks, so no later transaction may wait on them.
	broken       atomic.Pointer[error]
	path         string
	boltOpts     bolt.Options
	dirLock      *os.File
	refreshPages int
	refreshes    int         // reopens so far (writers only, under dbmu)
	noRefresh    atomic.Bool // set when the file at path is no longer the one open
	file         os.FileInfo // the file opened, to tell it from another at path
	log          *slog.Logger

	readOnly bool
	// appends and readings are the writers (nil when read-only): the
	// ledger's group commit (batchTx) and the telemetry's (readings.go).
	appends  *custody.GroupCommit[appendReq, custody.Record]
	readings *custody.GroupCommit[readingsReq, custody.IngestResult]
	// treeIdle writes the tree hashes a busy writer left waiting once it
	// has been idle (catchUpTree); nil when read-only.
	treeIdle *time.Timer

	// accessRows keeps the access index rows last read (access.go).
	accessRows accessRowsCache

	// mu guards closed, which makes Close idempotent.
	mu     sync.Mutex
	closed bool
}

var (
	_ custody.Store            = (*Store)(nil)
	_ custody.TelemetryStore   = (*Store)(nil)
	_ custody.IndexedLogSource = (*Store)(nil)
)

// chainEntry is what the chains bucket holds for a chain (binary, see
// encodeChain): its summary and the log positions of its records in chain
// order. Keeping the positions
// here, not in an index bucket of their own, halves the pages a commit
// dirties: active chains have adjacent COIs, so their entries share pages.
type chainEntry struct {
	custody.ChainInfo
	Seqs []uint64
}

func getChain(tx *bolt.Tx, coi custody.COI) (*chainEntry, error) {
	v := tx.Bucket(bucketChains).Get([]byte(coi))
	if v == nil {
		return nil, fmt.Errorf("chain %s: %w", coi, custody.ErrNotFound)
	}
	ce, err := decodeChain(v)
	if err != nil || ce.COI != coi {
		return nil, fmt.Errorf("chain summary %s: malformed: %w", coi, custody.ErrChainBroken)
	}
	return ce, nil
}

// chainEntryV1 starts the binary encoding of a chainEntry, which is read
// and rewritten on every append, so it is kept small and cheap: COI,
// product and state as length-prefixed strings, counts and times as
// varints, the head hash raw, and the record positions as deltas.
// chainEntryV2 adds the chain's three site names after the state; a
// version 1 entry (written before) decodes with no sites, and readers fold
// the chain for them. chainEntryV3 adds, after the sites, the open issue
// counts: 0 when the summary does not keep them, else 1 followed by the
// open excursions, broken seals and mismatches; version 1 and 2 entries
// decode with the counts not kept, and readers fold the chain for them.
// chainEntryV4 adds, after the counts, the chain's progress: 0 when the
// summary keeps none, else 1, the cancelled flag (0 or 1), each planned
// milestone and the window's end as a time and a zone offset, then each
// actual milestone's time (times as varint nanoseconds, 0 for none);
// older entries decode with no progress, and readers fold the chain.
const (
	chainEntryV1 = 1
	chainEntryV2 = 2
	chainEntryV3 = 3
	chainEntryV4 = 4
)

// appendTime appends t as varint nanoseconds since the epoch, 0 for the
// zero time.
func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(dst, 0)
	}
	return binary.AppendVarint(dst, t.UnixNano())
}

// readTime reads a time appendTime wrote.
func readTime(r *fieldReader) time.Time {
	if v := r.varint(); v != 0 {
		return time.Unix(0, v).UTC()
	}
	return time.Time{}
}

func appendProgress(dst []byte, p *custody.Progress) []byte {
	if p == nil {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	if p.Cancelled {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	for _, pl := range append(p.Planned[:], p.WindowEnd) {
		dst = appendTime(dst, pl.Time)
		dst = binary.AppendVarint(dst, int64(pl.Offset))
	}
	for _, t := range p.Actual {
		dst = appendTime(dst, t)
	}
	return dst
}

// readProgress reads what appendProgress wrote; false: malformed.
func readProgress(r *fieldReader) (*custody.Progress, bool) {
	switch r.uvarint() {
	case 0:
		return nil, true
	case 1:
	default:
		return nil, false
	}
	p := &custody.Progress{}
	switch r.uvarint() {
	case 0:
	case 1:
		p.Cancelled = true
	default:
		return nil, false
	}
	readPlanned := func() custody.PlannedTime {
		t := readTime(r)
		off := r.varint()
		if off < -86400 || off > 86400 {
			r.bad = true
		}
		return custody.PlannedTime{Time: t, Offset: int(off)}
	}
	for k := range p.Planned {
		p.Planned[k] = readPlanned()
	}
	p.WindowEnd = readPlanned()
	for k := range p.Actual {
		p.Actual[k] = readTime(r)
	}
	return p, !r.bad
}

func encodeChain(dst []byte, ce *chainEntry) []byte {
	dst = append(dst, chainEntryV4)
	for _, s := range []string{string(ce.COI), ce.Product, string(ce.State),
		ce.Sites.Collection, ce.Sites.Manufacturing, ce.Sites.Treatment} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	if n := ce.OpenIssues; n.Kept {
		dst = append(dst, 1)
		for _, c := range []int{n.Excursions, n.SealsBroken, n.Mismatches} {
			dst = binary.AppendUvarint(dst, uint64(c))
		}
	} else {
		dst = append(dst, 0)
	}
	dst = appendProgress(dst, ce.Progress)
	dst = binary.AppendUvarint(dst, ce.Records)
	dst = binary.AppendUvarint(dst, ce.HeadSeq)
	dst = append(dst, ce.HeadHash[:]...)
	dst = binary.AppendVarint(dst, ce.Created.UnixNano())
	dst = binary.AppendVarint(dst, ce.Updated.UnixNano())
	dst = binary.AppendUvarint(dst, uint64(len(ce.Seqs)))
	var prev uint64
	for _, q := range ce.Seqs {
		dst = binary.AppendUvarint(dst, q-prev)
		prev = q
	}
	return dst
}

// count reads an issue count, bounded so it converts to int.
func count(r *fieldReader) int {
	v := r.uvarint()
	if v > math.MaxInt32 {
		r.bad = true
		return 0
	}
	return int(v)
}

func decodeChain(b []byte) (*chainEntry, error) {
	ce := &chainEntry{}
	var err error
	ce.Seqs, err = decodeChainInto(b, &ce.ChainInfo, nil, true)
	if err != nil {
		return nil, err
	}
	return ce, nil
}

// interned hands out one string for each distinct value read during a
// scan of many chain entries: products, states and site names repeat, so
// a scan of thousands of summaries allocates each once.
type interned map[string]string

func (m interned) str(r *fieldReader) string {
	b := r.next(r.uvarint())
	if m == nil {
		return string(b)
	}
	if s, ok := m[string(b)]; ok {
		return s
	}
	s := string(b)
	m[s] = s
	return s
}

// decodeChainInto decodes a chain entry's summary into ci and, when seqs
// is set, returns its record positions (which are checked either way).
// Strings other than the COI come from in when it is not nil.
func decodeChainInto(b []byte, ci *custody.ChainInfo, in interned, seqs bool) ([]uint64, error) {
	if len(b) == 0 || b[0] < chainEntryV1 || b[0] > chainEntryV4 {
		return nil, errors.New("malformed chain entry")
	}
	r := fieldReader{b: b[1:]}
	*ci = custody.ChainInfo{COI: custody.COI(r.str()), Product: in.str(&r), State: custody.State(in.str(&r))}
	if b[0] >= chainEntryV2 {
		ci.Sites = custody.Sites{Collection: in.str(&r), Manufacturing: in.str(&r), Treatment: in.str(&r)}
	}
	if b[0] >= chainEntryV3 {
		switch r.uvarint() {
		case 0:
		case 1:
			n := &ci.OpenIssues
			n.Kept = true
			n.Excursions, n.SealsBroken, n.Mismatches = count(&r), count(&r), count(&r)
		default:
			return nil, errors.New("malformed chain entry")
		}
	}
	if b[0] >= chainEntryV4 {
		p, ok := readProgress(&r)
		if !ok {
			return nil, errors.New("malformed chain entry")
		}
		ci.Progress = p
	}
	ci.Records, ci.HeadSeq = r.uvarint(), r.uvarint()
	copy(ci.HeadHash[:], r.next(custody.HashSize))
	ci.Created, ci.Updated = time.Unix(0, r.varint()).UTC(), time.Unix(0, r.varint()).UTC()
	n := r.uvarint()
	if r.bad || n != ci.Records || n > uint64(len(r.b)) {
		return nil, errors.New("malformed chain entry")
	}
	var out []uint64
	if seqs {
		out = make([]uint64, 0, n)
	}
	var prev uint64
	for range n {
		prev += r.uvarint()
		if seqs {
			out = append(out, prev)
		}
	}
	if !r.done() {
		return nil, errors.New("malformed chain entry")
	}
	return out, nil
}

type appendReq struct {
	d   custody.Draft
	pre custody.Presealed // d.Record encoded but for its links, by the caller
}

// newAppendReq prepares a draft for the writer: the record's encoding is
// done here, in the caller's goroutine, so the writer only links and hashes.
func newAppendReq(d custody.Draft) *appendReq {
	return &appendReq{d: d, pre: d.Record.Preseal()}
}

// Open opens or creates the store in directory dir.
func Open(dir string, opt Options) (*Store, error) {
	if opt.LockTimeout == 0 {
		opt.LockTimeout = time.Second
	}
	if opt.MaxBatch == 0 {
		opt.MaxBatch = 4096
	}
	if !opt.ReadOnly {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	path := filepath.Join(dir, FileName)
	if opt.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open store: no ledger at %s: %w", path, custody.ErrNotFound)
		}
	}
	if opt.RefreshPages == 0 {
		opt.RefreshPages = DefaultRefreshPages
	}
	dirLock, err := lockDir(dir, opt.ReadOnly, opt.LockTimeout)
	if err != nil {
		return nil, err
	}
	// bbolt makes a new, empty database of a file of 0 bytes: a ledger
	// emptied by accident would be replaced without a word.
	before, statErr := os.Stat(path)
	fresh := errors.Is(statErr, os.ErrNotExist)
	if statErr == nil && before.Size() == 0 {
		if dirLock != nil {
			dirLock.Close()
		}
		return nil, fmt.Errorf("open store %s: %s is empty (0 bytes), not a coid store: restore it from a backup, "+
			"or remove it to start a new ledger: %w", dir, path, custody.ErrDamaged)
	}
	// bbolt's default (array) free-page list: it hands out the lowest free
	// pages first, so a commit's pages are more often adjacent on disk,
	// and the list stays short in a store that mostly grows. Measured
	// against the hash-map list: about 4% more durable appends a second.
	// The free list is read at open, where a fault on a damaged one is
	// caught, not later inside bbolt's own goroutine (tx.Check).
	bopts := bolt.Options{Timeout: opt.LockTimeout, ReadOnly: opt.ReadOnly, PreLoadFreelist: true}
	db, err := openBolt(dir, path, bopts)
	if err != nil {
		if dirLock != nil {
			dirLock.Close()
		}
		return nil, err
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	file, _ := os.Stat(path) // the file bbolt has just opened (and locked)
	if !opt.ReadOnly && file != nil && file.Mode().Perm()&0o077 != 0 {
		// It holds patient identifiers and password hashes; a backup put
		// back with the copier's umask would otherwise stay readable.
		if err := os.Chmod(path, 0o600); err != nil {
			opt.Logger.Error("store file is readable by others and could not be made private", "path", path, "mode", file.Mode().Perm().String(), "err", err)
		} else {
			opt.Logger.Warn("store file was readable by others; made private (0600)", "path", path, "was", file.Mode().Perm().String())
			file, _ = os.Stat(path)
		}
	}
	s := &Store{db: db, path: path, boltOpts: bopts, dirLock: dirLock, refreshPages: opt.RefreshPages, log: opt.Logger, file: file,
		readOnly: opt.ReadOnly}
	if err := checkFile(db, opt.ReadOnly, fresh); err != nil {
		db.Close()
		if dirLock != nil {
			dirLock.Close()
		}
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if !opt.ReadOnly {
		if err := s.buildTree(); err != nil {
			s.Close()
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		if err := s.buildFollowUpIndex(); err != nil {
			s.Close()
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		if err := s.buildAccessIndex(); err != nil {
			s.Close()
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		if err := s.buildChainStateIndex(chainStatesPerTx); err != nil {
			s.Close()
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		if err := s.buildChainStateCounts(); err != nil {
			s.Close()
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		if err := s.buildChainSiteIndex(chainSitesPerTx); err != nil {
			s.Close()
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		if err := s.buildTerminalIssueIndex(); err != nil {
			s.Close()
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		if err := s.buildExpiryIndex(); err != nil {
			s.Close()
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		cache, edges := chainCache{}, &edgeCache{}
		s.treeIdle = time.AfterFunc(time.Hour, s.catchUpTree)
		s.treeIdle.Stop()
		s.appends, err = custody.NewGroupCommit(custody.GroupCommitConfig[appendReq, custody.Record]{
			Begin: func() custody.BatchTxn[appendReq, custody.Record] {
				// The writer reads the file's pages through bbolt's memory
				// map (chain entries, the pages it changes): a fault on a
				// damaged one fails the batch as damaged (batchTx), it
				// does not end the process.
				debug.SetPanicOnFault(true)
				return s.begin(cache, edges)
			},
			Queue:       4096,
			MaxBatch:    opt.MaxBatch,
			FollowMin:   gatherMin,
			FollowMax:   maxGather,
			AfterCommit: s.maybeRefresh,
		})
		if err == nil {
			s.readings, err = newReadingsWriter(s)
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	}
	return s, nil
}

// Close stops the writer after the appends already queued and closes the
// file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	// Each writer commits what was queued before it stops; then the tree
	// gets the hashes the ledger's writer left waiting, if any.
	if s.appends != nil {
		s.appends.Close()
		s.treeIdle.Stop()
		s.catchUpTree()
	}
	if s.readings != nil {
		s.readings.Close()
	}
	s.dbmu.Lock()
	defer s.dbmu.Unlock()
	var err error
	if s.dbErr == nil {
		err = s.db.Close()
	}
	if s.dirLock != nil {
		s.dirLock.Close()
	}
	return err
}

func openBolt(dir, path string, opts bolt.Options) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer damaged(&err)
	db, err = bolt.Open(path, 0o600, &opts)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: another coid process holds it (stop it first): %w", dir, custody.ErrInUse)
	}
	if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrVersionMismatch) || errors.Is(err, bolterrors.ErrChecksum) {
		return nil, fmt.Errorf("open store %s: %s is not a coid store, or its header is damaged (%v): %w", dir, path, err, custody.ErrDamaged)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	// A file cut short (an interrupted copy) holds fewer pages than its
	// header says: reading one past its end through bbolt's memory map is a
	// fault no recover can catch, so it is refused here, before any page is
	// read.
	fi, serr := os.Stat(path)
	var want int64
	verr := db.View(func(tx *bolt.Tx) error { want = tx.Size(); return nil })
	if serr == nil && verr == nil && fi.Size() < want {
		db.Close()
		return nil, fmt.Errorf("open store %s: the file is damaged: it holds %d bytes of the %d its header records (cut short?); "+
			"restore it from a backup and check it with coid verify: %w", dir, fi.Size(), want, custody.ErrDamaged)
	}
	return db, nil
}

// checkFile checks that the file is a coid store of this format version,
// for reading as for writing; opened for writing it also creates the
// buckets of a new file (fresh: created by this open, or holding no
// bucket yet) and stamps its format. Another program's bbolt file is
// refused (custody.ErrDamaged), never filled with coid's buckets.
func checkFile(db *bolt.DB, readOnly, fresh bool) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer damaged(&err)
	check := func(meta *bolt.Bucket) error {
		if f := meta.Get(keyFormat); f != nil && !knownFormat(f) {
			return fmt.Errorf("file format %q, this coid reads %q and %q (a newer coid's file?)", f, formatV1, formatVersion)
		}
		return nil
	}
	if readOnly {
		return db.View(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if meta == nil || tx.Bucket(bucketLog) == nil {
				return fmt.Errorf("this file is not a coid ledger: %w", custody.ErrDamaged)
			}
			return check(meta)
		})
	}
	return db.Update(func(tx *bolt.Tx) error {
		if !fresh && (tx.Bucket(bucketMeta) == nil || tx.Bucket(bucketLog) == nil) && tx.ForEach(func([]byte, *bolt.Bucket) error { return errStop }) != nil {
			return fmt.Errorf("this file is not a coid ledger (another program's database?): %w", custody.ErrDamaged)
		}
		for _, b := range append(append(append(append(append([][]byte{bucketLog, bucketChains, bucketMeta, bucketPHI, bucketCOISeq, bucketUsers, bucketTokens}, readingBuckets...), accountBuckets...), append(append([][]byte{}, registryBuckets...), scheduleBuckets...)...), treeBuckets...), append(append(append([][]byte{}, quotaBuckets...), readingLogBuckets...), append(append([][]byte{}, accessBuckets...), followUpBuckets...)...)...) {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := initReadingLog(tx); err != nil {
			return err
		}
		if err := initExcursionIndex(tx); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		if err := check(meta); err != nil {
			return err
		}
		if string(meta.Get(keyFormat)) == formatVersion {
			return nil
		}
		return meta.Put(keyFormat, []byte(formatVersion))
	})
}

// damaged turns a panic into an error saying the file is damaged: bbolt
// panics on pages it cannot read (damaged on disk), and a damaged ledger
// must be reported, not crash the command that read it. The callers also
// turn memory faults on the file's map into panics (debug.SetPanicOnFault).
func damaged(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if !isDamage(r) {
		panic(r) // a bug, not the file: fail as loudly as it would have
	}
	*err = fmt.Errorf("%w (%v); restore it from a backup and check it with coid verify: %w", errDamaged, r, custody.ErrDamaged)
}

// isDamage reports whether a panic comes from reading a damaged file: a
// memory fault on bbolt's map of it (with SetPanicOnFault, a runtime error
// with the faulting address), or one of bbolt's own checks of a page
// (its panics are plain strings: "assertion failed: Page expected to
// be...", "invalid page type...", "page N already freed"...). A bug of
// coid's (a nil map, an index out of range) is neither.
func isDamage(r any) bool {
	if _, fault := r.(interface{ Addr() uintptr }); fault {
		return true
	}
	if _, ok := r.(runtime.Error); ok {
		// A slice bound bbolt computed from a damaged length (over its
		// 2 GiB limit): damage when bbolt's own code panicked.
		return panickedIn("go.etcd.io/bbolt")
	}
	msg, ok := r.(string)
	return ok && (strings.Contains(msg, "assertion failed") || strings.Contains(msg, "page"))
}

// panickedIn reports whether the function that raised the panic being
// recovered is in the package pkg (or one under it). It must be called from
// the deferred function that recovers: the panicking frames are still on
// the stack, below runtime.gopanic.
func panickedIn(pkg string) bool {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	inPanic := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			inPanic = true
		case inPanic && !strings.HasPrefix(f.Function, "runtime."):
			return strings.HasPrefix(f.Function, pkg+".") || strings.HasPrefix(f.Function, pkg+"/")
		}
		if !more {
			return false
		}
	}
}

// errStop ends a walk early.
var errStop = errors.New("stop")

// errDamaged marks the error of a panic bbolt raised on a damaged page.
var errDamaged = errors.New("a page of the store file cannot be read")

// guarded runs a transaction with bbolt's panics on damaged pages turned
// into an error. bbolt may panic while holding its own locks (in Begin,
// before its rollback is armed), so after one the store refuses every
// later transaction (s.broken) rather than wait on them for ever.
func (s *Store) guarded(run func() error) (err error) {
	if b := s.broken.Load(); b != nil {
		return *b
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return s.catch(run)
}

// catch runs fn with bbolt's panics on damaged pages, and memory faults
// on its map of the file if the goroutine turns them into panics
// (debug.SetPanicOnFault), made an error; after one the store refuses
// every later transaction (s.broken).
func (s *Store) catch(fn func() error) (err error) {
	defer func() {
		if errors.Is(err, errDamaged) {
			s.broken.CompareAndSwap(nil, &err)
		}
	}()
	defer damaged(&err)
	return fn()
}

// view runs fn in a read transaction.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.dbmu.RLock()
	defer s.dbmu.RUnlock()
	if s.dbErr != nil {
		return s.dbErr
	}
	return s.guarded(func() error { return s.db.View(fn) })
}

// viewLong runs fn in a read transaction that may last long (a scan of
// the whole file): a reopen due meanwhile waits for it to end instead of
// stalling every other transaction behind it.
func (s *Store) viewLong(fn func(*bolt.Tx) error) error {
	s.longmu.RLock()
	defer s.longmu.RUnlock()
	return s.view(fn)
}

// update runs fn in a write transaction and commits it durably.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	s.dbmu.RLock()
	defer s.dbmu.RUnlock()
	if s.dbErr != nil {
		return s.dbErr
	}
	return s.guarded(func() error { return s.db.Update(fn) })
}

// maybeRefresh reopens the file once bbolt has allocated refreshPages
// pages since it was opened, to drop the free-page bookkeeping that bbolt
// keeps in memory until then (see DefaultRefreshPages). The writers call
// it between their commits. It waits for the short transactions in flight
// (new ones wait for it, a few milliseconds), but not for a backup or a
// scan of the log: while one runs, the reopen is put off.
func (s *Store) maybeRefresh() {
	if s.refreshPages < 0 || s.noRefresh.Load() {
		return
	}
	s.dbmu.RLock()
	due := s.dbErr == nil && s.pagesSinceOpen() >= int64(s.refreshPages)
	s.dbmu.RUnlock()
	if !due || !s.longmu.TryLock() {
		return
	}
	defer s.longmu.Unlock()
	s.dbmu.Lock()
	defer s.dbmu.Unlock()
	if s.dbErr == nil {
		s.refresh()
	}
}

func (s *Store) pagesSinceOpen() int64 {
	st := s.db.Stats()
	return st.TxStats.GetPageCount()
}

// refresh closes and reopens the file; dbmu must be held exclusively. The
// data directory's lock, held throughout, keeps other processes out
// while the file is closed. If the file cannot be reopened, every later
// operation fails with the reason.
func (s *Store) refresh() {
	// Reopening a path that now names another file (or none: bbolt would
	// create an empty one) would swap the ledger under the service. Keep
	// the file that is open and stop reopening.
	onDisk, err := os.Stat(s.path)
	if err != nil || s.file == nil || !os.SameFile(s.file, onDisk) {
		s.noRefresh.Store(true)
		s.log.Error("the data file was moved, replaced or removed while the service ran: the service keeps using the file it opened and no longer reopens it; stop the service and put the file back",
			"path", s.path, "err", err)
		return
	}
	if err := s.db.Close(); err != nil {
		s.dbErr = fmt.Errorf("store unavailable: closing %s to reopen it: %v: %w", s.path, err, custody.ErrClosed)
		return
	}
	db, err := openBolt(filepath.Dir(s.path), s.path, s.boltOpts)
	if err != nil {
		s.dbErr = fmt.Errorf("store unavailable: reopening %s: %w", s.path, err)
		return
	}
	s.db = db
	s.refreshes++
}

// Reopens returns how many times the store has closed and reopened its
// file to bound bbolt's memory (see DefaultRefreshPages).
func (s *Store) Reopens() int {
	s.dbmu.RLock()
	defer s.dbmu.RUnlock()
	return s.refreshes
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// Append implements custody.Store: it queues the draft for the writer and
// waits until the transaction holding it is durable. Once queued, the
// record may be committed: it waits for the outcome even if ctx ends, so a
// caller never reports failure for a durable record.
func (s *Store) Append(ctx context.Context, d custody.Draft) (custody.Record, error) {
	if s.readOnly {
		return custody.Record{}, fmt.Errorf("append: store opened read-only: %w", custody.ErrClosed)
	}
	rec, err := s.appends.Do(ctx, appendReq{d: d, pre: d.Record.Preseal()})
	if err != nil && (err == custody.ErrClosed || err == ctx.Err()) { // not queued
		return custody.Record{}, fmt.Errorf("append: %w", err)
	}
	return rec, err
}

// The ledger's group commit under concurrency: the callers answered by the
// previous commit usually append again within microseconds. Waiting a
// fraction of a commit for them, while this transaction is built from what
// already came, nearly doubles the batch when many callers each wait for
// their own record; without it, half of them ride every other commit
// (measured: 32 of 64 writers per commit without, 57 with; 28% more
// records a second).
const (
	// gatherMin is the smallest previous batch that makes the writer wait
	// for more requests before it commits: below it, appends are sporadic
	// and waiting would only add latency.
	gatherMin = 4
	// maxGather caps how long the writer waits to gather a batch.
	maxGather = 250 * time.Microsecond
)

// commit appends a batch of drafts in one transaction and returns their
// outcomes. A draft that breaks a rule fails alone; a failed commit fails
// them all.
func (s *Store) commit(batch []*appendReq) []custody.Outcome[custody.Record] {
	b := s.begin(nil, nil)
	for _, r := range batch {
		b.Add(r)
	}
	out := make([]custody.Outcome[custody.Record], len(batch))
	if err := b.Commit(out); err != nil {
		for i := range out {
			out[i] = custody.Outcome[custody.Record]{Err: err}
		}
	}
	return out
}

// chainCache holds the writer's copies of committed chain entries, so an
// append need not read and decode its chain's entry from the file. Only the
// writer changes chain entries, and it puts an entry here only after the
// transaction that wrote it committed, so the cache never holds what the
// file does not.
type chainCache map[custody.COI]*chainEntry

// chainCacheSize bounds the cache: about 4096 active chains at once.
const chainCacheSize = 4096

// get returns a copy of the cached entry (the batch changes it), or nil.
func (c chainCache) get(coi custody.COI) *chainEntry {
	e := c[coi]
	if e == nil {
		return nil
	}
	cp := *e
	cp.Seqs = append(make([]uint64, 0, len(e.Seqs)+1), e.Seqs...)
	return &cp
}

func (c chainCache) put(coi custody.COI, e *chainEntry) {
	if _, ok := c[coi]; !ok && len(c) >= chainCacheSize {
		for k := range c { // evict one at random
			delete(c, k)
			break
		}
	}
	c[coi] = e
}

// batchTx builds one group-commit transaction draft by draft.
type batchTx struct {
	tx                       *bolt.Tx
	logB, chains, meta, phiB *bolt.Bucket
	tree                     *treeHashes // the Merkle tree's kept hashes (tree.go)
	leaves                   treeBatch   // the batch's leaves, hashed at Commit (tree.go)
	edges                    *edgeCache  // the committed tree's edge; nil: none
	headSeq                  uint64
	headHash                 custody.Hash
	touched                  map[custody.COI]*chainEntry
	cache                    chainCache // committed chain entries; nil: none
	s                        *Store
	out                      []custody.Outcome[custody.Record] // each draft's, in order
	err                      error                             // the transaction failed: every draft fails
	claims                   *claimsTx                         // the scheduling buckets, once a draft claims (schedule.go)
	quota                    *quotaTx                          // the quota buckets, once a draft counts (quota.go)
	excursions               map[custody.COI]bool              // chains the batch appended an excursion record to
}

// begin starts the transaction of a batch of appends.
func (s *Store) begin(cache chainCache, edges *edgeCache) *batchTx {
	b := &batchTx{touched: map[custody.COI]*chainEntry{}, cache: cache, edges: edges, s: s}
	s.dbmu.RLock() // released by commit
	if b.err = s.dbErr; b.err != nil {
		return b
	}
	if broken := s.broken.Load(); broken != nil {
		b.err = *broken
		return b
	}
	b.err = s.catch(func() error {
		var err error
		if b.tx, err = s.db.Begin(true); err != nil {
			return err
		}
		b.logB, b.chains, b.meta, b.phiB = b.tx.Bucket(bucketLog), b.tx.Bucket(bucketChains), b.tx.Bucket(bucketMeta), b.tx.Bucket(bucketPHI)
		// The log only grows at its end: full pages halve the bytes each
		// commit writes.
		b.logB.FillPercent = 1.0
		treeB := b.tx.Bucket(bucketTree)
		treeB.FillPercent = 1.0
		b.tree = newTreeHashes(treeB, b.meta)
		b.leaves.size = readTreeSize(b.meta)
		b.headSeq, b.headHash = readHead(b.meta)
		b.leaves.head = int64(b.headSeq)
		if edges != nil {
			b.leaves.leaves = edges.takeLeaves()
		}
		return nil
	})
	return b
}

// Add puts one draft into the transaction, or records why it fails.
func (b *batchTx) Add(r *appendReq) {
	b.out = append(b.out, custody.Outcome[custody.Record]{})
	if b.err != nil {
		return
	}
	res := &b.out[len(b.out)-1]
	if err := b.s.catch(func() error { b.put(r, res); return nil }); err != nil {
		b.err = err
	}
}

// put links and writes one draft (add), or records why it fails.
func (b *batchTx) put(r *appendReq, res *custody.Outcome[custody.Record]) {
	d := r.d
	coi := d.Record.Chain
	info := b.touched[coi]
	if info == nil {
		info = b.cache.get(coi)
	}
	if info == nil {
		var err error
		info, err = getChain(b.tx, coi)
		if errors.Is(err, custody.ErrChainBroken) {
			b.err = err
			return
		}
	}
	heads := custody.LinkHeads{LogSeq: b.headSeq, LogHash: b.headHash}
	if info != nil {
		heads.Chain = &info.ChainInfo
	}
	v := make([]byte, custody.HashSize, custody.HashSize+r.pre.Len())
	rec, ci, v, err := custody.LinkPresealed(heads, d, r.pre, v)
	if err != nil {
		res.Err = err
		return
	}
	if len(d.Claims) > 0 || len(d.Releases) > 0 {
		if b.claims == nil {
			b.claims = newClaimsTx(b.tx)
		}
		if refused, fatal := b.claims.check(&d); fatal != nil || refused != nil {
			res.Err, b.err = refused, fatal
			return
		}
	}
	if d.Quota != nil || d.QuotaRelease {
		if b.quota == nil {
			b.quota = newQuotaTx(b.tx)
		}
		if refused, fatal := b.quota.check(&d); fatal != nil || refused != nil {
			res.Err, b.err = refused, fatal
			return
		}
	}
	copy(v, rec.Hash[:])
	if err := b.logB.Put(u64(rec.Seq), v); err != nil {
		b.err = err
		return
	}
	// The record's tree hashes commit with it, or neither does: Commit
	// hashes the batch's leaves and writes them.
	if err := b.leaves.add(int64(rec.Seq-1), v[custody.HashSize:]); err != nil {
		b.err = err
		return
	}
	if len(d.Claims) > 0 || len(d.Releases) > 0 {
		if err := b.claims.apply(&d, rec.Seq); err != nil {
			b.err = err
			return
		}
	}
	if d.Quota != nil || d.QuotaRelease {
		if err := b.quota.apply(&d); err != nil {
			b.err = err
			return
		}
	}
	var prev custody.State
	if info != nil {
		prev = info.State
	}
	if err := b.putAccess(coi, prev, &d); err != nil {
		b.err = err
		return
	}
	if err := b.putFollowUp(coi, prev, &d); err != nil {
		b.err = err
		return
	}
	if err := b.putChainState(coi, prev, ci.State); err != nil {
		b.err = err
		return
	}
	var prevSites custody.Sites
	if info != nil {
		prevSites = info.Sites
	}
	if err := b.putChainSite(coi, prevSites, prev, ci.Sites, ci.State); err != nil {
		b.err = err
		return
	}
	var prevInfo *custody.ChainInfo
	if info != nil {
		prevInfo = &info.ChainInfo
	}
	if err := b.putTerminalIssue(coi, prevInfo, &ci); err != nil {
		b.err = err
		return
	}
	if d.PHI != nil {
		p, err := json.Marshal(d.PHI)
		if err == nil {
			err = b.phiB.Put([]byte(coi), p)
		}
		if err != nil {
			b.err = err
			return
		}
	}
	if info == nil {
		info = &chainEntry{}
	}
	info.ChainInfo = ci
	info.Seqs = append(info.Seqs, rec.Seq)
	b.headSeq, b.headHash = rec.Seq, rec.Hash
	b.touched[coi] = info
	if rec.Step == custody.StepExcursion {
		if b.excursions == nil {
			b.excursions = map[custody.COI]bool{}
		}
		b.excursions[coi] = true
	}
	res.Value = rec
}

// Commit writes the chain summaries and the head and commits; it sets
// each draft's outcome in out, or fails them all.
func (b *batchTx) Commit(out []custody.Outcome[custody.Record]) error {
	err := b.err
	var treeSize int64 // the file's tree after the commit
	if err == nil {
		err = b.s.catch(func() error {
			// The leaves are hashed (on another goroutine for a large
			// batch) while the chain entries are written.
			if err := b.leaves.start(b.edges, b.tree, b.logB); err != nil {
				return err
			}
			for coi, info := range b.touched {
				if err := b.chains.Put([]byte(coi), encodeChain(nil, info)); err != nil {
					return err
				}
				if err := indexExcursions(b.tx, info.ChainInfo, b.excursions[coi]); err != nil {
					return err
				}
			}
			if err := b.meta.Put(keyHead, append(u64(b.headSeq), b.headHash[:]...)); err != nil {
				return err
			}
			var err error
			if treeSize, err = b.leaves.finish(b.tree, b.edges); err != nil {
				return err
			}
			if err := b.meta.Put(keyTreeSize, u64(uint64(treeSize))); err != nil {
				return err
			}
			return b.tx.Commit()
		})
	}
	// A failed batch's hashing is over before the next batch starts its
	// own along the same cache. A committed batch whose hashes wait in
	// memory is not waited for: the next batch's start settles the cache.
	if err != nil {
		b.leaves.wait()
	}
	if err != nil && b.tx != nil {
		// After a failed Commit bbolt has rolled back already (this
		// returns ErrTxClosed); after a panic on a damaged page, this
		// releases the writer's lock if bbolt can.
		_ = b.s.catch(b.tx.Rollback)
	}
	b.s.dbmu.RUnlock()
	if err != nil {
		return fmt.Errorf("append: commit failed, nothing was written: %w", err)
	}
	if b.cache != nil {
		for coi, info := range b.touched {
			b.cache.put(coi, info)
		}
	}
	b.leaves.committed(b.edges, treeSize)
	if treeSize < int64(b.headSeq) && b.edges != nil {
		// Hashes wait: written by a later commit, or once idle.
		b.s.treeIdle.Reset(treeIdleWait)
	}
	copy(out, b.out)
	return nil
}

func readHead(meta *bolt.Bucket) (uint64, custody.Hash) {
	var h custody.Hash
	v := meta.Get(keyHead)
	if len(v) != 8+custody.HashSize {
		return 0, h
	}
	copy(h[:], v[8:])
	return binary.BigEndian.Uint64(v[:8]), h
}

// NextCOISequence implements custody.Store.
func (s *Store) NextCOISequence(ctx context.Context, fin string, year int) (uint64, error) {
	var n uint64
	err := s.update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketCOISeq).CreateBucketIfNotExists([]byte(fmt.Sprintf("%s%02d", fin, year%100)))
		if err != nil {
			return err
		}
		n, err = b.NextSequence()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("next coi sequence: %w", err)
	}
	return n, nil
}

func getRecord(tx *bolt.Tx, seq uint64) (custody.Record, error) {
	v := tx.Bucket(bucketLog).Get(u64(seq))
	if v == nil {
		return custody.Record{}, fmt.Errorf("record %d: %w", seq, custody.ErrNotFound)
	}
	if len(v) < custody.HashSize {
		return custody.Record{}, fmt.Errorf("record %d: truncated: %w", seq, custody.ErrChainBroken)
	}
	var h custody.Hash
	copy(h[:], v)
	r, err := custody.DecodeRecord(v[custody.HashSize:], h)
	if err != nil {
		return custody.Record{}, fmt.Errorf("record %d: %w", seq, err)
	}
	if r.Seq != seq {
		return custody.Record{}, fmt.Errorf("record %d: stored at the wrong position (says %d): %w", seq, r.Seq, custody.ErrChainBroken)
	}
	return r, nil
}

// Record implements custody.Store.
func (s *Store) Record(ctx context.Context, seq uint64) (custody.Record, error) {
	var r custody.Record
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		r, err = getRecord(tx, seq)
		return err
	})
	return r, err
}

// Records implements custody.Store. The chain's entry lists where its
// records are, and is not covered by any hash, so each record read through
// it must say it is the chain's next record and link to the one before
// (the first to none), and the last must be the entry's head: otherwise
// the entry was altered and Records fails with ErrChainBroken naming the
// record, rather than hand the domain another chain's record or a chain
// with one left out.
func (s *Store) Records(ctx context.Context, coi custody.COI) ([]custody.Record, error) {
	var out []custody.Record
	err := s.view(func(tx *bolt.Tx) error {
		ce, err := getChain(tx, coi)
		if err != nil {
			return err
		}
		out = make([]custody.Record, 0, len(ce.Seqs))
		var prev custody.Hash // the zero hash: the first record links to none
		for i, seq := range ce.Seqs {
			r, err := getRecord(tx, seq)
			if errors.Is(err, custody.ErrNotFound) {
				return fmt.Errorf("chain %s: its record %d is listed at %d, where the log has none: the chain index was altered: %w",
					coi, i+1, seq, custody.ErrChainBroken)
			}
			if err != nil {
				return err
			}
			switch {
			case r.Chain != coi:
				return fmt.Errorf("chain %s: record %d belongs to chain %s: the chain index was altered: %w", coi, seq, r.Chain, custody.ErrChainBroken)
			case r.ChainSeq != uint64(i+1):
				return fmt.Errorf("chain %s: record %d is the chain's record %d, listed as its record %d: the chain index was altered: %w",
					coi, seq, r.ChainSeq, i+1, custody.ErrChainBroken)
			case r.ChainPrev != prev:
				return fmt.Errorf("chain %s: record %d does not link to the chain's record before it: %w", coi, seq, custody.ErrChainBroken)
			}
			prev = r.Hash
			out = append(out, r)
		}
		if len(out) > 0 && (prev != ce.HeadHash || out[len(out)-1].Seq != ce.HeadSeq) {
			return fmt.Errorf("chain %s: record %d is not the summary's head (record %d): the chain index was altered: %w",
				coi, out[len(out)-1].Seq, ce.HeadSeq, custody.ErrChainBroken)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Chain implements custody.Store.
func (s *Store) Chain(ctx context.Context, coi custody.COI) (custody.ChainInfo, error) {
	var ci custody.ChainInfo
	err := s.view(func(tx *bolt.Tx) error {
		ce, err := getChain(tx, coi)
		if err == nil {
			ci = ce.ChainInfo
		}
		return err
	})
	return ci, err
}

// Chains implements custody.Store.
func (s *Store) Chains(ctx context.Context, state custody.State) ([]custody.ChainInfo, error) {
	var out []custody.ChainInfo
	err := s.viewLong(func(tx *bolt.Tx) error {
		// Sized once: a network's thousands of summaries are not copied
		// over and over as the list grows.
		out = make([]custody.ChainInfo, 0, tx.Bucket(bucketChains).Stats().KeyN)
		return scanChains(tx, func(ci custody.ChainInfo) error {
			if state == "" || ci.State == state {
				out = append(out, ci)
			}
			return nil
		})
	})
	return out, err
}

// ChainsAfter implements custody.ChainStore: a cursor on the summaries
// bucket, which bbolt keeps in COI order, from after onwards; with a
// state, a cursor on that state's part of the chain-state index
// (chainstates.go), or, in a file opened read-only before a writer built
// the index, the summaries bucket's, stepping over the other states.
func (s *Store) ChainsAfter(ctx context.Context, state custody.State, after custody.COI, limit int) ([]custody.ChainInfo, error) {
	if limit < 1 {
		return nil, fmt.Errorf("chains: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	out := []custody.ChainInfo{}
	err := s.view(func(tx *bolt.Tx) error {
		if state != "" && chainStatesBuilt(tx) {
			var err error
			out, err = chainsInState(tx, state, after, limit)
			return err
		}
		in := interned{}
		c := tx.Bucket(bucketChains).Cursor()
		k, v := c.First()
		if after != "" {
			if k, v = c.Seek([]byte(after)); k != nil && string(k) == string(after) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			var ci custody.ChainInfo
			if _, err := decodeChainInto(v, &ci, in, false); err != nil {
				return fmt.Errorf("chain summary %s: %v: %w", k, err, custody.ErrChainBroken)
			}
			if state == "" || ci.State == state {
				out = append(out, ci)
			}
		}
		return nil
	})
	return out, err
}

// ScanChains implements custody.LogSource.
func (s *Store) ScanChains(ctx context.Context, fn func(custody.ChainInfo) error) error {
	return s.viewLong(func(tx *bolt.Tx) error { return scanChains(tx, fn) })
}

func scanChains(tx *bolt.Tx, fn func(custody.ChainInfo) error) error {
	in := interned{}
	var ci custody.ChainInfo
	return tx.Bucket(bucketChains).ForEach(func(k, v []byte) error {
		if _, err := decodeChainInto(v, &ci, in, false); err != nil {
			return fmt.Errorf("chain summary %s: %v: %w", k, err, custody.ErrChainBroken)
		}
		return fn(ci)
	})
}

func scanChainEntries(tx *bolt.Tx, fn func(*chainEntry) error) error {
	return tx.Bucket(bucketChains).ForEach(func(k, v []byte) error {
		ce, err := decodeChain(v)
		if err != nil {
			return fmt.Errorf("chain summary %s: %v: %w", k, err, custody.ErrChainBroken)
		}
		return fn(ce)
	})
}

// PHI implements custody.Store.
func (s *Store) PHI(ctx context.Context, coi custody.COI) (custody.PHI, error) {
	var p custody.PHI
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPHI).Get([]byte(coi))
		if v == nil {
			return fmt.Errorf("patient identity for %s: %w", coi, custody.ErrNotFound)
		}
		return json.Unmarshal(v, &p)
	})
	return p, err
}

// ReadLog implements custody.LogSource.
func (s *Store) ReadLog(ctx context.Context, fn func(v custody.LogView) error) error {
	return s.ReadLogIndex(ctx, func(v custody.LogView, _ func(func(custody.ChainIndex) error) error) error { return fn(v) })
}

// ReadLogIndex implements custody.IndexedLogSource: index hands over each
// chain's summary with the record positions its entry keeps, the ones
// Records reads the chain through.
func (s *Store) ReadLogIndex(ctx context.Context, fn func(v custody.LogView, index func(fn func(custody.ChainIndex) error) error) error) error {
	return s.viewLong(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLog).Cursor()
		v := custody.LogView{
			Entries: func(yield func(custody.LogEntry) bool) {
				for k, v := c.First(); k != nil; k, v = c.Next() {
					key, h, body := splitEntry(k, v)
					if !yield(custody.LogEntry{Key: key, Hash: h, Body: body}) {
						return
					}
				}
			},
			Chains: func(fn func(custody.ChainInfo) error) error { return scanChains(tx, fn) },
		}
		v.HeadSeq, v.HeadHash = readHead(tx.Bucket(bucketMeta))
		index := func(fn func(custody.ChainIndex) error) error {
			return scanChainEntries(tx, func(ce *chainEntry) error {
				return fn(custody.ChainIndex{ChainInfo: ce.ChainInfo, Seqs: ce.Seqs})
			})
		}
		return fn(v, index)
	})
}

// ScanLog calls fn for each stored record in key order with its key, its
// stored hash and its canonical bytes; the slices are valid only during
// the call.
func (s *Store) ScanLog(ctx context.Context, fn func(key uint64, hash custody.Hash, body []byte) error) error {
	return s.viewLong(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLog).Cursor()
		n := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			key, h, body := splitEntry(k, v)
			if err := fn(key, h, body); err != nil {
				return err
			}
		}
		return nil
	})
}

// splitEntry splits a log entry; a malformed key or value yields a zero
// hash, which verification reports as a mismatch.
func splitEntry(k, v []byte) (uint64, custody.Hash, []byte) {
	var h custody.Hash
	var key uint64
	if len(k) == 8 {
		key = binary.BigEndian.Uint64(k)
	}
	if len(v) < custody.HashSize {
		return key, h, v
	}
	copy(h[:], v)
	return key, h, v[custody.HashSize:]
}

// ScanChain implements custody.LogSource.
func (s *Store) ScanChain(ctx context.Context, coi custody.COI, fn func(key uint64, hash custody.Hash, body []byte) error) error {
	return s.view(func(tx *bolt.Tx) error {
		logB := tx.Bucket(bucketLog)
		ce, err := getChain(tx, coi)
		if err != nil {
			return err
		}
		for _, seq := range ce.Seqs {
			e := logB.Get(u64(seq))
			if e == nil {
				e = []byte{}
			}
			_, h, body := splitEntry(u64(seq), e)
			if err := fn(seq, h, body); err != nil {
				return err
			}
		}
		return nil
	})
}

// Head implements custody.LogSource.
func (s *Store) Head(ctx context.Context) (uint64, custody.Hash, error) {
	var seq uint64
	var h custody.Hash
	err := s.view(func(tx *bolt.Tx) error {
		seq, h = readHead(tx.Bucket(bucketMeta))
		return nil
	})
	return seq, h, err
}

// CreateUser implements custody.UserStore.
func (s *Store) CreateUser(ctx context.Context, u custody.User, token custody.Hash) error {
	return s.createUser(u, token, nil)
}

// createUser stores a new user and its first token and, when audit is
// set, the audit entry, in one transaction.
func (s *Store) createUser(u custody.User, token custody.Hash, audit *custody.AuditEntry) error {
	v, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		if users.Get([]byte(u.ID)) != nil {
			return fmt.Errorf("user %s already exists: %w", u.ID, custody.ErrConflict)
		}
		if err := users.Put([]byte(u.ID), v); err != nil {
			return err
		}
		if err := putTokenMeta(tx, u.ID, token[:], tokenMeta{Created: u.Created.UTC()}); err != nil {
			return err
		}
		if audit != nil {
			if _, err := putAudit(tx, *audit); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketTokens).Put(token[:], []byte(u.ID))
	})
}

func getUser(tx *bolt.Tx, id string) (custody.User, error) {
	var u custody.User
	v := tx.Bucket(bucketUsers).Get([]byte(id))
	if v == nil {
		return u, fmt.Errorf("user %s: %w", id, custody.ErrNotFound)
	}
	err := json.Unmarshal(v, &u)
	return u, err
}

// User implements custody.UserStore.
func (s *Store) User(ctx context.Context, id string) (custody.User, error) {
	var u custody.User
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		u, err = getUser(tx, id)
		return err
	})
	return u, err
}

// UserByToken implements custody.UserStore.
func (s *Store) UserByToken(ctx context.Context, token custody.Hash) (custody.User, error) {
	var u custody.User
	err := s.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketTokens).Get(token[:])
		if id == nil {
			return fmt.Errorf("token: %w", custody.ErrNotFound)
		}
		var err error
		u, err = getUser(tx, string(id))
		return err
	})
	return u, err
}

// AddToken implements custody.UserStore.
func (s *Store) AddToken(ctx context.Context, id string, token custody.Hash) error {
	return s.update(func(tx *bolt.Tx) error {
		if _, err := getUser(tx, id); err != nil {
			return err
		}
		return tx.Bucket(bucketTokens).Put(token[:], []byte(id))
	})
}

// UpdateUser implements custody.UserStore.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*custody.User) error) (custody.User, error) {
	var u custody.User
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		if u, err = getUser(tx, id); err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		u.ID = id
		v, err := json.Marshal(u)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketUsers).Put([]byte(id), v)
	})
	return u, err
}

// Users implements custody.UserStore.
func (s *Store) Users(ctx context.Context) ([]custody.User, error) {
	out := []custody.User{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			var u custody.User
			if err := json.Unmarshal(v, &u); err != nil {
				return err
			}
			out = append(out, u.Public())
			return nil
		})
	})
	return out, err
}

// UsersAfter implements custody.UserStore.
func (s *Store) UsersAfter(ctx context.Context, after string, limit int) ([]custody.User, error) {
	if limit < 1 {
		return nil, fmt.Errorf("users: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	out := []custody.User{}
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUsers).Cursor()
		k, v := c.First()
		if after != "" {
			if k, v = c.Seek([]byte(after)); k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			var u custody.User
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("user %s: %w", k, err)
			}
			out = append(out, u.Public())
		}
		return nil
	})
	return out, err
}

// Backup implements custody.Store: it streams a consistent snapshot of the
// bbolt file, taken in one read transaction, to w.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.viewLong(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}
