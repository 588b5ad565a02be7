package custody

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The access index: what the triage queue and the decision figures need
// of each request, kept by the store beside the request's chain summary
// in the same transaction as each of its records (Draft.Access), so the
// queue and the figures read small rows instead of folding every request.

// AccessRow is one request as the store's access index keeps it: enough
// to place it in the triage queue, run its service-level clock and scope
// it to the users who may read it.
type AccessRow struct {
	ID COI
	// State is the request's view state (AccessApproved or
	// AccessDeclined for a decided one).
	State   State
	Urgency Urgency
	// Treatment and Manufacturing are the request's sites, as submitted.
	Treatment, Manufacturing string
	Submitted                time.Time
	// Decided is when it was approved or declined; zero before.
	Decided time.Time
	// Paused is the time spent waiting for the physician in the pauses
	// that have ended; WaitingSince, when not zero, is when the pause
	// still running began (information requested, not yet answered).
	Paused       time.Duration
	WaitingSince time.Time
	// Assignee is the access-team member last assigned; empty if never.
	Assignee string
}

// AccessIndex is a store that keeps the access index: the row each
// request draft carries (Draft.Access), written in the same transaction
// as the record. Requests appended before the store kept the index get
// their rows when the store is opened for writing (the store folds them
// with AccessRowOf).
type AccessIndex interface {
	// AccessRows returns the rows of the requests whose chain (journey)
	// state is one of states, in identifier order within each state,
	// states in the order given. An error wrapping errors.ErrUnsupported
	// says the store does not hold a complete index now (an older ledger
	// opened read-only): the caller folds the requests instead. The
	// rows may be shared with the store's other answers: the caller
	// must not modify them.
	AccessRows(ctx context.Context, states ...State) ([]AccessRow, error)
}

// pauseAt applies a record's step at time t to the row's pause.
func (w *AccessRow) pauseAt(step Step, t time.Time) {
	switch step {
	case StepAccessRequestInfo:
		if w.WaitingSince.IsZero() {
			w.WaitingSince = t
		}
	case StepAccessRespond, StepAccessDecide, StepAccessWithdraw:
		if !w.WaitingSince.IsZero() {
			w.Paused += t.Sub(w.WaitingSince)
			w.WaitingSince = time.Time{}
		}
	}
}

// accessRowOf is the index row of folded request r.
func accessRowOf(r *AccessRequest) AccessRow {
	w := AccessRow{ID: r.ID, State: r.State, Urgency: r.Submission.Urgency, Treatment: r.Submission.TreatmentSite,
		Manufacturing: r.Submission.ManufacturingSite, Submitted: r.Submitted, Decided: r.Decided, Assignee: r.Assignee}
	for _, ev := range r.Events {
		w.pauseAt(ev.Step, ev.Time)
	}
	return w
}

// AccessRowOf folds a request's records (in chain order) into its index
// row: what a store builds the index of an older ledger with.
func AccessRowOf(recs []Record) (AccessRow, error) {
	r, err := foldAccess(recs)
	if err != nil {
		return AccessRow{}, err
	}
	return accessRowOf(r), nil
}

// nextAccessRow is the row of request r once the record of step at time
// now with data d, leading to view state to, is appended.
func nextAccessRow(r *AccessRequest, step Step, d AccessStepData, to State, now time.Time) *AccessRow {
	w := accessRowOf(r)
	w.pauseAt(step, now)
	w.State = to
	switch step {
	case StepAccessDecide:
		w.Decided = now
	case StepAccessAssign:
		w.Assignee = d.Assignee
	}
	return &w
}

// clockOfRow is ClockOf for an index row: the same clock, computed from
// the row's pauses instead of the request's records.
func (a AccessSLA) clockOfRow(w AccessRow, now time.Time) AccessClock {
	a = a.withDefaults()
	end := now
	if !w.Decided.IsZero() {
		end = w.Decided
	}
	paused := w.Paused
	c := AccessClock{Limit: a.Limit(w.Urgency), Waiting: !w.WaitingSince.IsZero() && !w.WaitingSince.After(end)}
	if c.Waiting {
		paused += end.Sub(w.WaitingSince)
	}
	c.Paused = paused
	c.Elapsed = end.Sub(w.Submitted) - paused
	c.Due = end.Add(c.Limit - c.Elapsed)
	c.Breached = c.Elapsed > c.Limit
	c.DueSoon = !c.Breached && c.Limit-c.Elapsed <= a.DueSoon
	return c
}

// accessScope decides, from index rows, which requests a user of the
// access team sees in the queue and the figures: exactly those eachAccess
// and AccessRequest let through (a user of the manufacturing site, or QA
// working at the treatment site or of the manufacturing site's
// organisation). Site lookups are cached for one read.
type accessScope struct {
	s     *Service
	actor User
	orgs  map[string]string
}

func (sc *accessScope) may(ctx context.Context, w AccessRow) (bool, error) {
	if sc.actor.WorksAt(w.Manufacturing) {
		return true, nil
	}
	if sc.actor.Role != RoleQA {
		return false, nil
	}
	if sc.actor.WorksAt(w.Treatment) {
		return true, nil
	}
	if sc.actor.Organisation == "" {
		return false, nil
	}
	org, ok := sc.orgs[w.Manufacturing]
	if !ok {
		site, found, err := sc.s.registeredSite(ctx, w.Manufacturing)
		if err != nil {
			return false, err
		}
		if found {
			org = site.Organisation
		}
		if sc.orgs == nil {
			sc.orgs = map[string]string{}
		}
		sc.orgs[w.Manufacturing] = org
	}
	return org != "" && org == sc.actor.Organisation, nil
}

// visibleRows returns the index rows in states that actor may read. The
// store's rows are not modified: when actor may read them all (the usual
// case for a manufacturer's access team) they are returned as they are,
// else those visible are copied.
func (s *Service) visibleRows(ctx context.Context, idx AccessIndex, actor User, states ...State) ([]AccessRow, error) {
	rows, err := idx.AccessRows(ctx, states...)
	if err != nil {
		return nil, err
	}
	sc := accessScope{s: s, actor: actor}
	var out []AccessRow
	copied := false
	for i, w := range rows {
		ok, err := sc.may(ctx, w)
		if err != nil {
			return nil, err
		}
		switch {
		case !ok && !copied:
			out, copied = slices.Clone(rows[:i]), true
		case ok && copied:
			out = append(out, w)
		}
	}
	if !copied {
		return rows, nil
	}
	return out, nil
}

// queueKey is an item's place in the triage queue (triageKey): rank,
// deadline, identifier, compared without formatting each item's key.
type queueKey struct {
	rank int
	due  time.Time
	id   COI
}

// dueLayout is the deadline's layout in a queue cursor.
const dueLayout = "20060102T150405.000000000"

// String is the key as triageKey formats it: the page cursor.
func (k queueKey) String() string {
	return fmt.Sprintf("%d|%s|%s", k.rank, k.due.UTC().Format(dueLayout), k.id)
}

func (k queueKey) compare(o queueKey) int {
	return cmp.Or(cmp.Compare(k.rank, o.rank), k.due.Compare(o.due), cmp.Compare(k.id, o.id))
}

// parseQueueKey reads a cursor triageKey wrote; false if it is not one
// (such a cursor is compared as text, as BuildTriage does).
func parseQueueKey(s string) (queueKey, bool) {
	parts := strings.SplitN(s, "|", 3)
	if len(parts) != 3 || len(parts[0]) != 1 || parts[0][0] < '0' || parts[0][0] > '9' || len(parts[1]) != len(dueLayout) {
		return queueKey{}, false
	}
	due, err := time.Parse(dueLayout, parts[1])
	if err != nil || due.UTC().Format(dueLayout) != parts[1] {
		return queueKey{}, false
	}
	return queueKey{rank: int(parts[0][0] - '0'), due: due, id: COI(parts[2])}, true
}

// triageFromIndex is AccessTriage from the access index: the clocks, the
// counts and the order come from the rows; only the requests of the page
// are folded.
func (s *Service) triageFromIndex(ctx context.Context, idx AccessIndex, actor User, after string, limit int) (TriageQueue, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := s.visibleRows(ctx, idx, actor, AccessSubmitted, AccessInfoRequested)
	if err != nil {
		return TriageQueue{}, err
	}
	now := s.now().UTC()
	cursor, cursorOK := parseQueueKey(after)
	type item struct {
		key queueKey
		c   AccessClock
	}
	q := TriageQueue{Items: []TriageItem{}}
	page := make([]item, 0, limit+1)
	for _, w := range rows {
		if !triageOpen(w.State) {
			continue
		}
		c := s.sla.clockOfRow(w, now)
		q.Open++
		if c.Breached {
			q.Breached++
		}
		if c.DueSoon {
			q.DueSoon++
		}
		// Keep the limit+1 first items after the cursor: one more than
		// the page says whether there is a next page. The key is
		// formatted only for the items that may be on the page.
		k := queueKey{rank: urgencyRank(w.Urgency), due: c.Due, id: w.ID}
		switch {
		case after == "":
		case cursorOK && k.compare(cursor) <= 0:
			continue
		case !cursorOK && k.String() <= after:
			continue
		}
		if len(page) == limit+1 && k.compare(page[limit].key) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(page, k, func(x item, k queueKey) int { return x.key.compare(k) })
		page = slices.Insert(page, i, item{key: k, c: c})
		if len(page) > limit+1 {
			page = page[:limit+1]
		}
	}
	more := len(page) > limit
	if more {
		page = page[:limit]
	}
	for _, it := range page {
		r, err := s.AccessRequest(ctx, actor, it.key.id)
		if err != nil {
			return TriageQueue{}, err
		}
		q.Items = append(q.Items, TriageItem{Request: r, Clock: it.c})
	}
	if more {
		q.Next = page[len(page)-1].key.String()
	}
	return q, nil
}

// figuresFromIndex is AccessFiguresOf over the access index's rows of the
// decided requests actor may read.
func (s *Service) figuresFromIndex(ctx context.Context, idx AccessIndex, actor User) ([]DecisionFigures, error) {
	rows, err := s.visibleRows(ctx, idx, actor, AccessDecided, AccessEnrolled, AccessWithdrawn)
	if err != nil {
		return nil, err
	}
	hours := map[figuresKey][]float64{}
	breached := map[figuresKey]int{}
	for _, w := range rows {
		if w.Decided.IsZero() {
			continue
		}
		c := s.sla.clockOfRow(w, w.Decided)
		k := figuresKey{w.Decided.UTC().Format(monthLayout), w.Urgency}
		hours[k] = append(hours[k], c.Elapsed.Hours())
		if c.Breached {
			breached[k]++
		}
	}
	return decisionFigures(hours, breached), nil
}
