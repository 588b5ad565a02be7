package custody

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// StepData is the parsed data of a record: one type per step of the
// journey (EnrollData, CollectData, ...), or OtherData for a step custody
// has no type for. Record.Data stays the canonical JSON that is hashed;
// ParseData and Record.Parsed give its typed form.
type StepData interface {
	// Step names the step whose data this is.
	Step() Step
}

// EnrollData is the data of an enroll record.
type EnrollData struct {
	// Product is the registered product's code (free text on chains
	// enrolled before products were registered).
	Product string `json:"product"`
	// ProductName is the registered product's name at enrollment; absent
	// on chains enrolled with a free-text product.
	ProductName string `json:"product_name,omitempty"`
	Sites       Sites  `json:"sites"`
	Facility    string `json:"facility"`
	// PatientCommitment binds the chain to the patient identifiers kept
	// outside the ledger, without revealing them.
	PatientCommitment string `json:"patient_commitment"`
	// Request is the expanded-access request the chain was enrolled from
	// (its enroll record names the chain); empty otherwise.
	Request COI `json:"request,omitempty"`
}

// CollectData is the data of a collect record: the donation and its bags.
type CollectData struct {
	DIN       string   `json:"din"`
	VolumeML  *float64 `json:"volume_ml"`
	Bags      int      `json:"bags"`
	StartedAt string   `json:"started_at"`
	EndedAt   string   `json:"ended_at"`
}

// ShipData is the data of a ship record: the shipper's data logger and the
// temperature profile the leg is judged against.
type ShipData struct {
	Shipper string `json:"shipper"`
	Profile string `json:"profile"`
	// PlannedArrival is when the leg is planned to arrive, if the shipper
	// gave it (RFC 3339); hold-time warnings project against it.
	PlannedArrival *time.Time `json:"planned_arrival,omitempty"`
}

// ReceiveData is the data of a receive record: the seal check the person
// made and the telemetry seal coid writes into it.
type ReceiveData struct {
	SealIntact *bool        `json:"seal_intact"`
	Telemetry  *ReceiveSeal `json:"telemetry,omitempty"`
}

// ManufactureData is the data of a manufacture record: the final-product
// bags made and, optionally, their expiry as the client gave it (read by
// the labels, which report a malformed one).
type ManufactureData struct {
	FinalBags int     `json:"final_bags"`
	ExpiresAt *string `json:"expires_at,omitempty"`
}

// ReleaseData is the data of a release record: optionally the final
// product's expiry.
type ReleaseData struct {
	ExpiresAt *string `json:"expires_at,omitempty"`
}

// BedsideData is the data of a bedside-verify record: the scans a client
// sends and, once the check passed, what coid keeps of them (the bag, and
// that the wristband matched; the wristband itself is dropped).
type BedsideData struct {
	BagCode        string `json:"bag_code"`
	WristbandCode  string `json:"wristband_code,omitempty"`
	Bag            string `json:"bag,omitempty"`
	WristbandMatch bool   `json:"wristband_match,omitempty"`
}

// InfuseData is the data of an infuse record: the bag infused, which coid
// fills with the bag the bedside check verified.
type InfuseData struct {
	Bag string `json:"bag"`
}

// MismatchData is the data of a mismatch record coid writes when a bedside
// check fails.
type MismatchData struct {
	Reasons           []string `json:"reasons"`
	BagCode           string   `json:"bag_code,omitempty"`
	BagCodeUnreadable bool     `json:"bag_code_unreadable,omitempty"`
	WristbandDigest   string   `json:"wristband_digest,omitempty"`
	AttemptedBy       []string `json:"attempted_by,omitempty"`
}

// AcknowledgeData is the data of an acknowledge record: the mismatch
// acknowledged and the statement the person attested.
type AcknowledgeData struct {
	Mismatch  uint64 `json:"mismatch"`
	Statement string `json:"statement"`
}

// DispositionData is the data of a disposition record: QA's decision on
// the issue recorded at Excursion (an excursion, a broken-seal receive or
// a mismatch).
type DispositionData struct {
	Excursion uint64 `json:"excursion"`
	Decision  string `json:"decision"`
	Reason    string `json:"reason"`
}

// CorrectionData is the data of a correction record: the record it
// corrects and why. A correction may also repeat members of the corrected
// record (Record.Members lists them all).
type CorrectionData struct {
	Corrects uint64 `json:"corrects"`
	Reason   string `json:"reason"`
	// Figures are an excursion's figures when the correction names one
	// (excursion_id): the system's correction of an excursion record.
	Figures *ExcursionEndData `json:"-"`
	// figuresErr is why the figures could not be read, if they could not.
	figuresErr error
}

// CancelData is the data of a cancel record.
type CancelData struct {
	Reason string `json:"reason"`
}

// NoteData is the data of a note record.
type NoteData struct {
	Text string `json:"text"`
}

// ReviewData is the data of a QA review record: what QA attests it
// reviewed and found.
type ReviewData struct {
	Statement string `json:"statement"`
}

// ScheduleData is the data of a schedule record: the product, the
// planned milestones and the claims (chair and slot) the booking holds.
// It names sites and days only, never the patient.
type ScheduleData struct {
	Product string  `json:"product"`
	Plan    Plan    `json:"plan"`
	Claims  []Claim `json:"claims"`
}

// RescheduleData is the data of a reschedule record: the new booking,
// which replaces the chain's booking, and why.
type RescheduleData struct {
	ScheduleData
	Reason string `json:"reason"`
}

// UnscheduleData is the data of an unschedule record: the claims freed
// and why.
type UnscheduleData struct {
	Claims []Claim `json:"claims"`
	Reason string  `json:"reason"`
}

// CollectOverrideData is the data of a collect-override record: why cells
// may be collected without a booking.
type CollectOverrideData struct {
	Reason string `json:"reason"`
}

// OtherData is the data of a step custody has no type for (a step a
// journey table adds): its members as they are.
type OtherData struct {
	Of      Step
	Members map[string]json.RawMessage
}

// BagRegistrar is step data that registers bags on the chain: the chain's
// bags of a kind are numbered from 1 across its records, in chain order.
type BagRegistrar interface {
	StepData
	// RegisteredBags returns the kind and the number of bags registered.
	RegisteredBags() (BagKind, int)
}

// RegisteredBags implements BagRegistrar: the apheresis bags collected.
func (d CollectData) RegisteredBags() (BagKind, int) { return BagApheresis, d.Bags }

// RegisteredBags implements BagRegistrar: the final-product bags made.
func (d ManufactureData) RegisteredBags() (BagKind, int) { return BagFinalProduct, d.FinalBags }

// Step implements StepData.
func (EnrollData) Step() Step { return StepEnroll }

// Step implements StepData.
func (CollectData) Step() Step { return StepCollect }

// Step implements StepData.
func (ShipData) Step() Step { return StepShip }

// Step implements StepData.
func (ReceiveData) Step() Step { return StepReceive }

// Step implements StepData.
func (ManufactureData) Step() Step { return StepManufacture }

// Step implements StepData.
func (ReleaseData) Step() Step { return StepRelease }

// Step implements StepData.
func (BedsideData) Step() Step { return StepBedsideVerify }

// Step implements StepData.
func (InfuseData) Step() Step { return StepInfuse }

// Step implements StepData.
func (ExcursionData) Step() Step { return StepExcursion }

// Step implements StepData.
func (MismatchData) Step() Step { return StepMismatch }

// Step implements StepData.
func (AcknowledgeData) Step() Step { return StepAcknowledge }

// Step implements StepData.
func (DispositionData) Step() Step { return StepDisposition }

// Step implements StepData.
func (CorrectionData) Step() Step { return StepCorrection }

// Step implements StepData.
func (CancelData) Step() Step { return StepCancel }

// Step implements StepData.
func (NoteData) Step() Step { return StepNote }

// Step implements StepData.
func (ReviewData) Step() Step { return StepReview }

// Step implements StepData.
func (d OtherData) Step() Step { return d.Of }

// Step implements StepData.
func (ScheduleData) Step() Step { return StepSchedule }

// Step implements StepData.
func (RescheduleData) Step() Step { return StepReschedule }

// Step implements StepData.
func (UnscheduleData) Step() Step { return StepUnschedule }

// Step implements StepData.
func (CollectOverrideData) Step() Step { return StepCollectOverride }

// members splits a schema's comma-separated member names.
func members(names string) []string {
	if names == "" {
		return nil
	}
	return strings.Split(names, ",")
}

// ParseData parses and validates a client's data for step once: at most
// MaxDataSize bytes of canonicalizable JSON, an object, holding only the
// members the step's data may hold (a closed schema; a correction's also
// depend on the record it corrects, which the service checks; a step
// custody has no type for holds none here, and those its journey row
// lists when the service checks it: Journey.DataMembers), each of its
// type. Errors wrap ErrInvalid. Checks of values against the
// configuration or the chain (profiles, times, bags) are the service's.
func ParseData(step Step, raw json.RawMessage) (StepData, error) {
	d, err := parseData(step, raw)
	if err != nil {
		return nil, err
	}
	return d.typed(step, stepMembers(step))
}

// typed checks the members of d against step's closed schema, the
// allowed members, and decodes it, once; the result is kept in d.parsed.
func (d *stepData) typed(step Step, allowed []string) (StepData, error) {
	if step != StepCorrection { // a correction's members depend on the record it corrects: checkAgainstChain
		if err := d.closed(step, allowed); err != nil {
			return nil, err
		}
	}
	v, err := decodeStepData(step, d.fields, d.raw)
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: data.%s must be a %s: %w", step, te.Field, te.Type, ErrInvalid)
		}
		return nil, fmt.Errorf("%s: data: %v: %w", step, err, ErrInvalid)
	}
	d.parsed = v
	return v, nil
}

// stepSchema is what custody knows of a step's data: the members a client
// may send, those coid writes itself, and how the data decodes into its
// type.
type stepSchema struct {
	// client and written are comma-separated member names: constants,
	// so that looking a schema up allocates nothing.
	client, written string
	// decode decodes raw into the step's type; members are raw's members
	// when byMember is set (the data is read member by member).
	decode   func(raw json.RawMessage, members map[string]json.RawMessage) (StepData, error)
	byMember bool
}

// schemaOf returns the schema of step's data: for a step custody has no
// type for, no members and OtherData.
func schemaOf(step Step) stepSchema {
	switch step {
	case StepEnroll:
		return stepSchema{written: "product,sites,facility", decode: decodeInto[EnrollData]}
	case StepCollect:
		return stepSchema{client: "din,volume_ml,bags,started_at,ended_at", decode: decodeInto[CollectData]}
	case StepShip:
		return stepSchema{client: "shipper,profile,planned_arrival", decode: func(raw json.RawMessage, _ map[string]json.RawMessage) (StepData, error) {
			var v ShipData
			err := json.Unmarshal(raw, &v)
			if _, ok := errors.AsType[*time.ParseError](err); ok {
				err = fmt.Errorf("data.planned_arrival must be an RFC 3339 time, e.g. 2026-11-24T13:00:00Z")
			}
			return v, err
		}}
	case StepReceive:
		return stepSchema{client: "seal_intact", written: "telemetry", decode: decodeInto[ReceiveData]}
	case StepManufacture:
		return stepSchema{client: "final_bags,expires_at", decode: func(raw json.RawMessage, _ map[string]json.RawMessage) (StepData, error) {
			var v ManufactureData
			return v, expiresTolerated(json.Unmarshal(raw, &v))
		}}
	case StepRelease:
		return stepSchema{client: "expires_at", decode: func(raw json.RawMessage, _ map[string]json.RawMessage) (StepData, error) {
			var v ReleaseData
			return v, expiresTolerated(json.Unmarshal(raw, &v))
		}}
	case StepBedsideVerify:
		return stepSchema{client: "bag_code,wristband_code", written: "bag,wristband_match", decode: decodeInto[BedsideData]}
	case StepInfuse:
		return stepSchema{client: "bag", decode: decodeInto[InfuseData]}
	case StepExcursion:
		return stepSchema{written: "excursion_id,kind,leg,shipper,profile,start,end,worst,limit,duration_ns,duration,breach_ns",
			decode: decodeExcursion}
	case StepHoldWarning:
		return stepSchema{written: "cause,leg,shipper,profile,message,projection", decode: decodeInto[HoldWarningData]}
	case StepMismatch:
		return stepSchema{written: "reasons,bag_code,bag_code_unreadable,wristband_digest,attempted_by",
			decode: decodeInto[MismatchData]}
	case StepAcknowledge:
		return stepSchema{written: "mismatch,statement", decode: decodeInto[AcknowledgeData]}
	case StepDisposition:
		return stepSchema{client: "excursion,decision,reason", decode: decodeInto[DispositionData]}
	case StepCorrection:
		return stepSchema{client: "corrects,reason", decode: decodeCorrection}
	case StepCancel:
		return stepSchema{client: "reason", decode: decodeInto[CancelData]}
	case StepNote:
		return stepSchema{client: "text", decode: decodeInto[NoteData]}
	case StepReview:
		return stepSchema{client: "statement", decode: decodeInto[ReviewData]}
	case StepSchedule:
		return stepSchema{written: "product,plan,claims", decode: decodeInto[ScheduleData]}
	case StepReschedule:
		return stepSchema{written: "product,plan,claims,reason", decode: decodeInto[RescheduleData]}
	case StepUnschedule:
		return stepSchema{written: "claims,reason", decode: decodeInto[UnscheduleData]}
	case StepCollectOverride:
		return stepSchema{written: "reason", decode: decodeInto[CollectOverrideData]}
	case StepFollowUp:
		return stepSchema{client: "day,crs_grade,icans_grade,response,assessed_date", decode: decodeInto[FollowUpData]}
	}
	return stepSchema{byMember: true, decode: func(_ json.RawMessage, m map[string]json.RawMessage) (StepData, error) {
		return OtherData{Of: step, Members: m}, nil
	}}
}

// decodeInto decodes raw into a T. A member of the wrong type is an error;
// the value returned holds the other members.
func decodeInto[T StepData](raw json.RawMessage, _ map[string]json.RawMessage) (StepData, error) {
	var v T
	err := json.Unmarshal(raw, &v)
	return v, err
}

// decodeCorrection decodes a correction and, when it names an excursion,
// the excursion's figures: in one pass when both read.
func decodeCorrection(raw json.RawMessage, _ map[string]json.RawMessage) (StepData, error) {
	var f ExcursionEndData
	ferr := json.Unmarshal(raw, &f)
	if ferr == nil {
		v := CorrectionData{Corrects: f.Corrects, Reason: f.Reason}
		if f.ID != "" {
			v.Figures = &f
		}
		return v, nil
	}
	var v CorrectionData
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, err
	}
	// A person's correction may repeat any member of the record it
	// corrects: only the system's figures must read.
	v.figuresErr = ferr
	return v, nil
}

// decodeExcursion decodes an excursion record's data in one pass, or, when
// a member does not read, member by member (excursionFromMembers).
func decodeExcursion(raw json.RawMessage, m map[string]json.RawMessage) (StepData, error) {
	var d ExcursionData
	if err := json.Unmarshal(raw, &d); err == nil {
		if d.End != nil && d.End.IsZero() {
			d.End = nil
		}
		return d, nil
	}
	if m == nil {
		if err := json.Unmarshal(raw, &m); err != nil {
			return ExcursionData{}, err
		}
	}
	return excursionFromMembers(m), nil
}

// decodeStepData decodes raw, the data of a step, into its type; members
// are raw's members when the caller has them, else nil.
func decodeStepData(step Step, raw json.RawMessage, members map[string]json.RawMessage) (StepData, error) {
	sc := schemaOf(step)
	if sc.byMember && members == nil {
		if err := json.Unmarshal(raw, &members); err != nil {
			v, _ := sc.decode(json.RawMessage("{}"), map[string]json.RawMessage{})
			return v, err
		}
	}
	return sc.decode(raw, members)
}

// expiresTolerated drops a type error of expires_at, which the service
// never checked: the labels report it when they read the expiry.
func expiresTolerated(err error) error {
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field == "expires_at" {
		return nil
	}
	return err
}

// excursionFromMembers reads an excursion record's data member by member:
// a member of the wrong type is left unset (a malformed time zero, a
// malformed number nil), so a record written by another version still
// reads.
func excursionFromMembers(m map[string]json.RawMessage) ExcursionData {
	var d ExcursionData
	for k, v := range m {
		switch k {
		case "excursion_id":
			_ = json.Unmarshal(v, &d.ID)
		case "kind":
			_ = json.Unmarshal(v, &d.Kind)
		case "leg":
			_ = json.Unmarshal(v, &d.Leg)
		case "shipper":
			_ = json.Unmarshal(v, &d.Shipper)
		case "profile":
			_ = json.Unmarshal(v, &d.Profile)
		case "start":
			var t time.Time
			if json.Unmarshal(v, &t) == nil {
				d.Start = t
			}
		case "end":
			var t time.Time
			if json.Unmarshal(v, &t) == nil && !t.IsZero() {
				d.End = &t
			}
		case "worst":
			var f float64
			if json.Unmarshal(v, &f) == nil {
				d.Worst = &f
			}
		case "limit":
			var f float64
			if json.Unmarshal(v, &f) == nil {
				d.Limit = &f
			}
		case "duration_ns":
			_ = json.Unmarshal(v, &d.DurationNS)
		case "duration":
			_ = json.Unmarshal(v, &d.Duration)
		case "breach_ns":
			_ = json.Unmarshal(v, &d.BreachNS)
		}
	}
	return d
}

// parsedData is a record's data, parsed at most once: its typed form and
// its members are each filled on first use.
type parsedData struct {
	once sync.Once
	data StepData
	err  error

	membersOnce sync.Once
	members     map[string]json.RawMessage
	membersErr  error
}

func storedData(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("{}")
	}
	return raw
}

func (p *parsedData) typed(r *Record) (StepData, error) {
	p.once.Do(func() {
		var m map[string]json.RawMessage
		if schemaOf(r.Step).byMember { // a step custody has no type for
			// Read member by member.
			if m, p.err = p.getMembers(r); p.err != nil {
				p.data, _ = decodeStepData(r.Step, json.RawMessage("{}"), map[string]json.RawMessage{})
				return
			}
		}
		p.data, p.err = decodeStepData(r.Step, storedData(r.Data), m)
	})
	return p.data, p.err
}

func (p *parsedData) getMembers(r *Record) (map[string]json.RawMessage, error) {
	p.membersOnce.Do(func() { p.membersErr = json.Unmarshal(storedData(r.Data), &p.members) })
	return p.members, p.membersErr
}

// parsedData returns the record's parse cache, or a fresh one for a
// record that has none (parsed on each call).
func (r *Record) parsedData() *parsedData {
	if r.parsed != nil {
		return r.parsed
	}
	return &parsedData{}
}

// Parsed returns the record's data in its step's type (OtherData for a
// step custody has no type for). Data that is not a JSON object, or a
// member of the wrong type, is an error that wraps ErrChainBroken; the
// value returned then still holds what could be read, as a tolerant reader
// (an export) may use. The records of a folded Chain parse their data
// once, when first read; any other record parses it on each call.
func (r *Record) Parsed() (StepData, error) {
	data, err := r.parsedData().typed(r)
	if err != nil {
		return data, fmt.Errorf("%s record %d: %v: %w", r.Step, r.Seq, err, ErrChainBroken)
	}
	return data, nil
}

// Body returns the record's data in its step's type, as far as it could
// be read (Parsed, without its error).
func (r *Record) Body() StepData {
	d, _ := r.Parsed()
	return d
}

// Members returns the members of the record's data as stored, for a
// display that lists every member, or the error that says the data is not
// a JSON object. The map is shared: do not change it.
func (r *Record) Members() (map[string]json.RawMessage, error) {
	return r.parsedData().getMembers(r)
}
