package web

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
)

// The step forms of the web UI. Which steps a chain may take next, who
// signs them and with what meaning comes from the journey table
// (custody.Journey.Rule); this file only says how each step's data fields
// (the members custody.Service.Record accepts for the step) are asked for
// and turned into the JSON the domain checks. A step it does not know gets a form with its
// signatures and no data fields.

// stepForm is a step the signed-in user can take, with its inputs.
type stepForm struct {
	Step   custody.Step
	Title  string
	Action string
	Fields []formField
	Sigs   []sigBox
	Danger bool
	Main   bool // a journey step (shown expanded)
	Open   bool // expanded (the form that failed)
	// Secondary lists a journey step with the other records: it may be
	// needed, it is not the next step.
	Secondary bool
	// Notice is said above the form; Blocked: the step is refused now
	// and only the notice is shown.
	Notice  string
	Blocked bool
	// Checklist lists what the step needs, each element with its state
	// (the exceptional release); SigError is a refusal concerning the
	// signatures, shown beside them.
	Checklist []releaseItem
	SigError  string
}

// stepFormCtx is what the "stepform" template gets.
type stepFormCtx struct {
	Form stepForm
	CSRF string
	Bag  string
}

// formField is one input of a step form.
type formField struct {
	Name     string // data member
	Label    string
	Kind     string // text, number, integer, datetime, select, radio, textarea
	Help     string
	Required bool
	Options  []formOption
	Min, Max string
	Value    string // pre-filled value (never a password)
	// Int sends the value as a whole number; Checked are the ticked
	// options of a "checkboxes" field (sent as a list).
	Int     bool
	Checked map[string]bool
	// Error is the refusal concerning this field, shown beside it.
	Error string
}

type formOption struct {
	Value, Label string
}

// fieldLabels names step data members in the words the forms use, so
// domain messages that mention "data.volume_ml" can say "Volume (mL)".
var fieldLabels = map[string]string{
	"din": "DIN", "volume_ml": "Volume (mL)", "bags": "Number of bags", "started_at": "Collection start",
	"ended_at": "Collection end", "shipper": "Shipper ID", "profile": "Temperature profile",
	"seal_intact": "Seal intact", "final_bags": "Number of final-product bags", "bag_code": "Bag label",
	"wristband_code": "Wristband", "excursion": "Issue", "decision": "Decision", "reason": "Reason",
	"corrects": "Record corrected", "text": "Note", "expires_at": "Expiry", "statement": "Statement",
	"planned_arrival": "Planned arrival", "day": "Time point (day)", "assessed_date": "Assessed on",
	"crs_grade": "CRS grade", "icans_grade": "ICANS grade", "response": "Response", "attributes": "Failed attributes",
	"obtained_by": "Consent obtained by", "obtained_at": "Consent obtained at", "document_hash": "Consent form SHA-256",
}

// stepTitles are the headings of the step forms.
var stepTitles = map[custody.Step]string{
	custody.StepCollect: "Record the collection", custody.StepShip: "Hand over for shipping",
	custody.StepReceive: "Receive the shipment", custody.StepManufacture: "Record manufacture",
	custody.StepRelease: "Release the product", custody.StepBedsideVerify: "Bedside check",
	custody.StepInfuse: "Record the infusion", custody.StepDisposition: "QA disposition",
	custody.StepNote: "Add a note", custody.StepCorrection: "Correct a record", custody.StepCancel: "Cancel this chain",
	custody.StepReview: "Sign the QA review of this custody record",
}

func stepTitle(s custody.Step) string {
	if t, ok := stepTitles[s]; ok {
		return t
	}
	if t, ok := accessStepTitles[s]; ok {
		return t
	}
	return "Record " + string(s)
}

// stateWords says each state in a sentence a nurse reads at a glance.
var stateWords = map[custody.State]string{
	custody.StateEnrolled: "Enrolled, waiting for collection", custody.StateCollected: "Collected, waiting for shipment",
	custody.StateToManufacturing: "In transit to manufacturing", custody.StateAtManufacturing: "At the manufacturing site",
	custody.StateManufactured: "Manufactured, waiting for QA release", custody.StateReleased: "Released, waiting for shipment to treatment",
	custody.StateToTreatment: "In transit to the treatment site", custody.StateAtTreatment: "At the treatment site, waiting for the bedside check",
	custody.StateVerified: "Bedside check passed, ready to infuse", custody.StateInfused: "Infused: the journey is complete",
	custody.StateCancelled: "Cancelled",
}

func stateText(s custody.State) string {
	if t, ok := stateWords[s]; ok {
		return t
	}
	return string(s)
}

// expiryField asks for the final product's expiry, which its labels
// print; optional, as the domain has it.
var expiryField = formField{Name: "expires_at", Label: "Expiry", Kind: "datetime",
	Help: "local time of this device; leave empty when the batch record gives none"}

// stepFields returns the data inputs of step on chain c; profiles are the
// temperature profiles the service accepts.
func stepFields(step custody.Step, c *custody.Chain, profiles []string) []formField {
	if f, ok := oosFields(step); ok {
		return f
	}
	switch step {
	case custody.StepCollect:
		return []formField{
			{Name: "din", Label: "DIN", Kind: "text", Required: true, Help: "13 characters from the collection label, e.g. A999926000123"},
			{Name: "volume_ml", Label: "Volume (mL)", Kind: "number", Required: true, Min: "1", Max: "5000"},
			{Name: "bags", Label: "Number of bags", Kind: "integer", Required: true, Min: "1", Max: "99", Value: "1"},
			{Name: "started_at", Label: "Collection start", Kind: "datetime", Required: true, Help: "local time of this device"},
			{Name: "ended_at", Label: "Collection end", Kind: "datetime", Required: true, Help: "local time of this device"},
		}
	case custody.StepShip:
		def := "refrigerated"
		if len(c.Legs) > 0 {
			def = "cryogenic"
		}
		var opts []formOption
		for _, p := range profiles {
			opts = append(opts, formOption{p, p})
		}
		return []formField{
			{Name: "shipper", Label: "Shipper ID", Kind: "text", Required: true, Help: "printed on the shipper, e.g. SHP-0042"},
			{Name: "profile", Label: "Temperature profile", Kind: "select", Required: true, Options: opts, Value: def},
			{Name: "planned_arrival", Label: "Planned arrival", Kind: "datetime",
				Help: "local time of this device; optional: coid warns when the shipper's liquid nitrogen will not last until then, or the leg runs late"},
		}
	case custody.StepReceive:
		return []formField{{Name: "seal_intact", Label: "Is the shipper's seal intact?", Kind: "radio", Required: true,
			Options: []formOption{{"true", "Yes, intact"}, {"false", "No, broken"}}}}
	case custody.StepManufacture:
		return []formField{
			{Name: "final_bags", Label: "Number of final-product bags", Kind: "integer", Required: true, Min: "1", Max: "99", Value: "1"},
			expiryField,
		}
	case custody.StepRelease:
		return []formField{expiryField}
	case custody.StepDisposition:
		// An excursion still going on, on a leg in transit, gets its
		// disposition once its end is recorded: not offered until then.
		waiting, _ := custody.DispositionWaits(c) // a chain that cannot be read fails elsewhere
		var opts []formOption
		help := ""
		for _, is := range c.OpenIssues() {
			if waiting[is.Seq] {
				help = fmt.Sprintf("Record %d (%s) is still going on in transit; it can be decided once its end is recorded.", is.Seq, issueText(is.Kind))
				continue
			}
			opts = append(opts, formOption{strconv.FormatUint(is.Seq, 10), fmt.Sprintf("Record %d: %s", is.Seq, issueText(is.Kind))})
		}
		return []formField{
			{Name: "excursion", Label: "Issue", Kind: "select", Required: true, Options: opts, Help: help},
			{Name: "decision", Label: "Decision", Kind: "radio", Required: true,
				Options: []formOption{{custody.DecisionAccept, "Accept: product may continue"}, {custody.DecisionReject, "Reject: product must not be used"}}},
			{Name: "reason", Label: "Reason", Kind: "textarea", Required: true},
		}
	case custody.StepCorrection:
		var opts []formOption
		for _, r := range c.Records {
			opts = append(opts, formOption{strconv.FormatUint(r.Seq, 10), fmt.Sprintf("Record %d: %s", r.Seq, r.Step)})
		}
		return []formField{
			{Name: "corrects", Label: "Record corrected", Kind: "select", Required: true, Options: opts},
			{Name: "reason", Label: "Reason", Kind: "textarea", Required: true},
		}
	case custody.StepCancel:
		return []formField{{Name: "reason", Label: "Reason", Kind: "textarea", Required: true}}
	case custody.StepNote:
		return []formField{{Name: "text", Label: "Note", Kind: "textarea", Required: true}}
	case custody.StepReview:
		return []formField{{Name: "statement", Label: "Review statement", Kind: "textarea", Required: true,
			Help: "what you reviewed in this chain's custody record and what you found"}}
	}
	return nil
}

// issueText names an issue kind in words.
func issueText(kind string) string {
	k, excursion := custody.Issue{Kind: kind}.Excursion()
	switch {
	case kind == custody.IssueSealBroken:
		return "shipment received with its seal broken"
	case kind == custody.IssueMismatch:
		return "bedside check failed (mismatch)"
	case excursion:
		switch k {
		case custody.ExcursionTemperature:
			return "temperature excursion"
		case custody.ExcursionTilt:
			return "shipper tilted"
		case custody.ExcursionLid:
			return "lid open or light inside the shipper"
		case custody.ExcursionSilence:
			return "shipper stopped reporting"
		}
		return string(k) + " excursion"
	}
	return kind
}

// stepData turns the submitted form into the step's JSON data. Values are
// converted to the JSON types the domain expects; the domain judges them.
// Free text (a reason, a note, a review statement) is sent even when blank:
// the domain refuses a blank one, and its error is the one the form shows,
// as it is for the API. Only a value that must be converted is required
// here, since a blank one has nothing to convert.
func stepData(step custody.Step, fields []formField, form url.Values) (json.RawMessage, error) {
	m := map[string]any{}
	for _, f := range fields {
		v := strings.TrimSpace(form.Get(f.Name))
		if f.Kind == "checkboxes" { // the domain says when none is ticked
			m[f.Name] = append([]string{}, form[f.Name]...)
			continue
		}
		if v == "" && f.Kind == "textarea" {
			m[f.Name] = v
			continue
		}
		if v == "" {
			if f.Required {
				return nil, &custody.FieldError{Field: f.Name, Err: fmt.Errorf("%s is required: %w", f.Label, custody.ErrInvalid)}
			}
			continue
		}
		switch {
		case f.Kind == "number":
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("%s must be a number: %w", f.Label, custody.ErrInvalid)
			}
			m[f.Name] = x
		case f.Kind == "integer" || f.Int || f.Name == "excursion" || f.Name == "corrects":
			x, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s must be a whole number: %w", f.Label, custody.ErrInvalid)
			}
			m[f.Name] = x
		case f.Name == "seal_intact":
			m[f.Name] = v == "true"
		case f.Kind == "datetime":
			t, err := parseLocalTime(v, form.Get("tz_offset"))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Label, err)
			}
			m[f.Name] = t.Format(time.RFC3339)
		default:
			m[f.Name] = v
		}
	}
	return json.Marshal(m)
}

// parseLocalTime reads a datetime-local value ("2026-11-22T10:30") in the
// browser's zone, given as minutes east of UTC by the page script (UTC when
// the script did not run).
func parseLocalTime(v, offset string) (time.Time, error) {
	off := 0
	if offset != "" {
		n, err := strconv.Atoi(offset)
		if err != nil || n < -14*60 || n > 14*60 {
			return time.Time{}, fmt.Errorf("the device's time zone could not be read: %w", custody.ErrInvalid)
		}
		off = n
	}
	zone := time.FixedZone("", off*60)
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, v, zone); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("give a date and time such as 2026-11-22 10:30: %w", custody.ErrInvalid)
}

// sigBox is one signature a step needs, as the form shows it.
type sigBox struct {
	N       int
	Meaning custody.Meaning
	Roles   string
	User    string // pre-filled user ID
}

// sigBoxes builds the signature boxes of a rule, pre-filling the signed-in
// user's ID in the first box their role may sign.
func sigBoxes(rule custody.Transition, me custody.User) []sigBox {
	out := make([]sigBox, len(rule.Signatures))
	filled := false
	for i, r := range rule.Signatures {
		roles := make([]string, len(r.Roles))
		for j, x := range r.Roles {
			roles[j] = string(x)
		}
		out[i] = sigBox{N: i + 1, Meaning: r.Meaning, Roles: strings.Join(roles, " or ")}
		if !filled && slices.Contains(r.Roles, me.Role) {
			out[i].User, filled = me.ID, true
		}
	}
	return out
}

// signatures reads the signature boxes of a submitted form. The meaning of
// each box is the journey's, whatever the form sent.
func signatures(rule custody.Transition, form url.Values) []custody.SignatureRequest {
	out := make([]custody.SignatureRequest, len(rule.Signatures))
	for i, r := range rule.Signatures {
		n := strconv.Itoa(i + 1)
		out[i] = custody.SignatureRequest{User: strings.TrimSpace(form.Get("sig_user_" + n)),
			Password: form.Get("sig_password_" + n), Meaning: r.Meaning}
	}
	return out
}
