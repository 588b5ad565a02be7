package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/coid-project/coid/custody"
)

// The registry subcommands of coid: import registers a whole network
// (organisations, sites, products, shippers, in that order, so references
// resolve) from a JSON file, and list prints what is registered. Both run
// offline on a data directory, like coid user add; the service must not be
// running on it.
//
// Import is made for bootstrapping a programme: it goes on past a failed
// entry, reports every failure with its kind, code and reason, and leaves
// what already exists untouched, so the administrator fixes the file and
// runs it again until it reports nothing failed. An entry already
// registered counts as done (it is not updated: edits go through the web
// UI or the API, each with its own reason).

// networkFile is the JSON file coid registry import reads.
type networkFile struct {
	Organisations []custody.Organisation `json:"organisations"`
	Sites         []custody.Site         `json:"sites"`
	Products      []custody.Product      `json:"products"`
	Shippers      []custody.Shipper      `json:"shippers"`
	// Jurisdictions are the expanded-access jurisdictions beyond the
	// built-in ones.
	Jurisdictions []custody.Jurisdiction `json:"jurisdictions,omitempty"`
}

// importTally counts what an import did.
type importTally struct {
	added, existing int
	failed          []string
}

func runRegistry(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("registry: want %s", strings.Join(subcommands("registry"), ", "))
	}
	var s settings
	var file, reason, actorID, kind string
	fs := newFlags("registry "+args[0], env, stderr, &s)
	switch args[0] {
	case "import":
		fs.StringVar(&file, "file", "", "JSON file of the network: {\"organisations\":[...],\"sites\":[...],\"products\":[...],\"shippers\":[...]}")
		fs.StringVar(&reason, "reason", "", "why, for the audit trail (required)")
		fs.StringVar(&actorID, "actor", "", "ID of the administrator recorded as the author of every change (required)")
	case "list":
		fs.StringVar(&actorID, "actor", "", "ID of the administrator or QA user reading the registries (required)")
		fs.StringVar(&kind, "kind", "", "only this registry: organisation, site, product, shipper or jurisdiction (default: all)")
	default:
		return usagef("registry: unknown subcommand %q (want %s)", args[0], strings.Join(subcommands("registry"), ", "))
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	op := "registry " + args[0]
	if actorID == "" {
		return usagef("%s: --actor is required", op)
	}
	var net networkFile
	if args[0] == "import" {
		if file == "" {
			return usagef("%s: --file is required", op)
		}
		if strings.TrimSpace(reason) == "" {
			return usagef("%s: --reason is required: it goes into the audit trail", op)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&net); err != nil {
			return fmt.Errorf("%s: %s is not a network file: %v: %w", op, file, err, custody.ErrInvalid)
		}
	}
	switch kind {
	case "", "organisation", "site", "product", "shipper", "jurisdiction":
	default:
		return usagef("%s: --kind must be organisation, site, product, shipper or jurisdiction", op)
	}
	if !hasLedger(s) {
		return fmt.Errorf("%s: no ledger at %s (check --data): %w", op, ledgerFile(s.data), custody.ErrNotFound)
	}
	svc, st, err := openOffline(s, stderr, args[0] == "list", time.Now)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer st.close()
	actor, err := offlineUser(ctx, st.ledger, op, actorID)
	if err != nil {
		return err
	}
	if args[0] == "list" {
		return listRegistry(ctx, svc, actor, kind, stdout)
	}
	if actor.Role != custody.RoleAdmin {
		return fmt.Errorf("%s: %s is not an administrator: %w", op, actorID, custody.ErrForbidden)
	}
	var t importTally
	for _, v := range net.Organisations {
		t.add("organisation", v.Code, func() error { _, err := svc.Organisation(ctx, actor, v.Code); return err },
			func() error { _, err := svc.RegisterOrganisation(ctx, actor, v, reason); return err })
	}
	for _, v := range net.Sites {
		t.add("site", v.Code, func() error { _, err := svc.Site(ctx, actor, v.Code); return err },
			func() error { _, err := svc.RegisterSite(ctx, actor, v, reason); return err })
	}
	for _, v := range net.Products {
		t.add("product", v.Code, func() error { _, err := svc.Product(ctx, actor, v.Code); return err },
			func() error { _, err := svc.RegisterProduct(ctx, actor, v, reason); return err })
	}
	for _, v := range net.Shippers {
		t.add("shipper", v.ID, func() error { _, err := svc.Shipper(ctx, actor, v.ID); return err },
			func() error { _, err := svc.RegisterShipper(ctx, actor, v, reason); return err })
	}
	for _, v := range net.Jurisdictions {
		t.add("jurisdiction", v.Code, func() error { _, err := svc.JurisdictionEntry(ctx, actor, v.Code); return err },
			func() error { _, err := svc.RegisterJurisdiction(ctx, actor, v, reason); return err })
	}
	fmt.Fprintf(stdout, "registered %d, already registered %d, failed %d\n", t.added, t.existing, len(t.failed))
	for _, f := range t.failed {
		fmt.Fprintln(stdout, "failed:", f)
	}
	if len(t.failed) > 0 {
		return fmt.Errorf("%s: %d of %d entries failed (fix the file and run it again: what is registered stays): %w",
			op, len(t.failed), t.added+t.existing+len(t.failed), custody.ErrInvalid)
	}
	return nil
}

// add registers one entry unless it already exists (lookup succeeds), and
// counts the outcome.
func (t *importTally) add(kind, code string, lookup, register func() error) {
	if code != "" && lookup() == nil {
		t.existing++
		return
	}
	if err := register(); err != nil {
		t.failed = append(t.failed, fmt.Sprintf("%s %q: %v", kind, code, err))
		return
	}
	t.added++
}

// listRegistry prints every entry of the registries (or of kind), paging
// through the service as the API does.
func listRegistry(ctx context.Context, svc *custody.Service, actor custody.User, kind string, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tCODE\tNAME\tDETAIL\tSUSPENDED")
	const page = 100
	if kind == "" || kind == "organisation" {
		if err := pageAll(func(after string) (string, int, error) {
			vs, err := svc.Organisations(ctx, actor, after, page)
			for _, v := range vs {
				fmt.Fprintf(tw, "organisation\t%s\t%s\t%s\t%v\n", v.Code, v.Name, v.Kind, v.Suspended)
			}
			return lastOf(vs, func(v custody.Organisation) string { return v.Code }), len(vs), err
		}, page); err != nil {
			return err
		}
	}
	if kind == "" || kind == "site" {
		if err := pageAll(func(after string) (string, int, error) {
			vs, err := svc.Sites(ctx, actor, after, page)
			for _, v := range vs {
				kinds := make([]string, len(v.Kinds))
				for i, k := range v.Kinds {
					kinds[i] = string(k)
				}
				fmt.Fprintf(tw, "site\t%s\t%s\t%s %s %s\t%v\n", v.Code, v.Name, v.Organisation, strings.Join(kinds, ","), v.TimeZone, v.Suspended)
			}
			return lastOf(vs, func(v custody.Site) string { return v.Code }), len(vs), err
		}, page); err != nil {
			return err
		}
	}
	if kind == "" || kind == "product" {
		if err := pageAll(func(after string) (string, int, error) {
			vs, err := svc.Products(ctx, actor, after, page)
			for _, v := range vs {
				fmt.Fprintf(tw, "product\t%s\t%s\t%s %s\t%v\n", v.Code, v.Name, v.ISBTCode, v.StorageProfile, v.Suspended)
			}
			return lastOf(vs, func(v custody.Product) string { return v.Code }), len(vs), err
		}, page); err != nil {
			return err
		}
	}
	if kind == "" || kind == "jurisdiction" {
		if err := pageAll(func(after string) (string, int, error) {
			vs, err := svc.Jurisdictions(ctx, actor, after, page)
			for _, v := range vs {
				fmt.Fprintf(tw, "jurisdiction\t%s\t%s\t%d required, %d emergency, %d after\t%v\n", v.Code, v.Name, len(v.Required), len(v.Emergency), len(v.After), v.Suspended)
			}
			return lastOf(vs, func(v custody.Jurisdiction) string { return v.Code }), len(vs), err
		}, page); err != nil {
			return err
		}
	}
	if kind == "" || kind == "shipper" {
		if err := pageAll(func(after string) (string, int, error) {
			vs, err := svc.Shippers(ctx, actor, after, page)
			for _, v := range vs {
				fmt.Fprintf(tw, "shipper\t%s\t\t%s due %s\t%v\n", v.ID, v.Courier, v.RequalificationDue, v.Suspended)
			}
			return lastOf(vs, func(v custody.Shipper) string { return v.ID }), len(vs), err
		}, page); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// pageAll calls fetch with the last key of each page until a page comes
// back short.
func pageAll(fetch func(after string) (last string, n int, err error), page int) error {
	after := ""
	for {
		last, n, err := fetch(after)
		if err != nil || n < page {
			return err
		}
		after = last
	}
}

// lastOf returns the key of the last element of vs, "" if none.
func lastOf[T any](vs []T, key func(T) string) string {
	if len(vs) == 0 {
		return ""
	}
	return key(vs[len(vs)-1])
}
