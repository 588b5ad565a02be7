package custody

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// RequestOf returns the expanded-access request chain c's enroll record
// names (EnrollData.Request), or "" when c was enrolled without one.
func RequestOf(c *Chain) COI {
	if c == nil || len(c.Records) == 0 || c.Records[0].Step != StepEnroll {
		return ""
	}
	var en EnrollData
	if json.Unmarshal(c.Records[0].Data, &en) != nil {
		return ""
	}
	return en.Request
}

// ChainAccessRequest returns the expanded-access request chain c was
// enrolled from, folded with its whole history (every record, with its
// signatures, deadlines and what its jurisdiction still requires at the
// service's time), or nil when c was enrolled without one. The request
// travels with the chain: a caller that may read c (the custody report's)
// may read its request's history, which holds no patient identifiers. A
// request the chain names that is not in the ledger is ErrChainBroken. A
// request that does not name c back (its own enroll record failed after
// the chain's was written) is returned as it is: its COI says so.
func (s *Service) ChainAccessRequest(ctx context.Context, c *Chain) (*AccessRequest, error) {
	id := RequestOf(c)
	if id == "" {
		return nil, nil
	}
	unlock := s.lock(id)
	defer unlock()
	r, err := s.accessLocked(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("chain %s names request %s, which is not in the ledger: %w", c.COI, id, ErrChainBroken)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}
