package custody

import (
	"context"
	"time"
)

// Site time zones. An event happens at one of a chain's sites and is shown
// in that site's local time, with UTC beside it. A site name that resolves
// to a registered site takes the site's registered time zone; a name from
// before the network (free text) has no zone of its own, and callers fall
// back to their configured default zone and then to UTC.

// SiteZones is the time zone of each of a chain's site names that resolves
// to a registered site. Names that resolve to none are absent.
type SiteZones map[string]*time.Location

// Zone returns the zone of the site name, or def when the name has none
// (a site from before the network), or UTC when def is nil too.
func (z SiteZones) Zone(name string, def *time.Location) *time.Location {
	if loc := z[name]; loc != nil {
		return loc
	}
	if def != nil {
		return def
	}
	return time.UTC
}

// SiteZone returns the time zone of the registered site a chain's site name
// stands for; ok is false for a name that resolves to no registered site.
// A registered site whose zone no longer loads (the zone database changed)
// is an error wrapping ErrInvalid.
func (s *Service) SiteZone(ctx context.Context, name string) (loc *time.Location, ok bool, err error) {
	site, ok, err := s.registeredSite(ctx, name)
	if err != nil || !ok {
		return nil, false, err
	}
	loc, err = ValidateTimeZone(site.TimeZone)
	if err != nil {
		return nil, false, err
	}
	return loc, true, nil
}

// SiteZones returns the zones of c's site names: its three sites and every
// site a record names. A chain from before the network gives an empty map.
func (s *Service) SiteZones(ctx context.Context, c *Chain) (SiteZones, error) {
	out := SiteZones{}
	seen := map[string]bool{}
	look := func(name string) error {
		if name == "" || seen[name] {
			return nil
		}
		seen[name] = true
		loc, ok, err := s.SiteZone(ctx, name)
		if err != nil {
			return err
		}
		if ok {
			out[name] = loc
		}
		return nil
	}
	for _, name := range []string{c.Sites.Collection, c.Sites.Manufacturing, c.Sites.Treatment} {
		if err := look(name); err != nil {
			return nil, err
		}
	}
	for i := range c.Records {
		if err := look(c.Records[i].Site); err != nil {
			return nil, err
		}
	}
	return out, nil
}
