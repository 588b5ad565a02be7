package custody

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors returned (wrapped with an operation prefix via %w) by the
// domain and its stores. Callers test them with errors.Is.
var (
	// ErrInvalid means the input was malformed or violates a field rule; the
	// caller must correct the request. Nothing was written.
	ErrInvalid = errors.New("invalid input")

	// ErrNotFound means the named chain, record, bag or user does not exist.
	ErrNotFound = errors.New("not found")

	// ErrConflict means the request is well formed but not allowed in the
	// chain's current state: a step out of order, a closed chain, or a
	// bedside mismatch (a *MismatchError). Nothing but a mismatch record was
	// written.
	ErrConflict = errors.New("conflict")

	// ErrRetry means the chain changed while the request was checked
	// (another step was recorded first), or kept changing while it was
	// read: the request was not refused, only not done. Nothing was
	// written; the same request may be sent again at once.
	ErrRetry = errors.New("the chain changed; retry")

	// ErrForbidden means the authenticated user or a signer lacks the role
	// the operation needs. Nothing was written.
	ErrForbidden = errors.New("forbidden")

	// ErrUnauthenticated means a token or a signature password did not
	// authenticate. The attempt is counted; nothing was written.
	ErrUnauthenticated = errors.New("unauthenticated")

	// ErrThrottled means too many failed attempts: the request was refused
	// without checking it, and may be tried again later (RetryAfter says
	// when). Nothing was written or counted.
	ErrThrottled = errors.New("too many attempts")

	// ErrChainBroken means stored ledger data failed verification: a hash,
	// link or sequence does not match. This is an integrity failure, never
	// the caller's fault; operators must investigate the data directory.
	ErrChainBroken = errors.New("ledger integrity failure")

	// ErrDamaged means the store's file is damaged: a page, a length or an
	// entry cannot be read as written (a copy cut short, bytes overwritten
	// on disk). It is an integrity failure too: errors.Is(err,
	// ErrChainBroken) holds for it, so callers that test for a broken
	// ledger also catch it. Restore the file from a backup.
	ErrDamaged error = damagedError{}

	// ErrInUse means the data directory is locked by another process.
	ErrInUse = errors.New("data directory in use")

	// ErrFenced means an append made under a leadership (Draft.Fence) was
	// refused because a newer leadership of its job was taken: this
	// instance no longer leads the job and must stop it. Nothing was
	// written.
	ErrFenced = errors.New("a newer leader has taken the job")

	// ErrClosed means the store has been closed and accepts no more work.
	ErrClosed = errors.New("store closed")

	// ErrSlotTaken means a booking asked for an apheresis chair or a
	// manufacturing slot the site cannot give that day: all are booked,
	// the site is closed, or it has no capacity defined. Nothing was
	// written; another day may be free.
	ErrSlotTaken = errors.New("slot taken")

	// ErrNotBooked means cells may not be collected for the chain: it is
	// scheduled against a site's capacity and holds no booking, and no
	// override signed by a coordinator and QA lets it go without one.
	// Nothing was written.
	ErrNotBooked = errors.New("no booked slot")

	// ErrQuotaExhausted means a booking would take more of a plant's
	// manufacturing starts in a month than the treatment centre's quota
	// gives it. Nothing was written; another month may be free, or the
	// chain may wait on the waiting list.
	ErrQuotaExhausted = errors.New("quota exhausted")

	// ErrOfferExpired means a waiting-list offer was answered after it
	// expired, or after it passed to another chain. Nothing was written.
	ErrOfferExpired = errors.New("offer expired")
)

// damagedError is ErrDamaged: its own text, and an ErrChainBroken.
type damagedError struct{}

func (damagedError) Error() string { return "the store file is damaged" }

// Is makes errors.Is(ErrDamaged, ErrChainBroken) hold.
func (damagedError) Is(target error) bool { return target == ErrChainBroken }

// MismatchError is the refusal of a bedside check whose bag or wristband
// did not match the chain: the step was not recorded, and the mismatch
// record Record was written in its place. errors.Is(err, ErrConflict)
// holds for it.
type MismatchError struct {
	// Record is the stored mismatch record.
	Record Record
	// Reasons says what did not match, one reason per entry.
	Reasons []string
}

// Error says the check failed, why, and which record holds the mismatch.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("bedside-verify on %s: MISMATCH, do not infuse: %s (mismatch recorded as record %d): %v",
		e.Record.Chain, strings.Join(e.Reasons, "; "), e.Record.Seq, ErrConflict)
}

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *MismatchError) Unwrap() error { return ErrConflict }

// FieldError is a refusal that concerns one field of what was submitted
// (a registry entry, a site mapping, the reason for a change): Field
// names the field as the JSON API spells the member ("gln",
// "accreditation.expiry", "reason"), so a form can show the refusal
// beside it. Its text is Err's, and errors.Is sees through it to the
// sentinel Err wraps (ErrInvalid, ErrConflict).
type FieldError struct {
	// Field is the member the refusal concerns; nested members are joined
	// by ".".
	Field string
	// Err is the refusal.
	Err error
}

// Error is the refusal's text, unchanged by naming the field.
func (e *FieldError) Error() string { return e.Err.Error() }

// Unwrap makes errors.Is see the refusal's sentinel.
func (e *FieldError) Unwrap() error { return e.Err }

// ErrorField returns the field err concerns (the Field of the first
// FieldError in its chain), or "" when it names none.
func ErrorField(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

// fieldErr names the field err concerns; nil stays nil.
func fieldErr(field string, err error) error {
	if err == nil {
		return nil
	}
	return &FieldError{Field: field, Err: err}
}
