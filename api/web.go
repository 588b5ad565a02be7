package api

import "github.com/labstack/echo/v4"

// registerWebRoutes adds the browser UI (scan station and QA console).
func (s *Server) registerWebRoutes(e *echo.Echo) {}
