package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
)

// Source is where Build reads a chain. NewServiceSource adapts a
// *custody.Service; tests pass their own.
type Source interface {
	// Chain returns the folded chain with its records in chain order.
	Chain(ctx context.Context, coi custody.COI) (*custody.Chain, error)
	// PHI returns the patient identifiers kept outside the ledger;
	// ErrNotFound when they were never stored or have been erased.
	PHI(ctx context.Context, coi custody.COI) (custody.PHI, error)
	// VerifyChain verifies the chain's records and summary.
	VerifyChain(ctx context.Context, coi custody.COI) (custody.Report, error)
	// VerifyLedger verifies the whole ledger.
	VerifyLedger(ctx context.Context) (custody.Report, error)
	// LegTelemetry returns the readings of leg n (1-based) of the chain.
	// A source that keeps no readings returns a Telemetry with Available
	// false and a Note saying why, not an error.
	LegTelemetry(ctx context.Context, coi custody.COI, n int) (Telemetry, error)
}

// Telemetry is the data a report shows for one leg's readings.
type Telemetry struct {
	// Available is false when no reading store is connected; the leg is
	// then shown with its seal only.
	Available bool
	// Note says why telemetry is not available.
	Note string
	// Readings are the leg's readings in device-time order
	// (custody.CompareReadings).
	Readings []custody.Reading
}

// Patient is the most of the patient's identity a report shows: initials
// and year of birth.
type Patient struct {
	Initials  string
	BirthYear string
	// OnFile is false when the PHI store holds nothing for the chain
	// (erased, or never stored).
	OnFile bool
}

// Input is everything a report shows; Write renders it. Build fills it
// from a Source; tests may fill it by hand.
type Input struct {
	Chain   *custody.Chain
	Patient Patient
	// Telemetry holds the readings of each leg, index n-1 for leg n; a
	// missing entry is "no telemetry available".
	Telemetry []Telemetry
	// Profiles resolves a leg's profile by name when its seal does not
	// record the limits; nil means custody.BuiltinProfiles.
	Profiles map[string]custody.Profile
	// ChainCheck and LedgerCheck are the verifications run for the report.
	ChainCheck  custody.Report
	LedgerCheck custody.Report
	// GeneratedAt is the report's time; it pins the PDF's dates, so the
	// same input and time give the same bytes.
	GeneratedAt time.Time
	// GeneratedBy is who asked for the report.
	GeneratedBy custody.User
	// Zone is the default time zone of local times: the zone of events at
	// sites with no zone in SiteZones (sites from before the network), and
	// of times that belong to no site; nil means UTC.
	Zone *time.Location
	// SiteZones gives each registered site's zone: a record at one is
	// shown in its site's local time beside UTC.
	SiteZones custody.SiteZones
	// Proof is the proof bundle of the chain's records (AttachProof);
	// nil for a report without one, which renders as before.
	Proof *Proof
	// Access is the expanded-access request the chain was enrolled from,
	// with its whole history (custody.Service.ChainAccessRequest); nil for
	// a chain enrolled without one, whose report renders as before.
	Access *custody.AccessRequest
}

// AccessSource is a Source that knows the expanded-access request a chain
// was enrolled from; Build then prints the request's history. A Source
// without it gives reports without one.
type AccessSource interface {
	ChainAccessRequest(ctx context.Context, c *custody.Chain) (*custody.AccessRequest, error)
}

// Proof is a proof bundle as a report carries it: the bundle's JSON,
// attached to the PDF as verifiable.BundleFile, and the checkpoint it is
// against with the IDs of the keys that signed it, printed in the
// verification block.
type Proof struct {
	Bundle     []byte
	Checkpoint verifiable.Checkpoint
	KeyIDs     []string
	// Cosigners and Quorum are the bundle's (verifiable.Bundle): the
	// witnesses whose cosignatures the checkpoint carries, and the quorum
	// configured (0: no witnesses, nothing printed of them).
	Cosigners []string
	Quorum    int
}

// AttachProof adds to in the proof bundle of every record of its chain,
// from log (a checkpoint is signed if the latest kept one does not hold
// them all).
func AttachProof(ctx context.Context, in *Input, log *verifiable.Log) error {
	p, err := NewProof(ctx, log, in.Chain)
	if err != nil {
		return err
	}
	in.Proof = p
	return nil
}

// NewProof returns the proof bundle of every record of chain c from log,
// with the checkpoint it is against.
func NewProof(ctx context.Context, log *verifiable.Log, c *custody.Chain) (*Proof, error) {
	seqs := make([]uint64, len(c.Records))
	for i := range c.Records {
		seqs[i] = c.Records[i].Seq
	}
	b, err := log.Bundle(ctx, seqs)
	if err != nil {
		return nil, fmt.Errorf("custody report: %w", err)
	}
	data, err := b.Marshal()
	if err != nil {
		return nil, err
	}
	cp, ids, err := verifiable.OpenCheckpoint([]byte(b.Checkpoint), log.Keys().Verifiers()...)
	if err != nil {
		return nil, fmt.Errorf("custody report: %w", err)
	}
	return &Proof{Bundle: data, Checkpoint: cp, KeyIDs: ids, Cosigners: b.Cosigners, Quorum: b.Quorum}, nil
}

// MayGenerate reports whether actor may generate custody reports: QA,
// who files them in the batch record, and administrators. Other roles get
// an error wrapping custody.ErrForbidden.
func MayGenerate(actor custody.User) error {
	if !custody.MayGenerateReports(actor.Role) {
		return fmt.Errorf("custody report: role %q may not generate custody reports (qa or admin only): %w", actor.Role, custody.ErrForbidden)
	}
	return nil
}

// Build gathers a chain's report for actor at generatedAt: the chain, the
// patient's initials and year of birth, each leg's telemetry, and a fresh
// verification of the chain and of the whole ledger. Only QA and
// administrators may build one (custody.ErrForbidden otherwise). A chain or
// ledger that fails verification gives no report: the error wraps
// custody.ErrChainBroken and names the first bad record.
func Build(ctx context.Context, src Source, coi custody.COI, actor custody.User, generatedAt time.Time) (*Input, error) {
	if err := MayGenerate(actor); err != nil {
		return nil, err
	}
	if generatedAt.IsZero() {
		return nil, fmt.Errorf("custody report: generation time not set: %w", custody.ErrInvalid)
	}
	op := "custody report for " + string(coi)
	// Read the chain and verify it until both name the same head: a record
	// appended in between would otherwise be shown unverified.
	var (
		c  *custody.Chain
		cv custody.Report
	)
	for attempt := 0; ; attempt++ {
		var err error
		if c, err = src.Chain(ctx, coi); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if cv, err = src.VerifyChain(ctx, coi); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if !cv.OK {
			return nil, fmt.Errorf("%s: chain does not verify: %w", op, cv.Err())
		}
		if cv.Head == c.Head && cv.Records == uint64(len(c.Records)) {
			break
		}
		if attempt == 3 {
			return nil, fmt.Errorf("%s: the chain keeps changing while it is read: %w", op, custody.ErrRetry)
		}
	}
	lv, err := src.VerifyLedger(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !lv.OK {
		return nil, fmt.Errorf("%s: ledger does not verify: %w", op, lv.Err())
	}
	in := &Input{Chain: c, ChainCheck: cv, LedgerCheck: lv, GeneratedAt: generatedAt.UTC(), GeneratedBy: actor.Public()}
	if ps, ok := src.(ProfileSource); ok {
		in.Profiles = ps.ProfileSet()
	}
	if as, ok := src.(AccessSource); ok {
		if in.Access, err = as.ChainAccessRequest(ctx, c); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	phi, err := src.PHI(ctx, coi)
	switch {
	case errors.Is(err, custody.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("%s: %w", op, err)
	default:
		in.Patient = PatientOf(phi)
	}
	for _, l := range c.Legs {
		t, err := src.LegTelemetry(ctx, coi, l.N)
		if err != nil {
			return nil, fmt.Errorf("%s: leg %d: %w", op, l.N, err)
		}
		custody.SortReadings(t.Readings)
		in.Telemetry = append(in.Telemetry, t)
	}
	return in, nil
}

// PatientOf reduces patient identifiers to what a report may show.
func PatientOf(p custody.PHI) Patient {
	y := ""
	if len(p.BirthDate) >= 4 {
		y = p.BirthDate[:4]
	}
	return Patient{Initials: p.Initials(), BirthYear: y, OnFile: true}
}

// ProfileSource is a Source that knows the temperature profiles its
// service applies; Build reports a leg's limits from them (else from
// custody.BuiltinProfiles) when the leg's seal does not record them.
type ProfileSource interface {
	ProfileSet() map[string]custody.Profile
}

// ServiceSource adapts a custody.Service to Source. Leg readings come from
// the service's reading store (custody.Service.LegReadings); when the
// service has none, legs are reported with their seals and "no telemetry
// available".
type ServiceSource struct{ *custody.Service }

var (
	_ Source        = ServiceSource{}
	_ ProfileSource = ServiceSource{}
	_ AccessSource  = ServiceSource{}
)

// LegTelemetry returns the readings of leg n from the service's reading
// store.
func (s ServiceSource) LegTelemetry(ctx context.Context, coi custody.COI, n int) (Telemetry, error) {
	_, rs, err := s.LegReadings(ctx, coi, n)
	if errors.Is(err, custody.ErrInvalid) {
		// No reading store is configured: there is nothing to draw.
		return Telemetry{Note: "no telemetry available: this coid instance keeps no shipper readings"}, nil
	}
	if err != nil {
		return Telemetry{}, err
	}
	return Telemetry{Available: true, Readings: rs}, nil
}

// ---------------------------------------------------------------------------
// What the report derives from the records.

// excursion is an excursion record's data with the fields a report
// knows; Extra keeps the others, printed as they are.
type excursion struct {
	Seq      uint64
	Time     time.Time
	ID       string
	Kind     string
	Leg      int
	Shipper  string
	Profile  string
	Start    time.Time
	End      *time.Time
	Worst    *float64
	Limit    *float64
	Duration time.Duration
	Breach   time.Duration
	Extra    []string // "key: value", sorted by key
	// EndedSeq is the system's correction that recorded the end of an
	// excursion recorded while it was going on; End, Worst, Duration and
	// Breach are then its final figures.
	EndedSeq uint64
	// Disposition is the QA decision on it, if any.
	Disposition *disposition
}

// disposition is a QA decision on an issue.
type disposition struct {
	Seq      uint64
	Time     time.Time
	Decision string
	Reason   string
	By       string // printed names of the signers
}

// issue is anything that needed a QA disposition: an excursion or a
// broken seal.
type issue struct {
	Seq         uint64
	Kind        string
	Time        time.Time
	Summary     string
	Disposition *disposition
	// Closed says why an issue without a disposition is closed (a ledger
	// from before coid required one), or is empty.
	Closed string
}

// derived is what Write computes from the input before drawing.
type derived struct {
	v          *custody.ChainView
	excursions []excursion          // with their final figures
	recorded   map[uint64]excursion // as each excursion record says
	issues     []issue
	segments   []segment
	zone       *time.Location
}

func derive(in *Input) *derived {
	c := in.Chain
	d := &derived{v: custody.ViewChain(c), zone: in.Zone, recorded: map[uint64]excursion{}}
	if d.zone == nil {
		d.zone = time.UTC
	}
	disps := map[uint64]*disposition{}
	for _, r := range c.Records {
		if rec := d.v.Disposition(r.Seq); rec != nil {
			x, _ := rec.Body().(custody.DispositionData)
			disps[r.Seq] = &disposition{Seq: rec.Seq, Time: rec.Time, Decision: x.Decision, Reason: x.Reason, By: signers(rec)}
		}
	}
	for i := range c.Records {
		r := &c.Records[i]
		switch x := r.Body().(type) {
		case custody.ReceiveData:
			n := d.v.LegOf(r.Seq).N
			if x.SealIntact != nil && !*x.SealIntact {
				d.issues = append(d.issues, issue{Seq: r.Seq, Kind: "seal broken", Time: r.Time,
					Summary: fmt.Sprintf("Leg %d received with its seal broken", n), Disposition: disps[r.Seq]})
			}
		case custody.ExcursionData:
			ev, _ := d.v.Excursion(r.Seq)
			e := excursionOf(ev)
			e.Disposition = disps[r.Seq]
			d.recorded[r.Seq] = e
			if x := ev.Figures; x != nil {
				if x.Start != nil {
					e.Start = *x.Start
				}
				e.End, e.Worst, e.Duration, e.Breach = x.End, x.Worst, time.Duration(x.DurationNS), time.Duration(x.BreachNS)
				if x.End != nil {
					e.EndedSeq = x.Seq
				}
			}
			d.excursions = append(d.excursions, e)
			d.issues = append(d.issues, issue{Seq: r.Seq, Kind: "excursion: " + e.Kind, Time: r.Time,
				Summary: excursionSummary(e, d.zone), Disposition: e.Disposition})
		case custody.MismatchData:
			summary := "Bedside check failed: " + strings.Join(x.Reasons, "; ") + "."
			for _, m := range c.Mismatches {
				if m.Seq != r.Seq {
					continue
				}
				if m.Acknowledged {
					summary += fmt.Sprintf(" Acknowledged by %s (record %d): the bag set aside for QA.", m.AcknowledgedBy, m.AcknowledgeSeq)
				} else {
					summary += " NOT ACKNOWLEDGED."
				}
			}
			is := issue{Seq: r.Seq, Kind: "bedside mismatch", Time: r.Time, Summary: summary, Disposition: disps[r.Seq]}
			for _, ci := range c.Issues {
				if ci.Seq == r.Seq && ci.ResolvedBy != 0 && is.Disposition == nil {
					is.Closed = fmt.Sprintf("No QA decision: a passing bedside check (record %d) followed, recorded before coid required QA's decision on mismatches.", ci.ResolvedBy)
				}
			}
			d.issues = append(d.issues, is)
		}
	}
	slices.SortStableFunc(d.issues, func(a, b issue) int { return compareU64(a.Seq, b.Seq) })
	d.segments = segments(c, in.GeneratedAt)
	return d
}

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// excursionOf is an excursion record as the report shows it: the fields
// it knows, the others kept as text, and a malformed record's raw data.
func excursionOf(ev custody.ExcursionView) excursion {
	r := ev.Record
	e := excursion{Seq: r.Seq, Time: r.Time}
	m, err := r.Members()
	if err != nil {
		e.Kind = "unknown"
		e.Extra = []string{"data: " + string(r.Data)}
		return e
	}
	x := ev.Data
	e.ID, e.Kind, e.Leg, e.Shipper, e.Profile = x.ID, string(x.Kind), ev.Leg, x.Shipper, x.Profile
	e.Start, e.End, e.Worst, e.Limit = x.Start.UTC(), x.End, x.Worst, x.Limit
	if e.End != nil {
		u := e.End.UTC()
		e.End = &u
	}
	e.Duration, e.Breach = time.Duration(x.DurationNS), time.Duration(x.BreachNS)
	known := []string{"excursion_id", "kind", "leg", "shipper", "profile", "start", "end", "worst", "limit", "duration", "duration_ns", "breach_ns"}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(known, k) {
			e.Extra = append(e.Extra, k+": "+rawText(m[k]))
		}
	}
	return e
}

// rawText shows a JSON value: strings without quotes, anything else as
// compact JSON.
func rawText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

func signers(r *custody.Record) string {
	var names []string
	for _, s := range r.Signatures {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// segment is one vein-to-vein duration.
type segment struct {
	Name     string
	From, To string // the events that bound it
	Start    *time.Time
	End      *time.Time
	// Running is set when the segment has started but not ended, and the
	// chain is still open: End is then the report's time.
	Running bool
}

// segments computes the vein-to-vein durations: collection to receipt at
// manufacturing, manufacturing (receipt to release), release to infusion,
// and the total, collection to infusion. Collection starts at the end of
// apheresis as the collect record states it (its record time if it does
// not).
func segments(c *custody.Chain, now time.Time) []segment {
	var collect, recvMfg, release, infuse *time.Time
	for i := range c.Records {
		r := &c.Records[i]
		t := r.Time
		switch r.Step {
		case custody.StepCollect:
			x, _ := r.Body().(custody.CollectData)
			if e, err := time.Parse(time.RFC3339, x.EndedAt); err == nil {
				t = e.UTC()
			}
			collect = &t
		case custody.StepRelease, custody.StepExceptionalRelease:
			release = &t
		case custody.StepInfuse:
			infuse = &t
		}
	}
	if len(c.Legs) > 0 && c.Legs[0].ReceivedAt != nil {
		t := *c.Legs[0].ReceivedAt
		recvMfg = &t
	}
	open := !c.State.Terminal()
	mk := func(name, from, to string, a, b *time.Time) segment {
		s := segment{Name: name, From: from, To: to, Start: a, End: b}
		if a != nil && b == nil && open {
			n := now.UTC()
			s.End, s.Running = &n, true
		}
		return s
	}
	return []segment{
		mk("Collection to receipt at manufacturing", "end of apheresis", "leg 1 received", collect, recvMfg),
		mk("Manufacturing", "leg 1 received", "QA release", recvMfg, release),
		mk("Release to infusion", "QA release", "infusion", release, infuse),
		mk("Total vein to vein", "end of apheresis", "infusion", collect, infuse),
	}
}
