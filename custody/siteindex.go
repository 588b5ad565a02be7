package custody

import (
	"context"
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
