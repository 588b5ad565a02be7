package custody

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SystemUser is the user ID, in Record.SubmittedBy and Signature.User, of
// records coid writes itself; ValidateUserID reserves it.
const SystemUser = "system"

// SystemSignature returns the signature coid puts on records it writes
// itself (excursions, mismatches).
func SystemSignature(now time.Time) Signature {
	return Signature{User: SystemUser, Name: "coid", Role: RoleSystem, Meaning: MeaningDetected, Time: FormatTime(now), Method: MethodSystem}
}

// bedsideCheck compares the scanned bag and wristband with the chain and
// returns what did not match, or nil when both belong to this patient's
// chain. sigErr is errSameSigner when one nurse signed twice.
func (s *Service) bedsideCheck(ctx context.Context, c *Chain, d *stepData, sigErr error) []string {
	b, _ := d.parsed.(BedsideData)
	var reasons []string
	code, err := ParseCode(b.BagCode)
	switch {
	case err != nil:
		reasons = append(reasons, "the bag label could not be read as a coid bag code")
	case code.COI != c.COI:
		reasons = append(reasons, fmt.Sprintf("the bag belongs to another chain (%s), not to this patient's chain %s", code.COI.Display(), c.COI.Display()))
	case code.Bag == nil:
		reasons = append(reasons, "the scanned label names the chain but no bag; scan the bag's own label")
	case code.Bag.Kind != BagFinalProduct:
		reasons = append(reasons, fmt.Sprintf("%s is an apheresis collection bag, not a final-product bag", code.Bag))
	case !c.HasBag(*code.Bag):
		reasons = append(reasons, fmt.Sprintf("%s was never registered for this chain", code.Bag))
	}
	phi, err := s.store.PHI(ctx, c.COI)
	switch {
	case err != nil:
		reasons = append(reasons, "the patient's identity is not on file for this chain, so the wristband cannot be checked")
	case phi.Commitment() != c.commitment:
		reasons = append(reasons, "the patient's identity on file does not match the enrollment record")
	case !phi.wristbandMatches(b.WristbandCode):
		reasons = append(reasons, "the wristband does not belong to this chain's patient")
	}
	if errors.Is(sigErr, errSameSigner) {
		reasons = append(reasons, "the same nurse signed twice; two different nurses must each verify")
	}
	if len(reasons) == 0 {
		d.drop("wristband_code") // never keep a patient identifier in the ledger
		d.set("bag", code.Bag.String())
		d.set("wristband_match", true)
		return nil
	}
	return reasons
}

// wristbandMatches is the one rule by which a scanned wristband is the
// patient's: its code, trimmed, is the MRN on file.
func (p PHI) wristbandMatches(code string) bool { return strings.TrimSpace(code) == p.MRN }

// WristbandMatches tells a bedside screen, at the wristband scan and before
// anyone signs, whether code is the wristband of chain coi's patient, by
// the rule the bedside check applies when the step is signed (which still
// decides, and records a mismatch). Neither the code nor the identifier on
// file leaves the domain. ErrNotFound: no identity is on file for the
// chain.
func (s *Service) WristbandMatches(ctx context.Context, coi COI, code string) (bool, error) {
	phi, err := s.store.PHI(ctx, coi)
	if err != nil {
		return false, fmt.Errorf("wristband check for %s: %w", coi, err)
	}
	return phi.wristbandMatches(code), nil
}

// mismatch appends a mismatch safety record for a failed bedside check and
// returns the *MismatchError (an ErrConflict) that refuses the step.
func (s *Service) mismatch(ctx context.Context, actor User, c *Chain, d *stepData, sigs []Signature, reasons []string, now time.Time) error {
	b, _ := d.parsed.(BedsideData)
	m := map[string]any{"reasons": reasons}
	if _, err := ParseCode(b.BagCode); err == nil {
		m["bag_code"] = strings.TrimSpace(b.BagCode)
	} else {
		m["bag_code_unreadable"] = true
	}
	// The wristband holds a patient identifier: keep only a keyed digest.
	if phi, err := s.store.PHI(ctx, c.COI); err == nil {
		m["wristband_digest"] = phi.Digest(strings.TrimSpace(b.WristbandCode))
	}
	var who []string
	for _, sg := range sigs {
		who = append(who, sg.User)
	}
	m["attempted_by"] = who
	raw, _ := json.Marshal(m)
	body, err := Canonicalize(raw)
	if err != nil {
		return fmt.Errorf("bedside-verify: mismatch record: %w", err)
	}
	rec := Record{V: EncodingVersion, Chain: c.COI, Step: StepMismatch, Time: now, Site: c.Sites.Treatment,
		SubmittedBy: actor.ID, Data: body, Signatures: []Signature{SystemSignature(now)}}
	stored, err := s.store.Append(ctx, s.withIssues(c, Draft{Record: rec, ExpectRecords: uint64(len(c.Records)), State: c.State}))
	if err != nil {
		return fmt.Errorf("bedside-verify: writing the mismatch record failed: %w", err)
	}
	s.log.Warn("bedside mismatch", "coi", string(c.COI), "seq", stored.Seq, "user", actor.ID, "reasons", strings.Join(reasons, "; "))
	return &MismatchError{Record: stored, Reasons: reasons}
}

// AcknowledgeStatement is what a person attests when acknowledging a
// bedside mismatch.
const AcknowledgeStatement = "I have read the mismatch: this bag will not be infused; it is set aside for QA."

// Ways a signer was authenticated, as Signature.Method records them. A
// person who acknowledges a mismatch signs via ViaSession or ViaToken.
const (
	// ViaSession is a signed-in web session.
	ViaSession = "session"
	// ViaToken is an API token.
	ViaToken = "token"
	// MethodPassword is a signature executed with the user's ID and
	// password.
	MethodPassword = "password"
	// MethodSystem is coid's own signature (SystemSignature).
	MethodSystem = "system"
)

// MayAcknowledgeMismatch reports whether role may acknowledge a bedside
// mismatch: the clinical roles (nurse, coordinator) and QA.
func MayAcknowledgeMismatch(role Role) bool {
	return role == RoleNurse || role == RoleCoordinator || role == RoleQA
}

// AcknowledgeMismatch records, as an acknowledge record signed by the
// actor as authenticated (ViaSession or ViaToken), that the actor saw the
// mismatch record seq of chain coi and set the bag aside. Clinical roles
// only; each mismatch is acknowledged once. Until every mismatch of a chain
// is acknowledged, the chain takes no further bedside check or infusion.
func (s *Service) AcknowledgeMismatch(ctx context.Context, actor User, coi COI, seq uint64, via string) (Record, error) {
	op := fmt.Sprintf("acknowledge mismatch %d on %s", seq, coi)
	if via != ViaSession && via != ViaToken {
		return Record{}, fmt.Errorf("%s: unknown authentication %q: %w", op, via, ErrInvalid)
	}
	if !MayAcknowledgeMismatch(actor.Role) {
		return Record{}, fmt.Errorf("%s: role %s may not acknowledge bedside mismatches: %w", op, actor.Role, ErrForbidden)
	}
	unlock := s.lock(coi)
	defer unlock()
	c, err := s.chainLocked(ctx, coi)
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	var found *Mismatch
	for i := range c.Mismatches {
		if c.Mismatches[i].Seq == seq {
			found = &c.Mismatches[i]
		}
	}
	switch {
	case found == nil:
		return Record{}, fmt.Errorf("%s: record %d is not a mismatch of this chain: %w", op, seq, ErrInvalid)
	case found.Acknowledged:
		return Record{}, fmt.Errorf("%s: already acknowledged by %s (record %d): %w", op, found.AcknowledgedBy, found.AcknowledgeSeq, ErrConflict)
	}
	now := s.now().UTC()
	raw, _ := json.Marshal(AcknowledgeData{Mismatch: seq, Statement: AcknowledgeStatement})
	body, err := Canonicalize(raw)
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	rec := Record{V: EncodingVersion, Chain: coi, Step: StepAcknowledge, Time: now, Site: c.Sites.Treatment, SubmittedBy: actor.ID,
		Data: body, Signatures: []Signature{{User: actor.ID, Name: actor.Name, Role: actor.Role, Meaning: MeaningAcknowledged,
			Time: FormatTime(now), Method: via}}}
	stored, err := s.store.Append(ctx, s.withIssues(c, Draft{Record: rec, ExpectRecords: uint64(len(c.Records)), State: c.State}))
	if err != nil {
		return Record{}, fmt.Errorf("%s: %w", op, err)
	}
	s.log.Warn("bedside mismatch acknowledged", "coi", string(coi), "mismatch_seq", seq, "seq", stored.Seq, "user", actor.ID)
	return stored, nil
}
