package api

import (
	"fmt"
	"net/http"

	"github.com/coid-project/coid/custody"
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

type newUserRequest struct {
	ID       string       `json:"id"`
	Name     string       `json:"name"`
	Role     custody.Role `json:"role"`
	Password string       `json:"password"`
	// Organisation and Sites bind the person to the network (optional:
	// an account without them is unbound).
	Organisation string   `json:"organisation"`
	Sites        []string `json:"sites"`
}

type tokenResponse struct {
	User  custody.User `json:"user"`
	Token string       `json:"token"`
}

func (s *Server) addUser(c echo.Context) error {
	var req newUserRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	tok, err := s.svc.AdminAddUserIn(ctx, user(c), req.ID, req.Name, req.Role, req.Password, req.Organisation, req.Sites)
	if err != nil {
		return err
	}
	u, err := s.lookupUser(c, req.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, tokenResponse{User: u, Token: tok})
}

// lookupUser returns the public view of a user for an administrator.
func (s *Server) lookupUser(c echo.Context, id string) (custody.User, error) {
	return s.svc.AdminUser(c.Request().Context(), user(c), id)
}

// listUsers pages the accounts in ID order (administrators only): limit
// (default 100, at most custody.MaxUserPage), after (the next of the
// previous page), and the filters role, organisation, site and q (text in
// the ID or name).
func (s *Server) listUsers(c echo.Context) error {
	limit, err := pageLimit(c, custody.MaxUserPage)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	users, more, err := s.svc.AdminUserPage(c.Request().Context(), user(c), custody.UserFilter{Role: custody.Role(q.Get("role")),
		Organisation: q.Get("organisation"), Site: q.Get("site"), Text: q.Get("q"), After: q.Get("after"), Limit: limit})
	if err != nil {
		return err
	}
	if users == nil {
		users = []custody.User{}
	}
	body := map[string]any{"users": users, "count": len(users)}
	if more {
		body["next"] = users[len(users)-1].ID
	}
	return c.JSON(http.StatusOK, body)
}

func (s *Server) unlockUser(c echo.Context) error {
	reason, err := optionalReason(c)
	if err != nil {
		return err
	}
	if err := s.svc.AdminUnlockFor(c.Request().Context(), user(c), c.Param("id"), reason); err != nil {
		return err
	}
	s.signIn.ForgetUser(c.Param("id"))
	u, err := s.lookupUser(c, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}

func (s *Server) setDisabled(disabled bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		reason, err := optionalReason(c)
		if err != nil {
			return err
		}
		u, err := s.svc.AdminSetDisabledFor(c.Request().Context(), user(c), c.Param("id"), disabled, reason)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, u)
	}
}

func (s *Server) newToken(c echo.Context) error {
	reason, err := optionalReason(c)
	if err != nil {
		return err
	}
	tok, err := s.svc.AdminNewTokenFor(c.Request().Context(), user(c), c.Param("id"), reason)
	if err != nil {
		return err
	}
	u, err := s.lookupUser(c, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, tokenResponse{User: u, Token: tok})
}
