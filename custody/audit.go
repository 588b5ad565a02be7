package custody

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// The administrative audit trail: every change an administrator makes to
// a registry entry or an account (and a user to their own account) is one
// AuditEntry with who, when, what, why and the old and new values (EU GMP
// Annex 11 section 9, 21 CFR Part 11 11.10(e)), stored in the same
// transaction as the change. All kinds of object share one sequence and
// one hash chain (SealAuditEntry), so a changed, removed or reordered
// entry of any kind is found. Entries never hold patient identifiers,
// passwords, their hashes or API tokens: a token is named by its TokenID
// only.

// ObjectKind names the kind of object an audit entry is about: a
// registry (RegistryKind) or an account.
type ObjectKind string

// KindUser is the object kind of a user account, its password and its
// API tokens.
const KindUser ObjectKind = "user"

// ValidObjectKind reports whether k is a kind of object the audit trail
// records.
func ValidObjectKind(k ObjectKind) bool {
	return k == KindUser || k == KindCapacity || k == KindQuota || k == KindWaitlist || RegistryKind(k).Valid()
}

// AuditAction is what an administrative change did.
type AuditAction string

// The administrative actions on registry entries.
const (
	AuditCreate  AuditAction = "create"
	AuditUpdate  AuditAction = "update"
	AuditSuspend AuditAction = "suspend"
	AuditResume  AuditAction = "resume"
)

// The administrative actions on accounts.
const (
	AuditUserAdd        AuditAction = "user.add"
	AuditUserDisable    AuditAction = "user.disable"
	AuditUserEnable     AuditAction = "user.enable"
	AuditUserUnlock     AuditAction = "user.unlock"
	AuditPasswordReset  AuditAction = "user.password_reset"
	AuditPasswordChange AuditAction = "user.password_change"
	AuditTokenIssue     AuditAction = "token.issue"
	AuditTokenRevoke    AuditAction = "token.revoke"
)

// AuditEntry is one administrative change, stored in the same
// transaction as the change: who made it, when, to what, why, and the
// object's values before (none for a creation) and after, as JSON
// objects.
type AuditEntry struct {
	// Seq is the entry's position in the audit trail, assigned by the
	// store from 1 when it seals the entry.
	Seq uint64 `json:"seq"`
	// Time is when the change was made (the service clock, UTC).
	Time time.Time `json:"time"`
	// Actor is the ID of the user who made the change.
	Actor string `json:"actor"`
	// Kind and Code name the object changed: a registry and the entry's
	// code, or KindUser and the user's ID.
	Kind ObjectKind `json:"kind"`
	Code string     `json:"code"`
	// Action says what was done.
	Action AuditAction `json:"action"`
	// Reason is why, as the actor gave it.
	Reason string `json:"reason"`
	// Old and New are the object's values before and after, each a JSON
	// object (a registry entry as custody encodes it; an account's
	// changed values by name, AuditValues).
	Old json.RawMessage `json:"old,omitempty"`
	New json.RawMessage `json:"new"`
	// Prev is the hash of the entry before (zero for the first) and
	// Hash the hash of this one (SealAuditEntry).
	Prev Hash `json:"prev"`
	Hash Hash `json:"hash"`
}

// AuditValues encodes named values as an audit entry's Old or New: a JSON
// object with its names in order; nil for a nil map.
func AuditValues(m map[string]string) json.RawMessage {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m) // a map of strings always encodes, names sorted
	if err != nil {
		panic(err)
	}
	return b
}

// Validate checks an entry before it is stored: time, actor, kind, code,
// action and the new values are required, the texts are printable and
// the values JSON objects.
func (e AuditEntry) Validate() error {
	if e.Time.IsZero() {
		return fmt.Errorf("audit entry: time is required: %w", ErrInvalid)
	}
	if !ValidObjectKind(e.Kind) {
		return fmt.Errorf("audit entry: kind %q: %w", e.Kind, ErrInvalid)
	}
	for _, f := range []struct {
		n, v string
		max  int
	}{{"actor", e.Actor, 64}, {"action", string(e.Action), 64}, {"code", e.Code, 200}} {
		if err := validText("audit "+f.n, f.v, true, f.max); err != nil {
			return err
		}
	}
	for _, v := range []struct {
		n   string
		raw json.RawMessage
	}{{"new", e.New}, {"old", e.Old}} {
		var m map[string]json.RawMessage
		if (v.n == "new" || v.raw != nil) && (json.Unmarshal(v.raw, &m) != nil || m == nil) {
			return fmt.Errorf("audit entry: %s values must be a JSON object: %w", v.n, ErrInvalid)
		}
	}
	return validText("audit reason", e.Reason, false, maxReason)
}

// MaxReasonLen bounds the reason given for a change to an account (a
// registry change's may be longer, up to the trail's bound).
const MaxReasonLen = 500

// AuditFilter selects audit entries; zero fields select all.
type AuditFilter struct {
	// Kind and Code keep entries about this kind of object, and of them
	// the one object with this code.
	Kind ObjectKind
	Code string
	// Actor keeps entries of changes this user made.
	Actor string
	// From and To keep entries made at or after From (inclusive) and
	// before To (exclusive); a zero time leaves that end open.
	From, To time.Time
	// After keeps entries after the one numbered After (a page's last).
	After uint64
	// Limit keeps at most this many entries (<= 0: all): the first ones,
	// or with Newest the newest ones, in order either way.
	Limit  int
	Newest bool
}

// AuditClockSlack is how far an entry's time may lie before the entry
// sealed ahead of it (a service clock stepped back) and still be found by
// a period filter: the trail is in sequence order, which is time order but
// for such steps, so a store reading for a filter with To stops at the
// first entry at or after To plus this slack instead of reading the rest
// of a long trail.
const AuditClockSlack = 15 * time.Minute

// Validate checks a filter from a caller: a known kind, a code only with
// a kind, From before To when both are given, and a limit not below 0.
func (f AuditFilter) Validate() error {
	if f.Kind != "" && !ValidObjectKind(f.Kind) {
		return fmt.Errorf("audit filter: kind %q: %w", f.Kind, ErrInvalid)
	}
	if f.Code != "" && f.Kind == "" {
		return fmt.Errorf("audit filter: an object code needs its kind: %w", ErrInvalid)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return fmt.Errorf("audit filter: from %s is not before to %s: %w", f.From.UTC().Format(time.RFC3339), f.To.UTC().Format(time.RFC3339), ErrInvalid)
	}
	if f.Limit < 0 {
		return fmt.Errorf("audit filter: limit %d is negative: %w", f.Limit, ErrInvalid)
	}
	return nil
}

// Past reports whether e, and so (AuditClockSlack aside) every entry
// after it, was made after the period f selects: a store reading the
// trail in order may stop there.
func (f AuditFilter) Past(e AuditEntry) bool {
	return !f.To.IsZero() && !e.Time.Before(f.To.Add(AuditClockSlack))
}

// Match reports whether f selects e, its Limit aside. The period is
// half-open: From inclusive, To exclusive.
func (f AuditFilter) Match(e AuditEntry) bool {
	return e.Seq > f.After && (f.Kind == "" || e.Kind == f.Kind) && (f.Code == "" || e.Code == f.Code) &&
		(f.Actor == "" || e.Actor == f.Actor) && (f.From.IsZero() || !e.Time.Before(f.From)) &&
		(f.To.IsZero() || e.Time.Before(f.To))
}

// AuditLog keeps the administrative audit trail, append only.
type AuditLog interface {
	// AppendAudit stores e durably on its own as the trail's next entry,
	// sealed (SealAuditEntry), and returns it as stored. ErrInvalid: e
	// does not Validate.
	AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error)
	// AuditEntries returns the entries f selects, as sealed, in order.
	AuditEntries(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}
