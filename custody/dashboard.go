package custody

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// The scheduling dashboard: vein-to-vein time and each segment's time per
// treatment centre and month (median and 90th percentile), slot
// utilisation per plant and month, and the chains at risk of missing
// their infusion window. It aggregates the chains' summaries (their
// Progress, kept on append), so its cost grows with the chains' count, not
// with their records.

// Bounds of a dashboard query.
const (
	// MaxDashboardMonths bounds the months one dashboard covers.
	MaxDashboardMonths = 24
	// defaultDashboardMonths is the months covered when no range is given.
	defaultDashboardMonths = 12
	// MaxAtRisk bounds the at-risk chains a dashboard lists (most late
	// first).
	MaxAtRisk = 200
)

// monthLayout is the layout of a period.
const monthLayout = "2006-01"

// DashboardQuery filters the dashboard: months From to To (YYYY-MM, both
// included; empty: the last 12 months to this one), a treatment centre
// and a product (empty: all).
type DashboardQuery struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Centre  string `json:"centre,omitempty"`
	Product string `json:"product,omitempty"`
}

// SegmentStats are the actual durations of one segment over the chains
// of a centre and month: how many, their median and 90th percentile, in
// days.
type SegmentStats struct {
	Segment    Segment `json:"segment"`
	Count      int     `json:"count"`
	MedianDays float64 `json:"median_days"`
	P90Days    float64 `json:"p90_days"`
}

// CentreFigures are a treatment centre's durations in one month (the
// month of the chains' apheresis), segment by segment (DurationSegments
// order, those with no chain left out).
type CentreFigures struct {
	Centre   string         `json:"centre"`
	Period   string         `json:"period"`
	Segments []SegmentStats `json:"segments"`
}

// Utilisation is a plant's manufacturing slots in one month: its
// capacity (the slots its calendar offers), how many are booked, and how
// many manufacturing starts were recorded.
type Utilisation struct {
	Plant    string `json:"plant"`
	Period   string `json:"period"`
	Capacity int    `json:"capacity"`
	Booked   int    `json:"booked"`
	Used     int    `json:"used"`
}

// AtRiskChain is a chain whose delay so far, carried forward, puts its
// infusion after its window.
type AtRiskChain struct {
	COI               COI    `json:"coi"`
	Product           string `json:"product"`
	Centre            string `json:"centre"`
	Plant             string `json:"plant"`
	State             State  `json:"state"`
	DelayDays         int    `json:"delay_days"`
	ProjectedInfusion string `json:"projected_infusion"`
	WindowEnd         string `json:"window_end"`
}

// Dashboard is the figures of a dashboard query.
type Dashboard struct {
	Query       DashboardQuery  `json:"query"`
	Centres     []CentreFigures `json:"centres"`
	Utilisation []Utilisation   `json:"utilisation"`
	AtRisk      []AtRiskChain   `json:"at_risk"`
	// AtRiskTotal counts the chains at risk (AtRisk lists at most
	// MaxAtRisk of them).
	AtRiskTotal int `json:"at_risk_total"`
}

// MaySeeDashboard reports whether role r sees the dashboard: coordinators
// (their centres' chains), manufacturing staff and QA (their plants'
// chains) and administrators (all).
func MaySeeDashboard(r Role) bool {
	return r == RoleCoordinator || r == RoleManufacturing || r == RoleQA || r == RoleAdmin
}

// Quantile returns the q quantile (0-1) of sorted values, interpolated
// linearly between the closest ranks (the sample's (n-1)q-th value); 0
// for none.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	h := float64(len(sorted)-1) * q
	i := int(h)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (h-float64(i))*(sorted[i+1]-sorted[i])
}

// normalise checks the query and fills its default months.
func (q *DashboardQuery) normalise(now time.Time) error {
	if q.To == "" {
		q.To = now.UTC().Format(monthLayout)
	}
	to, err := time.Parse(monthLayout, q.To)
	if err != nil {
		return fmt.Errorf("dashboard: to %q is not a month (YYYY-MM): %w", q.To, ErrInvalid)
	}
	if q.From == "" {
		q.From = to.AddDate(0, 1-defaultDashboardMonths, 0).Format(monthLayout)
	}
	from, err := time.Parse(monthLayout, q.From)
	if err != nil {
		return fmt.Errorf("dashboard: from %q is not a month (YYYY-MM): %w", q.From, ErrInvalid)
	}
	if to.Before(from) || from.AddDate(0, MaxDashboardMonths, 0).Before(to.AddDate(0, 1, 0)) {
		return fmt.Errorf("dashboard: from %s to %s must be in order and cover at most %d months: %w", q.From, q.To,
			MaxDashboardMonths, ErrInvalid)
	}
	for _, f := range []struct{ n, v string }{{"centre", q.Centre}, {"product", q.Product}} {
		if f.v != "" {
			if err := validText(f.n, f.v, true, maxReason); err != nil {
				return fmt.Errorf("dashboard: %w", err)
			}
		}
	}
	return nil
}

// monthOf returns the month (YYYY-MM) of milestone k's actual time, at
// its site when the plan says the site's offset, else in UTC; empty: not
// reached. names memoises the months' names: a dashboard reads tens of
// thousands of times over a few months.
func (p *Progress) monthOf(k MilestoneKind, names map[int]string) string {
	t := p.Actual[k]
	if t.IsZero() {
		return ""
	}
	y, m, _ := t.Add(time.Duration(p.Planned[k].Offset) * time.Second).UTC().Date()
	n := y*12 + int(m) - 1
	name, ok := names[n]
	if !ok {
		name = fmt.Sprintf("%04d-%02d", y, int(m))
		names[n] = name
	}
	return name
}

// Dashboard computes the dashboard's figures over the chains u may read
// (ErrForbidden: a role that sees no dashboard). Utilisation covers every
// plant with a capacity; its counts name no chain.
func (s *Service) Dashboard(ctx context.Context, u User, q DashboardQuery) (Dashboard, error) {
	if !MaySeeDashboard(u.Role) {
		return Dashboard{}, fmt.Errorf("dashboard: role %s sees no dashboard: %w", u.Role, ErrForbidden)
	}
	now := s.now()
	if err := q.normalise(now); err != nil {
		return Dashboard{}, err
	}
	out := Dashboard{Query: q, Centres: []CentreFigures{}, Utilisation: []Utilisation{}, AtRisk: []AtRiskChain{}}
	durations := map[siteMonth]*[numDurations][]float64{}
	used := map[siteMonth]int{} // plant and month: manufacturing starts
	all, err := s.store.Chains(ctx, "")
	if err != nil {
		return Dashboard{}, err
	}
	r := s.scope()
	months := map[int]string{}
	// Visibility depends only on the chain's sites for the roles that see
	// the dashboard: decided once per set of sites.
	visible := map[Sites]bool{}
	for i := range all {
		ci := &all[i]
		p := ci.Progress
		if p == nil {
			// Kept before summaries kept progress: fold the chain.
			c, err := s.Chain(ctx, ci.COI)
			if err != nil {
				return Dashboard{}, err
			}
			pp := ProgressOf(c.Records)
			p = &pp
		}
		if m := p.monthOf(MilestoneManufacturingStart, months); m != "" && (q.Product == "" || ci.Product == q.Product) {
			if q.From <= m && m <= q.To {
				used[siteMonth{ci.Sites.Manufacturing, m}]++
			}
		}
		if (q.Centre != "" && ci.Sites.Treatment != q.Centre) || (q.Product != "" && ci.Product != q.Product) {
			continue
		}
		ok, known := visible[ci.Sites]
		if !known {
			var err error
			if ok, err = r.visibleInfo(ctx, u, *ci); err != nil {
				return Dashboard{}, err
			}
			if ci.Sites != (Sites{}) {
				visible[ci.Sites] = ok
			}
		}
		if !ok {
			continue
		}
		if period := p.monthOf(MilestoneApheresis, months); period != "" && q.From <= period && period <= q.To {
			k := siteMonth{ci.Sites.Treatment, period}
			d := durations[k]
			if d == nil {
				d = &[numDurations][]float64{}
				durations[k] = d
			}
			for i, e := range durationEnds {
				a, b := p.Actual[e[0]], p.Actual[e[1]]
				if !a.IsZero() && !b.IsZero() {
					d[i] = append(d[i], b.Sub(a).Hours()/24)
				}
			}
		}
		if p.Booked() && !p.Cancelled && p.Actual[MilestoneInfusion].IsZero() && !ci.State.Terminal() {
			if pva := p.Compare(ci.COI, now); pva.AtRisk {
				out.AtRiskTotal++
				out.AtRisk = append(out.AtRisk, AtRiskChain{COI: ci.COI, Product: ci.Product, Centre: ci.Sites.Treatment,
					Plant: ci.Sites.Manufacturing, State: ci.State, DelayDays: pva.DelayDays,
					ProjectedInfusion: pva.ProjectedInfusion, WindowEnd: pva.WindowEnd})
			}
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(durations), func(a, b siteMonth) int {
		return cmp.Or(cmp.Compare(a.site, b.site), cmp.Compare(a.period, b.period))
	}) {
		f := CentreFigures{Centre: k.site, Period: k.period}
		for i, d := range durations[k] {
			if len(d) == 0 {
				continue
			}
			slices.Sort(d)
			f.Segments = append(f.Segments, SegmentStats{Segment: DurationSegments[i], Count: len(d),
				MedianDays: round2(Quantile(d, 0.5)), P90Days: round2(Quantile(d, 0.9))})
		}
		out.Centres = append(out.Centres, f)
	}
	slices.SortFunc(out.AtRisk, func(a, b AtRiskChain) int {
		return cmp.Or(cmp.Compare(b.DelayDays, a.DelayDays), cmp.Compare(a.COI, b.COI))
	})
	if len(out.AtRisk) > MaxAtRisk {
		out.AtRisk = out.AtRisk[:MaxAtRisk]
	}
	if out.Utilisation, err = s.utilisation(ctx, q, used); err != nil {
		return Dashboard{}, err
	}
	return out, nil
}

// siteMonth keys figures by a site and a month (YYYY-MM).
type siteMonth struct{ site, period string }

// round2 rounds days to two decimals (about a quarter of an hour).
func round2(v float64) float64 {
	if v < 0 {
		return -round2(-v)
	}
	return float64(int64(v*100+0.5)) / 100
}

// utilisation counts each plant's slots per month of the query: the
// capacity its calendar offers (of the query's product, or all), the
// claims held, and used (manufacturing starts by plant and month).
func (s *Service) utilisation(ctx context.Context, q DashboardQuery, used map[siteMonth]int) ([]Utilisation, error) {
	from, _ := time.Parse(monthLayout, q.From)
	to, _ := time.Parse(monthLayout, q.To)
	last := to.AddDate(0, 1, -1)
	sites, err := s.store.SiteSlots(ctx, nil, "", 0, from.Format(DateLayout), last.Format(DateLayout))
	if err != nil {
		return nil, err
	}
	out := []Utilisation{}
	for _, ss := range sites {
		var c Capacity
		if err := json.Unmarshal(ss.Capacity, &c); err != nil {
			return nil, fmt.Errorf("stored capacity of %s is malformed: %v: %w", ss.Site, err, ErrDamaged)
		}
		if len(c.Slots) == 0 && !slices.ContainsFunc(c.Exceptions, func(e CapacityException) bool { return e.Product != "" }) {
			continue // a collection site
		}
		products := slices.Sorted(maps.Keys(c.Slots))
		for _, e := range c.Exceptions {
			if e.Product != "" && !slices.Contains(products, e.Product) {
				products = append(products, e.Product)
			}
		}
		if q.Product != "" {
			products = []string{q.Product}
		}
		byMonth := map[string]*Utilisation{}
		var months []string
		for m := from; !m.After(to); m = m.AddDate(0, 1, 0) {
			p := m.Format(monthLayout)
			months = append(months, p)
			byMonth[p] = &Utilisation{Plant: ss.Site, Period: p, Used: used[siteMonth{ss.Site, p}]}
		}
		for d := from; !d.After(last); d = d.AddDate(0, 0, 1) {
			day, wd := d.Format(DateLayout), d.Weekday()
			for _, p := range products {
				n, _ := c.countOn(day, wd, p)
				byMonth[day[:7]].Capacity += n
			}
		}
		for _, use := range ss.Uses {
			if use.Product != "" && (q.Product == "" || use.Product == q.Product) {
				if u := byMonth[use.Date[:7]]; u != nil {
					u.Booked += use.Used
				}
			}
		}
		for _, m := range months {
			out = append(out, *byMonth[m])
		}
	}
	return out, nil
}
