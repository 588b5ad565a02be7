package custody

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
)

// The audit trail of account and registry changes is a hash chain of its
// own: each entry carries the hash of the entry before it and a hash of
// its own content, so a changed, removed or reordered entry is found by
// VerifyAuditEntry. A store seals each entry with SealAuditEntry as it
// writes it, inside the transaction of the change.

// auditHash is the SHA-256 of a's JSON encoding with its Hash zero.
func auditHash(a AuditEntry) (Hash, error) {
	a.Hash = Hash{}
	b, err := json.Marshal(a)
	if err != nil {
		return Hash{}, fmt.Errorf("audit entry %d: %w", a.Seq, err)
	}
	return sha256.Sum256(b), nil
}

// SealAuditEntry numbers a as entry seq of the trail, links it to prev
// (the trail's last entry; nil when a is the first) and sets its Hash.
func SealAuditEntry(a *AuditEntry, seq uint64, prev *AuditEntry) error {
	a.Seq, a.Prev = seq, Hash{}
	a.Time = a.Time.UTC()
	if prev != nil {
		a.Prev = prev.Hash
	}
	h, err := auditHash(*a)
	if err != nil {
		return err
	}
	a.Hash = h
	return nil
}

// VerifyAuditEntry checks a against its own hash and its link to prev,
// the entry before it (nil for the first entry, which must be number 1):
// an ErrChainBroken names what does not match.
func VerifyAuditEntry(a AuditEntry, prev *AuditEntry) error {
	h, err := auditHash(a)
	if err != nil {
		return fmt.Errorf("%v: %w", err, ErrChainBroken)
	}
	switch {
	case h != a.Hash:
		return fmt.Errorf("audit entry %d does not match its hash: %w", a.Seq, ErrChainBroken)
	case prev == nil && (a.Seq != 1 || !a.Prev.IsZero()):
		return fmt.Errorf("audit entry %d is first but is not entry 1 with no previous hash: %w", a.Seq, ErrChainBroken)
	case prev != nil && a.Seq != prev.Seq+1:
		return fmt.Errorf("audit entry %d follows entry %d: %w", a.Seq, prev.Seq, ErrChainBroken)
	case prev != nil && a.Prev != prev.Hash:
		return fmt.Errorf("audit entry %d does not link to entry %d's hash: %w", a.Seq, prev.Seq, ErrChainBroken)
	}
	return nil
}

// VerifyAuditTrail checks a whole trail, from its first entry, in order.
func VerifyAuditTrail(entries []AuditEntry) error {
	var prev *AuditEntry
	for i := range entries {
		if err := VerifyAuditEntry(entries[i], prev); err != nil {
			return err
		}
		prev = &entries[i]
	}
	return nil
}
