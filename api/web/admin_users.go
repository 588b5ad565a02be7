package web

import (
	"net/http"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The user accounts screen (administrators only): the list with role and
// state, disable and enable, and the administrator's password reset (the
// user must change the temporary password at the next sign-in), each with
// its reason. Creating users, unlocking and tokens are not on this screen
// yet; binding users to an organisation and sites will get its own
// section of the form.

type usersView struct {
	Users []custody.User
	Error string
}

// adminOnly refuses everyone but administrators.
func (w *ui) adminOnly(c echo.Context) (custody.User, bool, error) {
	me := sessionUser(c)
	if custody.MayAdminister(me.Role) {
		return me, true, nil
	}
	return me, false, w.refuse(c, http.StatusForbidden, "User accounts are managed by administrators.", "Ask a programme administrator.")
}

func (w *ui) adminUsersPage(c echo.Context) error {
	return w.renderUsers(c, http.StatusOK, "")
}

func (w *ui) renderUsers(c echo.Context, code int, msg string) error {
	if _, ok, err := w.adminOnly(c); !ok {
		return err
	}
	users, err := w.svc.Users(c.Request().Context())
	if err != nil {
		return w.fail(c, err)
	}
	return w.render(c, code, "admin_users", page{Title: "User accounts", Nav: "admin", V: usersView{Users: users, Error: msg}})
}

// adminUserAction disables, enables or resets the password of a user.
func (w *ui) adminUserAction(c echo.Context) error {
	me, ok, err := w.adminOnly(c)
	if !ok {
		return err
	}
	id, action, reason := c.Param("id"), c.Param("action"), c.FormValue("reason")
	if strings.TrimSpace(reason) == "" {
		return w.renderUsers(c, http.StatusUnprocessableEntity, "Give a reason for "+id+": it goes into the audit trail.")
	}
	ctx := c.Request().Context()
	var done string
	switch action {
	case "disable", "enable":
		_, err = w.svc.AdminSetDisabledFor(ctx, me, id, action == "disable", reason)
		done = "User " + id + " " + action + "d."
	case "reset":
		_, err = w.svc.AdminResetPassword(ctx, me, id, c.FormValue("temporary"), reason)
		done = "Password of " + id + " reset: they must change it at the next sign-in."
	default:
		return w.refuse(c, http.StatusNotFound, "No such action.", "")
	}
	if err != nil {
		if msg, ok := formError(err); ok {
			return w.renderUsers(c, http.StatusUnprocessableEntity, msg)
		}
		return w.fail(c, err)
	}
	w.flash(c, done)
	return c.Redirect(http.StatusSeeOther, "/admin/users")
}
