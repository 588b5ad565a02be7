package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/coid-project/coid/custody"
)

const siteMapHelp = `Maps a free-text site name found on chains enrolled before the network was
registered to a registered site's code, offline on --data (the service
stopped): those chains then follow the site's rules (who signs, who reads,
its time zone, the qualification gates) without their records changing.
A mapping can be changed, never removed; each change is recorded in the
audit trail with --user (an administrator), --reason and the old and new
values. --list prints the mappings instead.
`

// runSiteMap is "coid site-map": map an old chain's site name to a
// registered site, or list the mappings, offline.
func runSiteMap(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	var s settings
	var userID, name, site, reason string
	var list bool
	fs := newFlags("site-map", env, stderr, &s)
	fs.StringVar(&userID, "user", getenv(env, "COID_USER"), "ID of the administrator making the change (COID_USER)")
	fs.StringVar(&name, "name", "", "the site name exactly as the chains hold it")
	fs.StringVar(&site, "site", "", "code of the registered site it stands for")
	fs.StringVar(&reason, "reason", "", "why (recorded in the audit trail)")
	fs.BoolVar(&list, "list", false, "list the mappings instead")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !list && (name == "" || site == "" || reason == "" || userID == "") {
		return usagef("site-map: --user, --name, --site and --reason are required (or --list)")
	}
	if !hasLedger(s) {
		return fmt.Errorf("site-map: no ledger at %s (check --data): %w", ledgerFile(s.data), custody.ErrNotFound)
	}
	svc, st, err := openOffline(s, stderr, list, time.Now)
	if err != nil {
		return fmt.Errorf("site-map: %w", err)
	}
	defer st.close()
	if list {
		// Listing needs a reader of the mappings: any QA or administrator
		// account will do, the offline operator holds the data directory.
		actor := custody.User{ID: "offline", Role: custody.RoleAdmin}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSITE")
		for after := ""; ; {
			page, err := svc.SiteMappings(ctx, actor, after, custody.MaxRegistryPage)
			if err != nil {
				return fmt.Errorf("site-map: %w", err)
			}
			for _, m := range page {
				fmt.Fprintf(tw, "%s\t%s\n", m.Name, m.Site)
			}
			if len(page) < custody.MaxRegistryPage {
				break
			}
			after = page[len(page)-1].Name
		}
		return tw.Flush()
	}
	actor, err := offlineUser(ctx, st.ledger, "site-map", userID)
	if err != nil {
		return err
	}
	m, created, err := svc.MapSiteName(ctx, actor, name, site, reason)
	if err != nil {
		return fmt.Errorf("site-map: %w", err)
	}
	verb := "changed"
	if created {
		verb = "mapped"
	}
	fmt.Fprintf(stdout, "%s: %q -> %s\n", verb, m.Name, m.Site)
	return nil
}
