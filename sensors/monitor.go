package sensors

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/coldchain"
)

// Alert is an excursion, or a hold-time warning, just written to a chain,
// as published on "coid/alerts/{coi}" and streamed to HTTP clients.
// Exactly one of Excursion and Warning is set.
type Alert struct {
	COI custody.COI `json:"coi"`
	// Seq is the excursion (or warning) record's log position; QA names
	// an excursion's in the disposition.
	Seq       uint64                `json:"seq"`
	Time      time.Time             `json:"time"`
	Excursion custody.ExcursionData `json:"excursion,omitzero"`
	// Warning is a hold-time warning (custody.StepHoldWarning): disruption
	// projected, not an excursion; it blocks nothing.
	Warning *custody.HoldWarningData `json:"warning,omitempty"`
}

// AlertHub fans alerts out to subscribers (the SSE streams). A subscriber
// that does not keep up loses alerts rather than slowing the others; the
// excursion itself is in the ledger either way.
type AlertHub struct {
	mu      sync.Mutex
	subs    map[chan Alert]struct{}
	dropped atomic.Uint64
}

// NewAlertHub returns an empty hub.
func NewAlertHub() *AlertHub { return &AlertHub{subs: map[chan Alert]struct{}{}} }

// Subscribe returns a channel of alerts and a function that ends the
// subscription.
func (h *AlertHub) Subscribe() (<-chan Alert, func()) {
	ch := make(chan Alert, 64)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}

// Publish sends a to every subscriber without blocking.
func (h *AlertHub) Publish(a Alert) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- a:
		default:
			h.dropped.Add(1)
		}
	}
}

// MonitorConfig configures a Monitor.
type MonitorConfig struct {
	Service *custody.Service
	// Readings is where the legs' readings are read. When it is also a
	// custody.ReadingLog (boltstore is), the monitor judges incrementally:
	// each check reads only the readings stored since the last one.
	Readings custody.ReadingStore
	Logger   *slog.Logger
	// Interval is how often every leg is judged even without new
	// readings, which is how silence is found (default 15s).
	Interval time.Duration
	// Settle is how long the monitor waits after new readings before
	// judging the legs they touch, to batch bursts (default 250ms).
	Settle time.Duration
	// Alert is called for each excursion and hold-time warning written;
	// it must not block.
	Alert func(Alert)
	// Hold configures the hold-time projection made for every leg judged
	// and the warnings it raises (zero: coldchain's defaults).
	Hold coldchain.HoldConfig
	// OnCheck, if set, is told of each check Run makes, after it: the
	// shippers judged (nil for every leg: the first check and those every
	// Interval; empty after Wake alone, when only the legs the readings
	// stored since the last check reached are judged) and how many
	// excursions and warnings it wrote. It must not block.
	OnCheck func(shippers map[string]bool, wrote int)
}

// Monitor attributes stored readings to legs and writes excursions: after
// new readings of a shipper are committed it judges that shipper's legs
// (coldchain.EvaluateLeg over the leg's window), and every Interval it judges
// all legs. Each excursion is appended once (Service.RecordExcursion
// checks the chain's existing excursion records, so restarts and
// re-evaluations write nothing twice). An excursion recorded while still
// going on gets, once it is over, a system correction with its final end,
// worst value and duration, and another whenever readings stored late
// change those figures (Service.ReviseLegExcursions). An excursion going on
// when its leg was received ends, for that leg, at the receipt.
//
// Each leg judged also gets a hold-time projection (coldchain.ProjectHold)
// from the same readings; each warning it gives is recorded once per leg
// and cause (Service.RecordHoldWarning) and alerted when first recorded.
//
// The legs to judge are derived from the chains, which only an append can
// change: the monitor keeps them, with the ledger position they were read
// at, and reads the chains again only when that position has moved.
//
// With a store that keeps a reading log (custody.ReadingLog) the monitor
// judges incrementally: it keeps each leg's rule state
// (coldchain.LegState) and a cursor into the log, and each check reads only
// the readings stored since the last, carries them into the states of the
// legs they belong to, and finishes each leg's judgement at now without
// reading its readings again. A leg is judged again from its readings in
// the store only when that cannot give the same answer: the first time it
// is seen (so a restart rebuilds every state with one full check, and
// nothing needs to be persisted), when readings arrive that sort before
// readings already judged (stored late: they can change or move an
// excursion), when the leg changed (received), and when the log cannot
// say what was stored since the cursor. The service is asked to record or
// revise a leg's excursions only when they changed otherwise than by an
// open excursion growing (which records nothing), or when the ledger moved
// since it was last asked (what the chain records may have changed).
type Monitor struct {
	cfg   MonitorConfig
	mu    sync.Mutex
	dirty map[string]bool
	// others is set by Wake: readings were stored elsewhere.
	others bool
	wake   chan struct{}

	// checkMu serializes Check and guards the legs below.
	checkMu sync.Mutex
	legsOK  bool
	head    uint64
	legs    []custody.LegRef
	byShip  map[string][]int
	// warnedSet holds the legs' warning causes known to be recorded.
	warnedSet map[warnKey]bool

	// log is cfg.Readings as a reading log, nil when it is none.
	log custody.ReadingLog
	// cursor is the log position every leg state has seen (valid when
	// cursorOK); tracks are the legs' carried states.
	cursor   uint64
	cursorOK bool
	tracks   map[legKey]*legTrack
}

// legKey names a leg.
type legKey struct {
	coi custody.COI
	leg int
}

// legTrack is what the monitor carries for one leg between checks.
type legTrack struct {
	leg   custody.Leg // as when state was built
	state *coldchain.LegState
	// fresh holds readings from the log not yet given to state.
	fresh []custody.Reading
	// applied are the excursions last given to the service without
	// error; valid when appliedOK.
	applied   []custody.Excursion
	appliedOK bool
}

// NewMonitor returns a monitor; Run drives it.
func NewMonitor(cfg MonitorConfig) *Monitor {
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 250 * time.Millisecond
	}
	m := &Monitor{cfg: cfg, dirty: map[string]bool{}, wake: make(chan struct{}, 1), tracks: map[legKey]*legTrack{}}
	m.log, _ = cfg.Readings.(custody.ReadingLog)
	return m
}

// Notify marks the shippers of newly stored readings for judging. It never
// blocks; use it as PipelineConfig.OnCommitted.
func (m *Monitor) Notify(readings []custody.Reading, _ custody.IngestResult) {
	m.mu.Lock()
	for i := range readings {
		m.dirty[readings[i].Shipper] = true
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Wake tells the monitor that readings were stored that did not pass
// through Notify (another instance sharing the store took them in): after
// the Settle, as for Notify, it judges the legs the readings stored since
// its last check reached, read from the store's reading log (every leg
// without one). It never blocks.
func (m *Monitor) Wake() {
	m.mu.Lock()
	m.others = true
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run judges legs until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	m.check(ctx, nil)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.check(ctx, nil)
		case <-m.wake:
			select {
			case <-ctx.Done():
				return
			case <-time.After(m.cfg.Settle):
			}
			m.mu.Lock()
			d, others := m.dirty, m.others
			m.dirty, m.others = map[string]bool{}, false
			m.mu.Unlock()
			switch {
			case others && m.log == nil:
				m.check(ctx, nil) // nothing says which shippers
			case len(d) > 0 || others:
				m.check(ctx, d)
			}
		}
	}
}

// check is Check, told to OnCheck.
func (m *Monitor) check(ctx context.Context, shippers map[string]bool) {
	n := m.Check(ctx, shippers)
	if m.cfg.OnCheck != nil && ctx.Err() == nil {
		m.cfg.OnCheck(shippers, n)
	}
}

// Check judges the legs of the given shippers (all legs when shippers is
// nil) and writes new excursions. It returns how many it wrote.
func (m *Monitor) Check(ctx context.Context, shippers map[string]bool) int {
	m.checkMu.Lock()
	defer m.checkMu.Unlock()
	all, err := m.currentLegs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.cfg.Logger.Error("telemetry legs", "err", err)
		}
		return 0
	}
	legs := all
	if shippers != nil {
		var idx []int
		for sh := range shippers {
			idx = append(idx, m.byShip[sh]...)
		}
		slices.Sort(idx) // chain order, as in a check of every leg
		legs = make([]custody.LegRef, len(idx))
		for k, i := range idx {
			legs[k] = all[i]
		}
	}
	now := m.cfg.Service.Now()
	if m.log != nil {
		return m.checkIncremental(ctx, all, legs, now)
	}
	n := 0
	for _, l := range legs {
		l = l.At(now)
		rs, _, err := m.cfg.Readings.ShipperReadings(ctx, l.Leg.Shipper, l.From, l.To, 0)
		if err != nil {
			m.cfg.Logger.Error("leg readings", "coi", string(l.COI), "leg", l.Leg.N, "err", err)
			continue
		}
		m.apply(ctx, l, coldchain.EvaluateLeg(l, rs), &n)
		if l.Leg.ReceivedAt == nil {
			n += m.warn(ctx, l, coldchain.ProjectHold(l, rs, now, m.cfg.Hold))
		}
	}
	return n
}

// checkIncremental is Check with a reading log: it reads the readings
// stored since the cursor into the legs' tracks, then judges legs (those
// asked for, and every leg that new readings reached) from their carried
// state. checkMu is held.
func (m *Monitor) checkIncremental(ctx context.Context, all, legs []custody.LegRef, now time.Time) int {
	reached, err := m.readLog(ctx, all)
	if err != nil {
		if ctx.Err() == nil {
			m.cfg.Logger.Error("telemetry since the last check", "err", err)
		}
		return 0
	}
	if len(reached) > 0 && len(legs) < len(all) {
		asked := make(map[legKey]bool, len(legs))
		for _, l := range legs {
			asked[legKey{l.COI, l.Leg.N}] = true
		}
		for _, l := range all { // chain order, as in a check of every leg
			if k := (legKey{l.COI, l.Leg.N}); reached[k] && !asked[k] {
				legs = append(legs, l)
			}
		}
	}
	n := 0
	for _, l := range legs {
		l = l.At(now)
		k := legKey{l.COI, l.Leg.N}
		tr, err := m.judgeState(ctx, k, l, now)
		if err != nil {
			m.cfg.Logger.Error("leg readings", "coi", string(l.COI), "leg", l.Leg.N, "err", err)
			continue
		}
		es, hp := tr.state.Judge(l, now, m.cfg.Hold)
		if !tr.appliedOK || !sameRecorded(tr.applied, es) {
			tr.applied, tr.appliedOK = es, m.apply(ctx, l, es, &n) == nil
		}
		n += m.warn(ctx, l, hp)
	}
	return n
}

// readLog reads the readings stored since the cursor, page by page, into
// the tracks of the legs of their shippers, and returns the legs they
// reached. Until a state is built there is no cursor and nothing to read:
// the first state built sets it (judgeState), and every later state is
// built from readings at least as recent. A log that cannot say what was
// stored since the cursor drops every state, to be built again from the
// store.
func (m *Monitor) readLog(ctx context.Context, all []custody.LegRef) (map[legKey]bool, error) {
	byShip := make(map[string][]legKey)
	for _, l := range all {
		byShip[l.Leg.Shipper] = append(byShip[l.Leg.Shipper], legKey{l.COI, l.Leg.N})
	}
	reached := map[legKey]bool{}
	for m.cursorOK {
		p, err := m.log.ReadingsSince(ctx, m.cursor, 0)
		if err != nil {
			return nil, err
		}
		if p.Incomplete {
			clear(m.tracks)
		}
		for _, r := range p.Readings {
			for _, k := range byShip[r.Shipper] {
				if tr := m.tracks[k]; tr != nil {
					tr.fresh = append(tr.fresh, r)
					reached[k] = true
				}
			}
		}
		m.cursor = p.Through
		if !p.More {
			break
		}
	}
	return reached, nil
}

// judgeState returns leg l's track with its state brought up to date:
// the readings from the log given to it, or, when that cannot give the
// same answer as judging all the leg's readings, the state built again
// from the store. checkMu is held.
func (m *Monitor) judgeState(ctx context.Context, k legKey, l custody.LegRef, now time.Time) (*legTrack, error) {
	tr := m.tracks[k]
	if tr != nil && sameLeg(tr.leg, l.Leg) && tr.state.Add(tr.fresh) && !tr.state.Behind(l, now) {
		tr.fresh = tr.fresh[:0]
		return tr, nil
	}
	// The window's end is left open for an open leg: readings whose
	// device time is after now wait in the state for the window to
	// reach them.
	to := l.To
	if l.Leg.ReceivedAt == nil {
		to = time.Time{}
	}
	rs, wm, err := m.cfg.Readings.ShipperReadings(ctx, l.Leg.Shipper, l.From, to, 0)
	if err != nil {
		delete(m.tracks, k)
		return nil, err
	}
	if !m.cursorOK {
		m.cursor, m.cursorOK = wm, true
	}
	if tr == nil || !sameLeg(tr.leg, l.Leg) {
		tr = &legTrack{leg: l.Leg}
		m.tracks[k] = tr
	}
	tr.state = coldchain.NewLegState(l, m.cfg.Hold)
	tr.state.Reset(rs)
	tr.fresh = tr.fresh[:0]
	return tr, nil
}

// sameLeg reports whether a and b are the same leg in the same state, as
// far as judging it goes: shipper, profile, start and receipt.
func sameLeg(a, b custody.Leg) bool {
	return a.Shipper == b.Shipper && a.Profile == b.Profile && a.ShippedAt.Equal(b.ShippedAt) &&
		(a.ReceivedAt == nil) == (b.ReceivedAt == nil) && (a.ReceivedAt == nil || a.ReceivedAt.Equal(*b.ReceivedAt))
}

// sameRecorded reports whether recording and revising excursions b gives
// what a gave: the same excursions but for the duration and breach of
// those still open (an open excursion growing records nothing).
func sameRecorded(a, b []custody.Excursion) bool {
	return slices.EqualFunc(a, b, func(x, y custody.Excursion) bool {
		if x.Open() && y.Open() {
			x.Duration, x.Breach, y.Duration, y.Breach = 0, 0, 0, 0
		}
		return x.ID == y.ID && x.Kind == y.Kind && x.Start.Equal(y.Start) && x.End.Equal(y.End) &&
			x.Duration == y.Duration && x.Breach == y.Breach && sameValue(x.Worst, y.Worst) && sameValue(x.Limit, y.Limit)
	})
}

func sameValue(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// apply records leg l's excursions es, judged now, that the chain lacks
// and revises those recorded whose figures changed, alerting the new ones
// and counting them in n; it returns the first error, after trying all.
func (m *Monitor) apply(ctx context.Context, l custody.LegRef, es []custody.Excursion, n *int) error {
	// The recorded excursions' ends, and figures that readings stored
	// late changed, judged against everything the leg shows now.
	judged := func(k custody.ExcursionKind) bool { return coldchain.Judged(l.Profile, k) }
	_, first := m.cfg.Service.ReviseLegExcursions(ctx, l.COI, l.Leg.N, es, judged)
	if first != nil {
		m.cfg.Logger.Error("excursion figures not recorded", "coi", string(l.COI), "leg", l.Leg.N, "err", first)
	}
	for _, e := range es {
		rec, added, err := m.cfg.Service.RecordExcursion(ctx, l.COI, l.Leg.N, e)
		if err != nil {
			m.cfg.Logger.Error("excursion not recorded", "coi", string(l.COI), "leg", l.Leg.N, "excursion_id", e.ID, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		if !added {
			continue
		}
		*n++
		if m.cfg.Alert != nil {
			d, _ := rec.Body().(custody.ExcursionData)
			m.cfg.Alert(Alert{COI: l.COI, Seq: rec.Seq, Time: rec.Time, Excursion: d})
		}
	}
	return first
}

// warn records (and alerts) the warnings of leg l's hold-time projection
// hp not yet recorded; it returns how many it recorded.
func (m *Monitor) warn(ctx context.Context, l custody.LegRef, hp custody.HoldProjection) int {
	if l.Leg.ReceivedAt != nil {
		return 0
	}
	n := 0
	for _, w := range coldchain.HoldWarnings(l, hp) {
		if m.warned(l, w.Cause) {
			continue
		}
		rec, added, err := m.cfg.Service.RecordHoldWarning(ctx, l.COI, l.Leg.N, w)
		if err != nil {
			m.cfg.Logger.Error("hold warning not recorded", "coi", string(l.COI), "leg", l.Leg.N, "cause", string(w.Cause), "err", err)
			continue
		}
		m.setWarned(l, w.Cause)
		if !added {
			continue
		}
		n++
		if m.cfg.Alert != nil {
			d, _ := rec.Body().(custody.HoldWarningData)
			m.cfg.Alert(Alert{COI: l.COI, Seq: rec.Seq, Time: rec.Time, Warning: &d})
		}
	}
	return n
}

// warnKey names a leg's warning cause in Monitor.warnedSet.
type warnKey struct {
	coi   custody.COI
	leg   int
	cause custody.HoldWarningCause
}

// warned reports whether the cause is known to be recorded on the leg, so
// the chain need not be read again for it; checkMu is held.
func (m *Monitor) warned(l custody.LegRef, c custody.HoldWarningCause) bool {
	return m.warnedSet[warnKey{l.COI, l.Leg.N, c}]
}

func (m *Monitor) setWarned(l custody.LegRef, c custody.HoldWarningCause) {
	if m.warnedSet == nil {
		m.warnedSet = map[warnKey]bool{}
	}
	m.warnedSet[warnKey{l.COI, l.Leg.N, c}] = true
}

// currentLegs returns the legs to judge, read again from the chains only
// when the ledger has grown since they were last read. The head is read
// first: an append landing during the read makes the next call read again.
func (m *Monitor) currentLegs(ctx context.Context) ([]custody.LegRef, error) {
	head, err := m.cfg.Service.LedgerHead(ctx)
	if err != nil {
		return nil, err
	}
	if m.legsOK && head == m.head {
		return m.legs, nil
	}
	legs, err := m.cfg.Service.TelemetryLegs(ctx)
	if err != nil {
		return nil, err
	}
	byShip := make(map[string][]int)
	keep := make(map[legKey]bool, len(legs))
	for i, l := range legs {
		byShip[l.Leg.Shipper] = append(byShip[l.Leg.Shipper], i)
		keep[legKey{l.COI, l.Leg.N}] = true
	}
	maps.DeleteFunc(m.tracks, func(k legKey, _ *legTrack) bool { return !keep[k] }) // chains closed
	for _, tr := range m.tracks {
		// What the chains record changed: record and revise again.
		tr.appliedOK = false
	}
	m.legsOK, m.head, m.legs, m.byShip = true, head, legs, byShip
	return legs, nil
}
