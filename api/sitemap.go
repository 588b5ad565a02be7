package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The network's migration and standing: the mappings of old chains'
// free-text site names to registered sites, and the qualifications about
// to expire. Who may do what is the service's.

// registerNetworkRoutes registers the site-mapping and qualification
// routes on g.
func (s *Server) registerNetworkRoutes(g *echo.Group) {
	g.GET("/site-mappings", s.listSiteMappings)
	g.GET("/site-mappings/:name", s.getSiteMapping)
	g.PUT("/site-mappings/:name", s.putSiteMapping)
	g.GET("/site-names/unmapped", s.unmappedSiteNames)
	g.GET("/qualifications/expiring", s.expiringQualifications)
}

// mappingName reads the {name} path parameter: the site name as chains
// hold it, URL-escaped in the path.
func mappingName(c echo.Context) (string, error) {
	name, err := url.PathUnescape(c.Param("name"))
	if err != nil || name == "" {
		return "", fmt.Errorf("path: the site name must be URL-escaped: %w", custody.ErrInvalid)
	}
	return name, nil
}

func (s *Server) listSiteMappings(c echo.Context) error {
	limit, err := pageLimit(c, custody.MaxRegistryPage)
	if err != nil {
		return err
	}
	list, err := s.svc.SiteMappings(c.Request().Context(), user(c), c.QueryParam("after"), limit)
	if err != nil {
		return err
	}
	body := map[string]any{"site_mappings": list, "count": len(list)}
	if len(list) == limit {
		body["next"] = list[len(list)-1].Name
	}
	return c.JSON(http.StatusOK, body)
}

// unmappedSiteNames lists the chains' site names no registered site
// answers to, a page at a time.
func (s *Server) unmappedSiteNames(c echo.Context) error {
	limit, err := pageLimit(c, custody.MaxRegistryPage)
	if err != nil {
		return err
	}
	names, err := s.svc.UnmappedSiteNames(c.Request().Context(), user(c), c.QueryParam("after"), limit)
	if err != nil {
		return err
	}
	body := map[string]any{"names": names, "count": len(names)}
	if len(names) == limit {
		body["next"] = names[len(names)-1]
	}
	return c.JSON(http.StatusOK, body)
}

func (s *Server) getSiteMapping(c echo.Context) error {
	name, err := mappingName(c)
	if err != nil {
		return err
	}
	m, err := s.svc.SiteMappingEntry(c.Request().Context(), user(c), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

// siteMappingRequest is the body of PUT /site-mappings/{name}.
type siteMappingRequest struct {
	Site   string `json:"site"`
	Reason string `json:"reason"`
}

func (s *Server) putSiteMapping(c echo.Context) error {
	name, err := mappingName(c)
	if err != nil {
		return err
	}
	var req siteMappingRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	m, created, err := s.svc.MapSiteName(c.Request().Context(), user(c), name, req.Site, req.Reason)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, m)
}

func (s *Server) expiringQualifications(c echo.Context) error {
	days := s.QualificationWarningDays()
	if v := c.QueryParam("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > custody.MaxQualificationWarningDays {
			return fmt.Errorf("days %q must be 0-%d: %w", v, custody.MaxQualificationWarningDays, custody.ErrInvalid)
		}
		days = n
	}
	limit, err := pageLimit(c, custody.MaxExpiringPage)
	if err != nil {
		return err
	}
	list, next, err := s.svc.ExpiringQualificationsPage(c.Request().Context(), user(c), days, c.QueryParam("after"), limit)
	if err != nil {
		return err
	}
	body := map[string]any{"expiring": list, "days": days, "count": len(list)}
	if next != "" {
		body["next"] = next
	}
	return c.JSON(http.StatusOK, body)
}

// QualificationWarningDays is how many days ahead the QA console and
// GET /qualifications/expiring warn of expiring qualifications.
func (s *Server) QualificationWarningDays() int {
	switch d := s.cfg.QualificationWarningDays; {
	case d == 0:
		return custody.DefaultQualificationWarningDays
	case d < 0:
		return 0
	default:
		return d
	}
}
