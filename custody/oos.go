package custody

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Out of specification and exceptional release: when a manufactured
// product fails a release specification, QA records an oos record naming
// the failed attributes; the standard release is then refused
// (ErrOutOfSpecification). The product can go to the patient only by an
// exceptional release, which needs every one of: the chain enrolled from
// an approved expanded-access request, the treating physician's request
// for exceptional release and the patient's informed consent (both
// recorded by a physician bound to the treatment site), and the
// signatures of QA and of the medical director, two different people.

// Out-of-specification steps.
const (
	// StepOOS is QA's record that the product failed release
	// specification attributes.
	StepOOS Step = "oos"
	// StepExceptionalReleaseRequest is the treating physician's request
	// that the out-of-specification product be released for the patient.
	StepExceptionalReleaseRequest Step = "exceptional-release-request"
	// StepConsent records that the patient's informed consent to receive
	// the out-of-specification product was obtained.
	StepConsent Step = "consent"
	// StepExceptionalRelease releases an out-of-specification product,
	// signed by QA and the medical director.
	StepExceptionalRelease Step = "exceptional-release"
)

// RoleMedicalDirector is the manufacturer's medical director, who signs
// an exceptional release beside QA. It is a role of its own rather than a
// flag on a QA account: the medical director is a physician answering for
// the patient's benefit, not the quality unit, and a separate role makes
// the two signatures two different people by construction.
const RoleMedicalDirector Role = "medical-director"

// OOSAttributes are the coded release attributes an oos record may name.
var OOSAttributes = []string{"sterility", "endotoxin", "mycoplasma", "viability", "cell-count", "identity",
	"potency", "purity", "transduction-efficiency", "vector-copy-number", "replication-competent-virus", "appearance", "other"}

// ErrOutOfSpecification means the standard release was refused because QA
// recorded the product out of specification; only an exceptional release
// may follow. Nothing was written.
var ErrOutOfSpecification = errors.New("product is out of specification")

// ErrExceptionalReleaseIncomplete means an exceptional release was
// refused because an element it needs is missing. Nothing was written.
// The error is an *ExceptionalReleaseError naming the element.
var ErrExceptionalReleaseIncomplete = errors.New("exceptional release incomplete")

// ReleaseElement names one element an exceptional release needs.
type ReleaseElement string

// The elements of an exceptional release.
const (
	ElementOOS              ReleaseElement = "oos-record"
	ElementAccessApproved   ReleaseElement = "approved-access-request"
	ElementPhysicianRequest ReleaseElement = "physician-request"
	ElementConsent          ReleaseElement = "informed-consent"
	ElementSignatures       ReleaseElement = "qa-and-medical-director-signatures"
)

// ExceptionalReleaseError is the refusal of an exceptional release that
// lacks an element. errors.Is(err, ErrExceptionalReleaseIncomplete)
// holds.
type ExceptionalReleaseError struct {
	Missing ReleaseElement `json:"missing"`
	Detail  string         `json:"detail"`
}

func (e *ExceptionalReleaseError) Error() string {
	return fmt.Sprintf("exceptional release needs %s: %s: %v", e.Missing, e.Detail, ErrExceptionalReleaseIncomplete)
}

// Is makes errors.Is(err, ErrExceptionalReleaseIncomplete) hold.
func (e *ExceptionalReleaseError) Is(target error) bool {
	return target == ErrExceptionalReleaseIncomplete
}

// OOSData is the data of an oos record.
type OOSData struct {
	Attributes []string `json:"attributes"`
	Reason     string   `json:"reason"`
}

// ExceptionalReleaseRequestData is the data of a physician's request for
// exceptional release: the clinical justification, without identifiers.
type ExceptionalReleaseRequestData struct {
	Reason string `json:"reason"`
}

// ConsentData is the data of a consent record: who obtained the
// patient's informed consent and when, and optionally the SHA-256 of the
// signed consent document kept outside coid. No patient identifier.
type ConsentData struct {
	ObtainedBy   string    `json:"obtained_by"`
	ObtainedAt   time.Time `json:"obtained_at"`
	DocumentHash string    `json:"document_hash,omitempty"`
}

// ExceptionalReleaseData is the data of an exceptional-release record.
type ExceptionalReleaseData struct {
	Statement string `json:"statement"`
}

// ExceptionalRelease is what a chain holds of its out-of-specification
// product: the oos records' attributes and reasons, and the exceptional
// release with its signatures once recorded.
type ExceptionalRelease struct {
	Attributes []string    `json:"attributes"`
	Reasons    []string    `json:"reasons"`
	OOSSeq     []uint64    `json:"oos_seq"`
	Request    uint64      `json:"request,omitempty"`
	Consent    uint64      `json:"consent,omitempty"`
	Released   uint64      `json:"released,omitempty"`
	Signatures []Signature `json:"signatures,omitempty"`
}

// OOSOf returns what chain c holds of an out-of-specification product, or
// nil if QA recorded none.
func OOSOf(c *Chain) *ExceptionalRelease {
	var x *ExceptionalRelease
	for _, r := range c.Records {
		switch r.Step {
		case StepOOS:
			var d OOSData
			if json.Unmarshal(r.Data, &d) != nil {
				continue
			}
			if x == nil {
				x = &ExceptionalRelease{}
			}
			for _, a := range d.Attributes {
				if !slices.Contains(x.Attributes, a) {
					x.Attributes = append(x.Attributes, a)
				}
			}
			x.Reasons = append(x.Reasons, d.Reason)
			x.OOSSeq = append(x.OOSSeq, r.Seq)
		case StepExceptionalReleaseRequest:
			if x != nil {
				x.Request = r.Seq
			}
		case StepConsent:
			if x != nil {
				x.Consent = r.Seq
			}
		case StepExceptionalRelease:
			if x != nil {
				x.Released, x.Signatures = r.Seq, r.Signatures
			}
		}
	}
	return x
}

// decodeStrict decodes the members of d into v, refusing a member of the
// wrong type.
func decodeStrict(step Step, d *stepData, v any) error {
	b, err := json.Marshal(d.raw)
	if err != nil {
		return fmt.Errorf("%s: data: %v: %w", step, err, ErrInvalid)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: data: %v: %w", step, err, ErrInvalid)
	}
	return nil
}

// checkOOS applies the out-of-specification rules to a step on chain c:
// the data of the new steps, the refusal of a standard release after an
// oos record, and the elements an exceptional release needs. signatures
// is how many signatures the request carries.
func (s *Service) checkOOS(ctx context.Context, c *Chain, step Step, d *stepData, signatures int) error {
	x := OOSOf(c)
	switch step {
	case StepRelease:
		if x != nil {
			return fmt.Errorf("QA recorded the product out of specification (%s, record %d); only an exceptional release may follow: %w",
				strings.Join(x.Attributes, ", "), x.OOSSeq[0], ErrOutOfSpecification)
		}
	case StepOOS:
		var v OOSData
		if err := decodeStrict(step, d, &v); err != nil {
			return err
		}
		if len(v.Attributes) == 0 {
			return fieldErr("attributes", fmt.Errorf("name at least one failed attribute (%s): %w", strings.Join(OOSAttributes, ", "), ErrInvalid))
		}
		for _, a := range v.Attributes {
			if !slices.Contains(OOSAttributes, a) {
				return fieldErr("attributes", fmt.Errorf("%q is not a release attribute (%s): %w", a, strings.Join(OOSAttributes, ", "), ErrInvalid))
			}
		}
		return s.reasonText("reason", v.Reason)
	case StepExceptionalReleaseRequest, StepConsent:
		if x == nil {
			return fmt.Errorf("%s: QA recorded no oos record; the product takes the standard release: %w", step, ErrConflict)
		}
		if step == StepExceptionalReleaseRequest {
			var v ExceptionalReleaseRequestData
			if err := decodeStrict(step, d, &v); err != nil {
				return err
			}
			return s.reasonText("reason", v.Reason)
		}
		var v ConsentData
		if err := decodeStrict(step, d, &v); err != nil {
			return err
		}
		if err := s.reasonText("obtained_by", v.ObtainedBy); err != nil {
			return err
		}
		if v.ObtainedAt.IsZero() || v.ObtainedAt.After(s.now()) {
			return fieldErr("obtained_at", fmt.Errorf("give when consent was obtained (RFC 3339, not in the future): %w", ErrInvalid))
		}
		if v.DocumentHash != "" {
			if _, err := ParseHash(v.DocumentHash); err != nil {
				return fieldErr("document_hash", fmt.Errorf("the SHA-256 of the consent document, 64 hex characters: %w", ErrInvalid))
			}
		}
	case StepExceptionalRelease:
		return s.checkExceptionalRelease(ctx, c, x, signatures)
	}
	return nil
}

// reasonText checks a required free-text member: present, bounded, and
// labelling no patient identifier.
func (s *Service) reasonText(field, t string) error {
	t = strings.TrimSpace(t)
	if t == "" || len(t) > maxAccessShort*5 {
		return fieldErr(field, fmt.Errorf("required, at most %d bytes: %w", maxAccessShort*5, ErrInvalid))
	}
	if err := s.checkFreeTextPHI(t); err != nil {
		return fieldErr(field, err)
	}
	return nil
}

// checkExceptionalRelease checks each element an exceptional release
// needs, in order, and names the first missing.
func (s *Service) checkExceptionalRelease(ctx context.Context, c *Chain, x *ExceptionalRelease, signatures int) error {
	if x == nil {
		return &ExceptionalReleaseError{Missing: ElementOOS, Detail: "QA recorded no oos record; the product takes the standard release"}
	}
	if err := s.approvedAccess(ctx, c); err != nil {
		return err
	}
	if x.Request == 0 {
		return &ExceptionalReleaseError{Missing: ElementPhysicianRequest, Detail: "the treating physician has not requested exceptional release"}
	}
	if x.Consent == 0 {
		return &ExceptionalReleaseError{Missing: ElementConsent, Detail: "the patient's informed consent is not recorded"}
	}
	if signatures < 2 {
		return &ExceptionalReleaseError{Missing: ElementSignatures, Detail: fmt.Sprintf("QA's and the medical director's approvals are needed, %d given", signatures)}
	}
	return nil
}

// approvedAccess checks that chain c was enrolled from an expanded-access
// request that was approved and is not withdrawn.
func (s *Service) approvedAccess(ctx context.Context, c *Chain) error {
	missing := func(detail string) error {
		return &ExceptionalReleaseError{Missing: ElementAccessApproved, Detail: detail}
	}
	if len(c.Records) == 0 {
		return missing("the chain has no enroll record")
	}
	var en EnrollData
	if err := json.Unmarshal(c.Records[0].Data, &en); err != nil || en.Request == "" {
		return missing("the chain was not enrolled from an expanded-access request")
	}
	r, err := s.accessLocked(ctx, en.Request)
	if errors.Is(err, ErrNotFound) {
		return missing("the chain's expanded-access request " + string(en.Request) + " is not in the ledger")
	}
	if err != nil {
		return err
	}
	approved := false
	for _, e := range r.Events {
		if e.Step == StepAccessDecide {
			approved = e.Data.Approve != nil && *e.Data.Approve
		}
	}
	if !approved || r.State != AccessEnrolled || r.COI != c.COI {
		return missing(fmt.Sprintf("the chain's expanded-access request %s is %s, not approved and enrolled as this chain", r.ID, r.State))
	}
	return nil
}
