package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Account routes: a user's own password and tokens (/me/...), and an
// administrator's reset, token list and revocation, and an account's
// audit entries (/users/{id}/...). The rules are custody's (accounts.go).

// ctxToken holds the hash of the request's API token.
const ctxToken = "coid.token"

// passwordChangeRoutes are the routes a user who must change the
// password may still call: who they are, and the change itself.
var passwordChangeRoutes = map[string]bool{
	http.MethodGet + " /api/v1/me":           true,
	http.MethodPost + " /api/v1/me/password": true,
}

// passwordGate refuses every other route to a user who must change the
// password (custody.ErrPasswordChange: 403 password_change_required).
func (s *Server) passwordGate(c echo.Context, u custody.User) error {
	if passwordChangeRoutes[c.Request().Method+" "+c.Path()] {
		return nil
	}
	return s.svc.PasswordChangeDue(u)
}

func (s *Server) registerAccountRoutes(g *echo.Group) {
	g.POST("/me/password", s.changePassword)
	g.GET("/me/tokens", s.listTokens(true))
	g.POST("/me/tokens/:token/revoke", s.revokeToken(true))
	g.GET("/users/:id/tokens", s.listTokens(false))
	g.POST("/users/:id/tokens/:token/revoke", s.revokeToken(false))
	g.POST("/users/:id/reset", s.resetPassword)
	g.GET("/users/:id/audit", s.userAudit)
}

// reasonRequest is the body of an administrative change that takes only
// a reason.
type reasonRequest struct {
	Reason string `json:"reason"`
}

// optionalReason reads {"reason": ...} from a body that may be empty: the
// routes that predate reasons take none.
func optionalReason(c echo.Context) (string, error) {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return "", fmt.Errorf("read body: %v: %w", err, custody.ErrInvalid)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "", nil
	}
	c.Request().Body = io.NopCloser(bytes.NewReader(b))
	var req reasonRequest
	if err := bind(c, &req); err != nil {
		return "", err
	}
	return req.Reason, nil
}

func (s *Server) changePassword(c echo.Context) error {
	var req custody.PasswordChange
	if err := bind(c, &req); err != nil {
		return err
	}
	keep, _ := c.Get(ctxToken).(custody.Hash)
	out, err := s.svc.ChangePassword(c.Request().Context(), user(c), req, keep)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// tokenOwner is the user whose tokens a route names: the caller's own
// under /me.
func tokenOwner(c echo.Context, own bool) string {
	if own {
		return user(c).ID
	}
	return c.Param("id")
}

func (s *Server) listTokens(own bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		toks, err := s.svc.Tokens(c.Request().Context(), user(c), tokenOwner(c, own))
		if err != nil {
			return err
		}
		cur, _ := c.Get(ctxToken).(custody.Hash)
		type item struct {
			custody.TokenInfo
			Current bool `json:"current"`
		}
		out := make([]item, len(toks))
		for i, t := range toks {
			out[i] = item{t, t.User == user(c).ID && t.ID == custody.TokenID(cur)}
		}
		return c.JSON(http.StatusOK, map[string]any{"tokens": out, "count": len(out)})
	}
}

func (s *Server) revokeToken(own bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		reason, err := optionalReason(c)
		if err != nil {
			return err
		}
		id := tokenOwner(c, own)
		if err := s.svc.RevokeToken(c.Request().Context(), user(c), id, c.Param("token"), reason); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"user": id, "revoked": c.Param("token")})
	}
}

type resetRequest struct {
	// Password is the temporary password the user must change.
	Password string `json:"password"`
	Reason   string `json:"reason"`
}

func (s *Server) resetPassword(c echo.Context) error {
	var req resetRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	u, err := s.svc.AdminResetPassword(c.Request().Context(), user(c), c.Param("id"), req.Password, req.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, u)
}

func (s *Server) userAudit(c echo.Context) error {
	f := custody.AuditFilter{Kind: custody.KindUser, Code: c.Param("id"), Newest: true}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("limit must be a positive integer: %w", custody.ErrInvalid)
		}
		f.Limit = n
	}
	if err := custody.ValidateUserID(c.Param("id")); err != nil {
		return err
	}
	entries, err := s.svc.AuditTrail(c.Request().Context(), user(c), f)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		// An unknown user has none; say so (the caller may list users).
		if _, err := s.svc.User(c.Request().Context(), c.Param("id")); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"entries": entries, "count": len(entries)})
}
