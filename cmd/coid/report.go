package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"
	_ "time/tzdata" // --tz works without the host's zoneinfo

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/epcis"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/coid-project/coid/custody/verifiable/witness"
	"github.com/coid-project/coid/labels/report"
)

const reportUsage = `usage: coid report [--data DIR] [--user ID] [--format pdf|epcis] [--epcis-base URI] [--tz ZONE] [--at TIME] [-o FILE] COI

Writes a chain's QA custody report (PDF) offline from the data directory, as
GET /api/v1/chains/{coi}/report.pdf does, or with --format epcis its EPCIS 2.0
document, as GET /api/v1/chains/{coi}/epcis does. The chain and the whole
ledger are verified first; a ledger that fails verification gives no report.
Output goes to stdout unless -o names a file (created 0600).

Both carry the proof of their records (a coid-proof.json attachment; the
EPCIS document's coid:proof member), which "coid audit" checks with the
verifier key alone. The proof is against the latest signed checkpoint, or
one signed (and kept) now if that does not hold every record of the chain.
With witnesses configured as for coid serve (COID_WITNESSES and
COID_WITNESS_QUORUM), it is against the latest checkpoint holding every
record that the quorum cosigned, with their cosignatures, if there is one.

--user names the person generating the report, who must be qa or admin; the
report names them. Without it the report is attributed to the offline
operator: like the other offline commands, this one trusts whoever can open
the data directory. --at sets the generation time (RFC 3339; default now),
so a report can be reproduced byte for byte. --tz sets the zone of local
times (IANA name; default UTC).
--epcis-base sets the HTTP URI base of the EPCIS identifiers; give the one
coid serve is given, so that both export the same identifiers.

`

// offlineOperator is who a report generated offline without --user is
// attributed to.
var offlineOperator = custody.User{ID: "offline", Name: "offline operator (coid report)", Role: custody.RoleAdmin}

// runReport is "coid report".
func runReport(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	var s settings
	var userID, format, zone, at, out string
	fs := newFlags("report", env, stderr, &s)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), reportUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&userID, "user", getenv(env, "COID_USER"), "ID of the qa or admin user generating the report (COID_USER)")
	fs.StringVar(&format, "format", "pdf", "pdf (custody report) or epcis (EPCIS 2.0 JSON-LD)")
	fs.StringVar(&zone, "tz", or(getenv(env, "COID_REPORT_TZ"), "UTC"), "IANA time zone of local times (COID_REPORT_TZ)")
	fs.StringVar(&at, "at", "", "generation time, RFC 3339 (default now)")
	fs.StringVar(&out, "o", "", "write to FILE instead of stdout")
	epcisBase := epcisBaseFlag(fs, env)

	// Flags may come before or after the COI.
	target, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(target) != 1 {
		fmt.Fprint(stderr, reportUsage)
		return usagef("report: give exactly one COI, got %d", len(target))
	}
	if format != "pdf" && format != "epcis" {
		return usagef("report: --format %q: want pdf or epcis", format)
	}
	loc, err := parseZone("report", "tz", zone)
	if err != nil {
		return err
	}
	if err := checkEPCISBase("report", *epcisBase); err != nil {
		return err
	}
	when := time.Now().UTC().Truncate(time.Second)
	if at != "" {
		if when, err = time.Parse(time.RFC3339, at); err != nil {
			return usagef("report: --at %q is not an RFC 3339 time such as 2026-12-02T10:00:00Z", at)
		}
	}
	code, err := custody.ParseCode(target[0])
	if err != nil {
		return fmt.Errorf("report: %q is not a COI: %w", target[0], err)
	}
	coi := code.COI

	log, err := newLogger(stderr, s.logLevel, s.logFormat)
	if err != nil {
		return err
	}
	// Writable: the report's proof may need a checkpoint signed, and
	// every signed checkpoint is kept.
	svc, st, err := openOffline(s, stderr, false, func() time.Time { return when })
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer st.close()
	vlog := verifiable.NewLog(st.tree, st.keys, func() time.Time { return when }, log)
	if specs := strings.Fields(getenv(env, "COID_WITNESSES")); len(specs) > 0 {
		quorum := envInt(env, "COID_WITNESS_QUORUM", len(specs))
		ws, err := witness.ParseList(specs, quorum)
		if err != nil {
			return usagef("report: COID_WITNESSES NAME=URL+VERIFIERKEY ..., COID_WITNESS_QUORUM 1 to their number: %v", err)
		}
		names := make([]string, len(ws))
		for i, w := range ws {
			names[i] = w.Name
		}
		vlog.SetWitnesses(names, quorum)
	}
	actor := offlineOperator
	if userID != "" {
		if actor, err = offlineUser(ctx, st.ledger, "report", userID); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	switch format {
	case "pdf":
		in, err := report.Build(ctx, report.ServiceSource{Service: svc}, coi, actor, when)
		if err != nil {
			return err
		}
		in.Zone = loc
		if in.SiteZones, err = svc.SiteZones(ctx, in.Chain); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		if in.Proof, err = report.NewProof(ctx, vlog, in.Chain); err != nil {
			return err
		}
		if err := report.Write(&buf, in); err != nil {
			return err
		}
		log.Info("custody report generated", "coi", string(coi), "user", actor.ID, "records", len(in.Chain.Records), "chain_head", in.Chain.Head)
	case "epcis":
		c, err := svc.Chain(ctx, coi)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		in := &epcis.Input{Chain: c, CreatedAt: when, Zone: loc, Base: *epcisBase}
		if in.SiteZones, err = svc.SiteZones(ctx, c); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		if in.GS1, err = svc.ChainGS1IDs(ctx, c); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		for _, l := range c.Legs {
			_, rs, err := svc.LegReadings(ctx, coi, l.N)
			if err != nil {
				return fmt.Errorf("report: leg %d: %w", l.N, err)
			}
			in.Telemetry = append(in.Telemetry, epcis.Telemetry{Available: true, Readings: rs})
		}
		p, err := report.NewProof(ctx, vlog, c)
		if err != nil {
			return err
		}
		in.Proof = p.Bundle
		if err := epcis.Write(&buf, in); err != nil {
			return err
		}
	}
	if err := writeOutput("report", stdout, out, buf.Bytes()); err != nil {
		return err
	}
	if out != "" {
		fmt.Fprintf(stderr, "coid: wrote %s (%d bytes)\n", out, buf.Len())
	}
	return nil
}
