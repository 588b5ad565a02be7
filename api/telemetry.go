package api

import "github.com/labstack/echo/v4"

// registerTelemetryRoutes adds the cold-chain telemetry routes.
func (s *Server) registerTelemetryRoutes(g *echo.Group) {}
