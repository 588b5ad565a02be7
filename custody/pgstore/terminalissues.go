package pgstore

import (
	"context"
	"fmt"

	"github.com/coid-project/coid/custody"
	"github.com/jackc/pgx/v5"
)

// terminalIssuesSQL pages the chains that wait in a terminal state ($1
// the COI to start after, $2 the page's size): a range of the partial
// index chains_waiting (TestAppendPlansUseKeys).
const terminalIssuesSQL = `SELECT info FROM chains WHERE waiting AND coi > $1 ORDER BY coi LIMIT $2`

// TerminalIssueChainsAfter implements custody.TerminalIssueIndex from the
// chains' waiting column, which the append writes with each summary.
func (s *Store) TerminalIssueChainsAfter(ctx context.Context, after custody.COI, limit int) ([]custody.ChainInfo, error) {
	if limit < 1 {
		return nil, fmt.Errorf("terminal-issue chains: limit %d must be 1 or more: %w", limit, custody.ErrInvalid)
	}
	waits := func(ci *custody.ChainInfo) error {
		if !custody.WaitsInTerminalState(ci) {
			return fmt.Errorf("chain %s is marked as waiting but its summary waits for nothing: %w", ci.COI, custody.ErrChainBroken)
		}
		return nil
	}
	return s.queryChains(ctx, "terminal-issue chains", waits, terminalIssuesSQL, string(after), limit)
}

// checkTerminalIssues checks that each chain in a terminal state, and each
// chain marked as waiting, is marked as its summary says
// (custody.WaitsInTerminalState): a difference is an error wrapping
// custody.ErrChainBroken. It reads the terminal states' chains and the
// marked ones, not every chain.
func checkTerminalIssues(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT info, waiting FROM chains WHERE waiting OR state IN ('infused', 'cancelled')`)
	if err != nil {
		return fmt.Errorf("check the chains that wait in a terminal state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var info []byte
		var waiting bool
		if err := rows.Scan(&info, &waiting); err != nil {
			return fmt.Errorf("check the chains that wait in a terminal state: %w", err)
		}
		ci, err := decodeChain(info)
		if err != nil {
			return fmt.Errorf("check the chains that wait in a terminal state: %w", err)
		}
		if want := custody.WaitsInTerminalState(&ci); waiting != want {
			return fmt.Errorf("check the chains that wait in a terminal state: chain %s (%s, %d open issues counted, counts kept %v) is marked waiting %v: %w",
				ci.COI, ci.State, ci.OpenIssues.Total(), ci.OpenIssues.Kept, waiting, custody.ErrChainBroken)
		}
	}
	return rows.Err()
}
