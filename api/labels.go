package api

import "github.com/labstack/echo/v4"

// registerLabelRoutes adds the label routes (issue: chain-of-identity labels).
func (s *Server) registerLabelRoutes(g *echo.Group) {}
