package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/phitext"
)

// migrateHelp is coid migrate's help, before its flags.
const migrateHelp = `usage: coid migrate --from DIR --to postgres://USER@HOST/DATABASE

Copies a stopped bbolt store (the coid.db in DIR) into an empty PostgreSQL
database: the ledger's records byte for byte, in order (the copy has the
same head hash; nothing is signed again), the chain summaries, the patient
identifiers kept outside the ledger, users and their API token hashes, the
registries and their audit trail, the sites' capacity, the slots claimed
and held, the quotas and their uses, the waiting list, the checkpoints,
the witnesses' cosignatures and kept states, the telemetry readings and
the quarantine. PostgreSQL builds the Merkle tree and the access-request
and follow-up indexes from the records.

The source is opened read-only and left unchanged; it must be stopped
(coid serve holds its directory lock: migrate refuses while it runs). The
target must be empty: one that holds any record, user, reading or other
row is refused and nothing is written. The ledger and what is kept beside
it are copied in one transaction; the readings, quarantine, checkpoints and
witness states after it: if the copy fails there, drop and create the
database again before retrying.

Then the copy is verified: the same head hash as the source, every record's
hash and links, every chain and every leg's telemetry seal, the tree and
the indexes (as coid verify --store does), and the same counts. Progress
goes to stderr every --progress records and readings; the summary to stdout.

Exit status:
  0  copied and verified
  1  refused (source in use, target not empty) or failed
  2  usage error
  3  the copy failed verification
`

// migrateStats is what coid migrate counted on each side.
type migrateStats struct {
	records, chains, users, readings, quarantine int
}

func runMigrate(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	var s settings
	fs := flag.NewFlagSet("coid migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.logLevel, "log-level", or(getenv(env, "COID_LOG_LEVEL"), "info"), "log level: debug, info, warn, error (COID_LOG_LEVEL)")
	fs.StringVar(&s.logFormat, "log-format", or(getenv(env, "COID_LOG_FORMAT"), "text"), "log format: text or json (COID_LOG_FORMAT)")
	var from, to string
	var every int
	fs.StringVar(&from, "from", "", "data directory of the stopped bbolt store to copy (holds coid.db)")
	fs.StringVar(&to, "to", "", "URL of the empty PostgreSQL database to copy into, postgres://USER@HOST/DATABASE")
	fs.IntVar(&every, "progress", 100000, "report progress on stderr every N records, and N readings (0: never)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), migrateHelp+"Flags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if from == "" || to == "" {
		return usagef("migrate: give --from DIR and --to postgres://...")
	}
	if err := checkStoreURL("migrate: --to", to); err != nil {
		return usagef("migrate: --to must be a postgres://host/database URL")
	}
	if every < 0 {
		return usagef("migrate: --progress must be 0 or more")
	}
	log, err := newLogger(stderr, s.logLevel, s.logFormat)
	if err != nil {
		return err
	}
	if _, err := os.Stat(ledgerFile(from)); err != nil {
		return fmt.Errorf("migrate: --from %s holds no coid ledger (%s): %w", from, boltstore.FileName, err)
	}
	src, err := boltstore.Open(from, boltstore.Options{ReadOnly: true, Logger: log})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer src.Close()
	if err := pgstore.CheckTarget(ctx, to); err != nil {
		if errors.Is(err, pgstore.ErrNotEmpty) {
			return fmt.Errorf("migrate: --to %s: %w; nothing was written", redactedURL(to), scrubPassword(err, to))
		}
		return fmt.Errorf("migrate: --to %s: %w", redactedURL(to), scrubPassword(err, to))
	}
	dst, err := pgstore.Open(ctx, to, pgstore.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("migrate: --to %s: %w", redactedURL(to), scrubPassword(err, to))
	}
	defer dst.Close()
	if err := dst.Empty(ctx); err != nil {
		return fmt.Errorf("migrate: --to %s: %w; nothing was written", redactedURL(to), scrubPassword(err, to))
	}
	start := time.Now()
	progress := func(n int) {
		el := time.Since(start)
		fmt.Fprintf(stderr, "migrate: %d records copied (%.0f records/s)\n", n, float64(n)/max(el.Seconds(), 1e-9))
	}
	var st pgstore.ImportStats
	var want custody.Hash
	err = src.Export(ctx, func(e *custody.Export) error {
		want = e.HeadHash
		if readings := e.Readings; readings != nil && every > 0 {
			// Readings are often many more than records: report them too.
			e.Readings = func(fn func([]custody.Reading) error) error {
				n, next := 0, every
				return readings(func(rs []custody.Reading) error {
					if err := fn(rs); err != nil {
						return err
					}
					if n += len(rs); n >= next {
						fmt.Fprintf(stderr, "migrate: %d readings copied\n", n)
						next = n + every
					}
					return nil
				})
			}
		}
		st, err = dst.Import(ctx, e, every, progress)
		return err
	})
	if err == nil {
		err = copyAfterLedger(ctx, src, dst)
	}
	if err != nil {
		if errors.Is(err, pgstore.ErrNotEmpty) {
			return fmt.Errorf("migrate: --to %s: %w; nothing was written", redactedURL(to), scrubPassword(err, to))
		}
		return fmt.Errorf("migrate: %w", scrubPassword(err, to))
	}
	copied := time.Since(start)
	fmt.Fprintf(stdout, "copied %d records, %d chains, %d users, %d API tokens, %d registry entries, %d audit entries, "+
		"%d slot claims, %d holds, %d quota uses, %d cosignatures in %s (%.0f records/s)\n",
		st.Records, st.Chains, st.Users, st.Tokens, st.RegistryEntries, st.AuditEntries, st.Claims, st.Holds, st.QuotaUses,
		st.Cosignatures, copied.Round(time.Millisecond), float64(st.Records)/max(copied.Seconds(), 1e-9))
	return verifyMigration(ctx, src, dst, want, log, stdout, func(err error) error { return scrubPassword(err, to) })
}

// copyAfterLedger copies, through the stores' methods, what Import leaves
// to the caller: the quarantine (oldest first, so it lists in the same
// order), the checkpoints and the witnesses' kept states.
func copyAfterLedger(ctx context.Context, src *boltstore.Store, dst *pgstore.Store) error {
	qs, err := src.QuarantineList(ctx, 0, 0)
	if err != nil {
		return err
	}
	for _, q := range slices.Backward(qs) {
		if err := dst.Quarantine(ctx, q); err != nil {
			return fmt.Errorf("copy the quarantine: %w", err)
		}
	}
	if err := src.Checkpoints(ctx, func(size int64, signed []byte) error { return dst.AddCheckpoint(ctx, size, signed) }); err != nil {
		return fmt.Errorf("copy the checkpoints: %w", err)
	}
	ws, err := src.WitnessStates(ctx)
	if err != nil {
		return err
	}
	for _, w := range ws {
		if err := dst.PutWitnessState(ctx, w); err != nil {
			return fmt.Errorf("copy the witness states: %w", err)
		}
	}
	return nil
}

// verifyMigration checks the copy: the head hash is the source's, the
// ledger verifies (records, chains, seals), the store's own check passes
// and the counts match.
func verifyMigration(ctx context.Context, src *boltstore.Store, dst *pgstore.Store, want custody.Hash, log *slog.Logger, stdout io.Writer,
	scrub func(error) error) error {
	failed := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		fmt.Fprintf(stdout, "FAILED: %s\n", msg)
		return fmt.Errorf("migrate: the copy: %s: %w", msg, errVerifyFailed)
	}
	start := time.Now()
	seq, head, err := dst.Head(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", scrub(err))
	}
	if head != want {
		return failed("head %d %s, the source's %s", seq, head, want)
	}
	svc, err := custody.NewService(custody.Config{Store: dst, Hasher: passwd.Default(), Logger: log, Now: time.Now, FIN: "A9999",
		Profiles:  slices.Sorted(maps.Keys(custody.BuiltinProfiles())),
		Telemetry: custody.TelemetryConfig{Readings: dst}, Folder: phitext.Folder{}})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	rep, err := svc.VerifyLedger(ctx)
	if err != nil {
		return failed("%v", scrub(err))
	}
	if !rep.OK {
		return failed("record %d: %s", rep.FirstBad, rep.Problem)
	}
	if err := dst.Check(ctx); err != nil {
		return failed("%v", scrub(err))
	}
	trail, err := dst.AuditEntries(ctx, custody.AuditFilter{})
	if err != nil {
		return fmt.Errorf("migrate: %w", scrub(err))
	}
	if err := custody.VerifyAuditTrail(trail); err != nil {
		return failed("the audit trail: %v", err)
	}
	a, err := countStore(ctx, src, src)
	if err != nil {
		return fmt.Errorf("migrate: the source: %w", err)
	}
	b, err := countStore(ctx, dst, dst)
	if err != nil {
		return fmt.Errorf("migrate: the copy: %w", scrub(err))
	}
	if a != b {
		return failed("counts differ: source %+v, copy %+v", a, b)
	}
	fmt.Fprintf(stdout, "verified in %s: head %s (%d records, the source's), every hash, link, chain and seal, "+
		"the tree and the indexes, the audit trail of %d entries; %d chains, %d users, %d readings, %d quarantined payloads on both sides\n",
		time.Since(start).Round(time.Millisecond), head, seq, len(trail), b.chains, b.users, b.readings, b.quarantine)
	return nil
}

// countStore counts what both sides of a migration must hold alike.
func countStore(ctx context.Context, l custody.Store, t custody.TelemetryStore) (migrateStats, error) {
	var c migrateStats
	seq, _, err := l.Head(ctx)
	if err != nil {
		return c, err
	}
	c.records = int(seq)
	chains, err := l.Chains(ctx, "")
	if err != nil {
		return c, err
	}
	users, err := l.Users(ctx)
	if err != nil {
		return c, err
	}
	c.chains, c.users = len(chains), len(users)
	if c.readings, err = t.ReadingsCount(ctx); err != nil {
		return c, err
	}
	q, err := t.QuarantineList(ctx, 0, 0)
	c.quarantine = len(q)
	return c, err
}

// scrubPassword removes the password of URL raw from err's text, should a
// driver's message ever repeat it.
func scrubPassword(err error, raw string) error {
	u, perr := url.Parse(raw)
	if err == nil || perr != nil || u.User == nil {
		return err
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return &scrubbed{msg: strings.ReplaceAll(err.Error(), pw, "xxxxx"), err: err}
}

// scrubbed is an error whose text had a password removed; Unwrap keeps
// errors.Is working.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }
