package custody

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Who may sign where. On a chain whose sites are registered, a person
// signs only the steps of the sites where they work:
//
//   - A journey step happens at one of the chain's sites (Transition.Site).
//     When that site's name resolves to a registered site, every signer
//     must work at it (User.WorksAt), with two exceptions: a signature of
//     role courier, whose signer must belong to a registered, unsuspended
//     organisation of kind courier (and, on a ship whose shipper is
//     registered, to the courier that owns the shipper); and a signature
//     of role QA at a step of the manufacturing site (the release), whose
//     signer may instead be QA of the organisation that owns the site.
//     When the step's own site resolves to no registered site, the step
//     is not checked, whatever the chain's other sites are.
//   - An exception step (note, correction, disposition, review, cancel)
//     happens at no one site. When any of the chain's sites resolves to a
//     registered site, each signer must work at one of the chain's
//     registered sites, or be QA of the organisation owning the chain's
//     manufacturing site (the manufacturer's QA); couriers as above,
//     without a shipper to match.
//   - Enrollment is the collection site's: the coordinator who signs, or
//     whose session enrolls when no signature is given, must work at the
//     collection site when it is registered.
//
// A person bound to no organisation (an account from before the network)
// signs nothing on such a chain. Chains whose sites resolve to no
// registered site are checked by none of this. A refusal is ErrForbidden,
// said only once the password is right (so it cannot probe accounts), and
// never counts as a wrong password.

// signerPlace is where the signers of one step must be bound, worked out
// once per request from the chain's sites and the registries (bbolt reads
// made per request: nothing is cached, so a registry change applies to the
// next signature).
type signerPlace struct {
	step Step
	// checked is false for a step no registered site answers for.
	checked bool
	// site is the registered site a journey step happens at, as its role
	// in the chain; zero Code for an exception step.
	site     Site
	siteRole SiteRole
	// anyOf are the chain's registered sites, for an exception step.
	anyOf []Site
	// qaOrg is the organisation whose QA may sign without working at the
	// site: the manufacturing site's; empty: none.
	qaOrg string
	// shipper is the registered shipper a ship step names; zero ID: none.
	shipper Shipper
}

// signerPlaceFor works out where the signers of step on a chain with
// sites must be bound; rule is the step's row (Site empty for an
// exception). d is the step's parsed data (nil at enrollment).
func (s *Service) signerPlaceFor(ctx context.Context, sites Sites, rule Transition, step Step, d *stepData) (signerPlace, error) {
	p := signerPlace{step: step, siteRole: rule.Site}
	if rule.Site != "" {
		site, ok, err := s.registeredSite(ctx, sites.name(rule.Site))
		if err != nil || !ok {
			return p, err
		}
		p.checked, p.site = true, site
		if rule.Site == SiteManufacturing {
			p.qaOrg = site.Organisation
		}
		if x, isShip := d.shipData(); isShip && x.Shipper != "" {
			sh, err := readEntry[Shipper](ctx, s, KindShipper, x.Shipper)
			switch {
			case err == nil:
				p.shipper = sh
			case !errors.Is(err, ErrNotFound):
				return p, err
			}
		}
		return p, nil
	}
	for _, r := range []SiteRole{SiteCollection, SiteManufacturing, SiteTreatment} {
		site, ok, err := s.registeredSite(ctx, sites.name(r))
		if err != nil {
			return p, err
		}
		if !ok {
			continue
		}
		p.checked = true
		if r == SiteManufacturing {
			p.qaOrg = site.Organisation
		}
		if !slices.ContainsFunc(p.anyOf, func(x Site) bool { return x.Code == site.Code }) {
			p.anyOf = append(p.anyOf, site)
		}
	}
	return p, nil
}

// shipData returns the ship data d holds, if it is a ship's.
func (d *stepData) shipData() (ShipData, bool) {
	if d == nil {
		return ShipData{}, false
	}
	x, ok := d.parsed.(ShipData)
	return x, ok
}

// check refuses u signing as u.Role at p (ErrForbidden, naming the signer
// and the site).
func (p signerPlace) check(ctx context.Context, s *Service, u User) error {
	if !p.checked {
		return nil
	}
	if u.Organisation == "" {
		return fmt.Errorf("signer %s is bound to no organisation or site, and this chain's sites are registered; "+
			"an administrator binds the account to its sites first: %w", u.ID, ErrForbidden)
	}
	if u.Role == RoleCourier {
		return p.checkCourier(ctx, s, u)
	}
	if p.site.Code != "" {
		if u.WorksAt(p.site.Code) {
			return nil
		}
		if u.Role == RoleQA && p.qaOrg != "" && u.Organisation == p.qaOrg {
			return nil
		}
		return fmt.Errorf("signer %s does not work at %s, where %s happens: %w", u.ID, p.site.Code, p.step, ErrForbidden)
	}
	codes := make([]string, len(p.anyOf))
	for i, site := range p.anyOf {
		if u.WorksAt(site.Code) {
			return nil
		}
		codes[i] = site.Code
	}
	if u.Role == RoleQA && p.qaOrg != "" && u.Organisation == p.qaOrg {
		return nil
	}
	msg := fmt.Sprintf("signer %s works at none of the chain's sites (%s)", u.ID, strings.Join(codes, ", "))
	if p.qaOrg != "" {
		msg += fmt.Sprintf(" and is not QA of its manufacturer %s", p.qaOrg)
	}
	return fmt.Errorf("%s, so may not sign %s: %w", msg, p.step, ErrForbidden)
}

// checkCourier refuses a courier signer who does not belong to a
// registered, unsuspended courier organisation, or, on a ship in a
// registered shipper, to the shipper's courier.
func (p signerPlace) checkCourier(ctx context.Context, s *Service, u User) error {
	o, err := readEntry[Organisation](ctx, s, KindOrganisation, u.Organisation)
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("signer %s belongs to %s, which is not a registered organisation; only couriers of a registered "+
			"courier organisation sign for %s: %w", u.ID, u.Organisation, p.step, ErrForbidden)
	case err != nil:
		return err
	case o.Kind != OrgCourier:
		return fmt.Errorf("signer %s belongs to %s, which is not a courier organisation (%s); only couriers of a registered "+
			"courier organisation sign for %s: %w", u.ID, o.Code, o.Kind, p.step, ErrForbidden)
	case o.Suspended:
		return fmt.Errorf("signer %s belongs to courier %s, which is suspended: %w", u.ID, o.Code, ErrForbidden)
	case p.shipper.ID != "" && p.shipper.Courier != o.Code:
		return fmt.Errorf("signer %s belongs to courier %s, but shipper %s is courier %s's: %w", u.ID, o.Code, p.shipper.ID,
			p.shipper.Courier, ErrForbidden)
	}
	return nil
}

// AuditUserNetwork is the audit action of a change of the organisation
// and sites a person is bound to.
const AuditUserNetwork AuditAction = "user.network"

// maxUserSites bounds the sites one person is bound to.
const maxUserSites = 256

// checkUserNetwork checks the organisation and sites a user of role is to
// be bound to and returns the sites sorted. Both empty: an unbound account
// (from before the network), allowed. Otherwise the organisation must be
// registered and not suspended; couriers belong to a courier organisation
// and administrators and couriers hold no sites; the other roles belong to
// a manufacturer or hospital, and each of their sites must be registered,
// not suspended and the organisation's. A site given twice is refused.
func (s *Service) checkUserNetwork(ctx context.Context, role Role, org string, sites []string) ([]string, error) {
	if org == "" {
		if len(sites) > 0 {
			return nil, fmt.Errorf("sites need the organisation they belong to: %w", ErrInvalid)
		}
		return nil, nil
	}
	if err := ValidateRegistryCode(org); err != nil {
		return nil, fmt.Errorf("organisation: %w", err)
	}
	o, err := readEntry[Organisation](ctx, s, KindOrganisation, org)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("organisation %s is not registered: %w", org, ErrInvalid)
	}
	if err != nil {
		return nil, err
	}
	if o.Suspended {
		return nil, fmt.Errorf("organisation %s is suspended; nobody is bound to it: %w", org, ErrConflict)
	}
	switch {
	case role == RoleCourier && o.Kind != OrgCourier:
		return nil, fmt.Errorf("a courier belongs to a courier organisation; %s is a %s: %w", org, o.Kind, ErrInvalid)
	case role != RoleCourier && role != RoleAdmin && o.Kind == OrgCourier:
		return nil, fmt.Errorf("a %s belongs to a manufacturer or hospital; %s is a courier: %w", role, org, ErrInvalid)
	case (role == RoleCourier || role == RoleAdmin) && len(sites) > 0:
		return nil, fmt.Errorf("a %s works for the organisation and is bound to no site: %w", role, ErrInvalid)
	case len(sites) > maxUserSites:
		return nil, fmt.Errorf("a person is bound to at most %d sites: %w", maxUserSites, ErrInvalid)
	}
	out := slices.Clone(sites)
	slices.Sort(out)
	for i, code := range out {
		if i > 0 && out[i-1] == code {
			return nil, fmt.Errorf("site %s is given twice: %w", code, ErrInvalid)
		}
		if err := ValidateRegistryCode(code); err != nil {
			return nil, fmt.Errorf("site: %w", err)
		}
		site, err := readEntry[Site](ctx, s, KindSite, code)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("site %s is not registered: %w", code, ErrInvalid)
		}
		if err != nil {
			return nil, err
		}
		if site.Suspended {
			return nil, fmt.Errorf("site %s is suspended; nobody is bound to it: %w", code, ErrConflict)
		}
		if site.Organisation != org {
			return nil, fmt.Errorf("site %s belongs to %s, not to %s: %w", code, site.Organisation, org, ErrInvalid)
		}
	}
	if len(out) == 0 {
		out = nil
	}
	return out, nil
}

// networkValues are a user's binding as an audit entry's values.
func networkValues(org string, sites []string) map[string]string {
	return map[string]string{"organisation": org, "sites": strings.Join(sites, ",")}
}

// SetUserNetwork binds a user to an organisation and sites (both empty:
// unbound), for an administrator, who must give a reason. The change and
// its audit entry, with the old and new binding, are stored together.
func (s *Service) SetUserNetwork(ctx context.Context, actor User, id, organisation string, sites []string, reason string) (User, error) {
	const op = "set user network"
	if err := requireAdmin(op, actor, id); err != nil {
		return User{}, err
	}
	if err := checkReason(op, reason, true); err != nil {
		return User{}, err
	}
	cur, err := s.store.User(ctx, id)
	if err != nil {
		return User{}, fmt.Errorf("%s %s: %w", op, id, err)
	}
	sorted, err := s.checkUserNetwork(ctx, cur.Role, organisation, sites)
	if err != nil {
		return User{}, fmt.Errorf("%s %s: %w", op, id, err)
	}
	now := s.now().UTC()
	u, err := s.store.ChangeUser(ctx, id, func(x *User) error {
		x.Organisation, x.Sites = organisation, sorted
		return nil
	}, func(before, after User) AuditEntry {
		return AuditEntry{Time: now, Actor: actor.ID, Action: AuditUserNetwork, Kind: KindUser, Code: id, Reason: reason,
			Old: AuditValues(networkValues(before.Organisation, before.Sites)), New: AuditValues(networkValues(after.Organisation, after.Sites))}
	})
	if err != nil {
		return User{}, fmt.Errorf("%s %s: %w", op, id, err)
	}
	s.log.Info("user network changed", "user", id, "organisation", organisation, "sites", len(sorted), "by", actor.ID)
	return u.Public(), nil
}

// AddUserIn is AddUser for a person bound to an organisation and sites
// (checkUserNetwork's rules), as the offline tools create them.
func (s *Service) AddUserIn(ctx context.Context, id, name string, role Role, password, organisation string, sites []string) (string, error) {
	return s.addUser(ctx, id, name, role, password, "", organisation, sites)
}

// AdminAddUserIn is AdminAddUser for a person bound to an organisation and
// sites.
func (s *Service) AdminAddUserIn(ctx context.Context, actor User, id, name string, role Role, password, organisation string, sites []string) (string, error) {
	if err := requireAdmin("add user", actor); err != nil {
		return "", err
	}
	tok, err := s.addUser(ctx, id, name, role, password, actor.ID, organisation, sites)
	if err != nil {
		return "", err
	}
	s.log.Info("user added by administrator", "user", id, "by", actor.ID)
	return tok, nil
}
