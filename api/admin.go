package api

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// backup streams a consistent copy of the data file (admin and qa).
func (s *Server) backup(c echo.Context) error {
	// Check the role before any byte is sent: once streaming starts the
	// status cannot change.
	if err := s.svc.AuthorizeBackup(user(c)); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "application/octet-stream")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="coid-%s.db"`, s.svc.Now().Format("20060102T150405Z")))
	c.Response().WriteHeader(http.StatusOK)
	if _, err := s.svc.Backup(c.Request().Context(), user(c), c.Response()); err != nil {
		s.log.Error("backup interrupted", "err", err, "request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	}
	return nil
}
