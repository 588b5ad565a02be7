package custody

// Legs and their telemetry: which stored readings belong to which leg of a
// chain, the excursion records written when a leg's readings break its
// profile, and the seal that a receive record carries.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// TelemetryConfig connects a Service to cold-chain telemetry.
type TelemetryConfig struct {
	// Readings is where telemetry readings are stored; nil means receive
	// records carry no seal and the telemetry queries fail with ErrInvalid.
	Readings ReadingStore
	// Profiles are the temperature profiles by name; the built-in ones
	// are used for names it does not define.
	Profiles map[string]Profile
}

// IngestResult is what a ReadingStore reports for one committed batch.
type IngestResult struct {
	// Stored is the number of readings stored for the first time.
	Stored int `json:"stored"`
	// Duplicates is the number of readings identical (but for their
	// receive time) to one already stored, or repeated within the batch;
	// they were ignored. A different reading under a stored identity is
	// not a duplicate: the store refuses it with ErrReadingConflict.
	Duplicates int `json:"duplicates"`
	// Watermark is the store's ingest watermark after the batch: every
	// reading stored by this or an earlier batch has a watermark at or below
	// it, every later one above it.
	Watermark uint64 `json:"watermark"`
}

// QuarantineEntry is a telemetry payload that was rejected, kept (bounded)
// so an administrator can see what a shipper sent and why it was refused.
// Telemetry carries no patient identifiers.
type QuarantineEntry struct {
	ID       uint64    `json:"id"`
	Topic    string    `json:"topic"`
	Received time.Time `json:"received"`
	Reason   string    `json:"reason"`
	// Size is the payload's full length; Payload holds it whole up to the
	// store's limit (the decoder's largest payload, 1 MiB, in boltstore),
	// and its beginning beyond that.
	Size    int    `json:"size"`
	Payload []byte `json:"payload"`
}

// ReadingStore keeps telemetry readings beside the ledger. Each reading is
// stored once under its identity (Reading.Key); later deliveries of the same
// reading are ignored, and a different reading under a stored identity is
// refused (ErrReadingConflict). Every committed batch raises a watermark, and each
// stored reading remembers the watermark of the batch that stored it, so a
// seal can name exactly the readings that existed when it was made.
type ReadingStore interface {
	// ShipperReadings returns the shipper's stored readings whose device
	// time lies in [from, to] (a zero bound is open) and that were stored
	// at or below watermark through (0: all), in CompareReadings order,
	// with ReceivedTime set. It also returns the current watermark.
	ShipperReadings(ctx context.Context, shipper string, from, to time.Time, through uint64) ([]Reading, uint64, error)
	// ShipperReadingsPage returns one page of ShipperReadings (all
	// watermarks), read from the store's index of readings by shipper and
	// device time: the first readings from from onwards, in
	// CompareReadings order, until the page holds limit (1 or more;
	// ErrInvalid otherwise) or more and the next reading has a later
	// device time. A page never splits the readings of one instant, so
	// that the last one's device time is a cursor (the next page starts
	// just after it); it exceeds limit only by readings sharing that
	// instant. Its cost grows with the page, not with the shipper's
	// readings.
	ShipperReadingsPage(ctx context.Context, shipper string, from, to time.Time, limit int) ([]Reading, error)
}

// SealVersion names the layout of the telemetry seal in a receive record.
const SealVersion = "coid-leg-seal-v1"

// ReceiveSeal is what a receive record's data carries under "telemetry":
// the leg's seal and the ingest watermark it was computed at. Readings
// stored later (a logger flushing after receipt) are not part of it.
type ReceiveSeal struct {
	Version   string    `json:"version"`
	Leg       int       `json:"leg"`
	Shipper   string    `json:"shipper"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Watermark uint64    `json:"watermark"`
	Seal      LegSeal   `json:"seal"`
}

// ExcursionData is the data of a system-signed excursion record.
type ExcursionData struct {
	ID         string        `json:"excursion_id"`
	Kind       ExcursionKind `json:"kind"`
	Leg        int           `json:"leg"`
	Shipper    string        `json:"shipper"`
	Profile    string        `json:"profile"`
	Start      time.Time     `json:"start"`
	End        *time.Time    `json:"end,omitempty"`
	Worst      *float64      `json:"worst,omitempty"`
	Limit      *float64      `json:"limit,omitempty"`
	DurationNS int64         `json:"duration_ns"`
	Duration   string        `json:"duration"`
	BreachNS   int64         `json:"breach_ns"`
}

// profile returns the named profile from the service's configuration.
func (s *Service) profile(name string) (Profile, error) {
	if p, ok := s.Profile(name); ok {
		return p, nil
	}
	return Profile{}, fmt.Errorf("profile %q is not configured: %w", name, ErrInvalid)
}

// Profile returns the temperature profile the service applies under name:
// the configured one (TelemetryConfig.Profiles), else the built-in one.
func (s *Service) Profile(name string) (Profile, bool) {
	if p, ok := s.tele.Profiles[name]; ok {
		return p, true
	}
	p, ok := BuiltinProfiles()[name]
	return p, ok
}

// ProfileSet returns every temperature profile the service applies, by
// name: the built-in ones with the configured ones added or replacing
// them. The map is the caller's.
func (s *Service) ProfileSet() map[string]Profile {
	out := BuiltinProfiles()
	for n, p := range s.tele.Profiles {
		out[n] = p
	}
	return out
}

// InTransit names where an excursion of the leg happened, as its records'
// site: on the way between the leg's sites, not at either.
func (l Leg) InTransit() string {
	return fmt.Sprintf("in transit, leg %d: %s to %s", l.N, l.From, l.To)
}

// legWindow returns the device-time window of a leg: its ship time to its
// receive time, or to now while it is open.
func legWindow(l Leg, now time.Time) (time.Time, time.Time) {
	if l.ReceivedAt != nil {
		return l.ShippedAt, *l.ReceivedAt
	}
	return l.ShippedAt, now
}

// sealLeg is the hook Record calls for a receive step: it computes the seal
// of the chain's open leg from the stored readings and adds it to the
// receive record's data under "telemetry". Without a reading store the
// record carries no seal.
func (s *Service) sealLeg(ctx context.Context, c *Chain, step Step, d *stepData, now time.Time) error {
	if step != StepReceive || s.tele.Readings == nil || len(c.Legs) == 0 {
		return nil
	}
	l := c.Legs[len(c.Legs)-1]
	if !l.Open {
		return nil
	}
	p, err := s.profile(l.Profile)
	if err != nil {
		return fmt.Errorf("seal leg %d: %w", l.N, err)
	}
	rs, wm, err := s.tele.Readings.ShipperReadings(ctx, l.Shipper, l.ShippedAt, now, 0)
	if err != nil {
		return fmt.Errorf("seal leg %d: %w", l.N, err)
	}
	d.set("telemetry", ReceiveSeal{Version: SealVersion, Leg: l.N, Shipper: l.Shipper, From: l.ShippedAt.UTC(),
		To: now.UTC(), Watermark: wm, Seal: SealReadings(rs, p)})
	return nil
}

// LegView is a leg as the API shows it: the leg, its profile, its seal
// (once received) and whether the seal still matches the stored readings,
// and the excursion records written for it.
type LegView struct {
	Leg
	Seal *ReceiveSeal `json:"telemetry_seal,omitempty"`
	// SealVerified is set once the leg is sealed: whether recomputing the
	// seal from the stored readings gives the recorded one.
	SealVerified *bool `json:"seal_verified,omitempty"`
	// SealProblem says what differs when SealVerified is false.
	SealProblem string `json:"seal_problem,omitempty"`
	// Current is the seal as computed now over the leg's window from all
	// stored readings (including late ones stored after receipt).
	Current    LegSeal          `json:"current"`
	Excursions []ExcursionEntry `json:"excursions"`
	// HoldWarnings are the hold-time warnings recorded for the leg
	// (StepHoldWarning), with the projections they rest on.
	HoldWarnings []HoldWarningEntry `json:"hold_warnings"`
}

// ExcursionEntry is an excursion record of a chain with its disposition
// state and its current figures: when the system later corrected the
// record (see Service.ReviseExcursion), End, Worst, Duration and Breach
// are those of the latest correction, FiguresSeq is its position, and
// EndedSeq is set too when that correction gives an end.
type ExcursionEntry struct {
	COI  COI       `json:"coi"`
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	ExcursionData
	EndedSeq   uint64 `json:"ended_seq,omitempty"`
	FiguresSeq uint64 `json:"figures_seq,omitempty"`
	Open       bool   `json:"open"`
	Decision   string `json:"decision,omitempty"`
}

// ExcursionEndData is the data of a system correction of an excursion
// record: the excursion's figures as the stored readings give them now.
// The excursion record stays as written. The system writes one when an
// excursion recorded while still going on ends (its final figures), and
// again whenever readings stored late change them: a longer or worse
// excursion, or one going on again after its recorded end (End nil).
type ExcursionEndData struct {
	Corrects uint64 `json:"corrects"`
	Reason   string `json:"reason"`
	ID       string `json:"excursion_id"`
	// Start is the excursion's start as the readings give it now (late
	// readings can move it earlier); the excursion's ID stays the
	// record's. Corrections written before it was added have none: the
	// record's start stands.
	Start *time.Time `json:"start,omitempty"`
	// End is nil while the excursion is still going on.
	End        *time.Time `json:"end,omitempty"`
	Worst      *float64   `json:"worst,omitempty"`
	DurationNS int64      `json:"duration_ns"`
	Duration   string     `json:"duration"`
	BreachNS   int64      `json:"breach_ns"`
}

// ExcursionEnd is a system correction of an excursion record: its
// position and its data.
type ExcursionEnd struct {
	Seq uint64
	ExcursionEndData
}

// ExcursionEnds returns, by the position of the excursion record each
// corrects, the latest system correction of each excursion record of c:
// the excursion's current figures. A system correction whose data is not
// JSON is ErrChainBroken; the map holds what was read before it.
func ExcursionEnds(c *Chain) (map[uint64]ExcursionEnd, error) {
	out := map[uint64]ExcursionEnd{}
	for _, r := range c.Records {
		if r.Step != StepCorrection || r.SubmittedBy != SystemUser {
			continue
		}
		v, err := r.Parsed()
		x, _ := v.(CorrectionData)
		if err == nil && x.figuresErr != nil {
			err = fmt.Errorf("correction record %d: %v: %w", r.Seq, x.figuresErr, ErrChainBroken)
		}
		if err != nil {
			return out, err
		}
		if x.Figures != nil {
			out[x.Figures.Corrects] = ExcursionEnd{Seq: r.Seq, ExcursionEndData: *x.Figures}
		}
	}
	return out, nil
}

// DispositionWaits returns the excursion records of c whose disposition
// must wait: still going on as last recorded, on a leg still in transit.
// QA would accept a duration and worst value still growing; once the leg
// is received the figures are final, whether or not the monitor recorded
// the end (it may be off, or the leg's profile gone), so no chain is
// blocked for good.
func DispositionWaits(c *Chain) (map[uint64]bool, error) {
	exc, err := excursionEntries(c)
	if err != nil {
		return nil, err
	}
	out := map[uint64]bool{}
	for _, x := range exc {
		if x.End == nil && x.Leg >= 1 && x.Leg <= len(c.Legs) && c.Legs[x.Leg-1].Open {
			out[x.Seq] = true
		}
	}
	return out, nil
}

// ChainExcursions returns the excursion records of c with their
// disposition state and, where the system recorded an excursion's end
// later, its final figures.
func ChainExcursions(c *Chain) ([]ExcursionEntry, error) { return excursionEntries(c) }

func excursionEntries(c *Chain) ([]ExcursionEntry, error) {
	out := []ExcursionEntry{}
	ends, err := ExcursionEnds(c)
	if err != nil {
		return nil, err
	}
	for _, r := range c.Records {
		if r.Step != StepExcursion {
			continue
		}
		v, err := r.Parsed()
		if err != nil {
			return nil, err
		}
		d, _ := v.(ExcursionData)
		e := ExcursionEntry{COI: c.COI, Seq: r.Seq, Time: r.Time, ExcursionData: d, Open: true}
		if x, ok := ends[r.Seq]; ok && x.ID == d.ID {
			if x.Start != nil {
				e.Start = *x.Start
			}
			e.End, e.Worst, e.DurationNS, e.Duration, e.BreachNS, e.FiguresSeq = x.End, x.Worst, x.DurationNS, x.Duration, x.BreachNS, x.Seq
			if x.End != nil {
				e.EndedSeq = x.Seq
			}
		}
		for _, is := range c.Issues {
			if is.Seq == r.Seq {
				e.Open, e.Decision = is.Open, is.Decision
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// receiveSealOf returns the seal in the receive record at seq, or nil.
func receiveSealOf(c *Chain, seq uint64) (*ReceiveSeal, error) {
	for _, r := range c.Records {
		if r.Seq != seq {
			continue
		}
		v, err := r.Parsed()
		if err != nil {
			return nil, err
		}
		d, _ := v.(ReceiveData)
		return d.Telemetry, nil
	}
	return nil, nil
}

// Legs returns the chain's legs with their seals, seal checks and
// excursions.
func (s *Service) Legs(ctx context.Context, coi COI) ([]LegView, error) {
	c, err := s.Chain(ctx, coi)
	if err != nil {
		return nil, fmt.Errorf("legs: %w", err)
	}
	exc, err := excursionEntries(c)
	if err != nil {
		return nil, fmt.Errorf("legs of %s: %w", coi, err)
	}
	warnings, err := ChainHoldWarnings(c)
	if err != nil {
		return nil, fmt.Errorf("legs of %s: %w", coi, err)
	}
	out := make([]LegView, 0, len(c.Legs))
	now := s.Now()
	for _, l := range c.Legs {
		v := LegView{Leg: l, Excursions: []ExcursionEntry{}, HoldWarnings: []HoldWarningEntry{}}
		for _, w := range warnings {
			if w.Leg == l.N {
				v.HoldWarnings = append(v.HoldWarnings, w)
			}
		}
		for _, e := range exc {
			if e.Leg == l.N {
				v.Excursions = append(v.Excursions, e)
			}
		}
		if l.ReceiveSeq != 0 {
			if v.Seal, err = receiveSealOf(c, l.ReceiveSeq); err != nil {
				return nil, fmt.Errorf("legs of %s: %w", coi, err)
			}
		}
		if s.tele.Readings != nil {
			p, perr := s.profile(l.Profile)
			if perr == nil {
				from, to := legWindow(l, now)
				rs, _, err := s.tele.Readings.ShipperReadings(ctx, l.Shipper, from, to, 0)
				if err != nil {
					return nil, fmt.Errorf("legs of %s: %w", coi, err)
				}
				v.Current = SealReadings(rs, p)
				if v.Seal != nil {
					ok, problem, err := s.checkSeal(ctx, *v.Seal, p)
					if err != nil {
						return nil, fmt.Errorf("legs of %s: %w", coi, err)
					}
					v.SealVerified, v.SealProblem = &ok, problem
				}
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// checkSeal recomputes a recorded seal from the stored readings.
func (s *Service) checkSeal(ctx context.Context, rs ReceiveSeal, p Profile) (bool, string, error) {
	return s.checkSealIn(ctx, rs, p, nil)
}

// checkSealIn is checkSeal with w's memory (nil: fresh) for the readings,
// left there for the next call to reuse.
func (s *Service) checkSealIn(ctx context.Context, rs ReceiveSeal, p Profile, w *sealWork) (bool, string, error) {
	if rs.Version != SealVersion {
		return false, fmt.Sprintf("unknown seal version %q", rs.Version), nil
	}
	// The seal applied the limits recorded in it, whatever the profile's
	// configuration says today.
	p.MinC, p.MaxC = rs.Seal.LimitMinC, rs.Seal.LimitMaxC
	p.Name = rs.Seal.Profile
	// MKT is recorded only for profiles where it applies; recompute it the
	// same way the seal did (seals without a method weighed readings
	// equally).
	method := rs.Seal.MKTMethod
	if rs.Seal.MKTC == nil {
		method = MKTTimeWeighted
	}
	got, ok, err := s.streamSeal(ctx, rs, p, method, w)
	if err != nil {
		return false, "", err
	}
	if !ok {
		var buf *[]Reading
		if w != nil {
			buf = &w.readings
		}
		readings, err := s.sealedReadings(ctx, rs, buf)
		if err != nil {
			return false, "", err
		}
		got = sealReadings(readings, p, method, rs.Seal.MKTMaxGap)
		if rs.Seal.MKTC != nil && got.MKTC == nil {
			p.MKT = true
			got = sealReadings(readings, p, method, rs.Seal.MKTMaxGap)
		}
	}
	if rs.Seal.MKTC == nil {
		got.MKTC, got.MKTMethod, got.MKTMaxGap = nil, "", 0
	}
	if sealsIdentical(&got, &rs.Seal) {
		return true, "", nil
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(rs.Seal)
	if string(a) == string(b) {
		return true, "", nil
	}
	if got.ReadingsHash != rs.Seal.ReadingsHash {
		return false, fmt.Sprintf("the stored readings no longer match the seal: %d readings now, %d sealed (hash %s, sealed %s)",
			got.Count, rs.Seal.Count, got.ReadingsHash, rs.Seal.ReadingsHash), nil
	}
	return false, "the seal's summary does not match the stored readings", nil
}

// SealCheck is the outcome of recomputing one leg's seal.
type SealCheck struct {
	Leg     int    `json:"leg"`
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
}

// VerifySeals recomputes the seal of every received leg of the chain from
// the stored readings. A mismatch is logged at error level: the readings
// were changed or deleted after the leg was sealed.
func (s *Service) VerifySeals(ctx context.Context, coi COI) ([]SealCheck, error) {
	if s.tele.Readings == nil {
		return nil, fmt.Errorf("verify seals: no reading store configured: %w", ErrInvalid)
	}
	c, err := s.Chain(ctx, coi)
	if err != nil {
		return nil, fmt.Errorf("verify seals: %w", err)
	}
	out := []SealCheck{}
	for _, l := range c.Legs {
		if l.ReceiveSeq == 0 {
			continue
		}
		rs, err := receiveSealOf(c, l.ReceiveSeq)
		if err != nil {
			return nil, fmt.Errorf("verify seals of %s: %w", coi, err)
		}
		if rs == nil {
			continue
		}
		p, _ := s.profile(rs.Seal.Profile)
		ok, problem, err := s.checkSeal(ctx, *rs, p)
		if err != nil {
			return nil, fmt.Errorf("verify seals of %s: %w", coi, err)
		}
		if !ok {
			s.log.Error("leg seal verification failed", "coi", string(coi), "leg", l.N, "problem", problem)
		}
		out = append(out, SealCheck{Leg: l.N, OK: ok, Problem: problem})
	}
	return out, nil
}

// LegReadings returns the readings of leg n (1-based) of the chain: the
// shipper's readings in the leg's window, in device-time order.
func (s *Service) LegReadings(ctx context.Context, coi COI, n int) (Leg, []Reading, error) {
	if s.tele.Readings == nil {
		return Leg{}, nil, fmt.Errorf("leg readings: no reading store configured: %w", ErrInvalid)
	}
	c, err := s.Chain(ctx, coi)
	if err != nil {
		return Leg{}, nil, fmt.Errorf("leg readings: %w", err)
	}
	if n < 1 || n > len(c.Legs) {
		return Leg{}, nil, fmt.Errorf("leg readings: chain %s has no leg %d: %w", coi, n, ErrNotFound)
	}
	l := c.Legs[n-1]
	from, to := legWindow(l, s.Now())
	rs, _, err := s.tele.Readings.ShipperReadings(ctx, l.Shipper, from, to, 0)
	if err != nil {
		return Leg{}, nil, fmt.Errorf("leg readings: %w", err)
	}
	return l, rs, nil
}

// ShipperReadings returns a shipper's stored readings with device time in
// [from, to] (zero bounds are open), whatever leg they belong to.
func (s *Service) ShipperReadings(ctx context.Context, shipper string, from, to time.Time) ([]Reading, error) {
	if s.tele.Readings == nil {
		return nil, fmt.Errorf("shipper readings: no reading store configured: %w", ErrInvalid)
	}
	if err := ValidateShipperID(shipper); err != nil {
		return nil, fmt.Errorf("shipper readings: %w", err)
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return nil, fmt.Errorf("shipper readings: to is before from: %w", ErrInvalid)
	}
	rs, _, err := s.tele.Readings.ShipperReadings(ctx, shipper, from, to, 0)
	if err != nil {
		return nil, fmt.Errorf("shipper readings: %w", err)
	}
	return rs, nil
}

// LegRef names one leg of one chain and what is needed to judge it.
type LegRef struct {
	COI     COI
	Leg     Leg
	Profile Profile
	// From and To bound the leg's window; To is the receive time, or now
	// while the leg is open.
	From, To time.Time
}

// At returns the leg as judged at now: an open leg's window ends at now, a
// received leg's at its receive time.
func (r LegRef) At(now time.Time) LegRef {
	r.From, r.To = legWindow(r.Leg, now)
	return r
}

// LedgerHead returns the log position of the last record appended, 0 for
// an empty ledger. Every append moves it, so a caller holding what it
// derived from the chains (TelemetryLegs) can tell whether it is still
// current.
func (s *Service) LedgerHead(ctx context.Context) (uint64, error) {
	seq, _, err := s.store.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("ledger head: %w", err)
	}
	return seq, nil
}

// TelemetryLegs lists the legs whose readings may still change the chain:
// every leg of every chain that is not infused or cancelled, open legs
// with To = now.
func (s *Service) TelemetryLegs(ctx context.Context) ([]LegRef, error) {
	infos, err := s.store.Chains(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("telemetry legs: %w", err)
	}
	now := s.Now()
	var out []LegRef
	for _, ci := range infos {
		if ci.State.Terminal() || ci.State == StateEnrolled || ci.State == StateCollected || ci.State.Access() {
			continue
		}
		c, err := s.Chain(ctx, ci.COI)
		if err != nil {
			return nil, fmt.Errorf("telemetry legs: %w", err)
		}
		for _, l := range c.Legs {
			p, err := s.profile(l.Profile)
			if err != nil {
				s.log.Warn("leg has an unknown profile", "coi", string(c.COI), "leg", l.N, "profile", l.Profile)
				continue
			}
			from, to := legWindow(l, now)
			out = append(out, LegRef{COI: c.COI, Leg: l, Profile: p, From: from, To: to})
		}
	}
	return out, nil
}

// RecordExcursion appends a system-signed excursion record for excursion e
// found on leg n of the chain, unless the chain already has an excursion
// record for the same leg with the same ID or of the same kind overlapping
// it (a late reading can move an excursion's start). It returns the record
// and true when it appended one, false when the excursion was already
// recorded. It is safe to call again after a restart.
func (s *Service) RecordExcursion(ctx context.Context, coi COI, n int, e Excursion) (Record, bool, error) {
	op := fmt.Sprintf("record excursion %s on %s leg %d", e.ID, coi, n)
	if e.ID == "" || e.Kind == "" || e.Start.IsZero() {
		return Record{}, false, fmt.Errorf("%s: excursion needs an ID, kind and start: %w", op, ErrInvalid)
	}
	unlock := s.lock(coi)
	defer unlock()
	c, err := s.chainLocked(ctx, coi)
	if err != nil {
		return Record{}, false, fmt.Errorf("%s: %w", op, err)
	}
	if n < 1 || n > len(c.Legs) {
		return Record{}, false, fmt.Errorf("%s: no such leg: %w", op, ErrNotFound)
	}
	if c.State.Terminal() {
		return Record{}, false, fmt.Errorf("%s: chain is %s: %w", op, c.State, ErrConflict)
	}
	l := c.Legs[n-1]
	exc, err := excursionEntries(c)
	if err != nil {
		return Record{}, false, fmt.Errorf("%s: %w", op, err)
	}
	for _, x := range exc {
		if x.Leg == n && sameExcursion(x.ExcursionData, e) {
			return Record{}, false, nil
		}
	}
	d := ExcursionData{ID: e.ID, Kind: e.Kind, Leg: n, Shipper: l.Shipper, Profile: l.Profile, Start: e.Start.UTC(),
		Worst: e.Worst, Limit: e.Limit, DurationNS: int64(e.Duration), Duration: e.Duration.String(), BreachNS: int64(e.Breach)}
	if !e.End.IsZero() {
		end := e.End.UTC()
		d.End = &end
	}
	stored, err := s.appendSystemRecord(ctx, c, StepExcursion, l.InTransit(), d)
	if err != nil {
		return Record{}, false, fmt.Errorf("%s: %w", op, err)
	}
	s.log.Warn("excursion recorded", "coi", string(coi), "seq", stored.Seq, "leg", n, "kind", string(e.Kind),
		"excursion_id", e.ID, "shipper", l.Shipper)
	return stored, true, nil
}

// appendSystemRecord appends a system-signed record of step with data to
// chain c, whose lock the caller holds.
func (s *Service) appendSystemRecord(ctx context.Context, c *Chain, step Step, site string, data any) (Record, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Record{}, err
	}
	body, err := Canonicalize(raw)
	if err != nil {
		return Record{}, err
	}
	now := s.now().UTC()
	rec := Record{V: EncodingVersion, Chain: c.COI, Step: step, Time: now, Site: site,
		SubmittedBy: SystemUser, Data: body, Signatures: []Signature{SystemSignature(now)}}
	d := s.withIssues(c, Draft{Record: rec, ExpectRecords: uint64(len(c.Records)), State: c.State})
	// A job led on one instance at a time (the monitor) appends under
	// its leadership's fence.
	d.Fence = FenceOf(ctx)
	return s.store.Append(ctx, d)
}

// ReviseExcursion keeps the chain's record of excursion e, found on leg n,
// true to the stored readings. When the figures e has now differ from the
// recorded ones (those of the excursion record, or of its latest system
// correction), it appends a system-signed correction of the excursion
// record with the current figures; the excursion record itself is never
// changed. That happens when an excursion recorded while going on ends
// (its final end, worst value, duration and breach), when readings stored
// late make an ended excursion longer or worse, and when they show it
// going on again after its recorded end. An excursion still going on and
// recorded so gets nothing until it ends. It returns false when it appended
// nothing: the figures are current, the chain is closed, or no excursion
// record matches e. Safe to call again after a restart. The monitor, which
// judges a whole leg at once, uses ReviseLegExcursions.
func (s *Service) ReviseExcursion(ctx context.Context, coi COI, n int, e Excursion) (Record, bool, error) {
	op := fmt.Sprintf("revise excursion %s on %s leg %d", e.ID, coi, n)
	unlock := s.lock(coi)
	defer unlock()
	c, exc, err := s.legExcursions(ctx, coi, n)
	if err != nil || c == nil {
		return Record{}, false, wrapOp(op, err)
	}
	for i := range exc {
		if exc[i].Leg == n && sameExcursion(exc[i].ExcursionData, e) {
			return s.revise(ctx, c, n, &exc[i], &e, op)
		}
	}
	return Record{}, false, nil
}

// ReviseLegExcursions does what ReviseExcursion does for every excursion
// record of leg n, given everything the stored readings show on that leg
// now (es, as coldchain.Evaluate returns them). Each record is paired with at
// most one of es: the one with its ID, else the earliest that overlaps it,
// and each of es with at most one record, so records never take turns
// being rewritten. A record that none of es matches, of a kind judged now (judged says
// which: coldchain.Judged for the leg's profile), gets a correction saying
// the readings no longer show it as recorded (readings stored late filled
// the gap, showed the spike brief, or joined it to another), closed at its
// own start with no duration, so its figures count nowhere and QA can
// decide on it. It returns the corrections appended.
func (s *Service) ReviseLegExcursions(ctx context.Context, coi COI, n int, es []Excursion, judged func(ExcursionKind) bool) ([]Record, error) {
	op := fmt.Sprintf("revise the excursions of %s leg %d", coi, n)
	unlock := s.lock(coi)
	defer unlock()
	c, exc, err := s.legExcursions(ctx, coi, n)
	if err != nil || c == nil {
		return nil, wrapOp(op, err)
	}
	// Pair records and evaluated excursions one to one: first by ID, then
	// each record still unpaired (in ledger order) with the earliest
	// unpaired excursion overlapping it. One excursion the readings now
	// show never feeds two records, so two records never take turns.
	match := make([]*Excursion, len(exc))
	used := make([]bool, len(es))
	for i := range exc {
		for j := range es {
			if !used[j] && exc[i].Leg == n && es[j].ID == exc[i].ID {
				match[i], used[j] = &es[j], true
				break
			}
		}
	}
	for i := range exc {
		if exc[i].Leg != n || match[i] != nil {
			continue
		}
		best := -1
		for j := range es {
			if !used[j] && sameExcursion(exc[i].ExcursionData, es[j]) && (best < 0 || es[j].Start.Before(es[best].Start)) {
				best = j
			}
		}
		if best >= 0 {
			match[i], used[best] = &es[best], true
		}
	}
	var out []Record
	for i := range exc {
		if exc[i].Leg != n || match[i] == nil && !judged(exc[i].Kind) {
			continue // a kind not judged now (the profile changed) says nothing
		}
		rec, added, err := s.revise(ctx, c, n, &exc[i], match[i], op)
		if err != nil {
			return out, err
		}
		if added {
			out = append(out, rec)
			// The chain grew: later appends must expect it.
			if c, err = s.chainLocked(ctx, coi); err != nil {
				return out, wrapOp(op, err)
			}
		}
	}
	return out, nil
}

// legExcursions reads chain coi (whose lock the caller holds) and its
// excursion entries; a nil chain means a closed chain, which takes no
// revision.
func (s *Service) legExcursions(ctx context.Context, coi COI, n int) (*Chain, []ExcursionEntry, error) {
	c, err := s.chainLocked(ctx, coi)
	if err != nil {
		return nil, nil, err
	}
	if n < 1 || n > len(c.Legs) {
		return nil, nil, fmt.Errorf("no such leg: %w", ErrNotFound)
	}
	if c.State.Terminal() {
		return nil, nil, nil
	}
	exc, err := excursionEntries(c)
	if err != nil {
		return nil, nil, err
	}
	return c, exc, nil
}

func wrapOp(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

// revise appends the correction that brings recorded excursion x on leg n
// of chain c to the figures of e; e nil means the stored readings no
// longer show x at all.
func (s *Service) revise(ctx context.Context, c *Chain, n int, x *ExcursionEntry, e *Excursion, op string) (Record, bool, error) {
	var reason string
	switch {
	case e == nil && x.End != nil && x.End.Equal(x.Start) && x.DurationNS == 0:
		return Record{}, false, nil // already closed as no longer shown
	case e == nil:
		reason = "the stored readings no longer show this excursion as recorded (readings stored late filled it in, showed it brief, or " +
			"joined it to another); closed at its recorded start, so it overlaps nothing the readings show now"
	case e.Open() && x.End == nil:
		return Record{}, false, nil // going on, and recorded so
	case e.Open():
		reason = "readings stored late show the excursion going on again after its recorded end"
	case x.End == nil:
		reason = "excursion ended: final figures from the stored readings"
	case sameFigures(x.ExcursionData, *e):
		return Record{}, false, nil
	default:
		reason = "readings stored late changed the excursion: figures revised from the stored readings"
	}
	d := ExcursionEndData{Corrects: x.Seq, Reason: reason, ID: x.ID}
	switch {
	case e == nil:
		// Never past the evidence: an end at "now" would make the record
		// overlap whatever the readings show later, and be taken for it.
		end := x.Start.UTC()
		d.Start = &end
		d.End, d.Worst, d.DurationNS, d.Duration, d.BreachNS = &end, x.Worst, 0, time.Duration(0).String(), 0
	default:
		d.Worst, d.DurationNS, d.Duration, d.BreachNS = e.Worst, int64(e.Duration), e.Duration.String(), int64(e.Breach)
		// Always: the latest correction is the one read, so a start an
		// earlier one moved must not fall back to the record's.
		start := e.Start.UTC()
		d.Start = &start
		if !e.Open() {
			end := e.End.UTC()
			d.End = &end
		}
	}
	stored, err := s.appendSystemRecord(ctx, c, StepCorrection, c.Legs[n-1].InTransit(), d)
	if err != nil {
		return Record{}, false, fmt.Errorf("%s: %w", op, err)
	}
	s.log.Info("excursion figures recorded", "coi", string(c.COI), "seq", stored.Seq, "corrects", x.Seq, "leg", n,
		"kind", string(x.Kind), "excursion_id", x.ID, "ended", d.End != nil)
	return stored, true, nil
}

// sameFigures reports whether the recorded figures x are those of the
// ended excursion e.
func sameFigures(x ExcursionData, e Excursion) bool {
	if !x.Start.Equal(e.Start) || x.End == nil || !x.End.Equal(e.End) || x.DurationNS != int64(e.Duration) || x.BreachNS != int64(e.Breach) {
		return false
	}
	if (x.Worst == nil) != (e.Worst == nil) {
		return false
	}
	return x.Worst == nil || *x.Worst == *e.Worst
}

// Excursions lists the excursion records of every chain, only those still
// awaiting a QA disposition when open is true, in COI order. It reads the
// chains the store's excursion index lists (ChainStore.ExcursionChains),
// not every chain; the API pages them (ExcursionsPage).
func (s *Service) Excursions(ctx context.Context, open bool) ([]ExcursionEntry, error) {
	var cois []COI
	for before := COI(""); ; {
		page, err := s.store.ExcursionChains(ctx, open, before, MaxChainPage)
		if err != nil {
			return nil, fmt.Errorf("excursions: %w", err)
		}
		cois = append(cois, page...)
		if len(page) < MaxChainPage {
			break
		}
		before = page[len(page)-1]
	}
	slices.Reverse(cois)
	out := []ExcursionEntry{}
	for _, coi := range cois {
		c, err := s.Chain(ctx, coi)
		if err != nil {
			return nil, fmt.Errorf("excursions: %w", err)
		}
		if c.State.Access() {
			continue
		}
		exc, err := excursionEntries(c)
		if err != nil {
			return nil, fmt.Errorf("excursions: %w", err)
		}
		for _, e := range exc {
			if !open || e.Open {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// sameExcursion reports whether the recorded excursion x is e: the same
// ID, or the same kind with overlapping periods. A recorded excursion still
// going on is known only to have started at its Start, so it matches the
// excursions whose period contains that instant. Periods that only touch
// (a silence that starts with the reading that ended the one before) do
// not overlap: a later excursion of the same kind is a new one.
func sameExcursion(x ExcursionData, e Excursion) bool {
	if x.ID == e.ID {
		return true
	}
	if x.Kind != e.Kind {
		return false
	}
	if x.End == nil {
		return !e.Start.After(x.Start) && (e.End.IsZero() || e.End.After(x.Start))
	}
	return x.End.After(e.Start) && (e.End.IsZero() || e.End.After(x.Start))
}
