package custody

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// MaxExcursionPage is the most excursions one page of the excursion list
// asks for; DefaultExcursionPage is the size of a page when none is asked.
const (
	MaxExcursionPage     = 500
	DefaultExcursionPage = 50
)

// excursionScanChains is how many chains with excursions one page of the
// list reads at most, per excursion asked for, before it answers: a user
// who may read few of them, or a filter few match, gets a short page and
// a cursor to follow, and a request's cost stays bounded by its page.
const excursionScanChains = 8

// ExcursionQuery asks for one page of the excursion list.
type ExcursionQuery struct {
	// Open keeps only the excursions still awaiting a QA disposition.
	Open bool
	// Site keeps the excursions of chains one of whose sites has this
	// registered code, or this name; empty: every site.
	Site string
	// From and To keep the excursions that started at or after From and
	// before To; zero: unbounded.
	From, To time.Time
	// Before is the cursor: the page starts with the chains before it in
	// the list's order (ExcursionPage.Next); empty: from the first.
	Before COI
	// Limit is how many excursions the page holds at most, 1 to
	// MaxExcursionPage, but a chain's excursions are never split across
	// pages, so a page exceeds it by fewer than one chain's excursions.
	Limit int
}

// ExcursionPage is one page of the excursion list.
type ExcursionPage struct {
	// Excursions are the page's excursions: chains newest (greatest COI)
	// first, each chain's excursions newest first.
	Excursions []ExcursionEntry
	// Next is the cursor for the following page (ExcursionQuery.Before);
	// empty when there is none. A page may hold fewer excursions than
	// asked, even none, and still have a Next: it stopped after reading
	// its share of chains.
	Next COI
}

// ExcursionsPage returns one page of the excursions of the chains the
// user may read, from the store's excursion index (ChainStore.
// ExcursionChains): the cost of a page grows with the page, not with the
// store.
func (s *Service) ExcursionsPage(ctx context.Context, u User, q ExcursionQuery) (ExcursionPage, error) {
	if q.Limit < 1 || q.Limit > MaxExcursionPage {
		return ExcursionPage{}, fmt.Errorf("excursions: limit %d must be 1-%d: %w", q.Limit, MaxExcursionPage, ErrInvalid)
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return ExcursionPage{}, fmt.Errorf("excursions: from %s must be before to %s: %w", FormatTime(q.From), FormatTime(q.To), ErrInvalid)
	}
	r := s.scope()
	page := ExcursionPage{Excursions: []ExcursionEntry{}}
	budget, before := excursionScanChains*q.Limit, q.Before
	for budget > 0 {
		n := min(budget, q.Limit+1)
		cois, err := s.store.ExcursionChains(ctx, q.Open, before, n)
		if err != nil {
			return ExcursionPage{}, fmt.Errorf("excursions: %w", err)
		}
		for _, coi := range cois {
			budget--
			before = coi
			exc, err := r.chainExcursions(ctx, u, coi, q)
			if err != nil {
				return ExcursionPage{}, err
			}
			page.Excursions = append(page.Excursions, exc...)
			if len(page.Excursions) >= q.Limit || budget == 0 {
				page.Next = coi
				return page, nil
			}
		}
		if len(cois) < n {
			return page, nil // the index has no more
		}
	}
	page.Next = before
	return page, nil
}

// chainExcursions returns the chain's excursions that the query keeps,
// newest first, when the user may read the chain; none otherwise.
func (r *scopeResolver) chainExcursions(ctx context.Context, u User, coi COI, q ExcursionQuery) ([]ExcursionEntry, error) {
	c, err := r.s.Chain(ctx, coi)
	if err != nil {
		return nil, fmt.Errorf("excursions: %w", err)
	}
	if c.State.Access() {
		return nil, nil
	}
	if ok, err := r.mayRead(ctx, u, c); err != nil || !ok {
		return nil, err
	}
	if q.Site != "" {
		ok, err := r.atSite(ctx, c.Sites, q.Site)
		if err != nil || !ok {
			return nil, err
		}
	}
	all, err := excursionEntries(c)
	if err != nil {
		return nil, fmt.Errorf("excursions: %w", err)
	}
	out := all[:0]
	for _, e := range all {
		if q.Open && !e.Open || !q.From.IsZero() && e.Start.Before(q.From) || !q.To.IsZero() && !e.Start.Before(q.To) {
			continue
		}
		out = append(out, e)
	}
	slices.Reverse(out)
	return out, nil
}

// atSite reports whether one of the chain's sites is named site or
// resolves to a registered site with the code site.
func (r *scopeResolver) atSite(ctx context.Context, sites Sites, site string) (bool, error) {
	for _, sr := range []SiteRole{SiteCollection, SiteManufacturing, SiteTreatment} {
		name := sites.name(sr)
		if name == "" {
			continue
		}
		if name == site {
			return true, nil
		}
		reg, ok, err := r.site(ctx, name)
		if err != nil {
			return false, err
		}
		if ok && reg.Code == site {
			return true, nil
		}
	}
	return false, nil
}
