package custody

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxConsolePage is the most chains one page of the QA console's chain
// table holds.
const MaxConsolePage = MaxChainPage

// Console is what the QA console shows of the chains a user may read: the
// counts by state, every chain with open issues, and one page of the
// chains in flight (or in one state).
type Console struct {
	// Counts counts the chains by state.
	Counts map[State]int
	// InFlight counts the chains in no terminal state.
	InFlight int
	// Issues are the chains with issues waiting for a QA disposition,
	// folded, in COI order: all of them, whatever the page.
	Issues []*Chain
	// Chains is the page of the table: the chains in flight, or in the
	// state asked for, most recently updated first.
	Chains []ConsoleRow
	// Listed is how many chains the table lists over all its pages.
	Listed int
	// Next is the after of the following page; empty on the last page.
	Next string
	// InTransit are the summaries of the chains in transit (to
	// manufacturing or to treatment), in COI order: the chains whose open
	// legs may carry hold-time warnings.
	InTransit []ChainInfo
	// AccessDeadlines are the after-the-fact steps owed by the
	// expanded-access requests the user may read (AccessDeadlines), such
	// as the IRB report after an emergency authorisation.
	AccessDeadlines []OwedDeadline
	// Attention counts what waits for someone, in AttentionOrder, the
	// panels with nothing waiting left out: open excursions, overdue
	// expanded-access deadlines and chains held for QA's disposition. The
	// console adds the quarantine's and the expiring qualifications'
	// panels from their own reads (SortAttention).
	Attention []AttentionPanel
}

// ConsoleRow is one chain of the console's table with its number of open
// issues.
type ConsoleRow struct {
	ChainInfo
	OpenIssues int
}

// consoleCursor is where a page of the console's table starts: after the
// chain with this update time and COI, in the table's order.
func consoleCursor(ci ChainInfo) string {
	return strconv.FormatInt(ci.Updated.UnixNano(), 10) + "-" + string(ci.COI)
}

func parseConsoleCursor(s string) (time.Time, COI, error) {
	ns, coi, ok := strings.Cut(s, "-")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || coi == "" {
		return time.Time{}, "", fmt.Errorf("console: after %q is not a page cursor the console gave: %w", s, ErrInvalid)
	}
	return time.Unix(0, n).UTC(), COI(coi), nil
}

// consoleOrder orders the table: most recently updated first, then by COI.
func consoleOrder(a, b *ChainInfo) int {
	if c := b.Updated.Compare(a.Updated); c != 0 {
		return c
	}
	return strings.Compare(string(a.COI), string(b.COI))
}

// ChainStateCounter is what a store that keeps an index of its chains by
// state can answer from it: how many chains are in a state, at a cost that
// follows the count, not the summaries. The console counts from it for the
// users who read every chain; errors.ErrUnsupported: the index is not
// there (the console then counts the summaries).
type ChainStateCounter interface {
	// CountChainsInState counts the chains in state st.
	CountChainsInState(ctx context.Context, st State) (int, error)
}

// consoleBatch is how many summaries the console reads from the store in
// one page while it walks the chains of one state.
const consoleBatch = 512

// terminalCursor starts the cursor of a table of chains in a terminal
// state, which pages in COI order (the store's) rather than by update.
const terminalCursor = "coi-"

// eachInState calls fn with the summary of every chain in state st the
// user may read, in COI order after the COI after, paging the store's
// index of chains by state (ChainsAfter) batch at a time, so that the walk
// costs the chains in st; fn returning errStopWalk ends it without error.
func (s *Service) eachInState(ctx context.Context, r *scopeResolver, u User, st State, all bool, after COI, batch int, fn func(ChainInfo) error) error {
	for {
		infos, err := s.store.ChainsAfter(ctx, st, after, batch)
		if err != nil {
			return err
		}
		for _, ci := range infos {
			if stop, err := r.visit(ctx, u, ci, !all, fn); stop || err != nil {
				return err
			}
		}
		if len(infos) < batch {
			return nil
		}
		after = infos[len(infos)-1].COI
	}
}

// errStopWalk, returned by eachInState's fn, ends the walk.
var errStopWalk = errors.New("stop the walk")

// visit calls fn with the summary ci of a walk, when check is false or
// the user may read the chain (visibleInfo); stop reports that the walk
// ends: fn returned errStopWalk (err nil) or another error (err).
func (r *scopeResolver) visit(ctx context.Context, u User, ci ChainInfo, check bool, fn func(ChainInfo) error) (stop bool, err error) {
	if check {
		ok, err := r.visibleInfo(ctx, u, ci)
		if err != nil || !ok {
			return err != nil, err
		}
	}
	if err := fn(ci); errors.Is(err, errStopWalk) {
		return true, nil
	} else if err != nil {
		return true, err
	}
	return false, nil
}

// readsEveryChain reports whether the user may read every chain of the
// store: an administrator, or anyone when no site is registered (every
// chain is then from before the network, readable as it always was).
func (s *Service) readsEveryChain(ctx context.Context, u User) (bool, error) {
	if u.Role == RoleAdmin {
		return true, nil
	}
	if u.Role == RoleCourier {
		return false, nil
	}
	sites, err := s.store.Entries(ctx, KindSite, "", 1)
	if err != nil {
		return false, err
	}
	return len(sites) == 0, nil
}

// ConsoleFor gathers the QA console of the chains the user may read
// (MayRead), at a cost that follows the chains in flight and the page,
// not the store:
//   - the counts of the states in flight from the summaries of the chains
//     in them (read from the store's index by state); those of the
//     terminal states from the store's count of its index
//     (ChainStateCounter) when the user reads every chain, otherwise from
//     the summaries in the state, scoped;
//   - the chains with open issues: the chains in flight whose summaries
//     count some (or keep no counts), the chains of the index of open
//     excursions (ExcursionChains) and the cancelled chains whose
//     summaries count some (an issue stays open on no infused chain: it
//     blocks infusion), each folded;
//   - the page of the table: the chains in flight, or in state when it is
//     not empty, most recently updated first (in COI order for a terminal
//     state, read page by page from the store), starting after the cursor
//     after (empty: the first page; otherwise a Next the console gave), at
//     most limit (1 to MaxConsolePage) chains.
//
// ErrForbidden: the user's role does not use the console (MayUseConsole).
func (s *Service) ConsoleFor(ctx context.Context, u User, state State, after string, limit int) (Console, error) {
	if !MayUseConsole(u.Role) {
		return Console{}, fmt.Errorf("console: %s may not use the QA console: %w", u.Role, ErrForbidden)
	}
	if limit < 1 || limit > MaxConsolePage {
		return Console{}, fmt.Errorf("console: limit %d must be 1-%d: %w", limit, MaxConsolePage, ErrInvalid)
	}
	if state != "" && !slices.Contains(States, state) {
		return Console{}, fmt.Errorf("console: unknown state %q (one of %v): %w", state, States, ErrInvalid)
	}
	var from ChainInfo
	var fromCOI COI
	if after != "" {
		if state.Terminal() {
			c, ok := strings.CutPrefix(after, terminalCursor)
			if !ok || c == "" {
				return Console{}, fmt.Errorf("console: after %q is not a page cursor the console gave: %w", after, ErrInvalid)
			}
			fromCOI = COI(c)
		} else {
			var err error
			if from.Updated, from.COI, err = parseConsoleCursor(after); err != nil {
				return Console{}, err
			}
		}
	}
	all, err := s.readsEveryChain(ctx, u)
	if err != nil {
		return Console{}, err
	}
	r := s.scope()
	var sc *siteScope
	if !all {
		if sc, err = s.siteScopeOf(ctx, r, u); err != nil {
			return Console{}, err
		}
	}
	// walk calls fn with the chains in state st the user may read: from
	// the chain-site index's parts that hold them when the store keeps
	// it, the user reads only some chains and those parts cost less than
	// the state's chains, otherwise from the index by state.
	walk := func(st State, fn func(ChainInfo) error) error {
		if sc != nil {
			if streams, pages := sc.plan([]State{st}, sc.total[st]); pages {
				return s.eachOfStreams(ctx, r, u, sc.idx, streams, "", consoleBatch, fn)
			}
		}
		return s.eachInState(ctx, r, u, st, all, "", consoleBatch, fn)
	}
	v := Console{Counts: map[State]int{}, Issues: []*Chain{}, Chains: []ConsoleRow{}}
	issues := map[COI]int{}
	addIssues := func(coi COI) (int, error) {
		if n, seen := issues[coi]; seen {
			return n, nil
		}
		c, err := s.Chain(ctx, coi)
		if err != nil {
			return 0, err
		}
		n := len(c.OpenIssues())
		issues[coi] = n
		if n > 0 {
			v.Issues = append(v.Issues, c)
		}
		return n, nil
	}
	type row struct {
		ci   ChainInfo
		open int
	}
	var rows []row
	for _, st := range States {
		if st.Terminal() {
			continue
		}
		err := walk(st, func(ci ChainInfo) error {
			if ci.State.Access() {
				return nil
			}
			v.Counts[ci.State]++
			v.InFlight++
			if ci.State == StateToManufacturing || ci.State == StateToTreatment {
				v.InTransit = append(v.InTransit, ci)
			}
			open := ci.OpenIssues.Total()
			if !ci.OpenIssues.Kept || open > 0 {
				var err error
				if open, err = addIssues(ci.COI); err != nil {
					return err
				}
			}
			if state == "" || ci.State == state {
				rows = append(rows, row{ci, open})
			}
			return nil
		})
		if err != nil {
			return Console{}, err
		}
	}
	// The terminal states. Their counts: from the store's count of its
	// index by state when the user reads every chain, from the chain-site
	// index's counts of the sites that let the user read them otherwise
	// (the chains the sites alone do not decide looked at), or from a walk
	// of the state's chains. The ended chains with open issues (a chain
	// can be cancelled with one open; an infused chain holds none but an
	// excursion, found below): from the store's index of them when it
	// keeps one, otherwise read in the walk of the cancelled chains.
	waiting, haveWaiting, err := s.terminalWaiting(ctx)
	if err != nil {
		return Console{}, err
	}
	counter, _ := s.store.(ChainStateCounter)
	for _, st := range []State{StateInfused, StateCancelled} {
		readIssues := st == StateCancelled && !haveWaiting
		if all && counter != nil && !readIssues {
			n, err := counter.CountChainsInState(ctx, st)
			switch {
			case err == nil:
				if n > 0 {
					v.Counts[st] = n
				}
				continue
			case !errors.Is(err, errors.ErrUnsupported):
				return Console{}, err
			}
		}
		count := func(ci ChainInfo) error {
			v.Counts[st]++
			if readIssues && (!ci.OpenIssues.Kept || ci.OpenIssues.Total() > 0) {
				_, err := addIssues(ci.COI)
				return err
			}
			return nil
		}
		var err error
		if sc != nil && !readIssues {
			if n := sc.allowed[st]; n > 0 {
				v.Counts[st] = n
			}
			err = s.eachOfStreams(ctx, r, u, sc.idx, checked(sc.streams[st]), "", consoleBatch, count)
		} else {
			err = walk(st, count)
		}
		if err != nil {
			return Console{}, err
		}
	}
	for _, ci := range waiting {
		_, err := r.visit(ctx, u, ci, !all, func(ci ChainInfo) error {
			_, err := addIssues(ci.COI)
			return err
		})
		if err != nil {
			return Console{}, err
		}
	}
	// Open excursions of chains no longer in flight, from their index.
	for before := COI(""); ; {
		cois, err := s.store.ExcursionChains(ctx, true, before, consoleBatch)
		if err != nil {
			return Console{}, err
		}
		for _, coi := range cois {
			if _, seen := issues[coi]; seen {
				continue
			}
			ci, err := s.store.Chain(ctx, coi)
			if err != nil {
				return Console{}, err
			}
			if !ci.State.Terminal() || ci.State.Access() {
				continue // in flight: seen above, or not readable
			}
			if !all {
				ok, err := r.visibleInfo(ctx, u, ci)
				if err != nil {
					return Console{}, err
				}
				if !ok {
					continue
				}
			}
			if _, err := addIssues(coi); err != nil {
				return Console{}, err
			}
		}
		if len(cois) < consoleBatch {
			break
		}
		before = cois[len(cois)-1]
	}
	slices.SortFunc(v.Issues, func(a, b *Chain) int { return strings.Compare(string(a.COI), string(b.COI)) })
	if state.Terminal() {
		if err := s.terminalPage(ctx, r, u, all, sc, state, fromCOI, limit, issues, &v); err != nil {
			return Console{}, err
		}
	} else {
		v.Listed = len(rows)
		slices.SortFunc(rows, func(a, b row) int { return consoleOrder(&a.ci, &b.ci) })
		i := 0
		if after != "" {
			i, _ = slices.BinarySearchFunc(rows, &from, func(r row, t *ChainInfo) int { return consoleOrder(&r.ci, t) })
			if i < len(rows) && rows[i].ci.COI == from.COI && rows[i].ci.Updated.Equal(from.Updated) {
				i++
			}
		}
		end := min(i+limit, len(rows))
		for _, r := range rows[i:end] {
			v.Chains = append(v.Chains, ConsoleRow{ChainInfo: r.ci, OpenIssues: r.open})
		}
		if end < len(rows) {
			v.Next = consoleCursor(rows[end-1].ci)
		}
	}
	if v.AccessDeadlines, err = s.AccessDeadlines(ctx, u); err != nil {
		return Console{}, err
	}
	v.Attention = consoleAttention(v.Issues, v.AccessDeadlines)
	return v, nil
}

// terminalPage fills the console's table of the chains in terminal state
// st, in COI order after the COI after, from the store's order of its
// chains in st: a page costs the page, and, for a scoped user, either the
// chains it may not read that it steps over or, when that would cost
// more, the parts of the chain-site index that hold the user's chains
// (sc, nil without the index).
func (s *Service) terminalPage(ctx context.Context, r *scopeResolver, u User, all bool, sc *siteScope, st State, after COI, limit int, issues map[COI]int, v *Console) error {
	v.Listed = v.Counts[st]
	add := func(ci ChainInfo) error {
		if len(v.Chains) == limit {
			v.Next = terminalCursor + string(v.Chains[limit-1].COI)
			return errStopWalk
		}
		v.Chains = append(v.Chains, ConsoleRow{ChainInfo: ci, OpenIssues: issues[ci.COI]})
		return nil
	}
	if sc != nil {
		if streams, pages := sc.plan([]State{st}, limit); pages {
			return s.eachOfStreams(ctx, r, u, sc.idx, streams, after, limit+1, add)
		}
	}
	return s.eachInState(ctx, r, u, st, all, after, limit+1, add)
}

// terminalWaiting reads the chains in a terminal state that wait for QA
// from the store's index of them (TerminalIssueIndex); have is false when
// the store keeps none.
func (s *Service) terminalWaiting(ctx context.Context) (waiting []ChainInfo, have bool, err error) {
	ti, ok := s.store.(TerminalIssueIndex)
	if !ok {
		return nil, false, nil
	}
	for after := COI(""); ; {
		page, err := ti.TerminalIssueChainsAfter(ctx, after, consoleBatch)
		if errors.Is(err, errors.ErrUnsupported) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		waiting = append(waiting, page...)
		if len(page) < consoleBatch {
			return waiting, true, nil
		}
		after = page[len(page)-1].COI
	}
}
