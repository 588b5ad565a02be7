package custody

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The network as a chain sees it: the registered sites its free-text or
// coded site names stand for. A chain enrolled before the network was
// registered names its sites in free text; those names resolve to no
// registered site, and the site rules (who may sign, who may read, the
// site's time zone) do not apply to them until an administrator maps the
// names to registered sites (MapSiteName). A mapping is a registry entry
// of its own (KindSiteMapping), audited like every registry change; the
// ledger is never rewritten, the chain keeps the name it was enrolled
// with and reads through the mapping.

// SiteMapping says which registered site a free-text site name found on
// chains from before the network stands for.
type SiteMapping struct {
	// Name is the site name as the chains hold it ("St. Mary Apheresis").
	Name string `json:"name"`
	// Site is the code of the registered site it stands for.
	Site string `json:"site"`
}

// maxSiteName is the longest site name a chain holds (enrollment's
// bound).
const maxSiteName = 200

// registeredSite returns the registered site a chain's site name stands
// for: the site whose code it is or, failing that, the site an
// administrator mapped the name to. ok is false for a name no registered
// site answers to (a chain from before the network was registered).
func (s *Service) registeredSite(ctx context.Context, name string) (site Site, ok bool, err error) {
	if name == "" {
		return Site{}, false, nil
	}
	site, err = readEntry[Site](ctx, s, KindSite, name)
	if errors.Is(err, ErrNotFound) {
		m, merr := readEntry[SiteMapping](ctx, s, KindSiteMapping, name)
		if errors.Is(merr, ErrNotFound) {
			return Site{}, false, nil
		}
		if merr != nil {
			return Site{}, false, merr
		}
		site, err = readEntry[Site](ctx, s, KindSite, m.Site)
		if errors.Is(err, ErrNotFound) {
			return Site{}, false, fmt.Errorf("site name %q is mapped to site %s, which is not registered: %w", name, m.Site, ErrDamaged)
		}
	}
	if err != nil {
		return Site{}, false, err
	}
	return site, true, nil
}

func (*SiteMapping) registryKind() RegistryKind { return KindSiteMapping }
func (m *SiteMapping) registryCode() *string    { return &m.Name }

// registrySuspended: a mapping is never suspended; it is changed instead.
func (m *SiteMapping) registrySuspended() *bool { return new(bool) }

// Validate checks the mapping's own fields.
func (m SiteMapping) Validate() error {
	if err := validText("site name", m.Name, true, maxSiteName); err != nil {
		return fmt.Errorf("site mapping: %w", fieldErr("name", err))
	}
	if strings.TrimSpace(m.Name) != m.Name {
		return fieldErr("name", fmt.Errorf("site mapping: site name %q has leading or trailing spaces; give it as the chains hold it: %w", m.Name, ErrInvalid))
	}
	if err := ValidateRegistryCode(m.Site); err != nil {
		return fmt.Errorf("site mapping %q: site: %w", m.Name, fieldErr("site", err))
	}
	return nil
}

// checkMapping checks what a mapping refers to: the name is no
// registered site's code (a code always means its own site), and the
// site is registered and, unless old already mapped to it, not
// suspended.
func (s *Service) checkMapping(ctx context.Context, m *SiteMapping, old *SiteMapping) error {
	if _, err := readEntry[Site](ctx, s, KindSite, m.Name); err == nil {
		return fieldErr("name", fmt.Errorf("site mapping %q: that is a registered site's code, which always means its own site: %w", m.Name, ErrInvalid))
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	site, err := readEntry[Site](ctx, s, KindSite, m.Site)
	if errors.Is(err, ErrNotFound) {
		return fieldErr("site", fmt.Errorf("site mapping %q: no site %s is registered: %w", m.Name, m.Site, ErrInvalid))
	}
	if err != nil {
		return err
	}
	if site.Suspended && (old == nil || old.Site != m.Site) {
		return fieldErr("site", fmt.Errorf("site mapping %q: site %s is suspended: %w", m.Name, m.Site, ErrConflict))
	}
	return nil
}

// MapSiteName maps the free-text site name of chains from before the
// network to the registered site code (administrators), or changes the
// site an existing mapping names: an audited change with its reason and
// the old and new values. A mapping is never removed, only changed: the
// chains read through it once their sites' rules apply. It returns the
// mapping and whether it was new.
func (s *Service) MapSiteName(ctx context.Context, actor User, name, code, reason string) (SiteMapping, bool, error) {
	const op = "map site name"
	m := SiteMapping{Name: name, Site: code}
	if err := requireAdministrator(op, actor); err != nil {
		return SiteMapping{}, false, err
	}
	if err := validReason(op, reason); err != nil {
		return SiteMapping{}, false, err
	}
	if err := m.Validate(); err != nil {
		return SiteMapping{}, false, fmt.Errorf("%s: %w", op, err)
	}
	old, err := readEntry[SiteMapping](ctx, s, KindSiteMapping, name)
	switch {
	case errors.Is(err, ErrNotFound):
		if err := s.checkMapping(ctx, &m, nil); err != nil {
			return SiteMapping{}, false, fmt.Errorf("%s: %w", op, err)
		}
		v, err := registerEntry(ctx, s, actor, m, reason)
		if errors.Is(err, ErrConflict) {
			return SiteMapping{}, false, fmt.Errorf("%s %q: mapped by another administrator meanwhile: %w", op, name, ErrRetry)
		}
		return v, err == nil, err
	case err != nil:
		return SiteMapping{}, false, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.checkMapping(ctx, &m, &old); err != nil {
		return SiteMapping{}, false, fmt.Errorf("%s: %w", op, err)
	}
	v, err := updateEntry(ctx, s, actor, name, m, reason)
	return v, false, err
}

// SiteMappingEntry returns the mapping of a site name (QA and
// administrators).
func (s *Service) SiteMappingEntry(ctx context.Context, actor User, name string) (SiteMapping, error) {
	if !MayReadAuditTrail(actor.Role) {
		return SiteMapping{}, fmt.Errorf("read site mapping: only QA and administrators read the site mappings (you are %s): %w", actor.Role, ErrForbidden)
	}
	m, err := readEntry[SiteMapping](ctx, s, KindSiteMapping, name)
	if err != nil {
		return m, fmt.Errorf("read site mapping %q: %w", name, err)
	}
	return m, nil
}

// SiteMappings lists the mappings in name order after the name after, at
// most limit (0: MaxRegistryPage); QA and administrators.
func (s *Service) SiteMappings(ctx context.Context, actor User, after string, limit int) ([]SiteMapping, error) {
	if !MayReadAuditTrail(actor.Role) {
		return nil, fmt.Errorf("list site mappings: only QA and administrators read the site mappings (you are %s): %w", actor.Role, ErrForbidden)
	}
	return listEntries[SiteMapping](ctx, s, actor, after, limit)
}

// anyEntry reports whether the registry kind holds any entry: the cheap
// question "has this programme registered its network".
func (s *Service) anyEntry(ctx context.Context, kind RegistryKind) (bool, error) {
	raw, err := s.store.Entries(ctx, kind, "", 1)
	if err != nil {
		return false, err
	}
	return len(raw) > 0, nil
}

// HasRegistered reports whether the registry kind holds any entry: while
// no site (product) is registered, enrollment takes free-text sites
// (product).
func (s *Service) HasRegistered(ctx context.Context, kind RegistryKind) (bool, error) {
	if !kind.Valid() {
		return false, fmt.Errorf("registry %q: %w", kind, ErrInvalid)
	}
	return s.anyEntry(ctx, kind)
}

// UnmappedSiteNames lists the distinct site names the chains hold that
// resolve to no registered site (neither a site's code nor mapped), in
// name order after the name after, at most limit (1 to MaxRegistryPage;
// 0 means MaxRegistryPage): what an administrator still has to map (QA
// and administrators). It reads every chain, so it is for the migration,
// not for every page.
func (s *Service) UnmappedSiteNames(ctx context.Context, actor User, after string, limit int) ([]string, error) {
	const op = "unmapped site names"
	if !MayReadAuditTrail(actor.Role) {
		return nil, fmt.Errorf("%s: only QA and administrators read the site mappings (you are %s): %w", op, actor.Role, ErrForbidden)
	}
	if limit < 0 || limit > MaxRegistryPage {
		return nil, fmt.Errorf("%s: limit %d must be 1-%d: %w", op, limit, MaxRegistryPage, ErrInvalid)
	}
	if limit == 0 {
		limit = MaxRegistryPage
	}
	infos, err := s.store.Chains(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	seen := map[string]bool{}
	var names []string
	for _, ci := range infos {
		if ci.State.Access() {
			continue
		}
		c, err := s.Chain(ctx, ci.COI)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		for _, name := range []string{c.Sites.Collection, c.Sites.Manufacturing, c.Sites.Treatment} {
			if name == "" || name <= after || seen[name] {
				continue
			}
			seen[name] = true
			_, ok, err := s.registeredSite(ctx, name)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
			if !ok {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	if len(names) > limit {
		names = names[:limit]
	}
	return names, nil
}
