package custody

import (
	"context"
	"encoding/json"
)

// CheckSignerSite lets the external benchmarks time the signer-site check
// alone: where the signers of step, taken in state on a chain with sites
// and data, must be bound, and whether u is.
func (s *Service) CheckSignerSite(ctx context.Context, sites Sites, state State, step Step, data json.RawMessage, u User) error {
	rule, err := s.journey.Rule(state, step)
	if err != nil {
		return err
	}
	d, err := parseData(step, data)
	if err != nil {
		return err
	}
	p, err := s.signerPlaceFor(ctx, sites, rule, step, d)
	if err != nil {
		return err
	}
	return p.check(ctx, s, u)
}
