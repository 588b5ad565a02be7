package custody

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The access team's triage: each open request runs a service-level clock
// from its submission to its decision, with a limit per urgency. The clock
// is paused while the team waits for the physician's answer to a
// request-info (from the request-info record to the respond record), so a
// request is never breached by the physician's delay.

// AccessSLA are the service-level clocks of requests: how long the access
// team has to decide a request, per urgency, and how close to its deadline
// a request is shown as due soon.
type AccessSLA struct {
	Emergency time.Duration `json:"emergency"`
	Standard  time.Duration `json:"standard"`
	DueSoon   time.Duration `json:"due_soon"`
}

// DefaultAccessSLA is 24 hours to decide an emergency request, 7 days
// otherwise, due soon in the last 4 hours.
var DefaultAccessSLA = AccessSLA{Emergency: 24 * time.Hour, Standard: 7 * 24 * time.Hour, DueSoon: 4 * time.Hour}

// withDefaults fills the durations left zero from DefaultAccessSLA.
func (a AccessSLA) withDefaults() AccessSLA {
	if a.Emergency <= 0 {
		a.Emergency = DefaultAccessSLA.Emergency
	}
	if a.Standard <= 0 {
		a.Standard = DefaultAccessSLA.Standard
	}
	if a.DueSoon <= 0 {
		a.DueSoon = DefaultAccessSLA.DueSoon
	}
	return a
}

// Limit is the time to decision allowed for urgency u.
func (a AccessSLA) Limit(u Urgency) time.Duration {
	a = a.withDefaults()
	if u == UrgencyEmergency {
		return a.Emergency
	}
	return a.Standard
}

// AccessClock is where a request stands against its service level.
type AccessClock struct {
	// Limit is the time to decision allowed for the request's urgency.
	Limit time.Duration `json:"limit"`
	// Elapsed is the clock's running time: from submission to the decision
	// (or to now), less the time spent waiting for the physician.
	Elapsed time.Duration `json:"elapsed"`
	// Paused is the time spent waiting for the physician so far.
	Paused time.Duration `json:"paused"`
	// Waiting says the clock is paused now: information was requested and
	// the physician has not responded.
	Waiting bool `json:"waiting"`
	// Due is when the limit is reached if the clock keeps running from
	// now (while waiting it moves on with the pause).
	Due time.Time `json:"due"`
	// Breached says the running time exceeds the limit; DueSoon that it
	// does not yet but will within the SLA's DueSoon.
	Breached bool `json:"breached"`
	DueSoon  bool `json:"due_soon"`
}

// ClockOf computes request r's service-level clock at now: up to its
// decision if decided, else up to now.
func (a AccessSLA) ClockOf(r *AccessRequest, now time.Time) AccessClock {
	a = a.withDefaults()
	end := now
	if !r.Decided.IsZero() {
		end = r.Decided
	}
	var paused time.Duration
	var since time.Time
	for _, ev := range r.Events {
		if ev.Time.After(end) {
			break
		}
		switch ev.Step {
		case StepAccessRequestInfo:
			if since.IsZero() {
				since = ev.Time
			}
		case StepAccessRespond, StepAccessDecide, StepAccessWithdraw:
			if !since.IsZero() {
				paused += ev.Time.Sub(since)
				since = time.Time{}
			}
		}
	}
	c := AccessClock{Limit: a.Limit(r.Submission.Urgency), Waiting: !since.IsZero()}
	if c.Waiting {
		paused += end.Sub(since)
	}
	c.Paused = paused
	c.Elapsed = end.Sub(r.Submitted) - paused
	c.Due = end.Add(c.Limit - c.Elapsed)
	c.Breached = c.Elapsed > c.Limit
	c.DueSoon = !c.Breached && c.Limit-c.Elapsed <= a.DueSoon
	return c
}

// TriageItem is an open request in the triage queue with its clock.
type TriageItem struct {
	Request *AccessRequest `json:"request"`
	Clock   AccessClock    `json:"clock"`
}

// TriageQueue is one page of the access team's queue and the counts over
// the whole queue.
type TriageQueue struct {
	Items []TriageItem `json:"items"`
	// Open, Breached and DueSoon count the whole queue, not the page.
	Open     int `json:"open"`
	Breached int `json:"breached"`
	DueSoon  int `json:"due_soon"`
	// Next is the cursor of the next page; empty on the last.
	Next string `json:"next,omitempty"`
	// Deadlines are the after-the-fact steps owed by the approved and
	// enrolled requests the team may read (Service.AccessDeadlines);
	// AccessTriage sets them.
	Deadlines []OwedDeadline `json:"deadlines"`
}

// triageOpen reports whether a request waits for the access team's
// decision (or for the physician's answer).
func triageOpen(s State) bool { return s == AccessSubmitted || s == AccessInfoRequested }

// urgencyRank orders emergencies first.
func urgencyRank(u Urgency) int {
	if u == UrgencyEmergency {
		return 0
	}
	return 1
}

// triageKey is the queue order of an item: emergencies first, then by
// deadline, then by identifier. Its text form is the page cursor.
func triageKey(it TriageItem) string {
	return fmt.Sprintf("%d|%s|%s", urgencyRank(it.Request.Submission.Urgency), it.Clock.Due.UTC().Format("20060102T150405.000000000"), it.Request.ID)
}

// BuildTriage orders the open requests of reqs for the access team
// (emergency first, then by service-level deadline), counts breaches and
// due-soon ones over all of them, and returns the page after cursor after
// of at most limit (1-500; otherwise 100).
func BuildTriage(reqs []*AccessRequest, sla AccessSLA, now time.Time, after string, limit int) TriageQueue {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	q := TriageQueue{Items: []TriageItem{}}
	var all []TriageItem
	for _, r := range reqs {
		if !triageOpen(r.State) {
			continue
		}
		it := TriageItem{Request: r, Clock: sla.ClockOf(r, now)}
		q.Open++
		if it.Clock.Breached {
			q.Breached++
		}
		if it.Clock.DueSoon {
			q.DueSoon++
		}
		all = append(all, it)
	}
	keys := make(map[COI]string, len(all))
	for _, it := range all {
		keys[it.Request.ID] = triageKey(it)
	}
	slices.SortFunc(all, func(x, y TriageItem) int { return cmp.Compare(keys[x.Request.ID], keys[y.Request.ID]) })
	for _, it := range all {
		if after != "" && keys[it.Request.ID] <= after {
			continue
		}
		if len(q.Items) == limit {
			q.Next = keys[q.Items[len(q.Items)-1].Request.ID]
			break
		}
		q.Items = append(q.Items, it)
	}
	return q
}

// DecisionFigures are the times to decision of the requests of one urgency
// decided in one month (UTC), in hours: how many, median and 90th
// percentile, and how many exceeded their service level.
type DecisionFigures struct {
	Month    string  `json:"month"`
	Urgency  Urgency `json:"urgency"`
	Count    int     `json:"count"`
	Median   float64 `json:"median_hours"`
	P90      float64 `json:"p90_hours"`
	Breached int     `json:"breached"`
}

// AccessFiguresOf computes the decision figures of the decided requests of
// reqs, by month of decision and urgency (emergency first), months in
// order. Time to decision is the service-level clock: wall time from
// submission to decision less the time waiting for the physician.
func AccessFiguresOf(reqs []*AccessRequest, sla AccessSLA) []DecisionFigures {
	hours := map[figuresKey][]float64{}
	breached := map[figuresKey]int{}
	for _, r := range reqs {
		if r.Decided.IsZero() {
			continue
		}
		c := sla.ClockOf(r, r.Decided)
		k := figuresKey{r.Decided.UTC().Format(monthLayout), r.Submission.Urgency}
		hours[k] = append(hours[k], c.Elapsed.Hours())
		if c.Breached {
			breached[k]++
		}
	}
	return decisionFigures(hours, breached)
}

// figuresKey is one row of the decision figures: a month and an urgency.
type figuresKey struct {
	month string
	u     Urgency
}

// decisionFigures turns the hours to decision and the breaches counted
// per month and urgency into the figures, months in order, emergency
// first within a month.
func decisionFigures(hours map[figuresKey][]float64, breached map[figuresKey]int) []DecisionFigures {
	out := []DecisionFigures{}
	for k, v := range hours {
		slices.Sort(v)
		out = append(out, DecisionFigures{Month: k.month, Urgency: k.u, Count: len(v), Median: Quantile(v, 0.5), P90: Quantile(v, 0.9), Breached: breached[k]})
	}
	slices.SortFunc(out, func(x, y DecisionFigures) int {
		return cmp.Or(cmp.Compare(x.Month, y.Month), cmp.Compare(urgencyRank(x.Urgency), urgencyRank(y.Urgency)))
	})
	return out
}

// MayTriageAccess reports whether role r belongs to a manufacturer's
// access team, which works the triage queue of its sites' requests and
// may be assigned them: coordinators and QA.
func MayTriageAccess(r Role) bool { return r == RoleCoordinator || r == RoleQA }

// AccessTriage returns the page of the triage queue after cursor after
// (at most limit) of the open requests actor's access team may read,
// with the breach counts of the whole queue.
func (s *Service) AccessTriage(ctx context.Context, actor User, after string, limit int) (TriageQueue, error) {
	if !MayTriageAccess(actor.Role) {
		return TriageQueue{}, fmt.Errorf("triage queue: role %s is not of the access team: %w", actor.Role, ErrForbidden)
	}
	var q TriageQueue
	err := errors.ErrUnsupported
	if idx, ok := s.store.(AccessIndex); ok {
		q, err = s.triageFromIndex(ctx, idx, actor, after, limit)
	}
	if errors.Is(err, errors.ErrUnsupported) {
		var open []*AccessRequest
		for _, st := range []State{AccessSubmitted, AccessInfoRequested} {
			if err := s.eachAccess(ctx, actor, st, func(r *AccessRequest) { open = append(open, r) }); err != nil {
				return TriageQueue{}, err
			}
		}
		q, err = BuildTriage(open, s.sla, s.now().UTC(), after, limit), nil
	}
	if err != nil {
		return TriageQueue{}, err
	}
	if q.Deadlines, err = s.AccessDeadlines(ctx, actor); err != nil {
		return TriageQueue{}, err
	}
	return q, nil
}

// AccessFigures returns the decision figures of the decided requests actor
// may read.
func (s *Service) AccessFigures(ctx context.Context, actor User) ([]DecisionFigures, error) {
	if !MayTriageAccess(actor.Role) {
		return nil, fmt.Errorf("access figures: role %s is not of the access team: %w", actor.Role, ErrForbidden)
	}
	if idx, ok := s.store.(AccessIndex); ok {
		f, err := s.figuresFromIndex(ctx, idx, actor)
		if !errors.Is(err, errors.ErrUnsupported) {
			return f, err
		}
	}
	var decided []*AccessRequest
	for _, st := range []State{AccessDecided, AccessEnrolled, AccessWithdrawn} {
		if err := s.eachAccess(ctx, actor, st, func(r *AccessRequest) { decided = append(decided, r) }); err != nil {
			return nil, err
		}
	}
	return AccessFiguresOf(decided, s.sla), nil
}

// eachAccess folds each request in journey state st that actor may read
// at its manufacturing site (the access team's side) and calls f with it.
func (s *Service) eachAccess(ctx context.Context, actor User, st State, f func(*AccessRequest)) error {
	infos, err := s.store.Chains(ctx, st)
	if err != nil {
		return err
	}
	for _, ci := range infos {
		if !actor.WorksAt(ci.Sites.Manufacturing) && actor.Role != RoleQA {
			continue
		}
		r, err := s.AccessRequest(ctx, actor, ci.COI)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		f(r)
	}
	return nil
}

// checkAssignee checks that user id may be assigned a request decided at
// manufacturing site site: an active coordinator or QA user working there.
func (s *Service) checkAssignee(ctx context.Context, id, site string) error {
	u, err := s.store.User(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("no user %q: %w", id, ErrInvalid)
	}
	if err != nil {
		return err
	}
	if u.Disabled {
		return fmt.Errorf("user %s is disabled: %w", id, ErrInvalid)
	}
	if !MayTriageAccess(u.Role) {
		return fmt.Errorf("user %s is %s, not of the access team (coordinator or QA): %w", id, u.Role, ErrInvalid)
	}
	if !u.WorksAt(site) {
		return fmt.Errorf("user %s does not work at %s: %w", id, site, ErrInvalid)
	}
	return nil
}
