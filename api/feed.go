package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/ical"
	"github.com/labstack/echo/v4"
)

// Calendar feeds: a user's feed tokens (/me/feed-tokens, and an
// administrator's list and revocation of anyone's), and a site's feed at
// /cal/{site}.ics?token=..., which a feed token alone authenticates
// (calendar applications send no headers). The request log records the
// path only, never the query and its token.
func (s *Server) registerFeedRoutes(e *echo.Echo, g *echo.Group) {
	g.POST("/me/feed-tokens", s.createFeedToken)
	g.GET("/me/feed-tokens", s.listFeedTokens(true))
	g.POST("/me/feed-tokens/:token/revoke", s.revokeFeedToken(true))
	g.GET("/users/:id/feed-tokens", s.listFeedTokens(false))
	g.POST("/users/:id/feed-tokens/:token/revoke", s.revokeFeedToken(false))
	e.GET("/cal/:file", s.calendarFeed)
}

func (s *Server) createFeedToken(c echo.Context) error {
	out, err := s.svc.CreateFeedToken(c.Request().Context(), user(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) listFeedTokens(own bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		out, err := s.svc.FeedTokens(c.Request().Context(), user(c), tokenOwner(c, own))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, out)
	}
}

func (s *Server) revokeFeedToken(own bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		reason, err := optionalReason(c)
		if err != nil {
			return err
		}
		id := tokenOwner(c, own)
		if err := s.svc.RevokeFeedToken(c.Request().Context(), user(c), id, c.Param("token"), reason); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"user": id, "revoked": c.Param("token")})
	}
}

func (s *Server) calendarFeed(c echo.Context) error {
	ctx := c.Request().Context()
	u, err := s.svc.FeedUser(ctx, c.QueryParam("token"))
	if err != nil {
		return err
	}
	site, ok := strings.CutSuffix(c.Param("file"), ".ics")
	if !ok {
		return fmt.Errorf("calendar: the path is /cal/{site}.ics: %w", custody.ErrNotFound)
	}
	if err := custody.ValidateRegistryCode(site); err != nil {
		return fmt.Errorf("calendar: %w", err)
	}
	events, err := s.svc.SiteFeed(ctx, u, site)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "private, no-store")
	return c.Blob(http.StatusOK, "text/calendar; charset=utf-8", ical.Encode(site, events, s.svc.Now()))
}
