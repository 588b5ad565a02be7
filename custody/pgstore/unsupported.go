package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/coid-project/coid/custody"
)

// The parts of custody's store contract this backend does not implement
// yet. Each answers errors.ErrUnsupported, naming the part, and changes
// nothing; the conformance suite is told the same (Lacks in its test).

// unsupported is the error of a part of the contract not implemented yet.
func unsupported(part string) error {
	return fmt.Errorf("postgres store: %s: %w", part, errors.ErrUnsupported)
}

// Part names, as the errors and the conformance test name them.
const (
	partSchedule = "scheduling"
	partQuota    = "quotas and the waiting list"
)

// UpdateCapacity is not implemented yet (errors.ErrUnsupported).
func (s *Store) UpdateCapacity(context.Context, string, func(old []byte) ([]byte, custody.AuditEntry, error)) error {
	return unsupported(partSchedule)
}

// Capacity is not implemented yet (errors.ErrUnsupported).
func (s *Store) Capacity(context.Context, string) ([]byte, error) {
	return nil, unsupported(partSchedule)
}

// SiteSlots is not implemented yet (errors.ErrUnsupported).
func (s *Store) SiteSlots(context.Context, []string, string, int, string, string) ([]custody.SiteSlots, error) {
	return nil, unsupported(partSchedule)
}

// SiteClaims is not implemented yet (errors.ErrUnsupported).
func (s *Store) SiteClaims(context.Context, string, string, string, int) ([]custody.HeldClaim, error) {
	return nil, unsupported(partSchedule)
}

// UpdateQuota is not implemented yet (errors.ErrUnsupported).
func (s *Store) UpdateQuota(context.Context, string, func(old []byte) ([]byte, custody.AuditEntry, error)) error {
	return unsupported(partQuota)
}

// Quotas is not implemented yet (errors.ErrUnsupported).
func (s *Store) Quotas(context.Context) (map[string][]byte, error) {
	return nil, unsupported(partQuota)
}

// QuotaUses is not implemented yet (errors.ErrUnsupported).
func (s *Store) QuotaUses(context.Context, string) (map[string]int, error) {
	return nil, unsupported(partQuota)
}

// UpdateWaitlist is not implemented yet (errors.ErrUnsupported).
func (s *Store) UpdateWaitlist(context.Context, custody.COI, func(old []byte) ([]byte, []custody.AuditEntry, error)) error {
	return unsupported(partQuota)
}

// UpdateWaitlistHold is not implemented yet (errors.ErrUnsupported).
func (s *Store) UpdateWaitlistHold(context.Context, custody.COI, *custody.Claim, func(old []byte) ([]byte, []custody.AuditEntry, error)) error {
	return unsupported(partQuota)
}

// Waitlist is not implemented yet (errors.ErrUnsupported).
func (s *Store) Waitlist(context.Context) ([][]byte, error) {
	return nil, unsupported(partQuota)
}
