package custody

import (
	"context"
	"errors"
)

// The network as a chain sees it: the registered sites its free-text or
// coded site names stand for. A chain enrolled before the network was
// registered names its sites in free text; those names resolve to no
// registered site, and the site rules (who may sign, who may read) do not
// apply to them until an administrator maps the names to registered
// sites.

// registeredSite returns the registered site a chain's site name stands
// for: the site whose code it is. ok is false for a name no registered
// site answers to (a chain from before the network was registered).
func (s *Service) registeredSite(ctx context.Context, name string) (site Site, ok bool, err error) {
	if name == "" {
		return Site{}, false, nil
	}
	site, err = readEntry[Site](ctx, s, KindSite, name)
	if errors.Is(err, ErrNotFound) {
		return Site{}, false, nil
	}
	if err != nil {
		return Site{}, false, err
	}
	return site, true, nil
}
