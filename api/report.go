package api

import "github.com/labstack/echo/v4"

// registerReportRoutes adds the custody report and EPCIS export routes.
func (s *Server) registerReportRoutes(g *echo.Group) {}
