package custody

import (
	"context"
	"time"
)

// SharedEntry is one small record that the instances sharing a store keep
// together, outside the ledger: a web session, a count of the sign-in
// throttle. Its value is the owner's encoding; the store keeps it until
// Expires.
type SharedEntry struct {
	// Key names the entry; its owner prefixes its keys with its own name.
	Key string
	// Subject is the user ID the entry concerns ("" for none), by which
	// SharedBySubject finds a user's entries.
	Subject string
	// Value is the entry's content; nil when the entry is absent.
	Value []byte
	// Expires is when the entry ends; an entry is gone from then on.
	Expires time.Time
}

// SharedState keeps the entries several instances of coid on one store
// share, so that another instance, or a restart, sees what one instance
// wrote. A store only one process opens (bbolt) offers none: that
// process keeps these in memory.
type SharedState interface {
	// UpdateShared reads the entries under keys, live at now (one per key,
	// in order; an absent or expired one has a nil Value), holding them
	// against every other update of those keys, and stores, in the same
	// transaction, the entries fn returns (a nil Value deletes). fn may be
	// called more than once; an error from it is returned and nothing is
	// stored.
	UpdateShared(ctx context.Context, keys []string, now time.Time, fn func(cur []SharedEntry) ([]SharedEntry, error)) error
	// SharedBySubject returns the entries of subject live at now whose
	// keys begin with prefix.
	SharedBySubject(ctx context.Context, prefix, subject string, now time.Time) ([]SharedEntry, error)
}

// Broadcaster carries small messages (alerts) to every instance sharing a
// store, so that a browser connected to one sees what another raised.
// Delivery is best effort: an instance that is not listening when a
// message is sent (reconnecting, starting) misses it.
type Broadcaster interface {
	// Broadcast sends payload on channel to every instance listening to
	// it, this one included.
	Broadcast(ctx context.Context, channel string, payload []byte) error
	// Listen calls fn with each payload sent on channel, in order, until
	// ctx ends (its error is returned); it reconnects when its connection
	// breaks.
	Listen(ctx context.Context, channel string, fn func(payload []byte)) error
}
