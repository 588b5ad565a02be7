package custody

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Read scope: which chains a user may see. The rule is MayRead's; every
// read of a chain a user asks for (the chain, its legs and readings, its
// verification, its reports and labels, the lists) goes through it, and
// a chain the user may not read answers as not found, so its existence is
// never revealed.

// MaxChainPage is the most chain summaries one page of a list holds.
const MaxChainPage = 1000

// scopeResolver resolves site names and shipper IDs to registry entries
// once per request, so a list of thousands of chains naming a hundred
// sites reads each site once.
type scopeResolver struct {
	s        *Service
	sites    map[string]siteAnswer
	shippers map[string]string // shipper ID -> courier organisation ("" if unregistered)
}

type siteAnswer struct {
	site Site
	ok   bool
}

func (s *Service) scope() *scopeResolver {
	return &scopeResolver{s: s, sites: map[string]siteAnswer{}, shippers: map[string]string{}}
}

func (r *scopeResolver) site(ctx context.Context, name string) (Site, bool, error) {
	if a, seen := r.sites[name]; seen {
		return a.site, a.ok, nil
	}
	site, ok, err := r.s.registeredSite(ctx, name)
	if err != nil {
		return Site{}, false, err
	}
	r.sites[name] = siteAnswer{site, ok}
	return site, ok, nil
}

func (r *scopeResolver) courierOf(ctx context.Context, shipper string) (string, error) {
	if c, seen := r.shippers[shipper]; seen {
		return c, nil
	}
	var courier string
	if shipper != "" {
		sh, err := readEntry[Shipper](ctx, r.s, KindShipper, shipper)
		switch {
		case err == nil:
			courier = sh.Courier
		case !errors.Is(err, ErrNotFound):
			return "", err
		}
	}
	r.shippers[shipper] = courier
	return courier, nil
}

// verdict is what the sites alone say about a chain.
type verdict int

const (
	deny    verdict = iota // registered sites, none of them the user's
	allow                  // the user reads the chain
	askLegs                // only the chain's shippers can still allow a courier
)

// bySites applies the rule's parts that need only the chain's site names.
func (r *scopeResolver) bySites(ctx context.Context, u User, sites Sites) (verdict, error) {
	if u.Role == RoleAdmin {
		return allow, nil
	}
	registered := false
	for _, sr := range []SiteRole{SiteCollection, SiteManufacturing, SiteTreatment} {
		site, ok, err := r.site(ctx, sites.name(sr))
		if err != nil {
			return deny, err
		}
		if !ok {
			continue
		}
		registered = true
		if u.WorksAt(site.Code) {
			return allow, nil
		}
		if sr == SiteManufacturing && u.Role == RoleQA && u.Organisation != "" && site.Organisation == u.Organisation {
			return allow, nil
		}
	}
	if !registered {
		return allow, nil
	}
	if u.Role == RoleCourier && u.Organisation != "" {
		return askLegs, nil
	}
	return deny, nil
}

// byLegs allows a courier whose organisation owns a registered shipper
// used on one of the chain's legs.
func (r *scopeResolver) byLegs(ctx context.Context, u User, legs []Leg) (bool, error) {
	for _, l := range legs {
		courier, err := r.courierOf(ctx, l.Shipper)
		if err != nil {
			return false, err
		}
		if courier != "" && courier == u.Organisation {
			return true, nil
		}
	}
	return false, nil
}

func (r *scopeResolver) mayRead(ctx context.Context, u User, c *Chain) (bool, error) {
	v, err := r.bySites(ctx, u, c.Sites)
	if err != nil || v != askLegs {
		return v == allow, err
	}
	return r.byLegs(ctx, u, c.Legs)
}

// MayRead reports whether the user may read the chain. A user may read a
// chain when
//   - the user is an administrator; or
//   - none of the chain's site names resolves to a registered site (a
//     chain from before the network: readable as it always was); or
//   - the user works at one of the chain's registered sites; or
//   - the user is QA of the organisation owning the chain's registered
//     manufacturing site (the manufacturer's QA); or
//   - the user is a courier whose organisation owns a registered shipper
//     used on one of the chain's legs.
//
// A user bound to no organisation and no site therefore reads only chains
// from before the network (administrators read everything). The role
// rules (who sees patient identifiers, reports, the console) apply on top.
func (s *Service) MayRead(ctx context.Context, u User, c *Chain) (bool, error) {
	return s.scope().mayRead(ctx, u, c)
}

// notFound is the answer for a chain the user may not read: the same as
// for a chain that does not exist.
func notFound(coi COI) error { return fmt.Errorf("chain %s: %w", coi, ErrNotFound) }

// ReadChain returns the chain with its records, state and next steps when
// the user may read it (MayRead), ErrNotFound otherwise.
func (s *Service) ReadChain(ctx context.Context, u User, coi COI) (*Chain, error) {
	c, err := s.Chain(ctx, coi)
	if err != nil {
		return nil, err
	}
	ok, err := s.MayRead(ctx, u, c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound(coi)
	}
	return c, nil
}

// CheckRead returns ErrNotFound unless the chain exists and the user may
// read it; routes that read a chain through other methods (its legs,
// readings, verification) call it first.
func (s *Service) CheckRead(ctx context.Context, u User, coi COI) error {
	_, err := s.ReadChain(ctx, u, coi)
	return err
}

// ChainPage is one page of the chains a user may read, in COI order.
type ChainPage struct {
	Chains []ChainInfo
	// Next is the COI to pass as after for the following page; empty on
	// the last page.
	Next COI
}

// visibleInfo reports whether the user may read the chain the summary
// describes. The summary's sites decide when they can; a summary kept
// before sites were kept in it, or a courier's question about shippers,
// folds the chain (from the cache when it is there).
func (r *scopeResolver) visibleInfo(ctx context.Context, u User, ci ChainInfo) (bool, error) {
	if u.Role == RoleAdmin {
		return true, nil
	}
	if ci.Sites == (Sites{}) {
		c, err := r.s.Chain(ctx, ci.COI)
		if err != nil {
			return false, err
		}
		return r.mayRead(ctx, u, c)
	}
	v, err := r.bySites(ctx, u, ci.Sites)
	if err != nil || v != askLegs {
		return v == allow, err
	}
	c, err := r.s.Chain(ctx, ci.COI)
	if err != nil {
		return false, err
	}
	return r.byLegs(ctx, u, c.Legs)
}

// ChainsFor lists, in COI order, the summaries of the chains the user may
// read, filtered by state when state is not empty: at most limit of them
// (1 to MaxChainPage), starting after the COI after (empty: from the
// first).
func (s *Service) ChainsFor(ctx context.Context, u User, state State, after COI, limit int) (ChainPage, error) {
	if limit < 1 || limit > MaxChainPage {
		return ChainPage{}, fmt.Errorf("chains: limit %d must be 1-%d: %w", limit, MaxChainPage, ErrInvalid)
	}
	return s.visible(ctx, u, state, after, limit)
}

// VisibleChains lists, in COI order, every chain summary the user may
// read, filtered by state when state is not empty.
func (s *Service) VisibleChains(ctx context.Context, u User, state State) ([]ChainInfo, error) {
	p, err := s.visible(ctx, u, state, "", 0)
	return p.Chains, err
}

// visiblePage reads one page of the chains the user may read from the
// store's summaries in COI order (ChainStore.ChainsAfter), a batch at a
// time until the page holds limit of them and one more shows there is a
// next page: its cost follows the page and the summaries the user may
// not read that it steps over, not the whole store; or, when the first
// batch leaves the page short, the user reads few of the chains and the
// store keeps an index of them by sites, from that index onwards
// (visibleSitePage).
func (s *Service) visiblePage(ctx context.Context, u User, state State, after COI, limit int) (ChainPage, error) {
	r := s.scope()
	page := ChainPage{Chains: []ChainInfo{}}
	// The index by sites is considered once the first batch has not
	// filled the page: a user who reads most chains never pays for it.
	considered := u.Role == RoleAdmin
	batch := limit + 1
	for {
		infos, err := s.store.ChainsAfter(ctx, state, after, batch)
		if err != nil {
			return ChainPage{}, err
		}
		for _, ci := range infos {
			if ci.State.Access() {
				continue
			}
			ok, err := r.visibleInfo(ctx, u, ci)
			if err != nil {
				return ChainPage{}, err
			}
			if !ok {
				continue
			}
			if len(page.Chains) == limit {
				page.Next = page.Chains[limit-1].COI
				return page, nil
			}
			page.Chains = append(page.Chains, ci)
		}
		if len(infos) < batch {
			return page, nil
		}
		after = infos[len(infos)-1].COI
		if !considered {
			considered = true
			if done, err := s.visibleSitePage(ctx, r, u, state, after, limit, &page); done || err != nil {
				return page, err
			}
		}
	}
}

// visible pages the chains the user may read; limit 0 is no limit.
func (s *Service) visible(ctx context.Context, u User, state State, after COI, limit int) (ChainPage, error) {
	if state != "" && !slices.Contains(States, state) {
		return ChainPage{}, fmt.Errorf("chains: unknown state %q (one of %v): %w", state, States, ErrInvalid)
	}
	if limit > 0 {
		return s.visiblePage(ctx, u, state, after, limit)
	}
	all, err := s.store.Chains(ctx, state)
	if err != nil {
		return ChainPage{}, err
	}
	slices.SortFunc(all, func(a, b ChainInfo) int { return strings.Compare(string(a.COI), string(b.COI)) })
	r := s.scope()
	// The page keeps the visible summaries in all's own array: no copy of
	// thousands of them.
	page := ChainPage{Chains: all[:0]}
	for _, ci := range all {
		if after != "" && ci.COI <= after || ci.State.Access() {
			continue
		}
		ok, err := r.visibleInfo(ctx, u, ci)
		if err != nil {
			return ChainPage{}, err
		}
		if !ok {
			continue
		}
		if limit > 0 && len(page.Chains) == limit {
			page.Next = page.Chains[limit-1].COI
			break
		}
		page.Chains = append(page.Chains, ci)
	}
	if page.Chains == nil {
		page.Chains = []ChainInfo{}
	}
	return page, nil
}

// visibleSitePage fills page, up to limit chains, with the chains after
// the COI after from the parts of the chain-site index that hold the
// chains in state (any state but the access requests' when empty) the
// user may read, when the store keeps the index and paging those parts
// costs less than stepping over the summaries the user may not read; done
// reports whether it did.
func (s *Service) visibleSitePage(ctx context.Context, r *scopeResolver, u User, state State, after COI, limit int, page *ChainPage) (done bool, err error) {
	if state.Access() {
		return false, nil
	}
	sc, err := s.siteScopeOf(ctx, r, u)
	if sc == nil || err != nil {
		return false, err
	}
	states := []State{state}
	if state == "" {
		states = slices.DeleteFunc(slices.Clone(States), State.Access)
	}
	streams, pages := sc.plan(states, limit-len(page.Chains))
	if !pages {
		return false, nil
	}
	err = s.eachOfStreams(ctx, r, u, sc.idx, streams, after, limit+1, func(ci ChainInfo) error {
		if len(page.Chains) == limit {
			page.Next = page.Chains[limit-1].COI
			return errStopWalk
		}
		page.Chains = append(page.Chains, ci)
		return nil
	})
	return true, err
}
