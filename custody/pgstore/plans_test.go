package pgstore

import (
	"cmp"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/coid-project/coid/custody/pgstore/pgtest"
)

// TestAppendPlansUseKeys checks that the append's statements that change
// rows of a table that grows with the chains find them through the table's
// primary key in their generic plan, the one a connection caches after a
// statement's first executions and keeps until the table is analyzed
// again. Planned on the empty tables of a new store, where a scan of
// every row looks cheapest, a plan that could scan would go on scanning
// every summary each batch as the table grows. A page of the chains of
// one pair of sites and state is a range of chains_sites, and the count
// of a state a range of the counts' state index.
func TestAppendPlansUseKeys(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, sql, args, table string
		index                  string // table+"_pkey" when empty
	}{
		{"chains", replaceChainsSQL, `('{a}', '{enrolled}', '{"\\x7b7d"}', '{false}')`, "chains", ""},
		{"waiting", terminalIssuesSQL, `('', 50)`, "chains", "chains_waiting"},
		{"excursions", excursionOpenSQL, `('{a}', '{true}')`, "excursion_chains", ""},
		{"slots", slotUsedSQL, `('{S1}', '{2026-12-01}', '{P}')`, "slot_used", ""},
		{"quotas", quotaUsedSQL, `('{2026-12}', '{P/C}')`, "quota_used", ""},
		{"slots_zero", slotUsedZeroSQL, `('{S1}', '{2026-12-01}', '{P}')`, "slot_used", ""},
		{"quotas_zero", quotaUsedZeroSQL, `('{2026-12}', '{P/C}')`, "quota_used", ""},
		{"site_counts", siteCountsSQL, `('{"\\x00"}', '{enrolled}', '{"\\x"}', '{"\\x"}', '{"\\x"}', '{1}')`, "chain_site_counts", ""},
		{"site_states", siteStatesSQL, `('{a}', '{enrolled}')`, "chain_sites", ""},
		{"sites_page", chainsOfSitesSQL, `('\x', '\x', '\x', 'enrolled', '', 50)`, "chain_sites", "chain_sites_page"},
		{"state_count", stateCountSQL, `('enrolled')`, "chain_site_counts", "chain_site_counts_state"},
	} {
		if _, err := conn.Exec(ctx, "PREPARE "+c.name+" AS "+c.sql); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		rows, err := conn.Query(ctx, "EXPLAIN EXECUTE "+c.name+c.args)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		plan := strings.Join(lines, "\n")
		index := cmp.Or(c.index, c.table+"_pkey")
		if strings.Contains(plan, "Seq Scan on "+c.table) || !strings.Contains(plan, index) {
			t.Errorf("%s: the generic plan does not find the rows through %s:\n%s", c.name, index, plan)
		}
	}
}
