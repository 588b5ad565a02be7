package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/coid-project/coid/labels/report"
)

const auditUsage = `usage: coid audit --key KEY [--key KEY ...] [--witness-key WKEY ... --quorum N] REPORT.pdf | BUNDLE.json | EPCIS.json
       coid audit --key KEY --since OLD [--proof FILE | --url URL] [NEW]

Checks, offline and with nothing but coid's verifier key, the proof a
custody report carries (its attached coid-proof.json), a proof bundle, or
an EPCIS export's coid:proof member:
  - the checkpoint's signature, with the keys given (a retired key still
    verifies the checkpoints it signed);
  - for every record, its leaf hash recomputed from its ledger bytes and
    its inclusion proof against the checkpoint's tree, and that the bytes
    are the ledger record of that seq;
  - for a report, that it prints what the bundle proves: the records'
    count ("Records (N, ...)"), each record's seq and hash (first 16 hex
    digits of its SHA-256), and the checkpoint's size, root and key ID; for
    an EPCIS export, that every event's coid:seq is a proven record.

--since OLD checks that the ledger only grew since an earlier checkpoint:
OLD and NEW are each a signed checkpoint (as /api/v1/log/checkpoint
serves it), a report or a bundle (NEW's records are checked as above);
the consistency proof between their sizes comes from --proof FILE (as
GET /api/v1/proofs/consistency?from=OLD_SIZE&to=NEW_SIZE answers) or from
the running service at --url (token in COID_TOKEN), which also gives the
latest checkpoint when NEW is left out.

--key takes a verifier key (coid key show) or a file of them (coid key
export); give it again for more keys. At least one signature by one of
them must verify; a signature line by a key not given (a witness's, say)
is ignored and listed as unverified.

--witness-key takes a witness's verifier key (C2SP tlog-cosignature,
Ed25519 cosignature/v1); give it again for more witnesses. A cosignature
by a witness given must verify; --quorum N requires that at least N of
the witnesses given cosigned the checkpoint.
Exit status: 0 verified; 1 verification failed (the message names the
first failing record or checkpoint); 2 usage (bad flags, unreadable file).
"coid audit --pdf|--csv ..." is "coid audit-trail".

`

// trailFlags are the flags of coid audit-trail: "coid audit" given one of
// them is that command.
var trailFlags = []string{"data", "user", "from", "to", "actor", "kind", "code", "at", "pdf", "csv", "max", "log-level"}

// isTrailAudit reports whether the arguments of "coid audit" are those of
// the audit-trail report.
func isTrailAudit(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, ok := strings.CutPrefix(a, "-")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(strings.TrimPrefix(name, "-"), "=")
		if slices.Contains(trailFlags, name) {
			return true
		}
	}
	return false
}

// errAuditFailed marks a proof that did not verify (exit 1).
var errAuditFailed = errors.New("audit FAILED")

// runAudit is "coid audit": the offline proof auditor.
func runAudit(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	var keyArgs siteCodes     // repeated --key
	var witnessArgs siteCodes // repeated --witness-key
	var quorum int
	var since, proofFile, serverURL string
	fs := flag.NewFlagSet("coid audit", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), auditUsage)
		fs.PrintDefaults()
	}
	fs.Var(&keyArgs, "key", "verifier key, or a file of them (coid key show / coid key export); repeatable")
	fs.Var(&witnessArgs, "witness-key", "a witness's cosignature verifier key; repeatable")
	fs.IntVar(&quorum, "quorum", 0, "require at least N of the --witness-key witnesses to have cosigned the checkpoint")
	fs.StringVar(&since, "since", "", "an earlier checkpoint (or report, or bundle): check the ledger only grew since")
	fs.StringVar(&proofFile, "proof", "", "with --since: the consistency proof (JSON of GET /api/v1/proofs/consistency)")
	fs.StringVar(&serverURL, "url", "", "with --since: fetch the consistency proof (and the latest checkpoint) from the running service (token in COID_TOKEN)")
	target, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(keyArgs) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return usagef("audit: give --key with coid's verifier key (coid key show) or a file of keys (coid key export)")
	}
	keys, err := readVerifierKeys(keyArgs)
	if err != nil {
		return err
	}
	w, err := witnessPolicy(witnessArgs, quorum)
	if err != nil {
		return err
	}
	if since == "" {
		if proofFile != "" || serverURL != "" {
			return usagef("audit: --proof and --url go with --since")
		}
		if len(target) != 1 {
			return usagef("audit: give exactly one report, bundle or EPCIS file, got %d", len(target))
		}
		v, err := auditFile(target[0], keys, w)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "OK: %d records proven in the ledger by checkpoint %s (%d records, root %s), signed by %s\n",
			len(v.Records), v.Checkpoint.Origin, v.Checkpoint.Size, v.Checkpoint.Root, strings.Join(v.KeyIDs, ", "))
		printWitnesses(stdout, v.Cosigned, v.Unverified)
		return nil
	}
	if len(target) > 1 || (len(target) == 0 && serverURL == "") {
		return usagef("audit --since: give the later checkpoint, report or bundle (or --url to fetch the latest)")
	}
	if proofFile != "" && serverURL != "" {
		return usagef("audit --since: give --proof or --url, not both")
	}
	var cl *apiClient
	if serverURL != "" {
		base, err := url.Parse(serverURL)
		if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
			return usagef("audit: --url must be the service's http:// or https:// base URL, e.g. https://coid.example:8080")
		}
		tok := getenv(env, "COID_TOKEN")
		if tok == "" {
			return usagef("audit --url: set COID_TOKEN to an API token")
		}
		cl = &apiClient{base: strings.TrimSuffix(base.String(), "/") + "/api/v1", token: tok, op: "audit"}
	}
	older, _, err := checkpointOf(since, keys, verifiable.WitnessPolicy{})
	if err != nil {
		return fmt.Errorf("audit: --since %s: %w", since, err)
	}
	var newer verifiable.Checkpoint
	var newIDs []string
	if len(target) == 1 {
		if newer, newIDs, err = checkpointOf(target[0], keys, w); err != nil {
			return fmt.Errorf("audit: %s: %w", target[0], err)
		}
	} else {
		var latest struct {
			Checkpoint string `json:"checkpoint"`
		}
		if err := cl.do(ctx, "GET", "/proofs/checkpoint", nil, &latest); err != nil {
			return err
		}
		if newer, newIDs, err = verifiable.OpenCheckpoint([]byte(latest.Checkpoint), keys...); err != nil {
			return fmt.Errorf("audit: the service's latest checkpoint: %w: %w", errAuditFailed, err)
		}
		if _, _, err := verifiable.CheckWitnesses([]byte(latest.Checkpoint), newer, newIDs, w); err != nil {
			return fmt.Errorf("audit: the service's latest checkpoint: %w: %w", errAuditFailed, err)
		}
	}
	var proof []verifiable.Hash
	if newer.Size > older.Size && older.Size > 0 {
		var c verifiable.Consistency
		switch {
		case proofFile != "":
			b, err := os.ReadFile(proofFile)
			if err != nil {
				return usagef("audit: --proof: %v", err)
			}
			if err := json.Unmarshal(b, &c); err != nil {
				return fmt.Errorf("audit: --proof %s is not a consistency proof: %v: %w", proofFile, err, errAuditFailed)
			}
		case cl != nil:
			q := url.Values{"from": {strconv.FormatInt(older.Size, 10)}, "to": {strconv.FormatInt(newer.Size, 10)}}
			if err := cl.do(ctx, "GET", "/proofs/consistency?"+q.Encode(), nil, &c); err != nil {
				return err
			}
		default:
			return usagef("audit --since: give --proof FILE or --url URL for the consistency proof from %d to %d records", older.Size, newer.Size)
		}
		if c.From != older.Size || c.To != newer.Size {
			return fmt.Errorf("audit: the consistency proof is from %d to %d records, the checkpoints hold %d and %d: %w", c.From, c.To, older.Size, newer.Size, errAuditFailed)
		}
		proof = c.Proof
	}
	if err := verifiable.CheckConsistency(older, newer, proof); err != nil {
		return fmt.Errorf("audit: checkpoint %d -> %d: %w: %w", older.Size, newer.Size, errAuditFailed, err)
	}
	fmt.Fprintf(stdout, "OK: the ledger only grew: checkpoint of %d records (root %s) extends the one of %d records (root %s); signed by %s\n",
		newer.Size, newer.Root, older.Size, older.Root, strings.Join(newIDs, ", "))
	return nil
}

// witnessPolicy reads the --witness-key and --quorum values.
func witnessPolicy(args []string, quorum int) (verifiable.WitnessPolicy, error) {
	var w verifiable.WitnessPolicy
	for _, a := range args {
		k, err := verifiable.ParseCosignerKey(strings.TrimSpace(a))
		if err != nil {
			return w, usagef("audit: --witness-key %q is not a witness verifier key (name+hash+key): %v", a, err)
		}
		w.Keys = append(w.Keys, k)
	}
	if quorum < 0 || quorum > len(w.Keys) {
		return w, usagef("audit: --quorum %d: give a number from 0 to the count of --witness-key (%d)", quorum, len(w.Keys))
	}
	w.Quorum = quorum
	return w, nil
}

// printWitnesses writes which witnesses cosigned a checkpoint, and the
// signature lines by keys not given, which were not checked.
func printWitnesses(out io.Writer, cos []custody.Cosignature, unverified []string) {
	for _, c := range cos {
		fmt.Fprintf(out, "cosigned by witness %s at %s\n", c.Witness, c.Time.Format(time.RFC3339))
	}
	if len(unverified) > 0 {
		fmt.Fprintf(out, "unverified (no key given, ignored): %s\n", strings.Join(unverified, ", "))
	}
}

// readVerifierKeys reads the --key values: a verifier key, or a file
// holding them (one a line, as coid key export writes them, or bare).
func readVerifierKeys(args []string) ([]string, error) {
	var keys []string
	for _, a := range args {
		if verifiable.CheckVerifierKey(strings.TrimSpace(a)) == nil {
			keys = append(keys, strings.TrimSpace(a))
			continue
		}
		b, err := os.ReadFile(a)
		if err != nil {
			return nil, usagef("audit: --key %q is neither a verifier key (name+hash+key) nor a readable file: %v", a, err)
		}
		n := len(keys)
		for _, f := range strings.Fields(string(b)) {
			if verifiable.CheckVerifierKey(f) == nil {
				keys = append(keys, f)
			}
		}
		if len(keys) == n {
			return nil, usagef("audit: --key file %s holds no verifier key", a)
		}
	}
	return keys, nil
}

// auditFile verifies the proof in a report, bundle or EPCIS export.
func auditFile(path string, keys []string, w verifiable.WitnessPolicy) (*verifiable.Verified, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("audit: %v", err)
	}
	v, err := auditData(data, keys, w)
	if err != nil {
		return nil, fmt.Errorf("audit: %s: %w", path, err)
	}
	return v, nil
}

// auditData verifies the proof in a report's, bundle's or EPCIS export's
// bytes, and that a report or export shows what the proof proves.
func auditData(data []byte, keys []string, w verifiable.WitnessPolicy) (*verifiable.Verified, error) {
	bundle, shown, err := proofIn(data)
	if err != nil {
		return nil, err
	}
	v, err := verifiable.VerifyBundleWitnessed(bundle, keys, w)
	if re := (*verifiable.RecordError)(nil); errors.As(err, &re) {
		return nil, fmt.Errorf("%w at record %d: %w", errAuditFailed, re.Seq, re.Err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errAuditFailed, err)
	}
	if shown != nil {
		if err := shown(v); err != nil {
			return nil, fmt.Errorf("%w: %w", errAuditFailed, err)
		}
	}
	return v, nil
}

// proofIn finds the proof bundle in a report (its attachment), an EPCIS
// export (its coid:proof member) or a bundle itself, and returns the
// check that what the file shows is what the bundle proves (nil for a
// bare bundle).
func proofIn(data []byte) ([]byte, func(*verifiable.Verified) error, error) {
	if bytes.HasPrefix(data, []byte("%PDF-")) {
		r, err := report.ReadPDF(data)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", errAuditFailed, err)
		}
		var found [][]byte
		for _, f := range r.Files {
			if bytes.Contains(f, []byte(`"format": "`+verifiable.BundleFormat+`"`)) || bytes.Contains(f, []byte(`"format":"`+verifiable.BundleFormat+`"`)) {
				found = append(found, f)
			}
		}
		if len(found) != 1 {
			return nil, nil, fmt.Errorf("the PDF carries %d proof bundles (%s), want one: a report from before proofs, or not coid's: %w",
				len(found), verifiable.BundleFile, errAuditFailed)
		}
		return found[0], func(v *verifiable.Verified) error { return printedIs(r.Text, v) }, nil
	}
	var doc struct {
		Proof json.RawMessage `json:"coid:proof"`
		Body  *struct {
			Events []struct {
				Seq uint64 `json:"coid:seq"`
			} `json:"eventList"`
		} `json:"epcisBody"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("not a coid report (PDF), proof bundle or EPCIS export: %v: %w", err, errAuditFailed)
	}
	if doc.Body == nil {
		return data, nil, nil // a bundle
	}
	if doc.Proof == nil {
		return nil, nil, fmt.Errorf("the EPCIS export carries no coid:proof: %w", errAuditFailed)
	}
	return doc.Proof, func(v *verifiable.Verified) error {
		for _, e := range doc.Body.Events {
			if !slices.ContainsFunc(v.Records, func(r verifiable.VerifiedRecord) bool { return r.Seq == e.Seq }) {
				return fmt.Errorf("an event of the export is record %d, which the proof does not prove", e.Seq)
			}
		}
		return nil
	}, nil
}

// printedIs checks that a report's text shows what the bundle proves: as
// many records as it proves, each one's seq and hash (first 16 hex
// digits), and the checkpoint's size, root and key IDs.
func printedIs(text []string, v *verifiable.Verified) error {
	has := func(s string) bool { return slices.Contains(text, s) }
	want := fmt.Sprintf("Records (%d, in chain order)", len(v.Records))
	if !has(want) {
		return fmt.Errorf("the report does not print %q: it shows other records than its proof", want)
	}
	for _, r := range v.Records {
		if !has(strconv.FormatUint(r.Seq, 10)) || !has(r.Hash.String()[:16]) {
			return fmt.Errorf("record %d (hash %s) is proven but not printed in the report", r.Seq, r.Hash.String()[:16])
		}
	}
	c := v.Checkpoint
	for _, s := range []string{fmt.Sprintf("%d records", c.Size), c.Root.String(), strings.Join(v.KeyIDs, ", ")} {
		if !has(s) {
			return fmt.Errorf("the report's verification block does not print the proof's checkpoint (%q missing)", s)
		}
	}
	return nil
}

// checkpointOf returns the verified checkpoint a file holds or carries:
// a signed checkpoint note, or the proof of a report, bundle or EPCIS
// export (whose records are then verified too).
func checkpointOf(path string, keys []string, w verifiable.WitnessPolicy) (verifiable.Checkpoint, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return verifiable.Checkpoint{}, nil, usagef("audit: %v", err)
	}
	if bytes.HasPrefix(data, []byte("%PDF-")) || bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		v, err := auditData(data, keys, w)
		if err != nil {
			return verifiable.Checkpoint{}, nil, err
		}
		return v.Checkpoint, v.KeyIDs, nil
	}
	c, ids, err := verifiable.OpenCheckpoint(data, keys...)
	if err == nil {
		_, _, err = verifiable.CheckWitnesses(data, c, ids, w)
	}
	if err != nil {
		return verifiable.Checkpoint{}, nil, fmt.Errorf("checkpoint: %w: %w", errAuditFailed, err)
	}
	return c, ids, nil
}
