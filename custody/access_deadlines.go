package custody

import (
	"cmp"
	"context"
	"errors"
	"slices"
)

// OwedDeadline is an after-the-fact step a request owes, such as the IRB
// report due 5 working days after an emergency authorisation: the
// Deadline with the request that owes it.
type OwedDeadline struct {
	Deadline
	Request COI `json:"request"`
	// COI is the therapy chain the request became; empty before
	// enrollment.
	COI           COI     `json:"coi,omitempty"`
	Urgency       Urgency `json:"urgency"`
	Jurisdiction  string  `json:"jurisdiction"`
	TreatmentSite string  `json:"treatment_site"`
}

// AccessDeadlines lists the after-the-fact steps owed by the requests
// actor may read (AccessRequest's rule), overdue ones first, then by due
// time: what the QA console and the access team's queue raise. A step is
// owed from its trigger (the emergency authorisation) until it is
// recorded; withdrawn and declined requests owe none.
func (s *Service) AccessDeadlines(ctx context.Context, actor User) ([]OwedDeadline, error) {
	out, err := s.owedDeadlines(ctx, actor)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b OwedDeadline) int {
		return cmp.Or(cmp.Compare(overdueRank(a.Status), overdueRank(b.Status)), a.Due.Compare(b.Due),
			cmp.Compare(a.Request, b.Request), cmp.Compare(a.Step, b.Step))
	})
	return out, nil
}

func overdueRank(status string) int {
	if status == "overdue" {
		return 0
	}
	return 1
}

// owedDeadlines finds the deadlines owed by the requests actor may read.
// Only an approved (decided) or enrolled request can owe one, so it reads
// the access index's rows of those states (the chain summaries when the
// store keeps no index) and folds only those requests.
func (s *Service) owedDeadlines(ctx context.Context, actor User) ([]OwedDeadline, error) {
	ids, err := s.owingFromIndex(ctx, actor)
	if errors.Is(err, errors.ErrUnsupported) {
		ids, err = s.owingFromChains(ctx, actor)
	}
	if err != nil {
		return nil, err
	}
	out := []OwedDeadline{}
	for _, id := range ids {
		r, err := s.AccessRequest(ctx, actor, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, d := range r.Deadlines {
			out = append(out, OwedDeadline{Deadline: d, Request: r.ID, COI: r.COI, Urgency: r.Submission.Urgency,
				Jurisdiction: r.Submission.Jurisdiction, TreatmentSite: r.Submission.TreatmentSite})
		}
	}
	return out, nil
}

// owingFromIndex lists, from the access index's rows, the approved and
// enrolled requests that may owe actor a deadline (owingFromChains);
// errors.ErrUnsupported if the store keeps no complete index.
func (s *Service) owingFromIndex(ctx context.Context, actor User) ([]COI, error) {
	idx, ok := s.store.(AccessIndex)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	rows, err := idx.AccessRows(ctx, AccessDecided, AccessEnrolled)
	if err != nil {
		return nil, err
	}
	var ids []COI
	for _, w := range rows {
		if actor.WorksAt(w.Treatment) || actor.WorksAt(w.Manufacturing) || actor.Role == RoleQA {
			ids = append(ids, w.ID)
		}
	}
	return ids, nil
}

// owingFromChains lists, from the chain summaries, the approved and
// enrolled requests at actor's sites (any, for QA): those that may owe a
// deadline actor reads.
func (s *Service) owingFromChains(ctx context.Context, actor User) ([]COI, error) {
	var ids []COI
	err := s.store.ScanChains(ctx, func(ci ChainInfo) error {
		if ci.State != AccessDecided && ci.State != AccessEnrolled {
			return nil
		}
		if actor.WorksAt(ci.Sites.Treatment) || actor.WorksAt(ci.Sites.Manufacturing) || actor.Role == RoleQA {
			ids = append(ids, ci.COI)
		}
		return nil
	})
	return ids, err
}
