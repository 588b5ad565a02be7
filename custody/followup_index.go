package custody

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The follow-up index: for each infused chain, what its overdue
// follow-ups are computed from (the infusion time, the product and the
// time points already recorded), kept by the store beside the chain's
// summary in the same transaction as each of its records
// (Draft.FollowUp), so the overdue list reads small rows instead of
// folding chains. The product's time points and grace window are read
// from the registry when the list is read, as before the index.

// FollowUpPending is an infused chain as the store's follow-up index
// keeps it.
type FollowUpPending struct {
	COI     COI
	Product string
	Sites   Sites
	// Infused is when the chain's infuse record was written.
	Infused time.Time
	// Done are the time points (days after infusion) the chain's
	// follow-up records name, in increasing order.
	Done []int
}

// FollowUpIndex is a store that keeps the follow-up index: the entry a
// draft leading to StateInfused carries (Draft.FollowUp), written in the
// same transaction as the record, and removed by a draft that takes the
// chain out of that state. Chains infused before the store kept the index
// get their entries when the store is opened for writing
// (FollowUpPendingOf).
type FollowUpIndex interface {
	// FollowUpPending calls fn with the entries of the chains after the
	// COI after, in COI order, until fn returns false. fn runs inside
	// the store's read and must not call the store. An error wrapping
	// errors.ErrUnsupported says the store holds no complete index now
	// (an older ledger opened read-only): the caller folds instead.
	FollowUpPending(ctx context.Context, after COI, fn func(FollowUpPending) bool) error
}

// FollowUpPendingOf is the follow-up index entry of a chain with records
// recs (in chain order); nil if no record infused it.
func FollowUpPendingOf(coi COI, product string, sites Sites, recs []Record) *FollowUpPending {
	var p *FollowUpPending
	for i := range recs {
		r := &recs[i]
		switch r.Step {
		case StepInfuse:
			if p == nil {
				p = &FollowUpPending{COI: coi, Product: product, Sites: sites, Infused: r.Time, Done: []int{}}
			}
		case StepFollowUp:
			x, err := r.Parsed()
			if f, ok := x.(FollowUpData); err == nil && ok && p != nil && !slices.Contains(p.Done, f.Day) {
				p.Done = append(p.Done, f.Day)
			}
		}
	}
	if p != nil {
		slices.Sort(p.Done)
	}
	return p
}

// withFollowUp sets the draft's follow-up index entry: the chain's once
// the record is appended, when the draft leaves it infused.
func withFollowUp(c *Chain, d Draft) Draft {
	if c == nil || d.State != StateInfused {
		return d
	}
	recs := append(slices.Clip(c.Records), d.Record)
	d.FollowUp = FollowUpPendingOf(c.COI, c.Product, c.Sites, recs)
	return d
}

// overdueOf is overdueFollowUps for an index entry.
func overdueOf(w FollowUpPending, p Product, now time.Time) []OverdueFollowUp {
	var out []OverdueFollowUp
	for _, day := range p.FollowUpTimePoints() {
		due := w.Infused.UTC().AddDate(0, 0, day)
		if slices.Contains(w.Done, day) || !now.After(due.AddDate(0, 0, p.FollowUpGrace())) {
			continue
		}
		out = append(out, OverdueFollowUp{COI: w.COI, Product: w.Product, Site: w.Sites.name(SiteTreatment), Day: day, Due: due,
			DaysLate: int(now.Sub(due) / (24 * time.Hour))})
	}
	return out
}

// overdueFromIndex is OverdueFollowUps from the follow-up index: the
// chains the user may read that have an overdue follow-up, at most limit
// of them, after the chain after; no chain is folded (but a courier's
// scope, decided by the chain's legs, as ChainsFor decides it).
func (s *Service) overdueFromIndex(ctx context.Context, idx FollowUpIndex, u User, after COI, limit int) ([]OverdueFollowUp, COI, error) {
	if limit < 1 || limit > MaxChainPage {
		return nil, "", fmt.Errorf("overdue follow-ups: chains: limit %d must be 1-%d: %w", limit, MaxChainPage, ErrInvalid)
	}
	now := s.Now()
	products := map[string]Product{}
	r := s.scope()
	out := []OverdueFollowUp{}
	chains := 0
	var last COI
	const batchSize = 512
	for {
		// The entries are read in batches, outside the store's read, so
		// the scope and the registry may be read between them.
		var batch []FollowUpPending
		err := idx.FollowUpPending(ctx, after, func(w FollowUpPending) bool {
			batch = append(batch, w)
			return len(batch) < batchSize
		})
		if err != nil {
			return nil, "", fmt.Errorf("overdue follow-ups: %w", err)
		}
		for _, w := range batch {
			p, ok := products[w.Product]
			if !ok {
				var err error
				if p, err = readEntry[Product](ctx, s, KindProduct, w.Product); err != nil && !errors.Is(err, ErrNotFound) {
					return nil, "", err
				}
				products[w.Product] = p
			}
			late := overdueOf(w, p, now)
			if len(late) == 0 {
				continue
			}
			ok, err := r.visibleInfo(ctx, u, ChainInfo{COI: w.COI, Product: w.Product, Sites: w.Sites, State: StateInfused})
			if err != nil {
				return nil, "", err
			}
			if !ok {
				continue
			}
			if chains == limit {
				return out, last, nil
			}
			out = append(out, late...)
			chains++
			last = w.COI
		}
		if len(batch) < batchSize {
			return out, "", nil
		}
		after = batch[len(batch)-1].COI
	}
}
