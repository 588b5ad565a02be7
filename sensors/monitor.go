package sensors

import (
	"context"
	"log/slog"
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
	Service  *custody.Service
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
type Monitor struct {
	cfg   MonitorConfig
	mu    sync.Mutex
	dirty map[string]bool
	wake  chan struct{}

	// checkMu serializes Check and guards the legs below.
	checkMu sync.Mutex
	legsOK  bool
	head    uint64
	legs    []custody.LegRef
	byShip  map[string][]int
	// warnedSet holds the legs' warning causes known to be recorded.
	warnedSet map[warnKey]bool
}

// NewMonitor returns a monitor; Run drives it.
func NewMonitor(cfg MonitorConfig) *Monitor {
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 250 * time.Millisecond
	}
	return &Monitor{cfg: cfg, dirty: map[string]bool{}, wake: make(chan struct{}, 1)}
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

// Run judges legs until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	m.Check(ctx, nil)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Check(ctx, nil)
		case <-m.wake:
			select {
			case <-ctx.Done():
				return
			case <-time.After(m.cfg.Settle):
			}
			m.mu.Lock()
			d := m.dirty
			m.dirty = map[string]bool{}
			m.mu.Unlock()
			if len(d) > 0 {
				m.Check(ctx, d)
			}
		}
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
	n := 0
	for _, l := range legs {
		l = l.At(now)
		rs, _, err := m.cfg.Readings.ShipperReadings(ctx, l.Leg.Shipper, l.From, l.To, 0)
		if err != nil {
			m.cfg.Logger.Error("leg readings", "coi", string(l.COI), "leg", l.Leg.N, "err", err)
			continue
		}
		es := coldchain.EvaluateLeg(l, rs)
		// The recorded excursions' ends, and figures that readings stored
		// late changed, judged against everything the leg shows now.
		judged := func(k custody.ExcursionKind) bool { return coldchain.Judged(l.Profile, k) }
		if _, err := m.cfg.Service.ReviseLegExcursions(ctx, l.COI, l.Leg.N, es, judged); err != nil {
			m.cfg.Logger.Error("excursion figures not recorded", "coi", string(l.COI), "leg", l.Leg.N, "err", err)
		}
		for _, e := range es {
			rec, added, err := m.cfg.Service.RecordExcursion(ctx, l.COI, l.Leg.N, e)
			if err != nil {
				m.cfg.Logger.Error("excursion not recorded", "coi", string(l.COI), "leg", l.Leg.N, "excursion_id", e.ID, "err", err)
				continue
			}
			if !added {
				continue
			}
			n++
			if m.cfg.Alert != nil {
				d, _ := rec.Body().(custody.ExcursionData)
				m.cfg.Alert(Alert{COI: l.COI, Seq: rec.Seq, Time: rec.Time, Excursion: d})
			}
		}
		n += m.warn(ctx, l, rs, now)
	}
	return n
}

// warn projects leg l's hold time from its readings rs and records (and
// alerts) the warnings not yet recorded; it returns how many it recorded.
func (m *Monitor) warn(ctx context.Context, l custody.LegRef, rs []custody.Reading, now time.Time) int {
	if l.Leg.ReceivedAt != nil {
		return 0
	}
	n := 0
	for _, w := range coldchain.HoldWarnings(l, coldchain.ProjectHold(l, rs, now, m.cfg.Hold)) {
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
	for i, l := range legs {
		byShip[l.Leg.Shipper] = append(byShip[l.Leg.Shipper], i)
	}
	m.legsOK, m.head, m.legs, m.byShip = true, head, legs, byShip
	return legs, nil
}
