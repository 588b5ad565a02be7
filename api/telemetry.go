package api

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/sensors"
)

// TelemetryConfig gives the telemetry routes what the domain service does
// not hold: the live alert hub and the quarantine of rejected payloads.
type TelemetryConfig struct {
	// Alerts feeds GET /api/v1/alerts/stream; nil: the stream sends only
	// keep-alives.
	Alerts *sensors.AlertHub
	// Quarantine lists rejected telemetry payloads, newest first; nil:
	// the list is empty.
	Quarantine custody.QuarantineLister
	// KeepAlive is the SSE comment interval (default 15s).
	KeepAlive time.Duration
}

// registerTelemetryRoutes adds the cold-chain telemetry routes.
func (s *Server) registerTelemetryRoutes(g *echo.Group) {
	g.GET("/chains/:coi/legs", s.chainLegs)
	g.GET("/chains/:coi/legs/:n/readings", s.legReadings)
	g.GET("/shippers/:id/readings", s.shipperReadings)
	g.GET("/excursions", s.excursions)
	g.GET("/telemetry/quarantine", s.quarantine)
	g.GET("/alerts/stream", s.alertStream)
}

func (s *Server) chainLegs(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	if err := s.svc.CheckRead(c.Request().Context(), user(c), coi); err != nil {
		return err
	}
	legs, err := s.svc.Legs(c.Request().Context(), coi)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"coi": coi, "legs": legs})
}

// readingJSON is a reading as the API shows it.
type readingJSON struct {
	Shipper    string    `json:"shipper"`
	Seq        *uint64   `json:"seq,omitempty"`
	Time       time.Time `json:"time"`
	Received   time.Time `json:"received_time"`
	TempC      *float64  `json:"temp_c,omitempty"`
	TiltDeg    *float64  `json:"tilt_deg,omitempty"`
	LidOpen    *bool     `json:"lid_open,omitempty"`
	Light      *bool     `json:"light,omitempty"`
	BatteryPct *float64  `json:"battery_pct,omitempty"`
	LN2Pct     *float64  `json:"ln2_pct,omitempty"`
	Lat        *float64  `json:"lat,omitempty"`
	Lon        *float64  `json:"lon,omitempty"`
}

func toJSON(rs []custody.Reading) []readingJSON {
	out := make([]readingJSON, len(rs))
	for i, r := range rs {
		out[i] = readingJSON{Shipper: r.Shipper, Time: r.DeviceTime, Received: r.ReceivedTime, TempC: r.TempC, TiltDeg: r.TiltDeg,
			LidOpen: r.LidOpen, Light: r.Light, BatteryPct: r.BatteryPct, LN2Pct: r.LN2Pct, Lat: r.Lat, Lon: r.Lon}
		if r.HasSeq {
			q := r.Seq
			out[i].Seq = &q
		}
	}
	return out
}

// writeReadings answers with JSON, or CSV when the client accepts
// text/csv.
func writeReadings(c echo.Context, name string, meta map[string]any, rs []custody.Reading) error {
	if strings.Contains(c.Request().Header.Get(echo.HeaderAccept), "text/csv") {
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename=%q`, name+".csv"))
		c.Response().WriteHeader(http.StatusOK)
		w := csv.NewWriter(c.Response())
		_ = w.Write([]string{"shipper", "seq", "device_time", "received_time", "temp_c", "tilt_deg", "lid_open", "light", "battery_pct", "ln2_pct", "lat", "lon"})
		f := func(v *float64) string {
			if v == nil {
				return ""
			}
			return strconv.FormatFloat(*v, 'f', -1, 64)
		}
		b := func(v *bool) string {
			if v == nil {
				return ""
			}
			return strconv.FormatBool(*v)
		}
		for _, r := range rs {
			seq := ""
			if r.HasSeq {
				seq = strconv.FormatUint(r.Seq, 10)
			}
			_ = w.Write([]string{r.Shipper, seq, custody.FormatTime(r.DeviceTime), custody.FormatTime(r.ReceivedTime), f(r.TempC), f(r.TiltDeg),
				b(r.LidOpen), b(r.Light), f(r.BatteryPct), f(r.LN2Pct), f(r.Lat), f(r.Lon)})
		}
		w.Flush()
		return w.Error()
	}
	meta["count"] = len(rs)
	meta["readings"] = toJSON(rs)
	return c.JSON(http.StatusOK, meta)
}

func (s *Server) legReadings(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(c.Param("n"))
	if err != nil || n < 1 {
		return fmt.Errorf("leg number %q must be a positive integer: %w", c.Param("n"), custody.ErrInvalid)
	}
	if err := s.svc.CheckRead(c.Request().Context(), user(c), coi); err != nil {
		return err
	}
	after, limit, err := readingPageQuery(c)
	if err != nil {
		return err
	}
	leg, page, err := s.svc.LegReadingsPage(c.Request().Context(), coi, n, after, limit)
	if err != nil {
		return err
	}
	return writeReadingPage(c, fmt.Sprintf("%s-leg-%d", coi, n), map[string]any{"coi": coi, "leg": leg}, page)
}

// readingPageQuery reads a readings page's query: after (the next cursor
// of the previous page, an RFC 3339 time) and limit (default
// custody.DefaultReadingPage: a client that asks for no page gets the
// first one of that size).
func readingPageQuery(c echo.Context) (time.Time, int, error) {
	after, err := queryTime(c, "after")
	if err != nil {
		return time.Time{}, 0, err
	}
	limit := custody.DefaultReadingPage
	if c.QueryParam("limit") != "" {
		if limit, err = pageLimit(c, custody.MaxReadingPage); err != nil {
			return time.Time{}, 0, err
		}
	}
	return after, limit, nil
}

// nextHeader carries a readings page's next cursor in a CSV answer, which
// has no body field for it.
const nextHeader = "Coid-Next-After"

// writeReadingPage answers with one page of readings: its next cursor
// in the JSON body's next and, for CSV too, in the Coid-Next-After
// header; neither on the last page.
func writeReadingPage(c echo.Context, name string, meta map[string]any, p custody.ReadingPage) error {
	if !p.Next.IsZero() {
		next := p.Next.UTC().Format(time.RFC3339Nano)
		meta["next"] = next
		c.Response().Header().Set(nextHeader, next)
	}
	return writeReadings(c, name, meta, p.Readings)
}

func queryTime(c echo.Context, name string) (time.Time, error) {
	v := c.QueryParam(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("query parameter %s must be an RFC 3339 time, e.g. 2026-11-22T13:00:00Z: %w", name, custody.ErrInvalid)
	}
	return t, nil
}

func (s *Server) shipperReadings(c echo.Context) error {
	from, err := queryTime(c, "from")
	if err != nil {
		return err
	}
	to, err := queryTime(c, "to")
	if err != nil {
		return err
	}
	after, limit, err := readingPageQuery(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	page, err := s.svc.ShipperReadingsPage(c.Request().Context(), id, from, to, after, limit)
	if err != nil {
		return err
	}
	return writeReadingPage(c, id, map[string]any{"shipper": id}, page)
}

// excursions pages the excursions of the chains the caller may read,
// newest chain first: limit (default custody.DefaultExcursionPage),
// before (the next cursor of the previous page), and the filters open,
// site (a code or name), from and to (when the excursion started).
func (s *Server) excursions(c echo.Context) error {
	q := custody.ExcursionQuery{Site: c.QueryParam("site")}
	if v := c.QueryParam("open"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("query parameter open must be true or false: %w", custody.ErrInvalid)
		}
		q.Open = b
	}
	var err error
	if q.Limit, err = pageLimit(c, custody.MaxExcursionPage); err != nil {
		return err
	}
	if c.QueryParam("limit") == "" {
		q.Limit = custody.DefaultExcursionPage
	}
	if v := c.QueryParam("before"); v != "" {
		if q.Before, err = custody.ParseCOI(v); err != nil {
			return fmt.Errorf("before: %w", err)
		}
	}
	if q.From, err = queryTime(c, "from"); err != nil {
		return err
	}
	if q.To, err = queryTime(c, "to"); err != nil {
		return err
	}
	page, err := s.svc.ExcursionsPage(c.Request().Context(), user(c), q)
	if err != nil {
		return err
	}
	body := map[string]any{"excursions": page.Excursions, "count": len(page.Excursions)}
	if page.Next != "" {
		body["next"] = page.Next
	}
	return c.JSON(http.StatusOK, body)
}

func (s *Server) quarantine(c echo.Context) error {
	if err := custody.AuthorizeQuarantine(user(c)); err != nil {
		return err
	}
	if s.cfg.Telemetry.Quarantine == nil {
		return c.JSON(http.StatusOK, map[string]any{"entries": []custody.QuarantineEntry{}, "count": 0})
	}
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("query parameter limit must be 1-1000: %w", custody.ErrInvalid)
		}
		limit = n
	}
	var before uint64
	if v := c.QueryParam("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("query parameter before must be an entry ID, a positive integer: %w", custody.ErrInvalid)
		}
		before = n
	}
	// One more than asked shows whether there is a next page.
	list, err := s.cfg.Telemetry.Quarantine.QuarantineList(c.Request().Context(), before, limit+1)
	if err != nil {
		return err
	}
	body := map[string]any{}
	if len(list) > limit {
		list = list[:limit]
		body["next"] = strconv.FormatUint(list[limit-1].ID, 10)
	}
	body["entries"], body["count"] = list, len(list)
	return c.JSON(http.StatusOK, body)
}

// alertStream streams excursion alerts as server-sent events ("event:
// excursion", data the sensors.Alert JSON), and hold-time warnings as
// "event: warning", until the client goes away.
func (s *Server) alertStream(c echo.Context) error {
	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, ": coid excursion alerts\n\n")
	w.Flush()
	var ch <-chan sensors.Alert
	if s.cfg.Telemetry.Alerts != nil {
		var cancel func()
		ch, cancel = s.cfg.Telemetry.Alerts.Subscribe()
		defer cancel()
	}
	ka := s.cfg.Telemetry.KeepAlive
	if ka <= 0 {
		ka = 15 * time.Second
	}
	t := time.NewTicker(ka)
	defer t.Stop()
	ctx := c.Request().Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.stopping:
			return nil
		case <-t.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			w.Flush()
		case a := <-ch:
			if s.svc.CheckRead(ctx, user(c), a.COI) != nil {
				continue // not this user's chain (or unreadable): never reveal it
			}
			b, _ := json.Marshal(a)
			event := "excursion"
			if a.Warning != nil {
				event = "warning" // a hold-time warning: disruption projected, blocks nothing
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", a.Seq, event, b); err != nil {
				return nil
			}
			w.Flush()
		}
	}
}
