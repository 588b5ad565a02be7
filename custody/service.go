package custody

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config configures a Service.
type Config struct {
	Store   Store
	Hasher  PasswordHasher
	Logger  *slog.Logger
	Now     func() time.Time
	FIN     string   // issuing facility for new COI identifiers
	Journey *Journey // nil: DefaultJourney
	// Profiles names the temperature profiles a ship step may use.
	Profiles []string
	// Telemetry connects the service to the stored shipper readings.
	Telemetry TelemetryConfig
	// LabelText, when set, checks at enrollment that the bag labels will
	// print the patient's name and the product (labels.CheckEnrollment):
	// the enroll record cannot be changed after, and a chain whose labels
	// cannot be printed cannot go on.
	LabelText func(patientName, product string) error
	// Folder, when set, folds text before step data is compared with the
	// patient's identifiers: compatibility forms and look-alike characters
	// (custody/phitext). Without one the comparison folds case and the
	// diacritics of Latin letters only.
	Folder TextFolder
	// Passwords is the password expiry and history policy.
	Passwords PasswordPolicy
	// OfferTTL is how long a waiting-list offer stands (0: DefaultOfferTTL).
	OfferTTL time.Duration
	// Documents keeps expanded-access documents; nil: none are taken.
	Documents *DocumentStore
	// AccessSLA are the service-level clocks of expanded-access requests
	// (zero durations: DefaultAccessSLA's).
	AccessSLA AccessSLA
}

// Service is the domain's front door: it enrolls chains, records signed
// steps under the journey rules, authenticates users and verifies the
// ledger. It is safe for concurrent use.
type Service struct {
	store    Store
	hasher   PasswordHasher
	log      *slog.Logger
	now      func() time.Time
	fin      string
	journey  *Journey
	profiles map[string]bool
	tele     TelemetryConfig
	labelTxt func(patientName, product string) error
	folder   TextFolder
	// passwords is the password expiry and history policy (accounts.go).
	passwords PasswordPolicy
	seed      maphash.Seed
	locks     [256]sync.Mutex

	// cache holds folded chains, keyed by COI, valid while the store's
	// summary still names the same head record. Entries are never mutated.
	cacheMu sync.Mutex
	cache   map[COI]*Chain
	// accessCache holds folded expanded-access requests (foldedAccess),
	// under cacheMu, valid while the store's summary still names the
	// same head record. Entries are never mutated.
	accessCache map[COI]foldedAccess

	dummyOnce sync.Once
	dummy     string

	// backoff slows callers who give wrong passwords for other users'
	// IDs (lockout.go).
	backoff *backoffs

	// touched is when the service last recorded each token's use
	// (accounts.go).
	touchMu sync.Mutex
	touched map[Hash]time.Time

	// waitMu serializes the waiting list's changes (waitlist_service.go).
	waitMu   sync.Mutex
	offerTTL time.Duration
	sla      AccessSLA

	// docs keeps expanded-access documents (access_documents.go).
	docs *DocumentStore
}

// maxCachedChains bounds the folded-chain cache; when full it is emptied.
const maxCachedChains = 4096

// maxCachedRequests bounds the folded-request cache; when full it is
// emptied. It holds more than the triage queue's largest page (500).
const maxCachedRequests = 4096

// NewService checks cfg and returns a Service.
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Hasher == nil || cfg.Logger == nil || cfg.Now == nil {
		return nil, fmt.Errorf("new service: store, hasher, logger and clock are required: %w", ErrInvalid)
	}
	if !ValidFIN(cfg.FIN) {
		return nil, fmt.Errorf("new service: facility %q is not an ISBT 128 FIN (A-N, P-Z or 1-9; two of A-N, P-Z, 0-9; two digits): %w", cfg.FIN, ErrInvalid)
	}
	if err := cfg.Passwords.Check(); err != nil {
		return nil, fmt.Errorf("new service: %w", err)
	}
	j := cfg.Journey
	if j == nil {
		j = DefaultJourney()
	}
	s := &Service{store: cfg.Store, hasher: cfg.Hasher, log: cfg.Logger, now: cfg.Now, fin: cfg.FIN,
		journey: j, profiles: map[string]bool{}, tele: cfg.Telemetry, labelTxt: cfg.LabelText, folder: cfg.Folder, passwords: cfg.Passwords, seed: maphash.MakeSeed(),
		backoff: newBackoffs(cfg.Now), docs: cfg.Documents}
	for _, p := range cfg.Profiles {
		s.profiles[p] = true
	}
	s.sla = cfg.AccessSLA.withDefaults()
	if s.offerTTL = cfg.OfferTTL; s.offerTTL <= 0 {
		s.offerTTL = DefaultOfferTTL
	}
	return s, nil
}

// Health reads the store's head: nil when the store answers, the reason
// otherwise (a failed reopen of the file, say).
func (s *Service) Health(ctx context.Context) error {
	if _, _, err := s.store.Head(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Now returns the service clock's current time in UTC.
func (s *Service) Now() time.Time { return s.now().UTC() }

// Profiles returns the names of the temperature profiles a ship step may
// name, sorted.
func (s *Service) Profiles() []string { return sortedKeys(s.profiles) }

// Journey returns the journey table the service enforces.
func (s *Service) Journey() *Journey { return s.journey }

func (s *Service) lock(coi COI) func() {
	m := &s.locks[s.stripe(coi)]
	m.Lock()
	return m.Unlock
}

// stripe is the index of coi's lock.
func (s *Service) stripe(coi COI) uint64 {
	return maphash.String(s.seed, string(coi)) % uint64(len(s.locks))
}

// sameLock reports whether a and b share a lock stripe, so that holding
// one's lock holds the other's.
func (s *Service) sameLock(a, b COI) bool { return s.stripe(a) == s.stripe(b) }

// SignatureRequest is a signature as a client submits it: the signer's ID
// and password, and what the signature means.
type SignatureRequest struct {
	User     string  `json:"user"`
	Password string  `json:"password"`
	Meaning  Meaning `json:"meaning"`
}

// EnrollRequest is what a coordinator submits to start a chain.
type EnrollRequest struct {
	Patient    PHI                `json:"patient"`
	Product    string             `json:"product"`
	Sites      Sites              `json:"sites"`
	Signatures []SignatureRequest `json:"signatures"`
}

// StepRequest is a step submitted for a chain.
type StepRequest struct {
	Step       Step               `json:"step"`
	Data       json.RawMessage    `json:"data"`
	Signatures []SignatureRequest `json:"signatures"`
}

// Enroll starts a new chain: it issues a COI identifier, stores the
// patient's identifiers outside the ledger and appends the enroll record.
// The actor must be a coordinator; when the request carries no signature
// the record is attributed to the actor's authenticated session.
func (s *Service) Enroll(ctx context.Context, actor User, req EnrollRequest) (*Chain, error) {
	return s.enroll(ctx, actor, req, "")
}

// enroll enrolls a chain as Enroll does; request, when not empty, is the
// expanded-access request the enroll record names.
func (s *Service) enroll(ctx context.Context, actor User, req EnrollRequest, request COI) (*Chain, error) {
	if !MayEnroll(actor.Role) {
		return nil, fmt.Errorf("enroll: role %s may not enroll patients (coordinator only): %w", actor.Role, ErrForbidden)
	}
	now := s.now().UTC()
	phi := PHI{Name: strings.TrimSpace(req.Patient.Name), BirthDate: req.Patient.BirthDate, MRN: strings.TrimSpace(req.Patient.MRN)}
	if err := phi.Validate(now); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	if err := validText("product", req.Product, true, 200); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	for _, f := range []struct{ n, v string }{{"sites.collection", req.Sites.Collection},
		{"sites.manufacturing", req.Sites.Manufacturing}, {"sites.treatment", req.Sites.Treatment}} {
		if err := validText(f.n, f.v, true, 200); err != nil {
			return nil, fmt.Errorf("enroll: %w", err)
		}
	}
	productName, err := s.checkEnrollRegistry(ctx, req.Sites, req.Product, now)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	if s.labelTxt != nil {
		if err := s.labelTxt(phi.Name, req.Product); err != nil {
			return nil, fmt.Errorf("enroll: the bag labels could not print this; enter the name as it should appear on the label: %w", err)
		}
	}
	m := newPHIMatcher(phi, s.folder)
	for _, f := range []struct{ n, v string }{{"product", req.Product}, {"sites.collection", req.Sites.Collection},
		{"sites.manufacturing", req.Sites.Manufacturing}, {"sites.treatment", req.Sites.Treatment}} {
		if what := m.find(f.v); what != "" {
			return nil, fmt.Errorf("enroll: %s holds the patient's %s; it goes into the ledger, which can never be erased: %w", f.n, what, ErrInvalid)
		}
	}
	rule, _ := s.journey.Rule("", StepEnroll)
	// The coordinator must work at the collection site when it is
	// registered (signers.go).
	place, err := s.signerPlaceFor(ctx, req.Sites, rule, StepEnroll, nil)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	var sigs []Signature
	if len(req.Signatures) > 0 {
		if sigs, err = s.sign(ctx, Caller{User: actor.ID}, StepEnroll, rule.Signatures, req.Signatures, place, now); err != nil {
			return nil, fmt.Errorf("enroll: %w", err)
		}
	} else {
		if err := place.check(ctx, s, actor); err != nil {
			return nil, fmt.Errorf("enroll: %w", err)
		}
		sigs = []Signature{{User: actor.ID, Name: actor.Name, Role: actor.Role, Meaning: MeaningAuthored,
			Time: FormatTime(now), Method: ViaToken}}
	}
	phi.Salt = make([]byte, 32)
	if _, err := rand.Read(phi.Salt); err != nil {
		return nil, fmt.Errorf("enroll: salt: %w", err)
	}
	seq, err := s.store.NextCOISequence(ctx, s.fin, now.Year())
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	coi, err := NewCOI(s.fin, now.Year(), seq)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	data, err := json.Marshal(EnrollData{Product: req.Product, ProductName: productName, Sites: req.Sites, Facility: s.fin, PatientCommitment: phi.Commitment(), Request: request})
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	if data, err = Canonicalize(data); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	// An expanded-access enrollment holds its request's lock stripe; the
	// new chain's may be the same one, which is then held already.
	if request == "" || !s.sameLock(coi, request) {
		unlock := s.lock(coi)
		defer unlock()
	}
	rec := Record{V: EncodingVersion, Chain: coi, Step: StepEnroll, Time: now, Site: req.Sites.Collection,
		SubmittedBy: actor.ID, Data: data, Signatures: sigs}
	if _, err := s.store.Append(ctx, s.withIssues(nil, Draft{Record: rec, NewChain: true, State: rule.To, Product: req.Product, Sites: req.Sites, PHI: &phi})); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	s.log.Info("chain enrolled", "coi", string(coi), "user", actor.ID)
	return s.chainLocked(ctx, coi)
}

// Chain returns the chain with its records, state and next steps.
func (s *Service) Chain(ctx context.Context, coi COI) (*Chain, error) {
	unlock := s.lock(coi)
	defer unlock()
	return s.chainLocked(ctx, coi)
}

// chainLocked returns the folded chain; the caller holds the chain's lock.
// The result is shared with the cache and must not be modified.
func (s *Service) chainLocked(ctx context.Context, coi COI) (*Chain, error) {
	info, err := s.store.Chain(ctx, coi)
	if err != nil {
		return nil, err
	}
	s.cacheMu.Lock()
	c := s.cache[coi]
	s.cacheMu.Unlock()
	if c != nil && uint64(len(c.Records)) == info.Records && c.Records[len(c.Records)-1].Hash == info.HeadHash {
		return c, nil
	}
	recs, err := s.store.Records(ctx, coi)
	if err != nil {
		return nil, err
	}
	if c, err = Fold(s.journey, recs); err != nil {
		return nil, fmt.Errorf("chain %s: %w", coi, err)
	}
	s.cacheMu.Lock()
	if s.cache == nil || len(s.cache) >= maxCachedChains {
		s.cache = map[COI]*Chain{}
	}
	s.cache[coi] = c
	s.cacheMu.Unlock()
	return c, nil
}

// Chains lists chain summaries, filtered by state when state is not empty.
func (s *Service) Chains(ctx context.Context, state State) ([]ChainInfo, error) {
	if state != "" && !slices.Contains(States, state) {
		return nil, fmt.Errorf("chains: unknown state %q (one of %v): %w", state, States, ErrInvalid)
	}
	all, err := s.store.Chains(ctx, state)
	return slices.DeleteFunc(all, func(ci ChainInfo) bool { return ci.State.Access() }), err
}

// Record appends a signed step to a chain after checking the journey
// rules: the submitter may not be an administrator, the step must be
// allowed in the chain's state, its data valid and free of patient
// identifiers, every signature authenticated and of a role the step
// allows, and release or infusion may not pass an open or rejected
// excursion. A failed bedside verification appends a mismatch record and
// returns ErrConflict.
func (s *Service) Record(ctx context.Context, actor User, coi COI, req StepRequest) (Record, error) {
	op := fmt.Sprintf("record %s on %s", req.Step, coi)
	if s.journey.IsSystem(req.Step) {
		return Record{}, fmt.Errorf("%s: %s records are written by coid itself: %w", op, req.Step, ErrForbidden)
	}
	if req.Step == StepEnroll {
		return Record{}, fmt.Errorf("%s: use enrollment to start a chain: %w", op, ErrInvalid)
	}
	if actor.Role == RoleAdmin {
		return Record{}, fmt.Errorf("%s: administrators manage users and take no part in journey steps: %w", op, ErrForbidden)
	}
	now := s.now().UTC()
	data, err := parseData(req.Step, req.Data)
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	unlock := s.lock(coi)
	defer unlock()
	c, err := s.chainLocked(ctx, coi)
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	rule, err := s.journey.Rule(c.State, req.Step)
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	// Before the data is checked against its schema: an error naming an
	// unknown member must not repeat a patient identifier.
	if err := s.checkNoPHI(ctx, c.COI, req.Step, data, req.Step == StepBedsideVerify); err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := checkData(req.Step, s.journey.DataMembers(req.Step), data, s.profiles, now); err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.checkAgainstChain(c, req.Step, data); err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.checkOOS(ctx, c, req.Step, data, len(req.Signatures)); err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	if req.Step == StepFollowUp {
		if err := s.checkFollowUp(ctx, c, data, now); err != nil {
			return Record{}, fmt.Errorf("%s: %w", op, err)
		}
	}
	if req.Step == StepCorrection {
		if err := checkFollowUpCorrection(c, data, now); err != nil {
			return Record{}, fmt.Errorf("%s: %w", op, err)
		}
	}
	if req.Step == StepShip {
		if err := s.checkShipGates(ctx, c, data, now); err != nil {
			return Record{}, fmt.Errorf("%s: %w", op, err)
		}
	}
	bedside := req.Step == StepBedsideVerify
	if m := c.unacknowledged(); m != nil && (bedside || req.Step == StepInfuse) {
		return Record{}, fmt.Errorf("%s: bedside mismatch record %d is not acknowledged; a nurse, coordinator or QA must "+
			"acknowledge it (the bag it names is set aside) before another bedside check or the infusion: %w", op, m.Seq, ErrConflict)
	}
	// Before any signature is checked or a bedside check compared: a
	// blocked chain takes none of these steps, and writes nothing.
	if (req.Step == StepRelease || req.Step == StepExceptionalRelease || req.Step == StepInfuse || bedside) && (len(c.OpenIssues()) > 0 || c.rejected() != nil) {
		if r := c.rejected(); r != nil {
			return Record{}, fmt.Errorf("%s: QA rejected %s (record %d); the product may not be released or infused: %w", op, r.Kind, r.Seq, ErrConflict)
		}
		is := c.OpenIssues()[0]
		return Record{}, fmt.Errorf("%s: %d issue(s) await a QA disposition, first %s (record %d): %w", op, len(c.OpenIssues()), is.Kind, is.Seq, ErrConflict)
	}
	if req.Step == StepCollect {
		if err := s.checkCollectGate(ctx, c); err != nil {
			return Record{}, fmt.Errorf("%s: %w", op, err)
		}
	}
	place, err := s.signerPlaceFor(ctx, c.Sites, rule, req.Step, data)
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	sigs, err := s.sign(ctx, Caller{User: actor.ID}, req.Step, rule.Signatures, req.Signatures, place, now)
	if err != nil && !(bedside && errors.Is(err, errSameSigner)) {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	if bedside {
		if mm := s.bedsideCheck(ctx, c, data, err); mm != nil {
			return Record{}, s.mismatch(ctx, actor, c, data, sigs, mm, now)
		}
	}
	if err := s.sealLeg(ctx, c, req.Step, data, now); err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	if req.Step == StepInfuse {
		if err := infusedBag(c, data); err != nil {
			return Record{}, fmt.Errorf("%s: %w", op, err)
		}
	}
	body, err := data.canonical()
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	rec := Record{V: EncodingVersion, Chain: coi, Step: req.Step, Time: now, Site: c.Sites.name(rule.Site),
		SubmittedBy: actor.ID, Data: body, Signatures: sigs}
	stored, err := s.store.Append(ctx, s.withIssues(c, Draft{Record: rec, ExpectRecords: uint64(len(c.Records)), State: rule.To,
		Releases: releasesOn(c, req.Step), QuotaRelease: req.Step == StepCancel}))
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	s.log.Info("record appended", "coi", string(coi), "step", string(req.Step), "seq", stored.Seq, "user", actor.ID)
	if req.Step == StepCancel {
		s.slotsFreed(ctx, actor)
	}
	return stored, nil
}

// withIssues sets in d what its chain's summary keeps of the open issues
// and of its progress: those of chain c (nil for an enroll) once d's
// record is appended. If the issues cannot be computed the summary is
// marked as not keeping them, and readers fold the chain.
func (s *Service) withIssues(c *Chain, d Draft) Draft {
	d = withProgress(c, d)
	d = withFollowUp(c, d)
	n, err := openIssuesAfter(c, d.Record)
	if err != nil {
		s.log.Warn("open issues not kept in the chain summary", "coi", string(d.Record.Chain), "step", string(d.Record.Step), "err", err)
		return d
	}
	d.OpenIssues = n
	return d
}

// checkNoPHI refuses step data holding a patient identifier (see the
// function of the same name). At the bedside the scanned wristband, which
// the service drops, and the scanned bag label, which it keeps only as a
// coid code, may hold one: a swapped scan must reach the mismatch record.
func (s *Service) checkNoPHI(ctx context.Context, coi COI, step Step, d *stepData, bedside bool) error {
	var phi *PHI
	switch p, err := s.store.PHI(ctx, coi); {
	case err == nil:
		phi = &p
	case !errors.Is(err, ErrNotFound): // erased: the field names are still checked
		return err
	}
	if bedside {
		return checkNoPHI(step, d.fields, phi, s.folder, "wristband_code", "bag_code")
	}
	return checkNoPHI(step, d.fields, phi, s.folder)
}

// infusedBag names in the infuse record's data the bag the passing bedside
// check verified (the chain's last bedside-verify record), so the record
// says which bag went in and the other bags keep no doubt about their fate.
// A client that names a bag must name that one.
func infusedBag(c *Chain, d *stepData) error {
	var verified string
	for i := len(c.Records) - 1; i >= 0 && verified == ""; i-- {
		if c.Records[i].Step != StepBedsideVerify {
			continue
		}
		x, err := c.Records[i].Parsed()
		b, ok := x.(BedsideData)
		if err != nil || !ok || b.Bag == "" {
			return fmt.Errorf("bedside-verify record %d names no bag: %w", c.Records[i].Seq, ErrChainBroken)
		}
		verified = b.Bag
	}
	if verified == "" {
		return fmt.Errorf("no bedside check names the bag: %w", ErrConflict)
	}
	x, _ := d.parsed.(InfuseData)
	if raw, named := d.raw["bag"]; named && string(raw) != "null" && x.Bag != verified {
		return fmt.Errorf("data.bag %q is not the bag the bedside check verified (%s): %w", x.Bag, verified, ErrConflict)
	}
	d.set("bag", verified)
	return nil
}

// checkAgainstChain checks step data that refers to the chain's own
// records: dispositions name an open issue, corrections an existing
// record.
func (s *Service) checkAgainstChain(c *Chain, step Step, d *stepData) error {
	switch step {
	case StepDisposition:
		x, _ := d.parsed.(DispositionData)
		for _, is := range c.Issues {
			if is.Seq != x.Excursion {
				continue
			}
			if !is.Open {
				return fmt.Errorf("record %d already has a disposition (record %d): %w", is.Seq, is.DispositionSeq, ErrConflict)
			}
			waits, err := DispositionWaits(c)
			if err != nil {
				return err
			}
			if waits[is.Seq] {
				return fmt.Errorf("excursion record %d is still going on as last recorded, on a leg still in transit; its disposition "+
					"waits for its end, which coid records once the readings show it (or the leg is received): %w", is.Seq, ErrConflict)
			}
			return nil
		}
		return fmt.Errorf("record %d is not an excursion, broken seal or bedside mismatch of this chain: %w", x.Excursion, ErrInvalid)
	case StepCorrection:
		x, _ := d.parsed.(CorrectionData)
		for _, r := range c.Records {
			if r.Seq == x.Corrects {
				return d.closed(step, correctionMembers(r))
			}
		}
		return fmt.Errorf("record %d is not a record of this chain: %w", x.Corrects, ErrInvalid)
	}
	return nil
}

// errSameSigner marks a signature set in which one user signed twice.
var errSameSigner = fmt.Errorf("each signature must come from a different user: %w", ErrForbidden)

// sign authenticates each signature request, tried by caller, and matches
// it to a rule of the step. Failed attempts count under the lockout rules
// (lockout.go). Each signer matched to a rule must be bound to place
// (signers.go); a refusal there is ErrForbidden and, the password being
// right, no failed attempt. When the only fault is one user signing
// twice it returns the signatures with errSameSigner.
func (s *Service) sign(ctx context.Context, caller Caller, step Step, rules []SignatureRule, reqs []SignatureRequest, place signerPlace, now time.Time) ([]Signature, error) {
	if len(reqs) != len(rules) {
		want := make([]string, len(rules))
		for i, r := range rules {
			want[i] = fmt.Sprintf("%s by %s", r.Meaning, joinRoles(r.Roles))
		}
		return nil, fmt.Errorf("%s needs %d signature(s) (%s), got %d: %w", step, len(rules), strings.Join(want, "; "), len(reqs), ErrInvalid)
	}
	users := make([]User, len(reqs))
	for i, r := range reqs {
		if r.User == "" || r.Password == "" {
			return nil, fmt.Errorf("signature %d needs a user ID and password: %w", i+1, ErrInvalid)
		}
		u, err := s.authenticateSigner(ctx, caller, r.User, r.Password)
		if err != nil {
			return nil, fmt.Errorf("signature %d: %w", i+1, err)
		}
		users[i] = u
	}
	used := make([]bool, len(reqs))
	sigs := make([]Signature, len(rules))
	for i, rule := range rules {
		found, wrongRole := -1, -1
		for j, r := range reqs {
			if used[j] || r.Meaning != rule.Meaning {
				continue
			}
			if slices.Contains(rule.Roles, users[j].Role) {
				found = j
				break
			}
			wrongRole = j
		}
		if found < 0 {
			if wrongRole >= 0 {
				u := users[wrongRole]
				return nil, fmt.Errorf("%s (%s) may not sign %q for %s; it needs %s: %w", u.ID, u.Role, rule.Meaning, step, joinRoles(rule.Roles), ErrForbidden)
			}
			return nil, fmt.Errorf("%s needs a %q signature by %s: %w", step, rule.Meaning, joinRoles(rule.Roles), ErrInvalid)
		}
		used[found] = true
		u := users[found]
		if err := place.check(ctx, s, u); err != nil {
			return nil, fmt.Errorf("signature %d: %w", found+1, err)
		}
		sigs[i] = Signature{User: u.ID, Name: u.Name, Role: u.Role, Meaning: rule.Meaning, Time: FormatTime(now), Method: MethodPassword}
	}
	for i := range sigs {
		for j := i + 1; j < len(sigs); j++ {
			if sigs[i].User == sigs[j].User {
				return sigs, errSameSigner
			}
		}
	}
	return sigs, nil
}

func joinRoles(rs []Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}

// authenticateSigner checks a signer's password; administrators sign no
// journey records (ErrForbidden, said only once the password is right, so
// signing cannot probe for administrators' IDs).
func (s *Service) authenticateSigner(ctx context.Context, caller Caller, id, password string) (User, error) {
	u, err := s.checkPassword(ctx, caller, id, password)
	if err != nil {
		return User{}, err
	}
	if u.Role == RoleAdmin {
		return User{}, fmt.Errorf("administrators sign no journey records: %w", ErrForbidden)
	}
	// Said only once the password is right, as above.
	if err := s.PasswordChangeDue(u); err != nil {
		return User{}, err
	}
	return u, nil
}

// dummyHash returns a hash that no password matches, made once, so that
// an unknown signer costs as much as a known one.
func (s *Service) dummyHash() string {
	s.dummyOnce.Do(func() { s.dummy, _ = s.hasher.Hash("not a password") })
	return s.dummy
}

// Authenticate returns the user owning an API token.
func (s *Service) Authenticate(ctx context.Context, token string) (User, error) {
	if !strings.HasPrefix(token, TokenPrefix) || len(token) > 100 {
		return User{}, fmt.Errorf("authenticate: malformed token: %w", ErrUnauthenticated)
	}
	u, err := s.store.UserByToken(ctx, TokenHash(token))
	if errors.Is(err, ErrNotFound) {
		return User{}, fmt.Errorf("authenticate: unknown token: %w", ErrUnauthenticated)
	}
	if err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	if u.Disabled {
		return User{}, fmt.Errorf("authenticate: user %s is disabled: %w", u.ID, ErrUnauthenticated)
	}
	s.touchToken(ctx, TokenHash(token))
	return u, nil
}

// Login checks a user's ID and password for an interactive session, tried
// from the client address from. Nobody is authenticated yet, so wrong
// passwords never lock the account: they make that address wait before
// naming the ID again (lockout.go), administrators' IDs included.
func (s *Service) Login(ctx context.Context, from, id, password string) (User, error) {
	u, err := s.checkPassword(ctx, Caller{Addr: from}, id, password)
	if err != nil {
		return User{}, fmt.Errorf("login: %w", err)
	}
	return u.Public(), nil
}

// CheckNewUser checks what AddUser needs of a new user without a store:
// a well-formed ID, a printed name, a user role and a password of 8-1024
// characters. Offline tools call it before they create anything.
func CheckNewUser(id, name string, role Role, password string) error {
	if err := ValidateUserID(id); err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	if err := validText("name", name, true, 200); err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	if !ValidUserRole(role) {
		return fmt.Errorf("add user: role %q is not one of %v: %w", role, UserRoles, ErrInvalid)
	}
	if err := checkPasswordRule(password); err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	return nil
}

// AddUser creates a user with a password and returns the user's first API
// token, which is shown once and stored only hashed.
func (s *Service) AddUser(ctx context.Context, id, name string, role Role, password string) (string, error) {
	return s.addUser(ctx, id, name, role, password, "", "", nil)
}

// addUser is AddUser; an actor's ID, when not empty, is recorded with the
// creation in an audit entry written in the same transaction. The user is
// bound to organisation and sites (checkUserNetwork; both empty: unbound).
func (s *Service) addUser(ctx context.Context, id, name string, role Role, password, actor, organisation string, sites []string) (string, error) {
	return s.addUserFor(ctx, id, name, role, password, actor, organisation, sites, false, "")
}

// addUserFor is addUser with the account's first password a temporary one
// the person must change at the first sign-in (temporary), and the
// administrator's reason in the audit entry.
func (s *Service) addUserFor(ctx context.Context, id, name string, role Role, password, actor, organisation string, sites []string, temporary bool, reason string) (string, error) {
	if err := CheckNewUser(id, name, role, password); err != nil {
		return "", err
	}
	sites, err := s.checkUserNetwork(ctx, role, organisation, sites)
	if err != nil {
		return "", fmt.Errorf("add user %s: %w", id, err)
	}
	// Two signatures must come from two people: IDs that differ only in
	// case (NURSE1 beside nurse1) would let one person pass for two.
	users, err := s.store.Users(ctx)
	if err != nil {
		return "", fmt.Errorf("add user: %w", err)
	}
	for _, o := range users {
		if o.ID != id && strings.EqualFold(o.ID, id) {
			return "", fmt.Errorf("add user %s: user %s exists; IDs may not differ only in case: %w", id, o.ID, ErrConflict)
		}
	}
	enc, err := s.hasher.Hash(password)
	if err != nil {
		return "", fmt.Errorf("add user: %w", err)
	}
	tok, th, err := NewToken()
	if err != nil {
		return "", fmt.Errorf("add user: %w", err)
	}
	now := s.now().UTC()
	u := User{ID: id, Name: strings.TrimSpace(name), Role: role, Organisation: organisation, Sites: sites,
		PasswordHash: enc, Created: now, PasswordChanged: now, MustChangePassword: temporary}
	if actor == "" {
		err = s.store.CreateUser(ctx, u, th)
	} else {
		vals := map[string]string{"name": u.Name, "role": string(role), "token " + TokenID(th): "active"}
		if organisation != "" {
			maps.Copy(vals, networkValues(organisation, sites))
		}
		if temporary {
			vals["change_required"] = "true"
		}
		err = s.store.CreateUserAudited(ctx, u, th, AuditEntry{Time: now, Actor: actor, Action: AuditUserAdd, Kind: KindUser, Code: id,
			Reason: reason, New: AuditValues(vals)})
	}
	if err != nil {
		return "", fmt.Errorf("add user %s: %w", id, err)
	}
	s.log.Info("user added", "user", id, "role", string(role))
	return tok, nil
}

// Unlock clears a user's failed-signature lock.
func (s *Service) Unlock(ctx context.Context, id string) error {
	_, err := s.store.UpdateUser(ctx, id, func(u *User) error { u.Locked, u.FailedSignatures = false, 0; return nil })
	if err != nil {
		return fmt.Errorf("unlock %s: %w", id, err)
	}
	s.log.Info("user unlocked", "user", id)
	return nil
}

// VerifyLedger verifies the whole ledger: VerifyLedgerSince from the
// first record.
func (s *Service) VerifyLedger(ctx context.Context) (Report, error) {
	return s.VerifyLedgerSince(ctx, 0)
}

// checkSeals recomputes the telemetry seal of each received leg of coi from
// the stored readings. A seal that no longer matches fails rep at the
// receive record that sealed it: readings were changed or deleted after
// receipt.
func (s *Service) checkSeals(ctx context.Context, coi COI, rep *Report) error {
	if s.tele.Readings == nil || !rep.OK {
		return nil
	}
	checks, err := s.VerifySeals(ctx, coi)
	if err != nil {
		return err
	}
	c, err := s.Chain(ctx, coi)
	if err != nil {
		return err
	}
	for _, sc := range checks {
		if !sc.OK && sc.Leg >= 1 && sc.Leg <= len(c.Legs) {
			rep.fail(c.Legs[sc.Leg-1].ReceiveSeq, "chain %s leg %d: telemetry seal does not match the stored readings: %s", coi, sc.Leg, sc.Problem)
			return nil
		}
	}
	return nil
}

// VerifyChain verifies one chain's records and summary.
func (s *Service) VerifyChain(ctx context.Context, coi COI) (Report, error) {
	ci, err := s.store.Chain(ctx, coi)
	if err != nil {
		return Report{}, fmt.Errorf("verify chain: %w", err)
	}
	rep, err := VerifyChainJourney(ctx, s.store, ci, s.journey)
	if err != nil {
		return Report{}, err
	}
	if ci.State.Access() {
		return rep, nil // a request has no shipments
	}
	if err := s.checkSeals(ctx, coi, &rep); err != nil {
		return Report{}, fmt.Errorf("verify chain: %w", err)
	}
	if !rep.OK {
		s.log.Error("chain verification failed", "coi", string(coi), "first_bad", rep.FirstBad, "problem", rep.Problem)
	}
	return rep, nil
}

// User returns one user account, without its password hash.
func (s *Service) User(ctx context.Context, id string) (User, error) {
	u, err := s.store.User(ctx, id)
	if err != nil {
		return User{}, err
	}
	return u.Public(), nil
}

// Users lists the user accounts, without password hashes.
func (s *Service) Users(ctx context.Context) ([]User, error) { return s.store.Users(ctx) }

// PHI returns the patient identifiers kept for a chain, for label printing
// only; callers must never log them.
func (s *Service) PHI(ctx context.Context, coi COI) (PHI, error) { return s.store.PHI(ctx, coi) }
