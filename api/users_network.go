package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// userNetworkRequest is the body of PUT /users/{id}/network: the
// organisation and sites to bind the person to (both empty: unbound) and
// why.
type userNetworkRequest struct {
	Organisation string   `json:"organisation"`
	Sites        []string `json:"sites"`
	Reason       string   `json:"reason"`
}

// setUserNetwork binds a user to an organisation and sites (admin; the
// domain checks the codes and records the change in the audit trail).
func (s *Server) setUserNetwork(c echo.Context) error {
	var req userNetworkRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	u, err := s.svc.SetUserNetwork(c.Request().Context(), user(c), c.Param("id"), req.Organisation, req.Sites, req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}
