package custody

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Quotas returns the quotas set, in key order (every user who reads the
// registries).
func (s *Service) Quotas(ctx context.Context, actor User) ([]Quota, error) {
	if err := requireRegistryReader("read quotas", actor); err != nil {
		return nil, err
	}
	qs, err := s.quotas(ctx)
	if err != nil {
		return nil, fmt.Errorf("read quotas: %w", err)
	}
	out := make([]Quota, 0, len(qs))
	for _, k := range slices.Sorted(maps.Keys(qs)) {
		out = append(out, qs[k])
	}
	return out, nil
}

// QuotasPage lists one page of the quotas in key order: at most limit (1
// to MaxRegistryPage) of them whose key sorts after after (empty: from the
// first), and the key to pass as after for the next page (empty on the
// last page).
func (s *Service) QuotasPage(ctx context.Context, actor User, after string, limit int) ([]Quota, string, error) {
	if err := requireRegistryReader("read quotas", actor); err != nil {
		return nil, "", err
	}
	if limit < 1 || limit > MaxRegistryPage {
		return nil, "", fmt.Errorf("read quotas: limit %d must be 1-%d: %w", limit, MaxRegistryPage, ErrInvalid)
	}
	raw, err := s.store.QuotasAfter(ctx, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("read quotas: %w", err)
	}
	next := ""
	if len(raw) > limit {
		raw, next = raw[:limit], raw[limit-1].Key
	}
	out := make([]Quota, 0, len(raw))
	for _, e := range raw {
		var q Quota
		if err := json.Unmarshal(e.Value, &q); err != nil {
			return nil, "", fmt.Errorf("stored quota %s is malformed: %v: %w", e.Key, err, ErrDamaged)
		}
		out = append(out, q)
	}
	return out, next, nil
}

func (s *Service) quotas(ctx context.Context) (map[string]Quota, error) {
	raw, err := s.store.Quotas(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Quota, len(raw))
	for k, v := range raw {
		var q Quota
		if err := json.Unmarshal(v, &q); err != nil {
			return nil, fmt.Errorf("stored quota %s is malformed: %v: %w", k, err, ErrDamaged)
		}
		out[k] = q
	}
	return out, nil
}

// SetQuota sets the slots a month treatment centre q.Centre may book at
// manufacturing site q.Plant (MaySetQuotas, with a reason): both sites
// registered, of their kinds. Lowering a quota below what a centre has
// booked moves no booking; it refuses the next ones. The quota and its
// audit entry are stored together.
func (s *Service) SetQuota(ctx context.Context, actor User, q Quota, reason string) (Quota, error) {
	op := fmt.Sprintf("set quota %s", q.Key())
	if !MaySetQuotas(actor, q.Plant) {
		return Quota{}, fmt.Errorf("%s: the plant's programme lead (QA working there) or an administrator sets its quotas: %w", op, ErrForbidden)
	}
	if err := validReason(op, reason); err != nil {
		return Quota{}, err
	}
	if err := q.Validate(); err != nil {
		return Quota{}, fmt.Errorf("%s: %w", op, err)
	}
	for _, x := range []struct {
		code string
		kind SiteRole
	}{{q.Plant, SiteManufacturing}, {q.Centre, SiteTreatment}} {
		site, err := readEntry[Site](ctx, s, KindSite, x.code)
		if errors.Is(err, ErrNotFound) {
			return Quota{}, fmt.Errorf("%s: site %s is not registered: %w", op, x.code, ErrInvalid)
		}
		if err != nil {
			return Quota{}, fmt.Errorf("%s: %w", op, err)
		}
		if !site.HasKind(x.kind) {
			return Quota{}, fmt.Errorf("%s: site %s is not a %s site: %w", op, x.code, x.kind, ErrInvalid)
		}
	}
	q.Updated = s.Now()
	val, err := json.Marshal(q)
	if err != nil {
		return Quota{}, err
	}
	err = s.store.UpdateQuota(ctx, q.Key(), func(old []byte) ([]byte, AuditEntry, error) {
		return val, AuditEntry{Time: s.Now(), Actor: actor.ID, Kind: KindQuota, Code: q.Key(), Action: AuditQuotaSet,
			Reason: reason, Old: old, New: val}, nil
	})
	if err != nil {
		return Quota{}, fmt.Errorf("%s: %w", op, err)
	}
	s.log.Info("quota set", "quota", q.Key(), "slots", q.Slots, "by", actor.ID)
	return q, nil
}

// DeleteQuota removes the quota of plant and centre, with a reason
// (MaySetQuotas): the centre is no longer throttled there.
// ErrNotFound: no such quota.
func (s *Service) DeleteQuota(ctx context.Context, actor User, plant, centre, reason string) error {
	key := QuotaKey(plant, centre)
	op := "delete quota " + key
	if !MaySetQuotas(actor, plant) {
		return fmt.Errorf("%s: the plant's programme lead (QA working there) or an administrator sets its quotas: %w", op, ErrForbidden)
	}
	if err := validReason(op, reason); err != nil {
		return err
	}
	err := s.store.UpdateQuota(ctx, key, func(old []byte) ([]byte, AuditEntry, error) {
		if old == nil {
			return nil, AuditEntry{}, fmt.Errorf("no quota is set: %w", ErrNotFound)
		}
		return nil, AuditEntry{Time: s.Now(), Actor: actor.ID, Kind: KindQuota, Code: key, Action: AuditQuotaDelete,
			Reason: reason, Old: old, New: json.RawMessage(`{}`)}, nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// QuotaUses returns how many bookings count against each quota key in
// period (YYYY-MM) (every user who reads the registries).
func (s *Service) QuotaUses(ctx context.Context, actor User, period string) (map[string]int, error) {
	if err := requireRegistryReader("read quota uses", actor); err != nil {
		return nil, err
	}
	if len(period) != 7 || validDate("period", period+"-01", true) != nil {
		return nil, fmt.Errorf("quota uses: period %q must be YYYY-MM: %w", period, ErrInvalid)
	}
	return s.store.QuotaUses(ctx, period)
}
