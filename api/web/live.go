package web

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/coldchain"
	"github.com/coid-project/coid/labels/chart"
	"github.com/labstack/echo/v4"
)

// The leg temperature chart: the chain page draws the leg's readings as an
// SVG on the server (so it shows without script), and the page script
// keeps it current from GET /chains/:coi/legs/:n/live, a server-sent
// events stream of the leg's new readings. The script keeps at most
// chartPoints points in a ring, so a page left open for days does not grow.

const (
	// chartPoints bounds the points drawn, on the server and in the page.
	chartPoints = 600
	chartW      = 640.0
	chartH      = 170.0
)

const (
	// liveInterval is how often the stream looks for new readings; one
	// reading per second per leg is the rate the chart keeps up with.
	liveInterval = time.Second
	// liveMaxDuration ends a stream; the browser reconnects with
	// Last-Event-ID and resumes, so no request lives for ever.
	liveMaxDuration = 5 * time.Minute
	// liveHeartbeat keeps proxies from closing an idle stream.
	liveHeartbeat = 15 * time.Second
)

// Chart geometry, in SVG user units: the plot area inside the axes.
const (
	plotL = 64.0
	plotT = 10.0
	plotW = chartW - plotL - 12
	plotH = chartH
	// svgW and svgH are the whole drawing, axes and their labels included.
	svgW = chartW
	svgH = plotT + plotH + 46
)

// legChart is the drawn chart of a leg's readings: temperature against
// device time, with both axes labelled in their units, the profile's
// limits as lines, the leg's excursions shaded and silences drawn as gaps
// in the line.
type legChart struct {
	Segments []string // SVG polyline points, one per unbroken run of readings
	Data     string   // JSON [[unix ms, °C], ...] for the script's ring buffer
	Gaps     string   // JSON [[from ms, to ms], ...]: silences the line breaks across
	Exc      string   // JSON [[from ms, to ms or 0 (ongoing)], ...]: the leg's excursions
	GapMS    int64    // a silence longer than this between two readings is a gap
	MinC     string
	MaxC     string
	LoY, HiY string // limit line positions
	Lo, Hi   float64
	YTicks   []chartTick
	XTicks   []chartTick
	Shades   []chartShade
	Count    int
	LiveURL  string
	// Zone is the IANA name of the zone the time axis is labelled in (the
	// zone of the site the leg left), "UTC" for a site with no zone.
	Zone string
	// The plot area (left, top, width, height, right, bottom) and the
	// drawing's size, for the template and the script.
	PlotL, PlotT, PlotW, PlotH, PlotR, PlotB, SvgW, SvgH float64
}

// chartTick is one labelled tick of an axis, at Pos (x or y).
type chartTick struct {
	Pos   string
	Label string
}

// chartShade is a shaded excursion: its left edge and width.
type chartShade struct {
	X, W string
}

// chartGap returns how long two consecutive readings (times in
// milliseconds) may be apart before the line breaks between them, by the
// custody report's rule, coldchain.LineBreak; an unknown profile gives
// the readings' own rule only.
func chartGap(p custody.Profile, known bool, ts []int64) time.Duration {
	if !known {
		p = custody.Profile{}
	}
	var d []time.Duration
	for i := 1; i < len(ts); i++ {
		d = append(d, time.Duration(ts[i]-ts[i-1])*time.Millisecond)
	}
	return coldchain.LineBreak(p, d)
}

// chart builds the leg's chart, or nil when no readings are stored (or no
// reading store is configured). exc are the leg's excursions, shaded; the
// time axis is labelled in zone (nil: UTC).
func (w *ui) chart(c echo.Context, ch *custody.Chain, l custody.Leg, exc []custody.ExcursionEntry, zone *time.Location) *legChart {
	if zone == nil {
		zone = time.UTC
	}
	_, rs, err := w.svc.LegReadings(c.Request().Context(), ch.COI, l.N)
	if err != nil {
		return nil
	}
	var pts []chartPt
	for _, r := range rs {
		if r.TempC != nil {
			pts = append(pts, chartPt{r.DeviceTime.UnixMilli(), *r.TempC})
		}
	}
	lc := &legChart{Count: len(pts), PlotL: plotL, PlotT: plotT, PlotW: plotW, PlotH: plotH,
		PlotR: plotL + plotW, PlotB: plotT + plotH, SvgW: svgW, SvgH: svgH, Zone: zone.String()}
	if l.Open {
		lc.LiveURL = fmt.Sprintf("/chains/%s/legs/%d/live", ch.COI, l.N)
	}
	p, hasProfile := w.svc.Profile(l.Profile)
	ts := make([]int64, len(pts))
	for i, x := range pts {
		ts[i] = x.t
	}
	gap := chartGap(p, hasProfile, ts)
	lc.GapMS = gap.Milliseconds()
	// Gaps are found on all readings, before thinning, so a thinned line
	// breaks exactly across real silences.
	var gaps [][2]int64
	for i := 1; i < len(pts); i++ {
		if gap > 0 && pts[i].t-pts[i-1].t > gap.Milliseconds() {
			gaps = append(gaps, [2]int64{pts[i-1].t, pts[i].t})
		}
	}
	var spans [][2]int64
	for _, e := range exc {
		var end int64
		if e.End != nil {
			end = e.End.UnixMilli()
		}
		spans = append(spans, [2]int64{e.Start.UnixMilli(), end})
	}
	lc.Gaps, lc.Exc = jsonOr(gaps), jsonOr(spans)
	if len(pts) == 0 {
		if !l.Open {
			return nil
		}
		lc.Data = "[]"
		return lc
	}
	if len(pts) > chartPoints {
		// Keep the newest points, evenly thinned.
		step := float64(len(pts)) / chartPoints
		thin := make([]chartPt, 0, chartPoints)
		for i := 0; i < chartPoints; i++ {
			thin = append(thin, pts[int(float64(i)*step)])
		}
		thin[len(thin)-1] = pts[len(pts)-1]
		pts = thin
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range pts {
		lo, hi = math.Min(lo, x.c), math.Max(hi, x.c)
	}
	dlo, dhi := lo, hi
	if hasProfile {
		if p.MinC != nil {
			lo = math.Min(lo, *p.MinC)
		}
		if p.MaxC != nil {
			hi = math.Max(hi, *p.MaxC)
		}
	}
	if hi-lo < 1 {
		lo, hi = lo-0.5, hi+0.5
	}
	pad := (hi - lo) * 0.08
	lo, hi = lo-pad, hi+pad
	t0, t1 := pts[0].t, pts[len(pts)-1].t
	if t1 == t0 {
		t1 = t0 + 1
	}
	X := func(t int64) float64 { return plotL + float64(t-t0)/float64(t1-t0)*plotW }
	Y := func(v float64) float64 { return plotT + plotH - (v-lo)/(hi-lo)*plotH }
	var sb strings.Builder
	data := make([][2]float64, len(pts))
	gi := 0
	for i, x := range pts {
		if i > 0 {
			for gi < len(gaps) && gaps[gi][1] <= pts[i-1].t {
				gi++
			}
			if gi < len(gaps) && gaps[gi][0] >= pts[i-1].t && gaps[gi][1] <= x.t {
				lc.Segments = append(lc.Segments, sb.String())
				sb.Reset()
			} else {
				sb.WriteByte(' ')
			}
		}
		fmt.Fprintf(&sb, "%.1f,%.1f", X(x.t), Y(x.c))
		data[i] = [2]float64{float64(x.t), x.c}
	}
	lc.Segments = append(lc.Segments, sb.String())
	lc.Data = jsonOr(data)
	lc.MinC, lc.MaxC = fmt.Sprintf("%.1f", dlo), fmt.Sprintf("%.1f", dhi)
	if hasProfile && p.MinC != nil {
		lc.LoY, lc.Lo = fmt.Sprintf("%.1f", Y(*p.MinC)), *p.MinC
	}
	if hasProfile && p.MaxC != nil {
		lc.HiY, lc.Hi = fmt.Sprintf("%.1f", Y(*p.MaxC)), *p.MaxC
	}
	step := chart.NiceStep(hi-lo, 5)
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		lc.YTicks = append(lc.YTicks, chartTick{fmt.Sprintf("%.1f", Y(v)), strconv.FormatFloat(roundTo(v, step), 'f', -1, 64)})
	}
	tstep := chart.TimeStep(time.Duration(t1-t0)*time.Millisecond, 6)
	sm := tstep.Milliseconds()
	// Ticks fall on whole steps of local time at the first reading (a zone
	// may be half an hour off UTC), and each is labelled in local time.
	_, off := time.UnixMilli(t0).In(zone).Zone()
	offMS := int64(off) * 1000
	for t := ceilDiv(t0+offMS, sm)*sm - offMS; t <= t1; t += sm {
		layout := "15:04"
		if tstep < time.Minute {
			layout = "15:04:05"
		}
		lc.XTicks = append(lc.XTicks, chartTick{fmt.Sprintf("%.1f", X(t)), time.UnixMilli(t).In(zone).Format(layout)})
	}
	for _, sp := range spans {
		a, b := sp[0], sp[1]
		if b == 0 || b > t1 {
			b = t1
		}
		a = max(a, t0)
		if b <= a {
			continue
		}
		lc.Shades = append(lc.Shades, chartShade{fmt.Sprintf("%.1f", X(a)), fmt.Sprintf("%.1f", max(X(b)-X(a), 1))})
	}
	return lc
}

// ceilDiv is a/b rounded up, for b > 0 and any a.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a > 0 {
		q++
	}
	return q
}

// chartPt is one plotted reading: unix ms and °C.
type chartPt struct {
	t int64
	c float64
}

// roundTo rounds v to a multiple of step, dropping float noise from tick
// labels.
func roundTo(v, step float64) float64 {
	r := math.Round(v/step) * step
	if math.Abs(r) < step/1e6 {
		return 0
	}
	return math.Round(r*1e6) / 1e6
}

// jsonOr is v as JSON, "[]" for nothing.
func jsonOr(v any) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return "[]"
	}
	return string(b)
}

// legLive streams the new readings of an open leg as server-sent events:
//
//	id: <device time, unix ms>
//	event: reading
//	data: {"t":<unix ms>,"c":<°C>}
//
// It answers 204 (which tells EventSource not to reconnect) when the leg
// is closed or no reading store is configured. Readings that arrive late
// with a device time before the last one sent are not streamed; they
// appear when the page is reloaded.
func (w *ui) legLive(c echo.Context) error {
	coi, err := api.COIParam(c)
	if err != nil {
		return w.fail(c, err)
	}
	n, err := strconv.Atoi(c.Param("n"))
	if err != nil {
		return w.fail(c, fmt.Errorf("leg number: %w", custody.ErrInvalid))
	}
	ctx := c.Request().Context()
	ch, err := w.svc.ReadChain(ctx, sessionUser(c), coi)
	if err != nil {
		return w.fail(c, err)
	}
	if n < 1 || n > len(ch.Legs) {
		return w.fail(c, fmt.Errorf("chain %s has no leg %d: %w", ch.Display, n, custody.ErrNotFound))
	}
	l := ch.Legs[n-1]
	if !l.Open {
		return c.NoContent(http.StatusNoContent)
	}
	if _, err := w.svc.ShipperReadings(ctx, l.Shipper, w.svc.Now(), w.svc.Now()); err != nil {
		return c.NoContent(http.StatusNoContent)
	}
	after := l.ShippedAt.Add(-time.Millisecond)
	for _, v := range []string{c.Request().Header.Get("Last-Event-ID"), c.QueryParam("after")} {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && v != "" {
			if t := time.UnixMilli(ms); t.After(after) {
				after = t
			}
		}
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.Response().WriteHeader(http.StatusOK)
	fmt.Fprint(c.Response(), "retry: 3000\n\n")
	c.Response().Flush()
	tick := time.NewTicker(liveInterval)
	defer tick.Stop()
	end := time.NewTimer(liveMaxDuration)
	defer end.Stop()
	lastWrite := time.Now()
	for {
		rs, err := w.svc.ShipperReadings(ctx, l.Shipper, after.Add(time.Millisecond), time.Time{})
		if err != nil {
			return nil
		}
		if len(rs) > chartPoints {
			rs = rs[len(rs)-chartPoints:]
		}
		for _, r := range rs {
			if !r.DeviceTime.After(after) {
				continue
			}
			after = r.DeviceTime
			if r.TempC == nil {
				continue
			}
			ms := r.DeviceTime.UnixMilli()
			fmt.Fprintf(c.Response(), "id: %d\nevent: reading\ndata: {\"t\":%d,\"c\":%s}\n\n", ms, ms,
				strconv.FormatFloat(*r.TempC, 'f', -1, 64))
			lastWrite = time.Now()
		}
		if time.Since(lastWrite) >= liveHeartbeat {
			fmt.Fprint(c.Response(), ": ping\n\n")
			lastWrite = time.Now()
		}
		c.Response().Flush()
		select {
		case <-ctx.Done():
			return nil
		case <-w.srv.Stopping():
			return nil
		case <-end.C:
			return nil
		case <-tick.C:
		}
	}
}
