package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/coid-project/coid/custody"
)

func runVerify(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	var s settings
	fs := newFlags("verify", env, stderr, &s)
	var cps checkpoints
	fs.Var(&cps, "checkpoint", "RECORDS:HEAD printed by an earlier verify or on a custody report; the ledger must still hold it (repeatable)")
	var since string
	var cpuProfile string
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the verification to this file (go tool pprof reads it)")
	fs.StringVar(&since, "since", "", "a file holding a signed checkpoint kept earlier (/log/checkpoint, or GET /api/v1/proofs/checkpoint's JSON): check the ledger extends it, then verify only what was added after it")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), verifyHelp+"Flags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if since != "" && len(cps) > 0 {
		return usagef("verify: give --since or --checkpoint, not both")
	}
	// The service adds the telemetry seals of received legs to the log's
	// hashes and links.
	// A file too damaged to read, or not a coid store at all, fails
	// verification (exit 3), as a record that does not match its hash
	// does. custody.ErrDamaged is an ErrChainBroken.
	failed := func(err error) error {
		if errors.Is(err, custody.ErrChainBroken) {
			fmt.Fprintf(stdout, "FAILED: %v\n", err)
			return fmt.Errorf("verify %s: %w: %w", s.data, err, errVerifyFailed)
		}
		return fmt.Errorf("verify: %w", err)
	}
	if cpuProfile != "" {
		stop, err := startCPUProfile(cpuProfile)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		defer stop()
	}
	// Verification allocates often (cursors, reads, a leg's figures) but
	// keeps little: a heap of a few tens of MB, which the collector would
	// otherwise scan a hundred times over. Four times the live heap
	// between collections costs some 60 MB more and a tenth of the CPU
	// less, at 100,000 chains. A GOGC in the environment is obeyed.
	if _, set := os.LookupEnv("GOGC"); !set {
		defer debug.SetGCPercent(debug.SetGCPercent(verifyGCPercent))
	}
	svc, st, err := openOffline(s, stderr, true, time.Now)
	if err != nil {
		return failed(err)
	}
	defer st.close()
	if since != "" {
		return verifySince(ctx, svc, st, since, s.data, s.checkpointKey, stdout, failed)
	}
	// The ledger (records, chains, seals) and the rest of the file
	// (what the service reads beside the ledger: users, tokens, patient
	// identity, readings, the quarantine; and bbolt's own pages, a damaged
	// one of which would otherwise pass here and fail the service's first
	// request that reads it) are checked at once, each on the cores the
	// other leaves idle: the store is open read-only, so no writer can wait
	// for the two reads. The outcome is reported as if they had run one
	// after the other: the ledger's failure first.
	var (
		el, elFile time.Duration
		fileErr    error
	)
	start := time.Now()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fileDone := make(chan struct{})
	go func() {
		defer close(fileDone)
		check := st.checkFile
		if st.checkBesideLedger != nil {
			check = st.checkBesideLedger
		}
		fileErr = check(fctx)
		elFile = time.Since(start)
	}()
	rep, err := svc.VerifyLedgerAt(ctx, cps)
	el = time.Since(start)
	if err != nil || !rep.OK {
		cancel() // the ledger's outcome is the one reported
	}
	<-fileDone
	if err != nil {
		return failed(err)
	}
	if !rep.OK {
		fmt.Fprintf(stdout, "FAILED: record %d: %s\n%d records verified before it\n", rep.FirstBad, rep.Problem, rep.Records)
		return fmt.Errorf("verify %s: record %d: %s: %w", s.data, rep.FirstBad, rep.Problem, errVerifyFailed)
	}
	if fileErr != nil {
		return failed(fileErr)
	}
	fmt.Fprintf(stdout, "OK: %d records verified in %s (%.0f records/s); the whole file checked in %s\nhead %s\n", rep.Records,
		el.Round(time.Millisecond), float64(rep.Records)/max(el.Seconds(), 1e-9), elFile.Round(time.Millisecond), rep.Head)
	if len(cps) > 0 {
		fmt.Fprintf(stdout, "the ledger still holds %d checkpoint(s)\n", len(cps))
	}
	if rep.Records > 0 {
		fmt.Fprintf(stdout, "checkpoint %d:%s (keep it elsewhere; verify --checkpoint checks the ledger still holds it)\n", rep.Records, rep.Head)
	}
	return nil
}

// verifyGCPercent is the garbage collector's target percentage while coid
// verify runs (GOGC), unless GOGC is set.
const verifyGCPercent = 400

// startCPUProfile starts a CPU profile written to path; stop ends it and
// closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// verifyHelp is coid verify's help, before its flags.
const verifyHelp = `usage: coid verify [--data DIR] [--checkpoint N:HEAD ... | --since CHECKPOINT_FILE] [--cpuprofile FILE]

Verifies the ledger offline: every record's hash and links, every chain's
summary, index and state, and every leg's telemetry seal; that the ledger
still holds each checkpoint; then the whole file (every bucket's entries
decode, each entry of the audit trail of account and registry changes
matches its hash and links to the one before, and bbolt's own consistency check of its pages).

With --since FILE, FILE is a signed checkpoint kept from an earlier day
(the note /log/checkpoint serves, or the JSON of GET
/api/v1/proofs/checkpoint that carries it). It must be signed by the
ledger's key, active or retired (coid key export).
Verify then checks the consistency proof from the checkpoint to the
ledger's tree (its old root must still be the root of its first records),
every record's hash and links, and the telemetry seals of the legs
received after it and the tree hashes from it on; the seals of older legs
and the rest of the file are not read again: run a full verify now and
then. A file that is not such a checkpoint is refused with exit status 2.

With --cpuprofile FILE, a CPU profile of the run is written to FILE for
go tool pprof (to see where a slow verification spends its time).

Exit status:
  0  the ledger and the file are sound
  1  the check could not run: no ledger at --data, the directory in use by
     the service, a file of another coid format, an I/O error
  2  usage error (a bad flag or argument)
  3  the ledger failed verification or the file is damaged or not a coid
     store; the first bad record or the damaged part is named

`

// checkpoints is the repeatable --checkpoint flag.
type checkpoints []custody.Checkpoint

func (c *checkpoints) String() string { return fmt.Sprint(*c) }

func (c *checkpoints) Set(v string) error {
	cp, err := custody.ParseCheckpoint(v)
	if err != nil {
		return err
	}
	*c = append(*c, cp)
	return nil
}

func runUser(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("user: want %s", strings.Join(subcommands("user"), ", "))
	}
	switch args[0] {
	case "passwd", "reset", "disable", "enable", "tokens", "revoke":
		return runAccount(ctx, args, env, stdin, stdout, stderr) // accounts.go: through the service
	}
	var s settings
	var id, name, role, serverURL, org, reason string
	var sites siteCodes
	fs := newFlags("user "+args[0], env, stderr, &s)
	switch args[0] {
	case "add":
		fs.StringVar(&id, "id", "", "user ID")
		fs.StringVar(&name, "name", "", "printed name, as it appears on signatures")
		fs.StringVar(&role, "role", "", "role: "+joinRoles())
		fs.StringVar(&org, "org", "", "code of the registered organisation the person belongs to (optional: without it the account is unbound)")
		fs.Var(&sites, "site", "code of a registered site of the organisation where the person works (repeat for several; none for couriers and administrators)")
	case "network":
		fs.StringVar(&id, "id", "", "user ID")
		fs.StringVar(&org, "org", "", "code of the registered organisation (empty, with no --site: unbind)")
		fs.Var(&sites, "site", "code of a registered site of the organisation (repeat for several)")
		fs.StringVar(&reason, "reason", "", "why, for the audit trail (required)")
	case "unlock":
		fs.StringVar(&id, "id", "", "user ID")
		fs.StringVar(&serverURL, "url", "", "base URL of the running service: unlock through its API, with an administrator's token in COID_TOKEN (without --url: offline, on --data)")
	case "token":
		fs.StringVar(&id, "id", "", "user ID")
	case "list":
	default:
		return usagef("user: unknown subcommand %q (want %s)", args[0], strings.Join(subcommands("user"), ", "))
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if args[0] != "list" && id == "" {
		return usagef("user %s: --id is required", args[0])
	}
	if serverURL != "" {
		return unlockOnline(ctx, serverURL, id, getenv(env, "COID_TOKEN"), stdout)
	}
	var password string
	if args[0] == "add" {
		if name == "" || role == "" {
			return usagef("user add: --name and --role are required")
		}
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("user add: read password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
		if password == "" {
			return usagef("user add: give the password on stdin, e.g. printf '%%s\\n' \"$PASSWORD\" | coid user add ...")
		}
	}
	if args[0] == "add" {
		if err := custody.CheckNewUser(id, name, custody.Role(role), password); err != nil {
			return err // before anything is created
		}
	} else if !hasLedger(s) {
		// Only add may start a ledger: a mistyped --data must not create one.
		return fmt.Errorf("user %s: no ledger at %s (check --data): %w", args[0], ledgerFile(s.data), custody.ErrNotFound)
	}
	svc, st, err := openOffline(s, stderr, args[0] == "list", time.Now)
	if err != nil {
		return fmt.Errorf("user %s: %w", args[0], err)
	}
	defer st.close()
	switch args[0] {
	case "add":
		tok, err := svc.AdminAddUserIn(ctx, offlineAdmin, id, name, custody.Role(role), password, org, sites)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
	case "network":
		u, err := svc.SetUserNetwork(ctx, offlineAdmin, id, org, sites, reason)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", u.ID, u.Organisation, strings.Join(u.Sites, ","))
	case "unlock":
		return svc.Unlock(ctx, id)
	case "token":
		tok, th, err := custody.NewToken()
		if err != nil {
			return err
		}
		if err := st.ledger.AddToken(ctx, id, th); err != nil {
			return fmt.Errorf("user token: %w", err)
		}
		fmt.Fprintln(stdout, tok)
	case "list":
		users, err := svc.Users(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tLOCKED\tCREATED\tORGANISATION\tSITES")
		for _, u := range users {
			org, sites := u.Organisation, strings.Join(u.Sites, ",")
			if org == "" {
				org = "-" // unbound: an account from before the network
			}
			if sites == "" {
				sites = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\n", u.ID, u.Name, u.Role, u.Locked, u.Created.Format(time.RFC3339), org, sites)
		}
		return tw.Flush()
	}
	return nil
}

// unlockOnline unlocks a user through a running service's API
// (POST /api/v1/users/{id}/unlock), as the administrator whose token is
// given: the service holds the data directory, so the offline unlock
// cannot run beside it, and only the service can end the back-offs it
// keeps in memory.
func unlockOnline(ctx context.Context, base, id, token string, stdout io.Writer) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("user unlock: --url must be the service's http:// or https:// base URL, e.g. https://coid.example:8080")
	}
	if token == "" {
		return usagef("user unlock --url: set COID_TOKEN to an administrator's API token")
	}
	if err := custody.ValidateUserID(id); err != nil {
		return fmt.Errorf("user unlock: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	target := strings.TrimSuffix(u.String(), "/") + "/api/v1/users/" + url.PathEscape(id) + "/unlock"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return fmt.Errorf("user unlock: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("user unlock: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusOK {
		fmt.Fprintf(stdout, "unlocked %s\n", id)
		return nil
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := http.StatusText(resp.StatusCode)
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	sentinel := map[int]error{http.StatusBadRequest: custody.ErrInvalid, http.StatusUnauthorized: custody.ErrUnauthenticated,
		http.StatusForbidden: custody.ErrForbidden, http.StatusNotFound: custody.ErrNotFound}[resp.StatusCode]
	if sentinel == nil {
		return fmt.Errorf("user unlock: the service answered %d: %s", resp.StatusCode, msg)
	}
	return fmt.Errorf("user unlock: the service answered %d: %s: %w", resp.StatusCode, msg, sentinel)
}

func joinRoles() string {
	var s []string
	for _, r := range custody.UserRoles {
		s = append(s, string(r))
	}
	return strings.Join(s, ", ")
}

// offlineAdmin is who an account change made offline (coid user add,
// coid user network) is attributed to in the audit trail: whoever holds
// the data directory.
var offlineAdmin = custody.User{ID: "offline", Name: "offline administrator (coid user)", Role: custody.RoleAdmin}

// siteCodes collects the repeated --site flag.
type siteCodes []string

func (c *siteCodes) String() string { return strings.Join(*c, ",") }

// Set adds one site code.
func (c *siteCodes) Set(v string) error {
	*c = append(*c, v)
	return nil
}
