package custody

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"
)

// LabelRoles are the roles that may print bag labels: the people who
// handle bags. Couriers carry sealed shippers and never see a bag label's
// patient identifiers; administrators manage accounts, not product.
var LabelRoles = []Role{RoleCoordinator, RoleNurse, RoleManufacturing, RoleQA}

// MayPrintLabels reports whether role r may print bag labels.
func MayPrintLabels(r Role) bool { return slices.Contains(LabelRoles, r) }

// Label time captions (LabelContent.TimeLabel).
const (
	// LabelCollected captions an apheresis bag's time: when the collection
	// ended (the collect record's data.ended_at).
	LabelCollected = "Collected"
	// LabelManufactured captions a final-product bag's time when no expiry
	// was recorded: the time of the manufacture record.
	LabelManufactured = "Manufactured"
	// LabelExpires captions a final-product bag's time when the manufacture
	// or release record carries data.expires_at.
	LabelExpires = "Expires"
)

// LabelExceptionalRelease is the notice printed on the final-product bags
// of a chain whose product QA recorded out of specification (an oos record)
// and which was released by an exceptional release.
const LabelExceptionalRelease = "EXCEPTIONAL RELEASE — OUT OF SPECIFICATION"

// Storage conditions printed on labels.
const (
	// StorageFresh is printed on apheresis bags before their first shipment
	// names a temperature profile: fresh (non-cryopreserved) apheresis
	// product is kept refrigerated.
	StorageFresh = "Store at 2-8 °C"
	// StorageCryogenic is printed on final-product bags, which are shipped
	// and stored in the vapour phase of liquid nitrogen.
	StorageCryogenic = "Store at or below -150 °C"
)

// LabelContent is what one bag label shows. It holds the patient's name
// and date of birth: the label is the one place they are printed, so a
// LabelContent must never be logged, stored or returned as JSON. Its
// String and LogValue methods leave them out.
type LabelContent struct {
	// Bag is the bag the label goes on.
	Bag BagID
	// Product is the chain's product name, as enrolled.
	Product string
	// DIN is the collection's Donation Identification Number on apheresis
	// bags; final-product bags have none ("").
	DIN DIN
	// PatientName and BirthDate (YYYY-MM-DD) come from the PHI store.
	PatientName string
	BirthDate   string
	// TimeLabel is LabelCollected, LabelManufactured or LabelExpires and
	// names Time.
	TimeLabel string
	// Time is the collection end, the manufacture time or the expiry, in
	// UTC.
	Time time.Time
	// Site is the chain's site whose local time applies to Time: the
	// collection site for apheresis bags, the manufacturing site for final
	// product (its expiry too: the bag is labelled where it is made).
	Site string
	// Zone is Site's registered time zone; nil for a site from before the
	// network, whose zone is the printing caller's default.
	Zone *time.Location
	// LabelSymbol is Site's registered label symbol (Site.LabelSymbol);
	// "" for a site that chose none or is from before the network.
	LabelSymbol string
	// Storage is the storage condition, for example StorageCryogenic.
	Storage string
	// Facility is the issuing facility, "FIN " and the FIN of the COI.
	Facility string
	// ProductCode is the ISBT 128 product code (Data Structure 003) of the
	// chain's registered product; "" for a product enrolled as free text
	// (or no longer registered).
	ProductCode string
	// Notice is a warning printed on its own reverse band:
	// LabelExceptionalRelease on the final-product bags of a product
	// released by an exceptional release; "" otherwise.
	Notice string
	// Registered is the time of the record that registered the bag (the
	// collect or manufacture record) and RegisteredSeq its log position.
	// Printers pin document dates to it, so the same label always renders
	// to the same bytes.
	Registered    time.Time
	RegisteredSeq uint64
}

// String names the label's bag only, never the patient.
func (l LabelContent) String() string { return "label of " + l.Bag.String() }

// LogValue logs the label's identifiers only, never the patient.
func (l LabelContent) LogValue() slog.Value {
	return slog.GroupValue(slog.String("coi", string(l.Bag.COI)), slog.String("bag", l.Bag.String()))
}

// authorizeLabels refuses roles that may not print labels.
func authorizeLabels(op string, actor User) error {
	if !MayPrintLabels(actor.Role) {
		return fmt.Errorf("%s: role %s may not print labels, which show the patient's name and date of birth (coordinator, nurse, manufacturing or qa): %w",
			op, actor.Role, ErrForbidden)
	}
	return nil
}

// LabelContent returns what the label of bag shows, for actor to print.
// Only LabelRoles may print labels (ErrForbidden otherwise, checked before
// anything is read). The bag must be registered on its chain by a collect
// or manufacture record (ErrNotFound otherwise, also when the chain does
// not exist or its patient identifiers were erased). Patient identifiers
// that do not match the enrollment record's commitment are an integrity
// failure (ErrChainBroken): a label must never carry another patient's
// name. Step data that cannot be printed (an unreadable expires_at) is
// ErrInvalid.
//
// Content by bag kind:
//
//   - APH: the chain's DIN; "Collected" at the collect record's
//     data.ended_at, in the collection site's time; storage from the
//     profile of the chain's first shipment (StorageFresh before it ships).
//   - FP: the DIN of the collection it was made from; "Expires" at data.expires_at of the manufacture record,
//     or else of the release record, when one carries it, otherwise
//     "Manufactured" at the manufacture record's time, in the
//     manufacturing site's time; StorageCryogenic; the notice
//     LabelExceptionalRelease once an exceptional-release record follows
//     QA's oos record.
//
// Corrections do not change label content: a label reflects the records
// as they were signed.
//
// Every label handed out is logged at info level ("label printed") with
// the COI, the bag, the user and the role, never the patient identifiers:
// releasing them for printing is an auditable event. Callers should check
// their printing options first, so a request that cannot print does not
// release them.
func (s *Service) LabelContent(ctx context.Context, actor User, bag BagID) (LabelContent, error) {
	op := "label " + bag.String()
	if err := authorizeLabels(op, actor); err != nil {
		return LabelContent{}, err
	}
	c, phi, err := s.labelChain(ctx, actor, op, bag.COI)
	if err != nil {
		return LabelContent{}, err
	}
	if !c.HasBag(bag) {
		return LabelContent{}, fmt.Errorf("%s: bag %s is not registered on chain %s (registered: %d bag(s)): %w",
			op, bag, c.Display, len(c.Bags), ErrNotFound)
	}
	l, err := labelContent(c, phi, bag, s.profile)
	if err != nil {
		return LabelContent{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.labelSite(ctx, &l); err != nil {
		return LabelContent{}, fmt.Errorf("%s: %w", op, err)
	}
	if l.ProductCode, err = s.productCode(ctx, c.Product); err != nil {
		return LabelContent{}, fmt.Errorf("%s: %w", op, err)
	}
	s.logLabel(ctx, actor, l)
	return l, nil
}

// labelSite sets l's zone and label symbol from the registered site its
// Site names; a site from before the network leaves both unset.
func (s *Service) labelSite(ctx context.Context, l *LabelContent) error {
	site, ok, err := s.registeredSite(ctx, l.Site)
	if err != nil || !ok {
		if err != nil {
			return fmt.Errorf("site %s: %w", l.Site, err)
		}
		return nil
	}
	if l.Zone, err = ValidateTimeZone(site.TimeZone); err != nil {
		return fmt.Errorf("site %s: %w", l.Site, err)
	}
	l.LabelSymbol = site.LabelSymbol
	return nil
}

// ChainLabelContents returns the label content of every bag registered on
// the chain, apheresis bags first, each in bag order, under the same rules
// as LabelContent. A chain with no bags yet is ErrNotFound. Each label is
// logged as LabelContent logs it.
func (s *Service) ChainLabelContents(ctx context.Context, actor User, coi COI) ([]LabelContent, error) {
	op := "labels of " + string(coi)
	if err := authorizeLabels(op, actor); err != nil {
		return nil, err
	}
	c, phi, err := s.labelChain(ctx, actor, op, coi)
	if err != nil {
		return nil, err
	}
	if len(c.Bags) == 0 {
		return nil, fmt.Errorf("%s: chain %s has no bags yet (collect and manufacture register them): %w", op, c.Display, ErrNotFound)
	}
	out := make([]LabelContent, 0, len(c.Bags))
	for _, id := range c.Bags {
		b, err := ParseBagID(id)
		if err != nil {
			return nil, fmt.Errorf("%s: registered bag %q: %v: %w", op, id, err, ErrChainBroken)
		}
		l, err := labelContent(c, phi, b, s.profile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if err := s.labelSite(ctx, &l); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if l.ProductCode, err = s.productCode(ctx, c.Product); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, l)
	}
	for _, l := range out {
		s.logLabel(ctx, actor, l)
	}
	return out, nil
}

// productCode returns the ISBT 128 product code of the registered product
// code names, or "" when no product is registered under it.
func (s *Service) productCode(ctx context.Context, code string) (string, error) {
	if code == "" {
		return "", nil
	}
	p, err := readEntry[Product](ctx, s, KindProduct, code)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("product %s: %w", code, err)
	}
	return p.ISBTCode, nil
}

func (s *Service) logLabel(ctx context.Context, actor User, l LabelContent) {
	s.log.InfoContext(ctx, "label printed", "coi", string(l.Bag.COI), "bag", l.Bag.String(), "user", actor.ID, "role", string(actor.Role))
}

// labelChain loads the chain and its patient identifiers and checks them
// against the enrollment record's commitment; a chain the actor may not
// read answers as not found.
func (s *Service) labelChain(ctx context.Context, actor User, op string, coi COI) (*Chain, PHI, error) {
	c, err := s.ReadChain(ctx, actor, coi)
	if err != nil {
		return nil, PHI{}, fmt.Errorf("%s: %w", op, err)
	}
	phi, err := s.store.PHI(ctx, coi)
	if errors.Is(err, ErrNotFound) {
		return nil, PHI{}, fmt.Errorf("%s: the patient's identifiers for chain %s are not on file (erased?), so no label can be printed: %w",
			op, c.Display, err)
	}
	if err != nil {
		return nil, PHI{}, fmt.Errorf("%s: %w", op, err)
	}
	if phi.Commitment() != c.commitment {
		s.log.ErrorContext(ctx, "label refused: patient identifiers do not match the enrollment commitment", "coi", string(coi))
		return nil, PHI{}, fmt.Errorf("%s: the patient identifiers on file do not match chain %s's enrollment record: %w", op, c.Display, ErrChainBroken)
	}
	return c, phi, nil
}

// labelContent builds the label of a bag registered on c; profile looks a
// temperature profile up by name, as the service is configured.
func labelContent(c *Chain, phi PHI, bag BagID, profile func(string) (Profile, error)) (LabelContent, error) {
	reg, err := registeringRecord(c, bag)
	if err != nil {
		return LabelContent{}, err
	}
	l := LabelContent{
		Bag: bag, Product: c.Product, PatientName: phi.Name, BirthDate: phi.BirthDate,
		Facility: "FIN " + c.Facility, Registered: reg.Time, RegisteredSeq: reg.Seq,
	}
	switch bag.Kind {
	case BagApheresis:
		d, _ := reg.Body().(CollectData)
		t, err := time.Parse(time.RFC3339, d.EndedAt)
		if err != nil {
			return LabelContent{}, fmt.Errorf("collect record %d: data.ended_at %q is not an RFC 3339 time: %w", reg.Seq, d.EndedAt, ErrInvalid)
		}
		l.DIN, l.TimeLabel, l.Time, l.Site = DIN(d.DIN), LabelCollected, t.UTC(), c.Sites.Collection
		l.Storage = StorageFresh
		if len(c.Legs) > 0 {
			l.Storage = storageFor(c.Legs[0].Profile, profile)
		}
	case BagFinalProduct:
		l.TimeLabel, l.Time, l.Site, l.Storage = LabelManufactured, reg.Time.UTC(), c.Sites.Manufacturing, StorageCryogenic
		l.DIN = c.DIN // the donation the product was made from (DESIGN section 3)
		t, ok, err := expiry(c, reg)
		if err != nil {
			return LabelContent{}, err
		}
		if ok {
			l.TimeLabel, l.Time = LabelExpires, t
		}
		if x := OOSOf(c); x != nil && x.Released != 0 {
			l.Notice = LabelExceptionalRelease
		}
	default:
		return LabelContent{}, fmt.Errorf("bag %s: unknown bag kind: %w", bag, ErrInvalid)
	}
	return l, nil
}

// registeringRecord finds the collect or manufacture record that
// registered bag, replaying bag numbering as Fold does.
func registeringRecord(c *Chain, bag BagID) (*Record, error) {
	n := 0
	for i := range c.Records {
		r := &c.Records[i]
		v, err := r.Parsed()
		b, ok := v.(BagRegistrar)
		if !ok {
			continue
		}
		if kind, _ := b.RegisteredBags(); kind != bag.Kind {
			continue
		}
		if err != nil {
			return nil, err
		}
		_, k := b.RegisteredBags()
		if bag.N <= n+k {
			return r, nil
		}
		n += k
	}
	return nil, fmt.Errorf("bag %s is not registered on chain %s: %w", bag, c.Display, ErrNotFound)
}

// expiry returns the final product's expiry: data.expires_at of the
// manufacture record mfg, or else of the first release record after it.
func expiry(c *Chain, mfg *Record) (time.Time, bool, error) {
	for i := range c.Records {
		r := &c.Records[i]
		if r != mfg && (r.Step != StepRelease || r.Seq < mfg.Seq) {
			continue
		}
		// Read from the member: the service never checked its type.
		m, err := r.Members()
		var d struct{ ExpiresAt *string }
		if err == nil && m["expires_at"] != nil {
			err = json.Unmarshal(m["expires_at"], &d.ExpiresAt)
		}
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%s record %d: %v: %w", r.Step, r.Seq, err, ErrChainBroken)
		}
		if d.ExpiresAt == nil {
			continue
		}
		t, err := time.Parse(time.RFC3339, *d.ExpiresAt)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%s record %d: data.expires_at %q is not an RFC 3339 time, so the expiry cannot be printed: %w",
				r.Step, r.Seq, *d.ExpiresAt, ErrInvalid)
		}
		return t.UTC(), true, nil
	}
	return time.Time{}, false, nil
}

// storageFor is the storage condition of a temperature profile, built-in
// or configured (--profiles): its limits, or its name when it has none or
// is no longer configured.
func storageFor(name string, profile func(string) (Profile, error)) string {
	p, err := profile(name)
	switch {
	case err != nil:
		return "Store per profile " + name
	case p.MinC != nil && p.MaxC != nil && *p.MinC < 0:
		// "-90--60" would read badly.
		return fmt.Sprintf("Store at %s to %s °C", strconv.FormatFloat(*p.MinC, 'f', -1, 64), strconv.FormatFloat(*p.MaxC, 'f', -1, 64))
	case p.MinC != nil && p.MaxC != nil:
		return fmt.Sprintf("Store at %s-%s °C", strconv.FormatFloat(*p.MinC, 'f', -1, 64), strconv.FormatFloat(*p.MaxC, 'f', -1, 64))
	case p.MaxC != nil:
		return fmt.Sprintf("Store at or below %s °C", strconv.FormatFloat(*p.MaxC, 'f', -1, 64))
	case p.MinC != nil:
		return fmt.Sprintf("Store at or above %s °C", strconv.FormatFloat(*p.MinC, 'f', -1, 64))
	}
	return "Store per profile " + name
}
