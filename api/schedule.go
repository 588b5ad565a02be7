package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Scheduling: a site's capacity and closures (administrators change
// them), the availability of chairs and slots over a range of days, and a
// chain's booking: book, reschedule, unschedule, and the override of the
// collect gate. Who may do what is the service's.
func (s *Server) registerScheduleRoutes(g *echo.Group) {
	signs := s.sigs.throttleSignatures(func(c echo.Context) string { return user(c).ID })
	g.GET("/sites/:code/capacity", s.getCapacity)
	g.PUT("/sites/:code/capacity", s.putCapacity)
	g.POST("/sites/:code/closures", s.addClosure)
	g.PUT("/sites/:code/closures/:from/:to", s.changeClosure)
	g.DELETE("/sites/:code/closures/:from/:to", s.removeClosure)
	g.GET("/sites/:code/bookings", s.siteBookings)
	g.GET("/availability", s.availability)
	g.GET("/chains/:coi/booking", s.getBooking)
	g.POST("/chains/:coi/schedule", s.book, signs)
	g.POST("/chains/:coi/reschedule", s.reschedule, signs)
	g.POST("/chains/:coi/unschedule", s.unschedule, signs)
	g.POST("/chains/:coi/collect-override", s.collectOverride, signs)
}

func siteParam(c echo.Context) (string, error) {
	code := c.Param("code")
	if err := custody.ValidateRegistryCode(code); err != nil {
		return "", fmt.Errorf("path: %w", err)
	}
	return code, nil
}

func (s *Server) getCapacity(c echo.Context) error {
	code, err := siteParam(c)
	if err != nil {
		return err
	}
	out, err := s.svc.SiteCapacity(c.Request().Context(), user(c), code)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) putCapacity(c echo.Context) error {
	code, err := siteParam(c)
	if err != nil {
		return err
	}
	v, reason, err := bindEntry[custody.Capacity](c)
	if err != nil {
		return err
	}
	out, err := s.svc.SetCapacity(c.Request().Context(), user(c), code, v, reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// changeClosure replaces the closure from :from to :to with the one sent.
func (s *Server) changeClosure(c echo.Context) error {
	return s.closureRequest(c, func(ctx context.Context, u custody.User, code string, cl custody.Closure) (custody.Capacity, error) {
		return s.svc.ChangeClosure(ctx, u, code, c.Param("from"), c.Param("to"), cl)
	})
}

// removeClosure removes the closure from :from to :to, with a reason.
func (s *Server) removeClosure(c echo.Context) error {
	code, err := siteParam(c)
	if err != nil {
		return err
	}
	var req reasonOnly
	if err := bind(c, &req); err != nil {
		return err
	}
	out, err := s.svc.RemoveClosure(c.Request().Context(), user(c), code, c.Param("from"), c.Param("to"), req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) addClosure(c echo.Context) error {
	return s.closureRequest(c, s.svc.AddClosure)
}

// closureRequest reads the site and the closure sent, and answers with
// the capacity do stores.
func (s *Server) closureRequest(c echo.Context, do func(ctx context.Context, u custody.User, code string, cl custody.Closure) (custody.Capacity, error)) error {
	code, err := siteParam(c)
	if err != nil {
		return err
	}
	var cl custody.Closure
	if err := bind(c, &cl); err != nil {
		return err
	}
	out, err := do(c.Request().Context(), user(c), code, cl)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// siteBookings answers ?from=&to=: the claims the site holds, those a
// closure or a lowered count hits with the nearest free days.
func (s *Server) siteBookings(c echo.Context) error {
	code, err := siteParam(c)
	if err != nil {
		return err
	}
	out, err := s.svc.SiteBookings(c.Request().Context(), user(c), code, c.QueryParam("from"), c.QueryParam("to"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"bookings": out, "count": len(out)})
}

// availability answers ?site=A,B&product=&from=&to=&after=&limit=: the
// free chairs (no product) or slots of product per site and day.
func (s *Server) availability(c echo.Context) error {
	limit, err := pageLimit(c, custody.MaxRegistryPage)
	if err != nil {
		return err
	}
	q := custody.AvailabilityQuery{Product: c.QueryParam("product"), From: c.QueryParam("from"), To: c.QueryParam("to"),
		After: c.QueryParam("after"), Limit: limit}
	if v := c.QueryParam("site"); v != "" {
		q.Sites = strings.Split(v, ",")
		for _, code := range q.Sites {
			if err := custody.ValidateRegistryCode(code); err != nil {
				return fmt.Errorf("site: %w", err)
			}
		}
	}
	if q.After != "" {
		if err := custody.ValidateRegistryCode(q.After); err != nil {
			return fmt.Errorf("after: %w", err)
		}
	}
	out, err := s.svc.Availability(c.Request().Context(), user(c), q)
	if err != nil {
		return err
	}
	body := map[string]any{"sites": out, "count": len(out)}
	if len(q.Sites) == 0 && len(out) == limit {
		body["next"] = out[len(out)-1].Site
	}
	return c.JSON(http.StatusOK, body)
}

func (s *Server) getBooking(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.svc.CheckRead(ctx, user(c), coi); err != nil {
		return err
	}
	ch, err := s.svc.Chain(ctx, coi)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, custody.BookingOf(ch))
}

func (s *Server) book(c echo.Context) error { return chainRecord(c, s.svc.Book) }

func (s *Server) reschedule(c echo.Context) error { return chainRecord(c, s.svc.Reschedule) }

func (s *Server) unschedule(c echo.Context) error { return chainRecord(c, s.svc.Unschedule) }

func (s *Server) collectOverride(c echo.Context) error {
	return chainRecord(c, s.svc.OverrideCollectGate)
}

// chainRecord answers a request that writes one record into the chain
// named in the path: the body bound as R, the caller, and do; 201 with
// the record.
func chainRecord[R any](c echo.Context, do func(ctx context.Context, u custody.User, coi custody.COI, req R) (custody.Record, error)) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	var req R
	if err := bind(c, &req); err != nil {
		return err
	}
	rec, err := do(c.Request().Context(), user(c), coi, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, rec)
}
