package custody

// Export is what coid migrate copies from one store to another that the
// stores' public methods do not hand out: one consistent read of the
// ledger's stored records and head, the chain summaries, and the state
// kept beside them (PHI, users and token hashes, registries and their
// audit trail, the schedule, quotas and waiting list). Values are as
// custody encodes them, copied byte for byte; the quarantine,
// checkpoints and witness states are copied through the
// stores' own methods.
type Export struct {
	// HeadSeq and HeadHash are the log's head as the store records it.
	HeadSeq  uint64
	HeadHash Hash
	// Records calls fn for every stored record in log order (the
	// entry's slices are valid only during the call).
	Records func(fn func(LogEntry) error) error
	// Chains are the chain summaries.
	Chains []ChainInfo
	// PHI is each chain's PHI as stored (JSON).
	PHI map[COI][]byte
	// COISequences is the last COI sequence number reserved per facility
	// and year (FIN followed by the two-digit year).
	COISequences map[string]uint64
	// Users are the stored users (JSON, with their password hashes).
	Users map[string][]byte
	// Tokens are the API token hashes with their owners.
	Tokens []ExportToken
	// Registry is every registry entry.
	Registry []ExportEntry
	// Audit is the registries' audit trail in order.
	Audit []AuditEntry
	// Capacity, Quotas and Waitlist are the stored values by site, quota
	// key and chain.
	Capacity map[string][]byte
	Quotas   map[string][]byte
	Waitlist map[COI][]byte
	// Claims are the held slot claims; Holds the slots chains' offers
	// hold; QuotaChains the quota use each chain holds.
	Claims      []HeldClaim
	Holds       map[COI]Claim
	QuotaChains map[COI]QuotaUse
	// Cosignatures are the witnesses' cosignatures of checkpoints.
	Cosignatures []Cosignature
	// Readings calls fn with the stored telemetry readings, a batch at a
	// time, with ReceivedTime set (the batch is valid only during the
	// call).
	Readings func(fn func([]Reading) error) error
}

// ExportToken is one API token hash and its owner.
type ExportToken struct {
	Hash   Hash
	UserID string
	// Created and LastUsed are Unix nanoseconds; zero when unknown.
	Created, LastUsed int64
}

// ExportEntry is one registry entry as stored.
type ExportEntry struct {
	Kind  RegistryKind
	Code  string
	Value []byte
}
