package custody

import (
	"context"
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

// ConsoleFor gathers the QA console of the chains the user may read
// (MayRead): counts by state from the chain summaries, the chains with
// open issues (only those are folded, and the chains whose summaries keep
// no issue counts), and the page of the table of the chains in flight, or
// in state when it is not empty, that starts after the cursor after
// (empty: the first page; otherwise a Next the console gave), at most
// limit (1 to MaxConsolePage) chains. ErrForbidden: the user's role does
// not use the console (MayUseConsole).
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
	if after != "" {
		var err error
		if from.Updated, from.COI, err = parseConsoleCursor(after); err != nil {
			return Console{}, err
		}
	}
	p, err := s.visible(ctx, u, "", "", 0)
	if err != nil {
		return Console{}, err
	}
	v := Console{Counts: map[State]int{}, Issues: []*Chain{}, Chains: []ConsoleRow{}}
	// The table sorts references to the summaries, not copies of them.
	type ref struct {
		ci   *ChainInfo
		open int
	}
	var rows []ref
	for i := range p.Chains {
		ci := &p.Chains[i]
		v.Counts[ci.State]++
		if !ci.State.Terminal() {
			v.InFlight++
		}
		if ci.State == StateToManufacturing || ci.State == StateToTreatment {
			v.InTransit = append(v.InTransit, *ci)
		}
		open := ci.OpenIssues.Total()
		if !ci.OpenIssues.Kept || open > 0 {
			c, err := s.Chain(ctx, ci.COI) // listed by visible: readable
			if err != nil {
				return Console{}, err
			}
			if open = len(c.OpenIssues()); open > 0 {
				v.Issues = append(v.Issues, c)
			}
		}
		if (state == "" && !ci.State.Terminal()) || ci.State == state {
			rows = append(rows, ref{ci, open})
		}
	}
	v.Listed = len(rows)
	slices.SortFunc(rows, func(a, b ref) int { return consoleOrder(a.ci, b.ci) })
	i := 0
	if after != "" {
		i, _ = slices.BinarySearchFunc(rows, &from, func(r ref, t *ChainInfo) int { return consoleOrder(r.ci, t) })
		if i < len(rows) && rows[i].ci.COI == from.COI && rows[i].ci.Updated.Equal(from.Updated) {
			i++
		}
	}
	end := min(i+limit, len(rows))
	for _, r := range rows[i:end] {
		v.Chains = append(v.Chains, ConsoleRow{ChainInfo: *r.ci, OpenIssues: r.open})
	}
	if end < len(rows) {
		v.Next = consoleCursor(*rows[end-1].ci)
	}
	if v.AccessDeadlines, err = s.AccessDeadlines(ctx, u); err != nil {
		return Console{}, err
	}
	v.Attention = consoleAttention(v.Issues, v.AccessDeadlines)
	return v, nil
}
