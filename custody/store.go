package custody

import (
	"context"
	"io"
	"iter"
	"time"
)

// ChainInfo is the summary of a chain that a store keeps beside the log so
// chains can be listed and appends checked without reading the whole log.
type ChainInfo struct {
	COI     COI    `json:"coi"`
	Product string `json:"product"`
	// Sites are the chain's site names as enrolled, kept so the chains a
	// user may read can be listed without reading each chain. Summaries
	// stored before they were kept have none; readers fold the chain then.
	Sites    Sites     `json:"sites"`
	State    State     `json:"state"`
	Records  uint64    `json:"records"`
	HeadSeq  uint64    `json:"head_seq"`
	HeadHash Hash      `json:"head_hash"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	// OpenIssues counts the chain's issues waiting for a QA disposition
	// (Chain.OpenIssues), kept so the chains with open issues can be found
	// without folding every chain. Summaries stored before they were kept
	// have OpenIssues.Kept false; readers fold the chain then. Not part of
	// the API's chain summary.
	OpenIssues IssueCounts `json:"-"`
	// Progress is the chain's plan and actual milestones (ProgressOf),
	// kept so the dashboard aggregates summaries without folding chains.
	// Summaries stored before it was kept have none (nil); readers fold
	// the chain then. Not part of the API's chain summary.
	Progress *Progress `json:"-"`
}

// IssueCounts counts a chain's open issues by kind, as its summary keeps
// them.
type IssueCounts struct {
	// Kept is false when the summary does not keep the counts (stored
	// before they were, or by a draft that did not compute them): the
	// chain must be folded to know its open issues.
	Kept bool
	// Excursions counts open excursions, SealsBroken shipments received
	// with a broken seal, Mismatches failed bedside checks.
	Excursions, SealsBroken, Mismatches int
}

// Total returns how many issues are open.
func (n IssueCounts) Total() int { return n.Excursions + n.SealsBroken + n.Mismatches }

// Draft is a record on its way into the ledger with what the store must
// check and keep beside it in the same transaction.
type Draft struct {
	// Record has every field set except the links (Seq, Prev, ChainSeq,
	// ChainPrev) and Hash, which the store assigns.
	Record Record
	// NewChain is set for the enroll record: the chain must not exist yet.
	NewChain bool
	// ExpectRecords is how many records of the chain the caller saw when it
	// checked the journey rules; the store refuses the append with
	// ErrRetry if the chain has since grown.
	ExpectRecords uint64
	// State is the chain's state once the record is appended.
	State State
	// Product is the chain's product name, kept in ChainInfo (enroll only).
	Product string
	// Sites are the chain's site names, kept in ChainInfo (enroll only).
	Sites Sites
	// PHI, set only with NewChain, is stored outside the ledger.
	PHI *PHI
	// Claims are the apheresis chairs and manufacturing slots the record
	// books for its chain: the store takes each in the same transaction
	// as the record, only while the site's stored capacity that day
	// (Capacity.Count, CheckClaim) exceeds the claims it already holds,
	// and refuses the draft with ErrSlotTaken, writing nothing, otherwise.
	Claims []Claim
	// Releases are claims the chain holds that the record frees, in the
	// same transaction (ErrConflict, nothing written: the chain does not
	// hold one). Releases and Claims never share a claim.
	Releases []Claim
	// OpenIssues counts the chain's open issues once the record is
	// appended, kept in ChainInfo (the Service computes them for every
	// draft; without them, Kept false, the summary says it keeps none).
	OpenIssues IssueCounts
	// Progress is the chain's plan and actual milestones once the record
	// is appended, kept in ChainInfo (the Service computes it for every
	// draft; nil: the summary keeps none).
	Progress *Progress
	// Quota, set with a booking's claims, is the quota use the booking
	// counts against: the store frees the one the chain held (if any),
	// then takes this one in the same transaction, only while the stored
	// quota (CheckQuota) allows it, refusing the draft with
	// ErrQuotaExhausted, writing nothing, otherwise.
	Quota *QuotaUse
	// QuotaRelease frees the quota use the chain holds, if any.
	QuotaRelease bool
	// Access is, for a record of an expanded-access request, the
	// request's access index row once the record is appended: a store
	// that keeps the index (AccessIndex) stores it in the same
	// transaction as the record, under the draft's State. Nil for the
	// records of therapy chains.
	Access *AccessRow
	// FollowUp is, for a record after which the chain is infused
	// (StateInfused), the chain's follow-up index entry once the record
	// is appended: a store that keeps the index (FollowUpIndex) stores
	// it in the same transaction as the record, and removes the chain's
	// entry with a draft that carries none.
	FollowUp *FollowUpPending
	// Fence, set on the appends of a job that runs on one instance at a
	// time (the excursion monitor's, from FenceOf of its context), is the
	// leadership it appends under: a store with Leadership refuses the
	// draft with ErrFenced, in the append's transaction, once a newer
	// leadership of the job was taken. Nil for every other append; a
	// store only one process opens (no Leadership) ignores it.
	Fence *Fence
}

// Store is durable storage for the ledger, the chain summaries, the PHI
// kept outside the ledger, users and the registries: the composition of the interfaces
// below, split by concern, for the callers that need it all (the Service).
// A consumer that needs less asks for the smallest of them. Implementations
// must be safe for concurrent use; Append must return only after the
// record is durable.
type Store interface {
	Ledger
	ChainStore
	PHIStore
	UserStore
	AccountStore
	RegistryStore
	ScheduleStore
	QuotaStore
	Backuper
}

// ScheduleStore keeps the sites' capacity (as custody encodes it, one
// value per site, audited like the registries) and counts the claims
// appends take (Draft.Claims) per site, day and product, so the free
// capacity of a range of days is a range read.
type ScheduleStore interface {
	// UpdateCapacity calls fn with the site's stored capacity (nil: none
	// yet), inside the write, and stores the value and audit entry fn
	// returns in the same transaction; fn's error aborts, writing nothing.
	UpdateCapacity(ctx context.Context, site string, fn func(old []byte) (value []byte, a AuditEntry, err error)) error
	// Capacity returns the site's stored capacity; ErrNotFound if none.
	Capacity(ctx context.Context, site string) ([]byte, error)
	// SiteSlots returns, in one read, the capacity and the claims held
	// from day from to day to (YYYY-MM-DD, both included) of sites, or,
	// when sites is empty, of the sites with a capacity in code order
	// after the code after, at most limit of them (limit <= 0: all).
	SiteSlots(ctx context.Context, sites []string, after string, limit int, from, to string) ([]SiteSlots, error)
	// SiteClaims returns the claims held at site from day from to day to
	// (both included), in day order, each with its chain and the record
	// that took it, at most limit of them (limit <= 0: all).
	SiteClaims(ctx context.Context, site, from, to string, limit int) ([]HeldClaim, error)
}

// StoredValue is one keyed value a store keeps as custody encodes it.
type StoredValue struct {
	// Key is the value's key.
	Key string
	// Value is the encoded value.
	Value []byte
}

// QuotaStore keeps the quotas (as custody encodes them, by QuotaKey),
// counts the quota uses appends take (Draft.Quota) per period, and keeps
// the waiting list (one entry per chain, as custody encodes it). Each
// change is stored with its audit entry in one transaction.
type QuotaStore interface {
	// UpdateQuota calls fn with the stored quota key (nil: none), inside
	// the write, and stores the value (nil: deletes it) and the audit
	// entry fn returns; fn's error aborts, writing nothing.
	UpdateQuota(ctx context.Context, key string, fn func(old []byte) (value []byte, a AuditEntry, err error)) error
	// Quotas returns the stored quotas by key.
	Quotas(ctx context.Context) (map[string][]byte, error)
	// QuotasAfter pages the stored quotas in key order (byte order): those
	// whose key sorts after after (empty: from the first), at most limit
	// of them (1 or more; ErrInvalid otherwise), read from the store's
	// order of keys so that a page costs the page.
	QuotasAfter(ctx context.Context, after string, limit int) ([]StoredValue, error)
	// QuotaUses returns how many bookings count against each quota key
	// in period (YYYY-MM).
	QuotaUses(ctx context.Context, period string) (map[string]int, error)
	// UpdateWaitlist calls fn with the chain's stored waiting-list entry
	// (nil: none), inside the write, and stores the value (nil: removes
	// it) and each audit entry fn returns; fn's error aborts.
	UpdateWaitlist(ctx context.Context, coi COI, fn func(old []byte) (value []byte, a []AuditEntry, err error)) error
	// UpdateWaitlistHold is UpdateWaitlist that also, in the same
	// transaction, frees the manufacturing slot the chain's offer holds
	// (if any) and holds slot hold (nil: none): a hold is counted with the
	// claims of its site, day and product (SiteSlots), taken only while
	// the site's capacity (CheckClaim) exceeds the claims and holds
	// counted (ErrSlotTaken, nothing written, otherwise). No other
	// chain's claim can take a held slot; the chain's own claim of it
	// (Draft.Claims) takes it, freeing the hold. UpdateWaitlist removing
	// an entry frees its hold.
	UpdateWaitlistHold(ctx context.Context, coi COI, hold *Claim, fn func(old []byte) (value []byte, a []AuditEntry, err error)) error
	// Waitlist returns every stored waiting-list entry, in COI order.
	Waitlist(ctx context.Context) ([][]byte, error)
}

// Ledger is the append-only log: appends, reads of its records and the raw
// access verification needs. A backend links and checks each draft with
// Link inside its own write transaction, given the heads it read there.
type Ledger interface {
	// NextCOISequence durably reserves the next COI sequence number for
	// facility fin and year; a number is never returned twice, even if the
	// enrollment that asked for it fails.
	NextCOISequence(ctx context.Context, fin string, year int) (uint64, error)
	// Append links the draft's record to the log and its chain, hashes it,
	// and stores it durably with its chain summary and PHI. It returns the
	// stored record. ErrNotFound: the chain does not exist; ErrConflict:
	// enroll of an existing chain; ErrRetry: the chain changed since it
	// was read.
	Append(ctx context.Context, d Draft) (Record, error)
	// Records returns the chain's records in order, each checked against
	// its stored hash (ErrChainBroken if one does not match).
	Records(ctx context.Context, coi COI) ([]Record, error)
	// Record returns the record at log position seq, checked against its
	// hash.
	Record(ctx context.Context, seq uint64) (Record, error)

	LogSource
}

// ChainStore lists the chain summaries a store keeps beside the log.
type ChainStore interface {
	// Chain returns the chain's summary.
	Chain(ctx context.Context, coi COI) (ChainInfo, error)
	// Chains lists chain summaries, all of them when state is empty.
	Chains(ctx context.Context, state State) ([]ChainInfo, error)
	// ChainsAfter pages the chain summaries in COI order: those whose COI
	// sorts after after (empty: from the first), only those in state
	// unless it is empty, at most limit of them (1 or more; ErrInvalid
	// otherwise). It reads the store's index of summaries by COI from
	// after onwards, so a page costs the page (and, with a state, the
	// summaries in other states it steps over), not the whole store.
	ChainsAfter(ctx context.Context, state State, after COI, limit int) ([]ChainInfo, error)
	// ExcursionChains pages the chains that hold an excursion record,
	// from an index the store keeps in the same transaction as the
	// records: greatest COI first, those with a COI before before (empty:
	// from the greatest), at most limit of them (1 or more). With open,
	// only the chains whose summary counts open excursions, or keeps no
	// counts (OpenIssues.Kept false): a superset the caller narrows by
	// folding the chain. Its cost grows with the page, not the store.
	ExcursionChains(ctx context.Context, open bool, before COI, limit int) ([]COI, error)
}

// PHIStore reads the patient identifiers kept outside the ledger; they are
// written with the enroll record (Draft.PHI).
type PHIStore interface {
	// PHI returns the patient identifiers kept for the chain outside the
	// ledger; ErrNotFound when there are none (never enrolled, or erased).
	PHI(ctx context.Context, coi COI) (PHI, error)
}

// Backuper copies a whole store while it stays open.
type Backuper interface {
	// Backup writes a consistent copy of the whole store to w while the
	// store stays open for reads and writes.
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// ReadingSink is the write side of telemetry: what the ingest pipeline
// commits decoded readings and refused payloads through.
type ReadingSink interface {
	// AddReadingsAsync queues readings, and a quarantined payload when q
	// is not nil, and returns at once; done is called once they are
	// durable, or with the error that prevented it. It must store each
	// reading identity once, and refuse the whole batch with an error
	// wrapping ErrReadingConflict, writing nothing (not even q), when a
	// reading differs from the one stored under its identity. Any other
	// error is a failure of the store; ErrClosed: the store is closed.
	// done must not block for long.
	AddReadingsAsync(readings []Reading, q *QuarantineEntry, done func(IngestResult, error)) error
}

// QuarantineLister lists the rejected telemetry payloads kept for review.
type QuarantineLister interface {
	// QuarantineList returns the kept payloads, newest first, those with
	// an ID below before (0: from the newest), at most limit of them
	// (limit <= 0: all that are kept).
	QuarantineList(ctx context.Context, before uint64, limit int) ([]QuarantineEntry, error)
}

// DefaultReadingsPage is the page size ReadingLog.ReadingsSince uses for a
// limit of zero or less.
const DefaultReadingsPage = 4096

// ReadingsPage is one page of ReadingLog.ReadingsSince.
type ReadingsPage struct {
	// Readings are those stored by the committed batches after the
	// cursor through Through, batch by batch in watermark order (within
	// a batch in no particular order), with ReceivedTime set.
	Readings []Reading
	// Through is the watermark of the last batch in the page: the cursor
	// for the next page. On an empty page it is the cursor given, or the
	// watermark the log starts at (see Incomplete).
	Through uint64
	// More says that batches after Through were committed when the page
	// was read: ask again from Through.
	More bool
	// Incomplete says that the cursor given is older than the log: the
	// readings of batches up to the watermark the log starts at (those
	// stored before the store kept it) are not in the log, and a reader
	// that needs them must read them by shipper (ShipperReadings).
	Incomplete bool
}

// ReadingLog lists readings in the order their batches were committed, so
// that a reader that keeps a cursor (the ingest watermark it has read
// through) finds what was stored since without reading any shipper's
// readings: the cost grows with the page, not with the store.
type ReadingLog interface {
	// ReadingsSince returns the readings of the batches committed with a
	// watermark after after: whole batches in watermark order, the page
	// ending with the batch that brings it to limit readings or more
	// (limit <= 0: DefaultReadingsPage), so that a page never splits a
	// batch and may exceed limit by at most one batch.
	ReadingsSince(ctx context.Context, after uint64, limit int) (ReadingsPage, error)
}

// TelemetryStore keeps telemetry readings and the quarantine of refused
// payloads: the read side (ReadingStore, and ReadingLog for what was stored
// since a cursor), the write side (ReadingSink and
// its synchronous forms) and the quarantine.
type TelemetryStore interface {
	ReadingStore
	ReadingSink
	ReadingLog
	QuarantineLister
	// AddReadings stores readings durably, each identity once, and
	// returns when they are committed; ErrReadingConflict refuses the
	// whole batch.
	AddReadings(ctx context.Context, readings []Reading) (IngestResult, error)
	// Quarantine stores a rejected payload durably.
	Quarantine(ctx context.Context, q QuarantineEntry) error
	// ReadingsCount returns how many readings are stored.
	ReadingsCount(ctx context.Context) (int, error)
}

// UserStore keeps user accounts and their API tokens (stored hashed).
type UserStore interface {
	// CreateUser stores a new user and its first API token's hash;
	// ErrConflict if the ID is taken.
	CreateUser(ctx context.Context, u User, token Hash) error
	// User returns the user with the given ID.
	User(ctx context.Context, id string) (User, error)
	// UserByToken returns the user owning the API token with hash token.
	UserByToken(ctx context.Context, token Hash) (User, error)
	// AddToken stores another API token hash for an existing user.
	AddToken(ctx context.Context, id string, token Hash) error
	// UpdateUser applies fn to the stored user atomically and returns the
	// result.
	UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error)
	// Users lists all users, passwords never included.
	Users(ctx context.Context) ([]User, error)
	// UsersAfter lists, in ID order, the users whose ID sorts after
	// after (empty: from the first), at most limit of them (1 or more),
	// passwords never included: a page costs the page, not every
	// account.
	UsersAfter(ctx context.Context, after string, limit int) ([]User, error)
}

// LogEntry is one stored record as verification reads it: its key (log
// position), its stored hash and its canonical bytes.
type LogEntry struct {
	Key  uint64
	Hash Hash
	Body []byte
}

// LogView is one consistent read of the stored log, its head and its chain
// summaries, as LogSource.ReadLog hands it to verification: records
// appended meanwhile are in none of them.
type LogView struct {
	// Entries iterates over the stored records in key order. The entries'
	// slices stay valid until ReadLog's fn returns, so fn may hand them
	// to other goroutines as long as it waits for them.
	Entries iter.Seq[LogEntry]
	// HeadSeq and HeadHash are the position and hash of the last record
	// appended, as recorded by the store apart from the log itself.
	HeadSeq  uint64
	HeadHash Hash
	// Chains calls fn for every chain summary, in the same read.
	Chains func(fn func(ChainInfo) error) error
}

// LogSource gives verification raw access to the stored log. The
// functions passed to its methods run inside a read of the store and must
// not call the store themselves.
type LogSource interface {
	// ReadLog runs fn inside one consistent read of the store.
	ReadLog(ctx context.Context, fn func(v LogView) error) error
	// ScanChain does the same for one chain's records in chain order.
	ScanChain(ctx context.Context, coi COI, fn func(key uint64, hash Hash, body []byte) error) error
	// Head returns the position and hash of the last record appended, as
	// recorded by the store apart from the log itself.
	Head(ctx context.Context) (seq uint64, hash Hash, err error)
	// ScanChains calls fn for every chain summary.
	ScanChains(ctx context.Context, fn func(ChainInfo) error) error
}

// Leadership elects one instance, among those sharing a store, to run a
// job that must run on exactly one of them at a time (the excursion
// monitor). A store that only one process can open (bbolt) needs none: its
// process always leads.
type Leadership interface {
	// Lead blocks until this instance leads the job named name, or ctx
	// ends (its error is returned). The context returned ends when the
	// leadership is lost (the instance's hold on it broke, e.g. its
	// database connection closed) or ctx ends; release gives the
	// leadership up, for another instance to take, and must be called once
	// the job has stopped.
	Lead(ctx context.Context, name string) (held context.Context, release func(), err error)
}

// Fence is a leadership's fencing token: the job led and the epoch the
// leadership was taken at. Each leadership taken has a higher epoch than
// the one before, so a store can refuse the writes of a leader that a
// newer one has replaced even if the old one has not noticed yet (its
// process frozen past the takeover).
type Fence struct {
	// Job is the name of the job led.
	Job string
	// Epoch is the leadership's number, from 1, higher for each
	// leadership taken.
	Epoch int64
}

// fenceKey keys a Fence in a context.
type fenceKey struct{}

// WithFence returns ctx carrying fence f: a Leadership puts it in the
// context it returns, and the Service copies it onto the drafts of the
// system records appended under that context (Draft.Fence).
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceOf returns the fence ctx carries; nil when none.
func FenceOf(ctx context.Context) *Fence {
	if f, ok := ctx.Value(fenceKey{}).(Fence); ok {
		return &f
	}
	return nil
}
