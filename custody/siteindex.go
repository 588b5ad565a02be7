package custody

import (
	"context"
	"errors"
)

// SiteStateCount is how many chains enrolled with one set of site names
// are in one state.
type SiteStateCount struct {
	// Sites are the chain's site names as enrolled (the zero Sites: the
	// chains whose summaries were kept before their sites were).
	Sites Sites
	// State is the chains' state.
	State State
	// N is how many chains have these sites and this state (1 or more).
	N int
}

// ChainSiteIndex is what a store that keeps an index of its chains by
// their site names and state, written in the transaction that appends the
// records, answers from it. A user bound to some of a network's sites may
// read a small part of a large store; the index lets the console count
// and page that part at a cost that follows it, not the store.
// errors.ErrUnsupported from either method: the index is not there (a file
// opened read-only before a writer built it); the caller then walks the
// summaries.
type ChainSiteIndex interface {
	// SiteStateCounts lists one entry for every pair of site names and
	// state that some chain has, with its count, in no particular order:
	// its cost follows the pairs (the network's routes times the states),
	// not the chains.
	SiteStateCounts(ctx context.Context) ([]SiteStateCount, error)
	// ChainsOfSitesAfter pages, in COI order, the summaries of the chains
	// enrolled with exactly the site names sites that are in state st:
	// those whose COI sorts after after (empty: from the first), at most
	// limit of them (1 or more; ErrInvalid otherwise). A page costs the
	// page.
	ChainsOfSitesAfter(ctx context.Context, sites Sites, st State, after COI, limit int) ([]ChainInfo, error)
}

// siteStream is one part of the chain-site index a scoped walk pages: the
// chains with one set of site names in one state.
type siteStream struct {
	SiteStateCount
	// check: the sites alone do not decide whether the user reads these
	// chains (the zero Sites of a summary kept before its sites were, or
	// a courier's question about shippers), so each is looked at
	// (visibleInfo).
	check bool
}

// siteScope is what the chain-site index says of the chains one user may
// read: by state, how many the user reads by their sites alone, how many
// chains there are in all, and the parts of the index to page for the
// user's chains.
type siteScope struct {
	idx     ChainSiteIndex
	allowed map[State]int
	total   map[State]int
	streams map[State][]siteStream
}

// siteScopeOf reads the chain-site index's counts and judges each set of
// site names for the user once (bySites). nil: the store keeps no index
// (or has not built it yet); the caller walks the summaries.
func (s *Service) siteScopeOf(ctx context.Context, r *scopeResolver, u User) (*siteScope, error) {
	idx, ok := s.store.(ChainSiteIndex)
	if !ok {
		return nil, nil
	}
	counts, err := idx.SiteStateCounts(ctx)
	if errors.Is(err, errors.ErrUnsupported) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sc := &siteScope{idx: idx, allowed: map[State]int{}, total: map[State]int{}, streams: map[State][]siteStream{}}
	verdicts := map[Sites]verdict{}
	for _, c := range counts {
		sc.total[c.State] += c.N
		v, seen := verdicts[c.Sites]
		switch {
		case seen:
		case c.Sites == (Sites{}):
			v = askLegs // decided chain by chain
		default:
			if v, err = r.bySites(ctx, u, c.Sites); err != nil {
				return nil, err
			}
		}
		verdicts[c.Sites] = v
		switch v {
		case allow:
			sc.allowed[c.State] += c.N
			sc.streams[c.State] = append(sc.streams[c.State], siteStream{SiteStateCount: c})
		case askLegs:
			sc.streams[c.State] = append(sc.streams[c.State], siteStream{SiteStateCount: c, check: true})
		}
	}
	return sc, nil
}

// plan returns the index's parts that hold the user's chains in the
// states, and reports whether paging them is cheaper, for a page of limit
// chains, than stepping over the summaries of every chain in the states:
// each part costs a seek and up to a page of summaries; the step-over
// walk reads about total/visible summaries for each chain it lists.
func (sc *siteScope) plan(states []State, limit int) (streams []siteStream, pages bool) {
	total, visible, cost := 0, 0, 0
	for _, st := range states {
		total += sc.total[st]
		for _, str := range sc.streams[st] {
			visible += str.N
			cost += 2 + min(limit+1, str.N)
			streams = append(streams, str)
		}
	}
	step := total
	if visible > 0 {
		step = min(total, (limit+1)*total/visible)
	}
	return streams, cost < step
}

// checked returns the streams whose chains are looked at one by one.
func checked(streams []siteStream) []siteStream {
	var out []siteStream
	for _, str := range streams {
		if str.check {
			out = append(out, str)
		}
	}
	return out
}

// eachOfStreams calls fn with the summary of every chain of the streams
// that the user may read, in COI order after the COI after, paging each
// stream from the index batch at a time and merging them; fn returning
// errStopWalk ends it without error. Its cost follows the streams' chains
// it reads, not the store.
func (s *Service) eachOfStreams(ctx context.Context, r *scopeResolver, u User, idx ChainSiteIndex, streams []siteStream, after COI, batch int, fn func(ChainInfo) error) error {
	type cursor struct {
		siteStream
		buf   []ChainInfo
		after COI
		ask   int
		done  bool
	}
	// A stream's first read asks for its share of a batch, by its count,
	// and each later one for twice as many, up to a batch: the merge
	// reads about the chains it passes on, not a batch from every stream.
	total := 0
	for _, str := range streams {
		total += str.N
	}
	cs := make([]*cursor, len(streams))
	for i, str := range streams {
		share := batch
		if total > 0 {
			share = batch*str.N/total + 1
		}
		cs[i] = &cursor{siteStream: str, after: after, ask: max(1, min(batch, share, str.N))}
	}
	fill := func(c *cursor) error {
		page, err := idx.ChainsOfSitesAfter(ctx, c.Sites, c.State, c.after, c.ask)
		if err != nil {
			return err
		}
		c.buf, c.done = page, len(page) < c.ask
		if len(page) > 0 {
			c.after = page[len(page)-1].COI
		}
		c.ask = min(batch, 2*c.ask)
		return nil
	}
	// A chain that moves from one state to another during the walk may
	// be read from both streams: the walk lists each COI once, in order.
	last := after
	for {
		var next *cursor
		for _, c := range cs {
			if len(c.buf) == 0 && !c.done {
				if err := fill(c); err != nil {
					return err
				}
			}
			if len(c.buf) > 0 && (next == nil || c.buf[0].COI < next.buf[0].COI) {
				next = c
			}
		}
		if next == nil {
			return nil
		}
		ci := next.buf[0]
		next.buf = next.buf[1:]
		if last != "" && ci.COI <= last {
			continue
		}
		last = ci.COI
		if stop, err := r.visit(ctx, u, ci, next.check, fn); stop || err != nil {
			return err
		}
	}
}

// TerminalIssueIndex is what a store that keeps an index of its chains in
// a terminal state (infused, cancelled) whose summaries count open issues,
// or keep no counts, answers from it: the few ended chains that still
// wait for QA, found without reading the many that do not.
// errors.ErrUnsupported: the index is not there (a file opened read-only
// before a writer built it); the caller then walks the terminal states.
type TerminalIssueIndex interface {
	// TerminalIssueChainsAfter pages, in COI order, the summaries of the
	// chains in a terminal state whose summaries count open issues or keep
	// no counts (OpenIssues.Kept false): those whose COI sorts after after
	// (empty: from the first), at most limit of them (1 or more;
	// ErrInvalid otherwise).
	TerminalIssueChainsAfter(ctx context.Context, after COI, limit int) ([]ChainInfo, error)
}

// WaitsInTerminalState reports whether the summary belongs in a
// TerminalIssueIndex: a chain in a terminal state whose summary counts
// open issues or keeps no counts.
func WaitsInTerminalState(ci *ChainInfo) bool {
	return ci.State.Terminal() && (!ci.OpenIssues.Kept || ci.OpenIssues.Total() > 0)
}
