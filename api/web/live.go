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
	chartW      = 600.0
	chartH      = 160.0
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

// legChart is the drawn chart of a leg's readings.
type legChart struct {
	Points   string // SVG polyline points
	Data     string // JSON [[unix ms, °C], ...] for the script's ring buffer
	MinC     string
	MaxC     string
	LoY, HiY string // limit line positions
	Lo, Hi   float64
	Count    int
	LiveURL  string
}

// chart builds the leg's chart, or nil when no readings are stored (or no
// reading store is configured).
func (w *ui) chart(c echo.Context, ch *custody.Chain, l custody.Leg) *legChart {
	_, rs, err := w.svc.LegReadings(c.Request().Context(), ch.COI, l.N)
	if err != nil {
		return nil
	}
	type pt struct {
		t int64
		c float64
	}
	var pts []pt
	for _, r := range rs {
		if r.TempC != nil {
			pts = append(pts, pt{r.DeviceTime.UnixMilli(), *r.TempC})
		}
	}
	lc := &legChart{Count: len(pts)}
	if l.Open {
		lc.LiveURL = fmt.Sprintf("/chains/%s/legs/%d/live", ch.COI, l.N)
	}
	p, hasProfile := w.svc.Profile(l.Profile)
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
		thin := make([]pt, 0, chartPoints)
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
	y := func(v float64) float64 { return chartH - (v-lo)/(hi-lo)*chartH }
	var sb strings.Builder
	data := make([][2]float64, len(pts))
	for i, x := range pts {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%.1f,%.1f", float64(x.t-t0)/float64(t1-t0)*chartW, y(x.c))
		data[i] = [2]float64{float64(x.t), x.c}
	}
	lc.Points = sb.String()
	b, _ := json.Marshal(data)
	lc.Data = string(b)
	lc.MinC, lc.MaxC = fmt.Sprintf("%.1f", lo+pad), fmt.Sprintf("%.1f", hi-pad)
	if hasProfile && p.MinC != nil {
		lc.LoY, lc.Lo = fmt.Sprintf("%.1f", y(*p.MinC)), *p.MinC
	}
	if hasProfile && p.MaxC != nil {
		lc.HiY, lc.Hi = fmt.Sprintf("%.1f", y(*p.MaxC)), *p.MaxC
	}
	return lc
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
	ch, err := w.svc.Chain(ctx, coi)
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
