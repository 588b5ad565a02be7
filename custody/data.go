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

// stepMembers returns the members a client's data for step may hold; a
// step's data is a closed schema, so any other member is refused. A
// correction may also hold the members of the record it corrects
// (correctionMembers).
func stepMembers(step Step) []string { return members(schemaOf(step).client) }

// writtenMembers returns the members coid itself writes into a step's
// data, which a correction of such a record may name too.
func writtenMembers(step Step) []string { return members(schemaOf(step).written) }

// correctionMembers returns the members a correction of record r may
// hold: its own, and those of r's step as a client sends them, as coid
// writes them and as r holds them.
func correctionMembers(r Record) []string {
	m := append(stepMembers(StepCorrection), stepMembers(r.Step)...)
	m = append(m, writtenMembers(r.Step)...)
	members, _ := r.Members()
	m = append(m, slices.Collect(maps.Keys(members))...)
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
	// parsed is the data in its step's type, once typed has checked it.
	parsed StepData
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

// checkData validates the step data, holding only the allowed members, that does not depend on other
// records, normalising identifiers, and returns it. Checks that need the
// chain (bags, excursions, corrected records) happen in the service.
func checkData(step Step, allowed []string, d *stepData, profiles map[string]bool, now time.Time) error {
	v, err := d.typed(step, allowed)
	if err != nil {
		return err
	}
	switch x := v.(type) {
	case CollectData:
		din, err := ParseDIN(x.DIN)
		if err != nil {
			return fmt.Errorf("%s: data.din: %w", step, err)
		}
		d.set("din", string(din))
		if err := need(step, "volume_ml", x.VolumeML != nil && *x.VolumeML > 0 && *x.VolumeML <= 5000, "must be a volume in mL between 0 and 5000"); err != nil {
			return err
		}
		if err := need(step, "bags", x.Bags >= 1 && x.Bags <= 99, "must be 1-99"); err != nil {
			return err
		}
		start, err := parseDataTime(step, "started_at", x.StartedAt, now)
		if err != nil {
			return err
		}
		end, err := parseDataTime(step, "ended_at", x.EndedAt, now)
		if err != nil {
			return err
		}
		return need(step, "ended_at", !end.Before(start), "is before started_at")
	case ShipData:
		if err := need(step, "shipper", ValidShipperID(x.Shipper), "must be a shipper ID (letters, digits, . _ -; up to 64)"); err != nil {
			return err
		}
		if err := need(step, "profile", profiles[x.Profile], fmt.Sprintf("must be one of the configured temperature profiles %v", sortedKeys(profiles))); err != nil {
			return err
		}
		if x.PlannedArrival != nil {
			return need(step, "planned_arrival", x.PlannedArrival.After(now) && x.PlannedArrival.Before(now.Add(MaxPlannedLeg)),
				fmt.Sprintf("must be a time after now and within %d days", MaxPlannedLeg/(24*time.Hour)))
		}
		return nil
	case ReceiveData:
		return need(step, "seal_intact", x.SealIntact != nil, "is required (true or false)")
	case ManufactureData:
		return need(step, "final_bags", x.FinalBags >= 1 && x.FinalBags <= 99, "must be 1-99")
	case BedsideData:
		if err := need(step, "bag_code", x.BagCode != "" && len(x.BagCode) <= MaxCodeLen, "must be the scanned bag label"); err != nil {
			return err
		}
		return need(step, "wristband_code", x.WristbandCode != "" && len(x.WristbandCode) <= MaxCodeLen, "must be the scanned wristband")
	case DispositionData:
		if err := need(step, "excursion", x.Excursion > 0, "must name the excursion record (its seq)"); err != nil {
			return err
		}
		if err := need(step, "decision", x.Decision == DecisionAccept || x.Decision == DecisionReject, "must be accept or reject"); err != nil {
			return err
		}
		return validText(string(step)+": data.reason", x.Reason, true, 2000)
	case CorrectionData:
		if err := need(step, "corrects", x.Corrects > 0, "must name the corrected record (its seq)"); err != nil {
			return err
		}
		return validText(string(step)+": data.reason", x.Reason, true, 2000)
	case CancelData:
		return validText(string(step)+": data.reason", x.Reason, true, 2000)
	case NoteData:
		return validText(string(step)+": data.text", x.Text, true, 4000)
	case ReviewData:
		return validText(string(step)+": data.statement", x.Statement, true, 4000)
	}
	return nil
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }
