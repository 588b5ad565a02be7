package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/labels/auditreport"
)

const auditTrailUsage = `usage: coid audit-trail [--data DIR] [--user ID] [--from T] [--to T] [--actor ID] [--kind KIND [--code CODE]] --pdf FILE | --csv FILE

Writes the administrative audit-trail report offline from the data
directory, as GET /api/v1/audit.pdf and /api/v1/audit.csv do: every
administrative change the filter selects (who, when, what, why, the changed
values old -> new, each entry's hash), with the verification status of the
whole trail's hash chain. --pdf and --csv may both be given. A trail whose
hash chain is broken still gives its report, which says so prominently,
and the command exits 3.

"coid audit" with any of these flags (--pdf, --csv, --data, ...) is this
command, as it was before coid audit became the proof auditor.

--from (inclusive) and --to (exclusive) take an RFC 3339 time or a date
YYYY-MM-DD (its start in UTC). --kind is user, organisation, site, product
or shipper; --code one object of that kind. --user names the QA or admin
user the report is generated for (default: the offline operator). --at sets
the generation time (RFC 3339; default now). --max bounds the entries of
one report (default 5000): a wider filter is refused.

`

// runAuditTrail is "coid audit-trail", and "coid audit" given its flags.
func runAuditTrail(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	var s settings
	var userID, from, to, actor, kind, code, at, pdfOut, csvOut string
	var max int
	fs := newFlags("audit-trail", env, stderr, &s)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), auditTrailUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&userID, "user", getenv(env, "COID_USER"), "ID of the qa or admin user generating the report (COID_USER)")
	fs.StringVar(&from, "from", "", "entries made at or after this time (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&to, "to", "", "entries made before this time (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&actor, "actor", "", "entries of changes this user made")
	fs.StringVar(&kind, "kind", "", "entries about this kind of object: user, organisation, site, product, shipper")
	fs.StringVar(&code, "code", "", "entries about the one object of --kind with this code or user ID")
	fs.StringVar(&at, "at", "", "generation time, RFC 3339 (default now)")
	fs.StringVar(&pdfOut, "pdf", "", "write the PDF report to FILE")
	fs.StringVar(&csvOut, "csv", "", "write the CSV report to FILE")
	fs.IntVar(&max, "max", auditreport.DefaultMaxEntries, "most entries in one report")
	if err := parse(fs, args); err != nil {
		return err
	}
	if pdfOut == "" && csvOut == "" {
		fmt.Fprint(stderr, auditTrailUsage)
		return usagef("audit-trail: give --pdf FILE or --csv FILE (or both)")
	}
	when := time.Now().UTC().Truncate(time.Second)
	if at != "" {
		var err error
		if when, err = time.Parse(time.RFC3339, at); err != nil {
			return usagef("audit: --at %q is not an RFC 3339 time such as 2026-12-02T10:00:00Z", at)
		}
	}
	q := map[string]string{"from": from, "to": to, "actor": actor, "kind": kind, "code": code}
	f, err := api.ParseAuditFilter(func(k string) string { return q[k] })
	if err != nil {
		return usagef("audit: %v", err)
	}
	svc, st, err := openOffline(s, stderr, true, func() time.Time { return when })
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer st.close()
	who := offlineOperator
	who.Name = "offline operator (coid audit)"
	if userID != "" {
		if who, err = offlineUser(ctx, st.ledger, "audit", userID); err != nil {
			return err
		}
	}
	in, err := auditreport.Build(ctx, func(ctx context.Context, q custody.AuditFilter) ([]custody.AuditEntry, error) {
		return svc.AuditTrail(ctx, who, q)
	}, f, max, who, when)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	for _, o := range []struct {
		path  string
		write func(io.Writer, *auditreport.Input) error
	}{{pdfOut, auditreport.WritePDF}, {csvOut, auditreport.WriteCSV}} {
		if o.path == "" {
			continue
		}
		var buf bytes.Buffer
		if err := o.write(&buf, in); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		if err := writeOutput("audit", stdout, o.path, buf.Bytes()); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "coid: wrote %s (%d entries, %d bytes)\n", o.path, len(in.Entries), buf.Len())
	}
	if in.VerifyErr != nil {
		fmt.Fprintf(stderr, "coid audit: %s\n", auditreport.VerificationText(in))
		return errors.Join(errVerifyFailed, in.VerifyErr)
	}
	return nil
}
