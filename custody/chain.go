package custody

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Sites names the chain's three sites, given at enrollment.
type Sites struct {
	Collection    string `json:"collection"`
	Manufacturing string `json:"manufacturing"`
	Treatment     string `json:"treatment"`
}

func (s Sites) name(r SiteRole) string {
	switch r {
	case SiteCollection:
		return s.Collection
	case SiteManufacturing:
		return s.Manufacturing
	case SiteTreatment:
		return s.Treatment
	}
	return ""
}

// Leg is one shipment of the chain, from its ship record to its receive
// record.
type Leg struct {
	N          int        `json:"n"`
	Shipper    string     `json:"shipper"`
	Profile    string     `json:"profile"`
	From       string     `json:"from"`
	To         string     `json:"to"`
	ShipSeq    uint64     `json:"ship_seq"`
	ShippedAt  time.Time  `json:"shipped_at"`
	ReceiveSeq uint64     `json:"receive_seq,omitempty"`
	ReceivedAt *time.Time `json:"received_at,omitempty"`
	SealIntact *bool      `json:"seal_intact,omitempty"`
	Open       bool       `json:"open"`
	// PlannedArrival is the leg's planned arrival from its ship record,
	// when it gave one.
	PlannedArrival *time.Time `json:"planned_arrival,omitempty"`
}

// Issue is something that blocks release, the bedside check and infusion
// until QA records a disposition: an excursion, a shipment received with
// its seal broken, or a failed bedside check (Kind IssueMismatch).
type Issue struct {
	Seq            uint64    `json:"seq"`
	Kind           string    `json:"kind"`
	Time           time.Time `json:"time"`
	Open           bool      `json:"open"`
	Decision       string    `json:"decision,omitempty"`
	DispositionSeq uint64    `json:"disposition_seq,omitempty"`
	// ReopenedBy is the system correction that reopened an accepted
	// excursion: readings stored after the acceptance changed its figures,
	// so QA must decide again on what is now known.
	ReopenedBy uint64 `json:"reopened_by,omitempty"`
	// ResolvedBy is, for a mismatch with no disposition, the passing
	// bedside check that followed it in a ledger written before coid
	// required QA's decision on mismatches: the issue is closed, without a
	// decision. Current coid refuses that bedside check instead.
	ResolvedBy uint64 `json:"resolved_by,omitempty"`
}

// Kinds of Issue, as Issue.Kind holds them. An excursion's kind is
// IssueExcursionPrefix followed by its ExcursionKind: build it with
// ExcursionIssue and read it back with Issue.Excursion.
const (
	// IssueSealBroken is a shipment received with its seal broken.
	IssueSealBroken = "seal-broken"
	// IssueMismatch is a failed bedside check.
	IssueMismatch = "mismatch"
	// IssueExcursionPrefix starts the kind of an excursion issue.
	IssueExcursionPrefix = "excursion:"
)

// ExcursionIssue returns the Issue.Kind of an excursion of kind k.
func ExcursionIssue(k ExcursionKind) string { return IssueExcursionPrefix + string(k) }

// Excursion returns the excursion kind of an excursion issue, and false
// for any other issue.
func (is Issue) Excursion() (ExcursionKind, bool) {
	k, ok := strings.CutPrefix(is.Kind, IssueExcursionPrefix)
	return ExcursionKind(k), ok
}

// Mismatch is a failed bedside check and, once someone acknowledged it,
// who did.
type Mismatch struct {
	Seq            uint64    `json:"seq"`
	Time           time.Time `json:"time"`
	Acknowledged   bool      `json:"acknowledged"`
	AcknowledgeSeq uint64    `json:"acknowledge_seq,omitempty"`
	AcknowledgedBy string    `json:"acknowledged_by,omitempty"`
}

// Chain is a chain of identity as the domain sees it: its records folded
// into a state, bags, legs and open issues. It never holds patient
// identifiers.
type Chain struct {
	COI        COI        `json:"coi"`
	Display    string     `json:"coi_display"`
	State      State      `json:"state"`
	Product    string     `json:"product"`
	Sites      Sites      `json:"sites"`
	Facility   string     `json:"facility"`
	DIN        DIN        `json:"din,omitempty"`
	Bags       []string   `json:"bags"`
	Legs       []Leg      `json:"legs"`
	Issues     []Issue    `json:"issues"`
	Mismatches []Mismatch `json:"mismatches"`
	Next       []Step     `json:"next"`
	Head       string     `json:"head"`
	Records    []Record   `json:"records"`
	Created    time.Time  `json:"created"`
	commitment string
}

// OpenIssues returns the issues still waiting for a QA disposition.
func (c *Chain) OpenIssues() []Issue {
	var out []Issue
	for _, is := range c.Issues {
		if is.Open {
			out = append(out, is)
		}
	}
	return out
}

// openIssueCounts counts the chain's open issues by kind.
func (c *Chain) openIssueCounts() IssueCounts {
	n := IssueCounts{Kept: true}
	for _, is := range c.OpenIssues() {
		switch _, exc := is.Excursion(); {
		case exc:
			n.Excursions++
		case is.Kind == IssueSealBroken:
			n.SealsBroken++
		case is.Kind == IssueMismatch:
			n.Mismatches++
		}
	}
	return n
}

// openIssuesAfter counts the open issues of the chain c (nil: not
// enrolled yet) once rec, not yet stored, is appended to it. c is not
// changed: it may be shared with the cache.
func openIssuesAfter(c *Chain, rec Record) (IssueCounts, error) {
	var n Chain
	if c != nil {
		n = *c
		n.Issues, n.Mismatches = slices.Clone(c.Issues), slices.Clone(c.Mismatches)
		n.Legs, n.Bags = slices.Clone(c.Legs), slices.Clone(c.Bags)
	}
	// The store gives the record its position after every stored one;
	// the fold compares positions (a correction after a disposition).
	rec.Seq, rec.parsed = math.MaxUint64, nil
	if err := n.apply(&rec); err != nil {
		return IssueCounts{}, err
	}
	return n.openIssueCounts(), nil
}

// unacknowledged returns the first bedside mismatch nobody has
// acknowledged yet, if any.
func (c *Chain) unacknowledged() *Mismatch {
	for i := range c.Mismatches {
		if !c.Mismatches[i].Acknowledged {
			return &c.Mismatches[i]
		}
	}
	return nil
}

// rejected returns the first issue QA rejected, if any.
func (c *Chain) rejected() *Issue {
	for i := range c.Issues {
		if c.Issues[i].Decision == DecisionReject {
			return &c.Issues[i]
		}
	}
	return nil
}

// HasBag reports whether the chain registered bag b.
func (c *Chain) HasBag(b BagID) bool { return b.COI == c.COI && slices.Contains(c.Bags, b.String()) }

// Fold replays a chain's records, in chain order, through the journey and
// returns the chain they describe. It fails with ErrChainBroken if the
// records do not form a valid chain (which only tampering could cause).
func Fold(j *Journey, recs []Record) (*Chain, error) {
	if len(recs) == 0 || recs[0].Step != StepEnroll {
		return nil, fmt.Errorf("fold: chain does not start with enroll: %w", ErrChainBroken)
	}
	c := &Chain{COI: recs[0].Chain, Display: recs[0].Chain.Display(), Bags: []string{}, Legs: []Leg{}, Issues: []Issue{}, Mismatches: []Mismatch{}}
	var state State
	cache := make([]parsedData, len(recs)) // one allocation for the chain's parse caches
	for i := range recs {
		r := &recs[i]
		if r.parsed == nil {
			r.parsed = &cache[i]
		}
		t, err := j.Rule(state, r.Step)
		if err != nil && !j.IsSystem(r.Step) {
			return nil, fmt.Errorf("fold: record %d (%s): %v: %w", r.Seq, r.Step, err, ErrChainBroken)
		}
		if err == nil {
			state = t.To
		}
		if err := c.apply(r); err != nil {
			return nil, fmt.Errorf("fold: record %d (%s): %v: %w", r.Seq, r.Step, err, ErrChainBroken)
		}
	}
	c.State = state
	c.Records = recs
	c.Head = recs[len(recs)-1].Hash.String()
	c.Next = c.nextSteps(j)
	return c, nil
}

func (c *Chain) apply(r *Record) error {
	switch r.Step {
	case StepBedsideVerify:
		for i := range c.Issues {
			if is := &c.Issues[i]; is.Open && is.Kind == IssueMismatch {
				is.Open, is.ResolvedBy = false, r.Seq
			}
		}
		return nil
	case StepMismatch:
		c.Mismatches = append(c.Mismatches, Mismatch{Seq: r.Seq, Time: r.Time})
		// The bag is set aside for QA: no bedside check or infusion until
		// QA decides (accept: a new bedside check may go ahead; reject:
		// this chain's product is not infused).
		c.Issues = append(c.Issues, Issue{Seq: r.Seq, Kind: IssueMismatch, Time: r.Time, Open: true})
		return nil
	case StepNote, StepRelease, StepInfuse, StepCancel, StepReview,
		StepSchedule, StepReschedule, StepUnschedule, StepCollectOverride: // the booking: BookingOf
		return nil // their data changes nothing the chain folds
	case StepCorrection:
		if r.SubmittedBy != SystemUser {
			return nil
		}
	}
	v, err := r.Parsed()
	if b, ok := v.(BagRegistrar); ok {
		if err != nil {
			return err
		}
		kind, n := b.RegisteredBags()
		for i := 1; i <= n; i++ {
			c.Bags = append(c.Bags, BagID{COI: c.COI, Kind: kind, N: i}.String())
		}
	}
	switch d := v.(type) {
	case EnrollData:
		if err != nil {
			return err
		}
		c.Product, c.Sites, c.Facility, c.commitment, c.Created = d.Product, d.Sites, d.Facility, d.PatientCommitment, r.Time
	case CollectData:
		if err != nil {
			return err
		}
		c.DIN = DIN(d.DIN)
	case ShipData:
		if err != nil {
			return err
		}
		from, to := c.Sites.Collection, c.Sites.Manufacturing
		if len(c.Legs) > 0 {
			from, to = c.Sites.Manufacturing, c.Sites.Treatment
		}
		c.Legs = append(c.Legs, Leg{N: len(c.Legs) + 1, Shipper: d.Shipper, Profile: d.Profile, From: from, To: to,
			ShipSeq: r.Seq, ShippedAt: r.Time, Open: true, PlannedArrival: utcPtr(d.PlannedArrival)})
	case ReceiveData:
		if err != nil {
			return err
		}
		if len(c.Legs) == 0 {
			return fmt.Errorf("receive without a leg")
		}
		l := &c.Legs[len(c.Legs)-1]
		t := r.Time
		l.ReceiveSeq, l.ReceivedAt, l.Open, l.SealIntact = r.Seq, &t, false, d.SealIntact
		if d.SealIntact != nil && !*d.SealIntact {
			c.Issues = append(c.Issues, Issue{Seq: r.Seq, Kind: IssueSealBroken, Time: r.Time, Open: true})
		}
	case ExcursionData:
		if err != nil {
			return err
		}
		c.Issues = append(c.Issues, Issue{Seq: r.Seq, Kind: ExcursionIssue(d.Kind), Time: r.Time, Open: true})
	case AcknowledgeData:
		if err != nil {
			return err
		}
		for i := range c.Mismatches {
			if c.Mismatches[i].Seq == d.Mismatch {
				m := &c.Mismatches[i]
				m.Acknowledged, m.AcknowledgeSeq = true, r.Seq
				if len(r.Signatures) > 0 {
					m.AcknowledgedBy = r.Signatures[0].User
				}
			}
		}
	case CorrectionData:
		if err != nil {
			return err
		}
		if d.figuresErr != nil {
			return d.figuresErr
		}
		if d.Figures == nil {
			return nil
		}
		for i := range c.Issues {
			is := &c.Issues[i]
			if is.Seq == d.Corrects && !is.Open && is.Decision == DecisionAccept && is.DispositionSeq < r.Seq {
				// A rejection stands whatever the figures; an acceptance
				// was of figures that are no longer true.
				is.Open, is.Decision, is.DispositionSeq, is.ReopenedBy = true, "", 0, r.Seq
			}
		}
	case DispositionData:
		if err != nil {
			return err
		}
		for i := range c.Issues {
			if c.Issues[i].Seq == d.Excursion {
				c.Issues[i].Open, c.Issues[i].Decision, c.Issues[i].DispositionSeq = false, d.Decision, r.Seq
			}
		}
	}
	return nil
}

// nextSteps lists the steps a person may record now, with the release and
// infusion gates applied.
func (c *Chain) nextSteps(j *Journey) []Step {
	blocked := len(c.OpenIssues()) > 0 || c.rejected() != nil
	out := []Step{}
	for _, s := range j.Allowed(c.State) {
		switch {
		case (s == StepRelease || s == StepInfuse || s == StepBedsideVerify) && blocked:
			continue
		case (s == StepInfuse || s == StepBedsideVerify) && c.unacknowledged() != nil:
			continue
		case s == StepDisposition && len(c.OpenIssues()) == 0:
			continue
		}
		out = append(out, s)
	}
	return out
}
