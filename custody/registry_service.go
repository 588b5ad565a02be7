package custody

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// The registries' administration: administrators register, change,
// suspend and resume entries, each change with its reason and its audit
// entry; every authenticated user reads them.

// MaxRegistryPage is the most entries one registry or audit list returns.
const MaxRegistryPage = 1000

// maxReason is the longest reason for a change, in bytes, and the
// longest an audit entry holds.
const maxReason = 1000

// registryEntry is implemented by the pointers to the registries' entry
// types.
type registryEntry[T any] interface {
	*T
	Validate() error
	registryKind() RegistryKind
	registryCode() *string
	registrySuspended() *bool
}

func (*Organisation) registryKind() RegistryKind { return KindOrganisation }
func (*Site) registryKind() RegistryKind         { return KindSite }
func (*Product) registryKind() RegistryKind      { return KindProduct }
func (*Shipper) registryKind() RegistryKind      { return KindShipper }

func (o *Organisation) registryCode() *string { return &o.Code }
func (s *Site) registryCode() *string         { return &s.Code }
func (p *Product) registryCode() *string      { return &p.Code }
func (s *Shipper) registryCode() *string      { return &s.ID }

func (o *Organisation) registrySuspended() *bool { return &o.Suspended }
func (s *Site) registrySuspended() *bool         { return &s.Suspended }
func (p *Product) registrySuspended() *bool      { return &p.Suspended }
func (s *Shipper) registrySuspended() *bool      { return &s.Suspended }

// errUnchanged ends an update that would store the same value: nothing
// is written and no audit entry made.
var errUnchanged = errors.New("unchanged")

func requireAdministrator(op string, actor User) error {
	if !MayAdminister(actor.Role) {
		return fmt.Errorf("%s: only an administrator may change the registries (you are %s): %w", op, actor.Role, ErrForbidden)
	}
	return nil
}

func requireRegistryReader(op string, actor User) error {
	if !MayReadRegistries(actor.Role) {
		return fmt.Errorf("%s: role %q may not read the registries: %w", op, actor.Role, ErrForbidden)
	}
	return nil
}

func validReason(op, reason string) error {
	if err := validText("reason", reason, true, maxReason); err != nil {
		return fmt.Errorf("%s: every change needs its reason: %w", op, fieldErr("reason", err))
	}
	return nil
}

// checkRefs checks what entry v refers to: each reference must be
// registered, of the right kind, and not suspended unless old (the
// stored entry, nil for a new one) already referred to it.
func (s *Service) checkRefs(ctx context.Context, v any, old any) error {
	switch e := v.(type) {
	case *Site:
		o, err := s.reference(ctx, e.Organisation)
		if err != nil {
			return fmt.Errorf("site %s: organisation %s: %w", e.Code, e.Organisation, fieldErr("organisation", err))
		}
		for _, k := range e.Kinds {
			want := OrgHospital
			if k == SiteManufacturing {
				want = OrgManufacturer
			}
			if o.Kind != want {
				return fieldErr("organisation", fmt.Errorf("site %s: a %s site belongs to a %s, and %s is a %s: %w", e.Code, k, want, o.Code, o.Kind, ErrInvalid))
			}
		}
		if prev, _ := old.(*Site); o.Suspended && (prev == nil || prev.Organisation != e.Organisation) {
			return fieldErr("organisation", fmt.Errorf("site %s: organisation %s is suspended: %w", e.Code, o.Code, ErrConflict))
		}
	case *Shipper:
		o, err := s.reference(ctx, e.Courier)
		if err != nil {
			return fmt.Errorf("shipper %s: courier %s: %w", e.ID, e.Courier, fieldErr("courier", err))
		}
		if o.Kind != OrgCourier {
			return fieldErr("courier", fmt.Errorf("shipper %s: %s is a %s, not a courier: %w", e.ID, o.Code, o.Kind, ErrInvalid))
		}
		if prev, _ := old.(*Shipper); o.Suspended && (prev == nil || prev.Courier != e.Courier) {
			return fieldErr("courier", fmt.Errorf("shipper %s: courier %s is suspended: %w", e.ID, o.Code, ErrConflict))
		}
	case *Product:
		if !s.profiles[e.StorageProfile] {
			return fieldErr("storage_profile", fmt.Errorf("product %s: storage_profile %q must be one of the configured temperature profiles %v: %w",
				e.Code, e.StorageProfile, sortedKeys(s.profiles), ErrInvalid))
		}
	}
	return nil
}

// reference reads the organisation an entry refers to: one that is not
// registered makes the entry invalid.
func (s *Service) reference(ctx context.Context, code string) (Organisation, error) {
	o, err := readEntry[Organisation](ctx, s, KindOrganisation, code)
	if errors.Is(err, ErrNotFound) {
		return o, fmt.Errorf("no such organisation is registered: %w", ErrInvalid)
	}
	return o, err
}

// readEntry reads and decodes one stored entry.
func readEntry[T any, P registryEntry[T]](ctx context.Context, s *Service, kind RegistryKind, code string) (T, error) {
	var v T
	b, err := s.store.Entry(ctx, kind, code)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("stored %s %s is malformed: %v: %w", kind, code, err, ErrDamaged)
	}
	return v, nil
}

func registerEntry[T any, P registryEntry[T]](ctx context.Context, s *Service, actor User, v T, reason string) (T, error) {
	p := P(&v)
	kind, code := p.registryKind(), *p.registryCode()
	op := "register " + string(kind)
	var zero T
	if err := requireAdministrator(op, actor); err != nil {
		return zero, err
	}
	if err := validReason(op, reason); err != nil {
		return zero, err
	}
	if *p.registrySuspended() {
		return zero, fmt.Errorf("%s %s: a new entry cannot be suspended: %w", op, code, ErrInvalid)
	}
	if err := p.Validate(); err != nil {
		return zero, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.checkRefs(ctx, p, nil); err != nil {
		return zero, fmt.Errorf("%s: %w", op, err)
	}
	val, err := json.Marshal(v)
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", op, code, err)
	}
	a := AuditEntry{Time: s.Now(), Actor: actor.ID, Kind: ObjectKind(kind), Code: code, Action: AuditCreate, Reason: reason, New: val}
	if err := s.store.CreateEntry(ctx, kind, code, val, a); err != nil {
		return zero, fmt.Errorf("%s %s: %w", op, code, err)
	}
	s.log.Info("registry entry created", "kind", kind, "code", code, "by", actor.ID)
	return v, nil
}

// changeEntry stores change(stored entry) with its audit entry, if the
// stored entry is still the one read when the change was checked.
func changeEntry[T any, P registryEntry[T]](ctx context.Context, s *Service, actor User, kind RegistryKind, code string, action AuditAction, reason string,
	change func(old T) (T, error)) (T, error) {
	op := string(action) + " " + string(kind)
	var zero T
	if err := requireAdministrator(op, actor); err != nil {
		return zero, err
	}
	if err := validReason(op, reason); err != nil {
		return zero, err
	}
	read, err := s.store.Entry(ctx, kind, code)
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", op, code, err)
	}
	var old T
	if err := json.Unmarshal(read, &old); err != nil {
		return zero, fmt.Errorf("%s %s: stored entry is malformed: %v: %w", op, code, err, ErrDamaged)
	}
	v, err := change(old)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", op, err)
	}
	p := P(&v)
	if err := p.Validate(); err != nil {
		return zero, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.checkRefs(ctx, p, P(&old)); err != nil {
		return zero, fmt.Errorf("%s: %w", op, err)
	}
	val, err := json.Marshal(v)
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", op, code, err)
	}
	err = s.store.UpdateEntry(ctx, kind, code, func(stored []byte) ([]byte, AuditEntry, error) {
		if !bytes.Equal(stored, read) {
			return nil, AuditEntry{}, fmt.Errorf("%s %s: changed by another administrator meanwhile: %w", op, code, ErrRetry)
		}
		if bytes.Equal(stored, val) {
			return nil, AuditEntry{}, errUnchanged
		}
		return val, AuditEntry{Time: s.Now(), Actor: actor.ID, Kind: ObjectKind(kind), Code: code, Action: action, Reason: reason, Old: stored, New: val}, nil
	})
	if errors.Is(err, errUnchanged) {
		return v, nil
	}
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", op, code, err)
	}
	s.log.Info("registry entry changed", "kind", kind, "code", code, "action", action, "by", actor.ID)
	return v, nil
}

// updateEntry replaces the entry stored under code by v. v's code must be
// code or empty; its suspended flag must be the stored one (suspend and
// resume change it). An update that changes nothing records nothing.
func updateEntry[T any, P registryEntry[T]](ctx context.Context, s *Service, actor User, code string, v T, reason string) (T, error) {
	p := P(&v)
	kind := p.registryKind()
	if c := p.registryCode(); *c == "" {
		*c = code
	} else if *c != code {
		return v, fmt.Errorf("update %s %s: the body names %s; a code cannot change: %w", kind, code, *c, ErrInvalid)
	}
	return changeEntry[T, P](ctx, s, actor, kind, code, AuditUpdate, reason, func(old T) (T, error) {
		if *P(&old).registrySuspended() != *p.registrySuspended() {
			return v, fmt.Errorf("%s %s: suspended changes only by suspend and resume: %w", kind, code, ErrInvalid)
		}
		return v, nil
	})
}

// suspendEntry suspends or resumes the entry stored under code.
func suspendEntry[T any, P registryEntry[T]](ctx context.Context, s *Service, actor User, code string, suspended bool, reason string) (T, error) {
	kind := P(new(T)).registryKind()
	action := AuditResume
	if suspended {
		action = AuditSuspend
	}
	return changeEntry[T, P](ctx, s, actor, kind, code, action, reason, func(old T) (T, error) {
		if f := P(&old).registrySuspended(); *f == suspended {
			state := "not suspended"
			if suspended {
				state = "already suspended"
			}
			return old, fmt.Errorf("%s %s is %s: %w", kind, code, state, ErrConflict)
		}
		*P(&old).registrySuspended() = suspended
		return old, nil
	})
}

func getEntry[T any, P registryEntry[T]](ctx context.Context, s *Service, actor User, code string) (T, error) {
	kind := P(new(T)).registryKind()
	op := "read " + string(kind)
	if err := requireEntryReader(op, actor); err != nil {
		var zero T
		return zero, err
	}
	v, err := readEntry[T, P](ctx, s, kind, code)
	if err != nil {
		return v, fmt.Errorf("%s %s: %w", op, code, err)
	}
	return v, nil
}

// listEntries lists a page of entries after the code after: at most limit
// (1 to MaxRegistryPage; 0 means MaxRegistryPage).
func listEntries[T any, P registryEntry[T]](ctx context.Context, s *Service, actor User, after string, limit int) ([]T, error) {
	kind := P(new(T)).registryKind()
	op := "list " + string(kind) + "s"
	if err := requireEntryReader(op, actor); err != nil {
		return nil, err
	}
	if limit < 0 || limit > MaxRegistryPage {
		return nil, fmt.Errorf("%s: limit %d must be 1-%d: %w", op, limit, MaxRegistryPage, ErrInvalid)
	}
	if limit == 0 {
		limit = MaxRegistryPage
	}
	raw, err := s.store.Entries(ctx, kind, after, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out := make([]T, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			return nil, fmt.Errorf("%s: stored entry is malformed: %v: %w", op, err, ErrDamaged)
		}
	}
	return out, nil
}

// RegisterOrganisation registers a new organisation (administrators).
// ErrConflict: the code is taken.
func (s *Service) RegisterOrganisation(ctx context.Context, actor User, o Organisation, reason string) (Organisation, error) {
	return registerEntry(ctx, s, actor, o, reason)
}

// UpdateOrganisation replaces the organisation stored under code
// (administrators); suspended must be unchanged.
func (s *Service) UpdateOrganisation(ctx context.Context, actor User, code string, o Organisation, reason string) (Organisation, error) {
	return updateEntry(ctx, s, actor, code, o, reason)
}

// SuspendOrganisation suspends (or, with suspended false, resumes) an
// organisation (administrators). ErrConflict: it already is.
func (s *Service) SuspendOrganisation(ctx context.Context, actor User, code string, suspended bool, reason string) (Organisation, error) {
	return suspendEntry[Organisation](ctx, s, actor, code, suspended, reason)
}

// Organisation returns a registered organisation.
func (s *Service) Organisation(ctx context.Context, actor User, code string) (Organisation, error) {
	return getEntry[Organisation](ctx, s, actor, code)
}

// Organisations lists organisations in code order after the code after,
// at most limit (0: MaxRegistryPage).
func (s *Service) Organisations(ctx context.Context, actor User, after string, limit int) ([]Organisation, error) {
	return listEntries[Organisation](ctx, s, actor, after, limit)
}

// RegisterSite registers a new site of a registered organisation
// (administrators). ErrConflict: the code is taken.
func (s *Service) RegisterSite(ctx context.Context, actor User, v Site, reason string) (Site, error) {
	return registerEntry(ctx, s, actor, v, reason)
}

// UpdateSite replaces the site stored under code (administrators);
// suspended must be unchanged.
func (s *Service) UpdateSite(ctx context.Context, actor User, code string, v Site, reason string) (Site, error) {
	return updateEntry(ctx, s, actor, code, v, reason)
}

// SuspendSite suspends (or, with suspended false, resumes) a site
// (administrators). ErrConflict: it already is.
func (s *Service) SuspendSite(ctx context.Context, actor User, code string, suspended bool, reason string) (Site, error) {
	return suspendEntry[Site](ctx, s, actor, code, suspended, reason)
}

// Site returns a registered site.
func (s *Service) Site(ctx context.Context, actor User, code string) (Site, error) {
	return getEntry[Site](ctx, s, actor, code)
}

// Sites lists sites in code order after the code after, at most limit
// (0: MaxRegistryPage).
func (s *Service) Sites(ctx context.Context, actor User, after string, limit int) ([]Site, error) {
	return listEntries[Site](ctx, s, actor, after, limit)
}

// RegisterProduct registers a new product (administrators). ErrConflict:
// the code is taken.
func (s *Service) RegisterProduct(ctx context.Context, actor User, v Product, reason string) (Product, error) {
	return registerEntry(ctx, s, actor, v, reason)
}

// UpdateProduct replaces the product stored under code (administrators);
// suspended must be unchanged.
func (s *Service) UpdateProduct(ctx context.Context, actor User, code string, v Product, reason string) (Product, error) {
	return updateEntry(ctx, s, actor, code, v, reason)
}

// SuspendProduct suspends (or, with suspended false, resumes) a product
// (administrators). ErrConflict: it already is.
func (s *Service) SuspendProduct(ctx context.Context, actor User, code string, suspended bool, reason string) (Product, error) {
	return suspendEntry[Product](ctx, s, actor, code, suspended, reason)
}

// Product returns a registered product.
func (s *Service) Product(ctx context.Context, actor User, code string) (Product, error) {
	return getEntry[Product](ctx, s, actor, code)
}

// Products lists products in code order after the code after, at most
// limit (0: MaxRegistryPage).
func (s *Service) Products(ctx context.Context, actor User, after string, limit int) ([]Product, error) {
	return listEntries[Product](ctx, s, actor, after, limit)
}

// RegisterShipper registers a new shipper of a registered courier
// (administrators). ErrConflict: the ID is taken.
func (s *Service) RegisterShipper(ctx context.Context, actor User, v Shipper, reason string) (Shipper, error) {
	return registerEntry(ctx, s, actor, v, reason)
}

// UpdateShipper replaces the shipper stored under id (administrators);
// suspended must be unchanged.
func (s *Service) UpdateShipper(ctx context.Context, actor User, id string, v Shipper, reason string) (Shipper, error) {
	return updateEntry(ctx, s, actor, id, v, reason)
}

// SuspendShipper suspends (or, with suspended false, resumes) a shipper
// (administrators). ErrConflict: it already is.
func (s *Service) SuspendShipper(ctx context.Context, actor User, id string, suspended bool, reason string) (Shipper, error) {
	return suspendEntry[Shipper](ctx, s, actor, id, suspended, reason)
}

// Shipper returns a registered shipper.
func (s *Service) Shipper(ctx context.Context, actor User, id string) (Shipper, error) {
	return getEntry[Shipper](ctx, s, actor, id)
}

// Shippers lists shippers in ID order after the ID after, at most limit
// (0: MaxRegistryPage).
func (s *Service) Shippers(ctx context.Context, actor User, after string, limit int) ([]Shipper, error) {
	return listEntries[Shipper](ctx, s, actor, after, limit)
}

// AuditTrail lists the audit entries f selects, of the registries and
// the accounts alike, in order: a page of at most MaxRegistryPage
// (f.Limit 0: that many). Only QA and administrators read it.
func (s *Service) AuditTrail(ctx context.Context, actor User, f AuditFilter) ([]AuditEntry, error) {
	if !MayReadAuditTrail(actor.Role) {
		return nil, fmt.Errorf("audit trail: only QA and administrators read it (you are %s): %w", actor.Role, ErrForbidden)
	}
	if f.Limit < 0 || f.Limit > MaxRegistryPage {
		return nil, fmt.Errorf("audit trail: limit %d must be 1-%d: %w", f.Limit, MaxRegistryPage, ErrInvalid)
	}
	if f.Limit == 0 {
		f.Limit = MaxRegistryPage
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return s.store.AuditEntries(ctx, f)
}
