package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable/witness"
)

const witnessedHelp = `Lists, offline and read-only, the checkpoints that independent witnesses
cosigned (C2SP tlog-witness; coid serve --witness), smallest first: the
tree size, whether the cosigners reach --quorum, and who cosigned. Every
cosignature listed was verified against its witness's key before it was
kept. Page with --after (the last size printed) and --limit.
`

// runWitnessed runs "coid witnessed": the cosigned checkpoints of the
// ledger in --data, and which reached the quorum.
func runWitnessed(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	var s settings
	fs := newFlags("witnessed", env, stderr, &s)
	quorum := fs.Int("quorum", envInt(env, "COID_WITNESS_QUORUM", 1), "cosigners a checkpoint needs to count as witnessed (COID_WITNESS_QUORUM)")
	after := fs.Int64("after", 0, "list checkpoints larger than this size (the last one of the previous page)")
	limit := fs.Int("limit", 100, fmt.Sprintf("list at most this many checkpoints (1-%d)", custody.MaxCosignedPage))
	if err := parse(fs, args); err != nil {
		return err
	}
	if *quorum < 1 || *after < 0 || *limit < 1 || *limit > custody.MaxCosignedPage {
		return usagef("witnessed: --quorum 1 or more, --after 0 or more, --limit 1-%d", custody.MaxCosignedPage)
	}
	if !hasLedger(s) {
		return fmt.Errorf("witnessed: no ledger at %s (check --data): %w", ledgerFile(s.data), custody.ErrNotFound)
	}
	st, err := openStores(s.data, storeOptions{readOnly: true, url: s.store, cmd: "witnessed"})
	if err != nil {
		return fmt.Errorf("witnessed: %w", err)
	}
	defer st.close()
	page, err := st.cosignatures.CosignedCheckpoints(ctx, *after, *limit)
	if err != nil {
		return fmt.Errorf("witnessed: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SIZE\tQUORUM\tWITNESSES")
	for _, c := range witness.MarkQuorum(page, nil, *quorum) {
		q := "no"
		if c.Quorum {
			q = "yes"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", c.Size, q, strings.Join(c.Witnesses, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(page) == *limit {
		fmt.Fprintf(stderr, "more: coid witnessed --after %d\n", page[len(page)-1].Size)
	}
	return nil
}
