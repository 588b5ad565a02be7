package custody

import "context"

// RegistryStore keeps the registries' entries; the audit entries of
// their changes go into the one audit trail (AuditLog). Entries are stored as the domain encodes them (JSON, one
// value per kind and code) and are never deleted. Every change stores its
// AuditEntry in the same transaction, so a change is never without its
// audit entry, nor an audit entry without its change.
type RegistryStore interface {
	// CreateEntry stores a new entry of kind under code, with the audit
	// entry a, which the store numbers and links to the trail's last
	// entry with SealAuditEntry in the same transaction. ErrConflict: the code is
	// taken; ErrInvalid: kind is not a registry.
	CreateEntry(ctx context.Context, kind RegistryKind, code string, value []byte, a AuditEntry) error
	// UpdateEntry calls fn with the stored value of the entry, inside the
	// write, and stores the value and audit entry fn returns in the same
	// transaction. fn's error aborts the update, writing nothing, and is
	// returned as is; so does a nil value. ErrNotFound: no such entry.
	UpdateEntry(ctx context.Context, kind RegistryKind, code string, fn func(old []byte) (value []byte, a AuditEntry, err error)) error
	// Entry returns the stored value of the entry; ErrNotFound if none.
	Entry(ctx context.Context, kind RegistryKind, code string) ([]byte, error)
	// Entries returns the stored values of kind in code order, starting
	// after the code after ("" from the first), at most limit of them
	// (limit <= 0: all).
	Entries(ctx context.Context, kind RegistryKind, after string, limit int) ([][]byte, error)
}
