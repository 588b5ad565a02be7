package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Out of specification and exceptional release on the chain page: QA's
// oos form naming the failed attributes; the standard release form,
// which then says it is refused; the physician's request and the
// patient's consent; and the exceptional-release form, which lists each
// element the domain requires with its state and shows a refusal beside
// the element it concerns. The domain (custody.Service.Record) decides;
// this file asks for the data and says what the domain said. The
// follow-up form (followup.go) is decorated the same way.

// accessStepTitles are the headings of the forms of this file's steps.
var accessStepTitles = map[custody.Step]string{
	custody.StepOOS:                       "Record the product out of specification",
	custody.StepExceptionalReleaseRequest: "Request exceptional release (treating physician)",
	custody.StepConsent:                   "Record the patient's informed consent",
	custody.StepExceptionalRelease:        "Exceptional release of the out-of-specification product",
	custody.StepFollowUp:                  "Record a follow-up",
}

// accessStepNames name this file's steps in the timeline.
var accessStepNames = map[custody.Step]string{
	custody.StepOOS:                       "Out of specification (QA)",
	custody.StepExceptionalReleaseRequest: "Exceptional release requested by the treating physician",
	custody.StepConsent:                   "Patient's informed consent recorded",
	custody.StepExceptionalRelease:        "Released by exception (QA and medical director)",
	custody.StepFollowUp:                  "Follow-up",
}

// releaseItem is one element a step needs, as its form lists it.
type releaseItem struct {
	Element custody.ReleaseElement
	Label   string
	Done    bool
	Detail  string
	Href    string
	// Error is the domain's refusal naming this element.
	Error string
}

// stepErrKey holds, on a request whose step form was refused, the
// domain's error, so the re-rendered form shows it beside its field.
const stepErrKey = "coid.web.step_error"

// oosFields returns the data inputs of the out-of-specification steps;
// false for other steps.
func oosFields(step custody.Step) ([]formField, bool) {
	switch step {
	case custody.StepOOS:
		opts := make([]formOption, len(custody.OOSAttributes))
		for i, a := range custody.OOSAttributes {
			opts[i] = formOption{a, strings.ReplaceAll(a, "-", " ")}
		}
		return []formField{
			{Name: "attributes", Label: "Failed release attributes", Kind: "checkboxes", Options: opts},
			{Name: "reason", Label: "Result against its specification", Kind: "textarea", Required: true,
				Help: "e.g. viability 62% against a limit of 70%; no patient identifiers"},
		}, true
	case custody.StepExceptionalReleaseRequest:
		return []formField{{Name: "reason", Label: "Clinical justification", Kind: "textarea", Required: true,
			Help: "why this patient should receive the product; no patient identifiers"}}, true
	case custody.StepConsent:
		return []formField{
			{Name: "obtained_by", Label: "Consent obtained by", Kind: "text", Help: "role or name of the clinician, not the patient"},
			{Name: "obtained_at", Label: "Consent obtained at", Kind: "datetime", Required: true, Help: "local time of this device"},
			{Name: "document_hash", Label: "SHA-256 of the signed consent form", Kind: "text", Help: "optional, 64 hex characters"},
		}, true
	case custody.StepExceptionalRelease:
		return []formField{{Name: "statement", Label: "Release statement", Kind: "textarea", Required: true,
			Help: "the decision to release out of specification and its grounds"}}, true
	}
	return nil, false
}

// dataFieldRE finds the data member a domain message names.
var dataFieldRE = regexp.MustCompile(`data\.([a-z_]+)`)

// errorField is the form field err concerns: the FieldError's, else the
// data member its message names; "" for none.
func errorField(err error) string {
	if f := custody.ErrorField(err); f != "" {
		return f
	}
	if m := dataFieldRE.FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	return ""
}

// decorateForm completes the form of step f on chain ch: the refusal of
// the standard release after an oos record, the exceptional release's
// checklist, the follow-up's time points, and the refusal of a form
// that failed (form is what it sent; nil for the others) beside its
// field. It returns false when the step is not to be offered now.
func (w *ui) decorateForm(c echo.Context, ch *custody.Chain, f *stepForm, form url.Values) bool {
	x := custody.OOSOf(ch)
	switch f.Step {
	case custody.StepRelease:
		if x != nil {
			f.Notice = fmt.Sprintf("Standard release refused: QA recorded this product out of specification (%s; record %d). "+
				"It can go to the patient only by an exceptional release.", strings.Join(x.Attributes, ", "), x.OOSSeq[0])
			f.Blocked, f.Main, f.Open = true, true, true
		}
	case custody.StepOOS:
		f.Secondary = true // offered, not the next step: most products pass
		if form == nil && x != nil {
			f.Title = "Record a further out-of-specification result"
		}
	case custody.StepFollowUp:
		if !followUpOffered(f) {
			return false
		}
	case custody.StepExceptionalReleaseRequest, custody.StepConsent, custody.StepExceptionalRelease:
		if x == nil {
			return false
		}
		if f.Step == custody.StepExceptionalRelease {
			f.Checklist = w.releaseChecklist(c, ch, x)
		} else if (f.Step == custody.StepConsent && x.Consent != 0) || (f.Step == custody.StepExceptionalReleaseRequest && x.Request != 0) {
			f.Secondary = true
		}
	}
	if form != nil {
		for i := range f.Fields {
			if f.Fields[i].Kind == "checkboxes" {
				f.Fields[i].Checked = map[string]bool{}
				for _, v := range form[f.Fields[i].Name] {
					f.Fields[i].Checked[v] = true
				}
			}
		}
		if err, ok := c.Get(stepErrKey).(error); ok {
			placeError(f, err)
		}
	}
	return true
}

// placeError shows err beside what it concerns: the element of an
// exceptional release it names, the signatures, or a data field.
func placeError(f *stepForm, err error) {
	msg := plainError(err, "").Detail
	var xe *custody.ExceptionalReleaseError
	if errors.As(err, &xe) {
		if xe.Missing == custody.ElementSignatures {
			f.SigError = sentence(xe.Detail)
			return
		}
		for i := range f.Checklist {
			if f.Checklist[i].Element == xe.Missing {
				f.Checklist[i].Error = sentence(xe.Detail)
				return
			}
		}
	}
	if errors.Is(err, custody.ErrUnauthenticated) || errors.Is(err, custody.ErrForbidden) {
		f.SigError = msg
		return
	}
	if name := errorField(err); name != "" {
		for i := range f.Fields {
			if f.Fields[i].Name == name {
				f.Fields[i].Error = msg
				return
			}
		}
	}
}

// releaseChecklist lists the elements an exceptional release of ch needs
// and which of them the chain holds. The signatures are the form's.
func (w *ui) releaseChecklist(c echo.Context, ch *custody.Chain, x *custody.ExceptionalRelease) []releaseItem {
	out := []releaseItem{{Element: custody.ElementOOS, Label: "Out-of-specification record", Done: true,
		Detail: fmt.Sprintf("record %d: %s", x.OOSSeq[0], strings.Join(x.Attributes, ", "))}}
	acc := releaseItem{Element: custody.ElementAccessApproved, Label: "Approved expanded-access request for this chain",
		Detail: "the chain was not enrolled from an expanded-access request"}
	var en custody.EnrollData
	if len(ch.Records) > 0 && json.Unmarshal(ch.Records[0].Data, &en) == nil && en.Request != "" {
		acc.Href = "/access/requests/" + string(en.Request)
		acc.Detail = "request " + string(en.Request)
		if r, err := w.svc.AccessRequest(c.Request().Context(), sessionUser(c), en.Request); err == nil {
			acc.Done = r.State == custody.AccessEnrolled && r.COI == ch.COI
			acc.Detail += ": " + queueStateText(r.State)
		}
	}
	req := releaseItem{Element: custody.ElementPhysicianRequest, Label: "Treating physician's request", Detail: "not recorded yet"}
	if x.Request != 0 {
		req.Done, req.Detail = true, fmt.Sprintf("record %d", x.Request)
	}
	con := releaseItem{Element: custody.ElementConsent, Label: "Patient's informed consent", Detail: "not recorded yet"}
	if x.Consent != 0 {
		con.Done, con.Detail = true, fmt.Sprintf("record %d", x.Consent)
	}
	return append(out, acc, req, con)
}

// givenSignatures drops the signature boxes left empty, so that the
// domain, not a blank box, says which signature is missing.
func givenSignatures(sigs []custody.SignatureRequest) []custody.SignatureRequest {
	var out []custody.SignatureRequest
	for _, s := range sigs {
		if s.User != "" || s.Password != "" {
			out = append(out, s)
		}
	}
	return out
}

// stepFormValues is what the form of step st sent when it is the one that
// failed; nil otherwise.
func stepFormValues(st, failed custody.Step, form url.Values) url.Values {
	if st != failed || form == nil {
		return nil
	}
	return form
}
