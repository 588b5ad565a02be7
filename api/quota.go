package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Access throttling: the quotas of a plant's slots per treatment centre
// (its programme lead sets them), the waiting list (coordinators add and
// remove chains), its allocation (QA, administrators), and the offers it
// makes (coordinators accept or decline). Who may do what is the
// service's.
func (s *Server) registerQuotaRoutes(g *echo.Group) {
	signs := s.sigs.throttleSignatures(func(c echo.Context) string { return user(c).ID })
	g.GET("/quotas", s.listQuotas)
	g.GET("/quota-uses", s.quotaUses)
	g.PUT("/quotas/:plant/:centre", s.putQuota)
	g.DELETE("/quotas/:plant/:centre", s.deleteQuota)
	g.GET("/waitlist", s.listWaitlist)
	g.POST("/waitlist/allocate", s.allocateWaitlist)
	g.POST("/chains/:coi/waitlist", s.addWaitlist)
	g.DELETE("/chains/:coi/waitlist", s.removeWaitlist)
	g.POST("/chains/:coi/offer/accept", s.acceptOffer, signs)
	g.POST("/chains/:coi/offer/decline", s.declineOffer)
}

func quotaParams(c echo.Context) (string, string, error) {
	plant, centre := c.Param("plant"), c.Param("centre")
	for _, code := range []string{plant, centre} {
		if err := custody.ValidateRegistryCode(code); err != nil {
			return "", "", fmt.Errorf("path: %w", err)
		}
	}
	return plant, centre, nil
}

// listQuotas answers ?after=&limit=: a page of the quotas in key order
// (default 100 a page) and next, the key to pass as after for the
// following page (absent on the last).
func (s *Server) listQuotas(c echo.Context) error {
	limit, err := pageLimit(c, custody.MaxRegistryPage)
	if err != nil {
		return err
	}
	out, next, err := s.svc.QuotasPage(c.Request().Context(), user(c), c.QueryParam("after"), limit)
	if err != nil {
		return err
	}
	body := map[string]any{"quotas": out, "count": len(out)}
	if next != "" {
		body["next"] = next
	}
	return c.JSON(http.StatusOK, body)
}

// quotaUses answers ?period=YYYY-MM: the bookings counted per quota key.
func (s *Server) quotaUses(c echo.Context) error {
	p := c.QueryParam("period")
	out, err := s.svc.QuotaUses(c.Request().Context(), user(c), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"period": p, "uses": out})
}

// quotaBody is what a quota's PUT carries besides its reason.
type quotaBody struct {
	Slots int `json:"slots"`
}

func (s *Server) putQuota(c echo.Context) error {
	plant, centre, err := quotaParams(c)
	if err != nil {
		return err
	}
	v, reason, err := bindEntry[quotaBody](c)
	if err != nil {
		return err
	}
	out, err := s.svc.SetQuota(c.Request().Context(), user(c), custody.Quota{Plant: plant, Centre: centre, Slots: v.Slots}, reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// reasonOnly is a request that carries only its reason.
type reasonOnly struct {
	Reason string `json:"reason"`
}

func (s *Server) deleteQuota(c echo.Context) error {
	plant, centre, err := quotaParams(c)
	if err != nil {
		return err
	}
	var req reasonOnly
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := s.svc.DeleteQuota(c.Request().Context(), user(c), plant, centre, req.Reason); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// listWaitlist answers ?plant=&offset=&limit=: the list in its fairness
// order, a page of it, and how many entries there are in all.
func (s *Server) listWaitlist(c echo.Context) error {
	limit, err := pageLimit(c, custody.MaxRegistryPage)
	if err != nil {
		return err
	}
	offset := 0
	if v := c.QueryParam("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return fmt.Errorf("offset %q must be a number >= 0: %w", v, custody.ErrInvalid)
		}
	}
	plant := c.QueryParam("plant")
	if plant != "" {
		if err := custody.ValidateRegistryCode(plant); err != nil {
			return fmt.Errorf("plant: %w", err)
		}
	}
	if after := c.QueryParam("after"); after != "" || c.QueryParam("offset") == "" {
		if offset != 0 {
			return fmt.Errorf("offset and after: page by one or the other: %w", custody.ErrInvalid)
		}
		out, next, total, err := s.svc.WaitlistPage(c.Request().Context(), user(c), plant, after, limit)
		if err != nil {
			return err
		}
		body := map[string]any{"entries": out, "count": len(out), "total": total}
		if next != "" {
			body["next"] = next
		}
		return c.JSON(http.StatusOK, body)
	}
	out, total, err := s.svc.Waitlist(c.Request().Context(), user(c), plant, offset, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"entries": out, "count": len(out), "total": total})
}

func (s *Server) allocateWaitlist(c echo.Context) error {
	out, err := s.svc.AllocateWaitlist(c.Request().Context(), user(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"decisions": decisions(out), "count": len(out)})
}

func decisions(d []custody.AllocationDecision) []custody.AllocationDecision {
	if d == nil {
		return []custody.AllocationDecision{}
	}
	return d
}

func (s *Server) addWaitlist(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	var req custody.WaitRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	out, err := s.svc.AddToWaitlist(c.Request().Context(), user(c), coi, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) removeWaitlist(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	var req reasonOnly
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := s.svc.RemoveFromWaitlist(c.Request().Context(), user(c), coi, req.Reason); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) acceptOffer(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	var req struct {
		Signatures []custody.SignatureRequest `json:"signatures"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	rec, err := s.svc.AcceptOffer(c.Request().Context(), user(c), coi, req.Signatures)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, rec)
}

func (s *Server) declineOffer(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	var req reasonOnly
	if err := bind(c, &req); err != nil {
		return err
	}
	out, err := s.svc.DeclineOffer(c.Request().Context(), user(c), coi, req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"decisions": decisions(out), "count": len(out)})
}
