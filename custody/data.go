package custody

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// MaxDataSize bounds the canonical size of a record's step data.
const MaxDataSize = 16 << 10

// Disposition decisions QA may record on an excursion or broken seal.
const (
	DecisionAccept = "accept"
	DecisionReject = "reject"
)

type enrollData struct {
	Product           string `json:"product"`
	Sites             Sites  `json:"sites"`
	Facility          string `json:"facility"`
	PatientCommitment string `json:"patient_commitment"`
}

type collectData struct {
	DIN       string   `json:"din"`
	VolumeML  *float64 `json:"volume_ml"`
	Bags      int      `json:"bags"`
	StartedAt string   `json:"started_at"`
	EndedAt   string   `json:"ended_at"`
}

type shipData struct {
	Shipper string `json:"shipper"`
	Profile string `json:"profile"`
}

type receiveData struct {
	SealIntact *bool `json:"seal_intact"`
}

type manufactureData struct {
	FinalBags int `json:"final_bags"`
}

type bedsideData struct {
	BagCode       string `json:"bag_code"`
	WristbandCode string `json:"wristband_code"`
}

type dispositionData struct {
	Excursion uint64 `json:"excursion"`
	Decision  string `json:"decision"`
	Reason    string `json:"reason"`
}

type correctionData struct {
	Corrects uint64 `json:"corrects"`
	Reason   string `json:"reason"`
}

type reasonData struct {
	Reason string `json:"reason"`
	Text   string `json:"text"`
}

// stepMembers returns the members a client's data for step may hold; a
// step's data is a closed schema, so any other member is refused. A
// correction may also hold the members of the record it corrects
// (correctionMembers).
func stepMembers(step Step) []string {
	switch step {
	case StepCollect:
		return []string{"din", "volume_ml", "bags", "started_at", "ended_at"}
	case StepShip:
		return []string{"shipper", "profile"}
	case StepReceive:
		return []string{"seal_intact"}
	case StepManufacture:
		return []string{"final_bags", "expires_at"}
	case StepRelease:
		return []string{"expires_at"}
	case StepBedsideVerify:
		return []string{"bag_code", "wristband_code"}
	case StepInfuse:
		return []string{"bag"}
	case StepDisposition:
		return []string{"excursion", "decision", "reason"}
	case StepCorrection:
		return []string{"corrects", "reason"}
	case StepCancel:
		return []string{"reason"}
	case StepNote:
		return []string{"text"}
	}
	return nil
}

// writtenMembers returns the members coid itself writes into a step's
// data, which a correction of such a record may name too.
func writtenMembers(step Step) []string {
	switch step {
	case StepReceive:
		return []string{"telemetry"}
	case StepBedsideVerify:
		return []string{"bag", "wristband_match"}
	case StepExcursion:
		return []string{"excursion_id", "kind", "leg", "shipper", "profile", "start", "end", "worst", "limit",
			"duration_ns", "duration", "breach_ns"}
	case StepMismatch:
		return []string{"reasons", "bag_code", "bag_code_unreadable", "wristband_digest", "attempted_by"}
	case StepAcknowledge:
		return []string{"mismatch", "statement"}
	case StepEnroll:
		return []string{"product", "sites", "facility"}
	}
	return nil
}

// correctionMembers returns the members a correction of record r may
// hold: its own, and those of r's step as a client sends them, as coid
// writes them and as r holds them.
func correctionMembers(r Record) []string {
	m := append(stepMembers(StepCorrection), stepMembers(r.Step)...)
	m = append(m, writtenMembers(r.Step)...)
	var data map[string]json.RawMessage
	if json.Unmarshal(r.Data, &data) == nil {
		m = append(m, slices.Collect(maps.Keys(data))...)
	}
	slices.Sort(m)
	return slices.Compact(m)
}

// closed refuses step data holding a member not in allowed, naming the
// first such member (checkNoPHI has already made sure no member name holds
// the patient's identifiers).
func (d *stepData) closed(step Step, allowed []string) error {
	for _, k := range slices.Sorted(maps.Keys(d.raw)) {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return fmt.Errorf("%s: data.%s is not a member of %s data, which holds none: %w", step, k, step, ErrInvalid)
			}
			return fmt.Errorf("%s: data.%s is not a member of %s data (one of %s): %w", step, k, step,
				strings.Join(allowed, ", "), ErrInvalid)
		}
	}
	return nil
}

// ValidShipperID reports whether id is a well-formed shipper ID (see
// ValidateShipperID); it is also the MQTT topic level the shipper
// publishes under.
func ValidShipperID(id string) bool { return ValidateShipperID(id) == nil }

// stepData holds a request's step data as fields to check and the object
// that will be stored.
type stepData struct {
	raw    map[string]json.RawMessage
	fields []byte
}

func parseData(step Step, in json.RawMessage) (*stepData, error) {
	if len(bytes.TrimSpace(in)) == 0 || bytes.Equal(bytes.TrimSpace(in), []byte("null")) {
		in = json.RawMessage("{}")
	}
	if len(in) > MaxDataSize {
		return nil, fmt.Errorf("%s: data larger than %d bytes: %w", step, MaxDataSize, ErrInvalid)
	}
	if _, err := Canonicalize(in); err != nil {
		return nil, fmt.Errorf("%s: data: %w", step, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(in, &raw); err != nil {
		return nil, fmt.Errorf("%s: data must be a JSON object: %w", step, ErrInvalid)
	}
	return &stepData{raw: raw, fields: in}, nil
}

// decode decodes the step data into v, reporting type mismatches clearly.
func (d *stepData) decode(step Step, v any) error {
	if err := json.Unmarshal(d.fields, v); err != nil {
		var te *json.UnmarshalTypeError
		if ok := asTypeError(err, &te); ok {
			return fmt.Errorf("%s: data.%s must be a %s: %w", step, te.Field, te.Type, ErrInvalid)
		}
		return fmt.Errorf("%s: data: %v: %w", step, err, ErrInvalid)
	}
	return nil
}

func asTypeError(err error, te **json.UnmarshalTypeError) bool {
	e, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*te = e
	}
	return ok
}

// set replaces or adds a field of the stored data.
func (d *stepData) set(key string, v any) {
	b, _ := json.Marshal(v)
	d.raw[key] = b
}

// drop removes a field from the stored data.
func (d *stepData) drop(key string) { delete(d.raw, key) }

// canonical returns the stored data as canonical JSON.
func (d *stepData) canonical() (json.RawMessage, error) {
	b, err := json.Marshal(d.raw)
	if err != nil {
		return nil, fmt.Errorf("encode data: %w", ErrInvalid)
	}
	c, err := Canonicalize(b)
	if err != nil {
		return nil, err
	}
	if len(c) > MaxDataSize {
		return nil, fmt.Errorf("data larger than %d bytes: %w", MaxDataSize, ErrInvalid)
	}
	return c, nil
}

func need(step Step, field string, ok bool, what string) error {
	if ok {
		return nil
	}
	return fmt.Errorf("%s: data.%s %s: %w", step, field, what, ErrInvalid)
}

func parseDataTime(step Step, field, s string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: data.%s must be an RFC 3339 time with zone, e.g. 2026-11-22T13:00:00Z: %w", step, field, ErrInvalid)
	}
	if t.After(now.Add(5 * time.Minute)) {
		return time.Time{}, fmt.Errorf("%s: data.%s is in the future: %w", step, field, ErrInvalid)
	}
	return t, nil
}

// checkData validates the step data that does not depend on other
// records, normalising identifiers, and returns it. Checks that need the
// chain (bags, excursions, corrected records) happen in the service.
func checkData(step Step, d *stepData, profiles map[string]bool, now time.Time) error {
	if step != StepCorrection { // a correction's members depend on the record it corrects: checkAgainstChain
		if err := d.closed(step, stepMembers(step)); err != nil {
			return err
		}
	}
	switch step {
	case StepCollect:
		var c collectData
		if err := d.decode(step, &c); err != nil {
			return err
		}
		din, err := ParseDIN(c.DIN)
		if err != nil {
			return fmt.Errorf("%s: data.din: %w", step, err)
		}
		d.set("din", string(din))
		if err := need(step, "volume_ml", c.VolumeML != nil && *c.VolumeML > 0 && *c.VolumeML <= 5000, "must be a volume in mL between 0 and 5000"); err != nil {
			return err
		}
		if err := need(step, "bags", c.Bags >= 1 && c.Bags <= 99, "must be 1-99"); err != nil {
			return err
		}
		start, err := parseDataTime(step, "started_at", c.StartedAt, now)
		if err != nil {
			return err
		}
		end, err := parseDataTime(step, "ended_at", c.EndedAt, now)
		if err != nil {
			return err
		}
		return need(step, "ended_at", !end.Before(start), "is before started_at")
	case StepShip:
		var s shipData
		if err := d.decode(step, &s); err != nil {
			return err
		}
		if err := need(step, "shipper", ValidShipperID(s.Shipper), "must be a shipper ID (letters, digits, . _ -; up to 64)"); err != nil {
			return err
		}
		return need(step, "profile", profiles[s.Profile], fmt.Sprintf("must be one of the configured temperature profiles %v", sortedKeys(profiles)))
	case StepReceive:
		var r receiveData
		if err := d.decode(step, &r); err != nil {
			return err
		}
		return need(step, "seal_intact", r.SealIntact != nil, "is required (true or false)")
	case StepManufacture:
		var m manufactureData
		if err := d.decode(step, &m); err != nil {
			return err
		}
		return need(step, "final_bags", m.FinalBags >= 1 && m.FinalBags <= 99, "must be 1-99")
	case StepBedsideVerify:
		var b bedsideData
		if err := d.decode(step, &b); err != nil {
			return err
		}
		if err := need(step, "bag_code", b.BagCode != "" && len(b.BagCode) <= MaxCodeLen, "must be the scanned bag label"); err != nil {
			return err
		}
		return need(step, "wristband_code", b.WristbandCode != "" && len(b.WristbandCode) <= MaxCodeLen, "must be the scanned wristband")
	case StepDisposition:
		var x dispositionData
		if err := d.decode(step, &x); err != nil {
			return err
		}
		if err := need(step, "excursion", x.Excursion > 0, "must name the excursion record (its seq)"); err != nil {
			return err
		}
		if err := need(step, "decision", x.Decision == DecisionAccept || x.Decision == DecisionReject, "must be accept or reject"); err != nil {
			return err
		}
		return validText(string(step)+": data.reason", x.Reason, true, 2000)
	case StepCorrection:
		var x correctionData
		if err := d.decode(step, &x); err != nil {
			return err
		}
		if err := need(step, "corrects", x.Corrects > 0, "must name the corrected record (its seq)"); err != nil {
			return err
		}
		return validText(string(step)+": data.reason", x.Reason, true, 2000)
	case StepCancel:
		var x reasonData
		if err := d.decode(step, &x); err != nil {
			return err
		}
		return validText(string(step)+": data.reason", x.Reason, true, 2000)
	case StepNote:
		var x reasonData
		if err := d.decode(step, &x); err != nil {
			return err
		}
		return validText(string(step)+": data.text", x.Text, true, 4000)
	}
	return nil
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }
