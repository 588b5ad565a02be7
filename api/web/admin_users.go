package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/labels/auditreport"
	"github.com/labstack/echo/v4"
)

// The user accounts screens. The list (/admin/users) is paged and
// filtered by organisation, site, role and text; each row shows the role,
// organisation, sites, state and password expiry. Below it, the form that
// creates an account with a temporary password the person must change at
// the first sign-in. Each account has its page (/admin/users/:id): the
// site binding, unlock, password reset, disable and enable, API tokens
// (list, revoke, issue) and the account's audit entries. Every change
// takes a reason for the audit trail. Administrators change; QA reads
// (custody.MayViewAdministration); the others get the refusal page.
//
// A temporary password or API token is shown once, on the page that
// answers the form that made it; it is never stored in the session,
// logged, or shown again.

// userPageSize is how many accounts a page of the list shows.
const userPageSize = 50

// userAuditSize is how many of an account's newest audit entries its
// page shows (the audit trail screen has them all).
const userAuditSize = 50

// fieldErrors are a refused form's messages by field, shown beside it.
type fieldErrors map[string]string

// userRow is one account in the list, with when its password expires.
type userRow struct {
	custody.User
	// Expires is when the password expires; zero: never.
	Expires time.Time
	// Expired says it has.
	Expired bool
}

// userFilter is the list's filter as typed.
type userFilter struct {
	Organisation, Site, Role, Q string
}

// query is the filter as a query string, with after when not empty.
func (f userFilter) query(after string) string {
	v := url.Values{}
	for k, x := range map[string]string{"organisation": f.Organisation, "site": f.Site, "role": f.Role, "q": f.Q, "after": after} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v.Encode()
}

// newUserForm is the create form as typed, kept on a refused submission
// (but for the temporary password, which is never sent back).
type newUserForm struct {
	ID, Name, Role, Organisation, Reason string
	Sites                                []string
}

// Has says whether the form has site code ticked.
func (f newUserForm) Has(code string) bool { return slices.Contains(f.Sites, code) }

// shownOnce is a secret shown on the one page that answers the form that
// made it.
type shownOnce struct {
	User string
	// Done says what was done.
	Done string
	// Password is a temporary password coid generated.
	Password string
	// Token is an API token.
	Token string
}

type usersView struct {
	Rows     []userRow
	Filter   userFilter
	Next     string // the address of the next page; "" on the last
	First    string // the address of the first page, when this is not it
	CanEdit  bool
	Form     newUserForm
	Errs     fieldErrors
	Error    string // why the form was refused, when no field says
	Orgs     []custody.Organisation
	Sites    []custody.Site
	Roles    []custody.Role
	Shown    *shownOnce
	Filtered bool
}

// networkForm is the site-binding form as typed.
type networkForm struct {
	Organisation, Reason string
	Sites                []string
}

// Has says whether the form has site code ticked.
func (f networkForm) Has(code string) bool { return slices.Contains(f.Sites, code) }

type userView struct {
	U       userRow
	CanEdit bool
	// SignInBlocked says failed sign-ins keep the person out now;
	// SignInFailures counts them.
	SignInBlocked  bool
	SignInFailures int
	Orgs           []custody.Organisation
	Sites          []custody.Site
	Net            networkForm
	Tokens         []custody.TokenInfo
	Audit          []auditRow
	// Errs are the refused action's messages, keyed "action.field".
	Errs fieldErrors
	// Reasons keep the reason typed into a refused action's form.
	Reasons map[string]string
	Shown   *shownOnce
}

// reasonField is an action form's reason field: the action (its key in
// Errs and Reasons), the reason kept from a refused submission, and the
// messages beside it.
type reasonField struct {
	A, Reason string
	// Err is about the reason; Error is the domain's refusal of the
	// action.
	Err, Error string
}

// Field returns the reason field of action's form.
func (v userView) Field(action string) reasonField {
	return reasonField{A: action, Reason: v.Reasons[action], Err: v.Errs[action+".reason"], Error: v.Errs[action+".error"]}
}

func (w *ui) row(u custody.User) userRow {
	r := userRow{User: u, Expires: w.svc.PasswordExpires(u)}
	r.Expired = !r.Expires.IsZero() && !w.svc.Now().Before(r.Expires)
	return r
}

// registries returns every organisation and site, for the selects.
func (w *ui) registries(ctx context.Context, me custody.User) ([]custody.Organisation, []custody.Site, error) {
	var orgs []custody.Organisation
	for after := ""; ; {
		p, err := w.svc.Organisations(ctx, me, after, custody.MaxRegistryPage)
		if err != nil {
			return nil, nil, err
		}
		orgs = append(orgs, p...)
		if len(p) < custody.MaxRegistryPage {
			break
		}
		after = p[len(p)-1].Code
	}
	var sites []custody.Site
	for after := ""; ; {
		p, err := w.svc.Sites(ctx, me, after, custody.MaxRegistryPage)
		if err != nil {
			return nil, nil, err
		}
		sites = append(sites, p...)
		if len(p) < custody.MaxRegistryPage {
			break
		}
		after = p[len(p)-1].Code
	}
	return orgs, sites, nil
}

func (w *ui) adminUsersPage(c echo.Context) error {
	return w.renderUsers(c, http.StatusOK, newUserForm{}, nil, "", nil)
}

func (w *ui) renderUsers(c echo.Context, code int, f newUserForm, errs fieldErrors, msg string, shown *shownOnce) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	q := c.Request().URL.Query()
	flt := userFilter{Organisation: q.Get("organisation"), Site: q.Get("site"), Role: q.Get("role"), Q: q.Get("q")}
	after := q.Get("after")
	rows, more, err := w.svc.UserAccounts(ctx, me, custody.UserFilter{Organisation: flt.Organisation, Site: flt.Site,
		Role: custody.Role(flt.Role), Text: flt.Q, After: after, Limit: userPageSize})
	if errors.Is(err, custody.ErrInvalid) {
		return w.refuse(c, http.StatusBadRequest, "The filter is not one coid can use.", err.Error())
	}
	if err != nil {
		return w.fail(c, err)
	}
	orgs, sites, err := w.registries(ctx, me)
	if err != nil {
		return w.fail(c, err)
	}
	v := usersView{Filter: flt, CanEdit: custody.MayAdminister(me.Role), Form: f, Errs: errs, Error: msg,
		Orgs: orgs, Sites: sites, Roles: custody.UserRoles, Shown: shown, Filtered: flt != userFilter{}}
	for _, u := range rows {
		v.Rows = append(v.Rows, w.row(u))
	}
	if more {
		v.Next = "/admin/users?" + flt.query(rows[len(rows)-1].ID)
	}
	if after != "" {
		v.First = "/admin/users?" + flt.query("")
	}
	return w.render(c, code, "admin_users", page{Title: "User accounts", Nav: "admin", V: v})
}

// adminUserCreate creates an account with a temporary password the
// person must change at the first sign-in: the one typed, or one coid
// makes and shows once.
func (w *ui) adminUserCreate(c echo.Context) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	if !custody.MayAdminister(me.Role) {
		return w.refuse(c, http.StatusForbidden, "User accounts are managed by administrators.", "Ask a programme administrator.")
	}
	form, _ := c.FormParams()
	f := newUserForm{ID: strings.TrimSpace(form.Get("id")), Name: strings.TrimSpace(form.Get("name")), Role: form.Get("role"),
		Organisation: strings.TrimSpace(form.Get("organisation")), Reason: form.Get("reason"), Sites: form["sites"]}
	temp, generated := form.Get("temporary"), false
	if temp == "" {
		temp, generated = custody.NewTemporaryPassword(), true
	}
	a := custody.NewAccount{ID: f.ID, Name: f.Name, Role: custody.Role(f.Role), Organisation: f.Organisation, Sites: f.Sites}
	errs := newUserErrors(a, temp, f.Reason)
	ctx := c.Request().Context()
	if _, ok := errs["id"]; !ok {
		// Taken, or taken but for case (two signatures must come from two
		// people, so NURSE1 beside nurse1 is refused too).
		same, _, err := w.svc.UserAccounts(ctx, me, custody.UserFilter{Text: f.ID})
		if err != nil {
			return w.fail(c, err)
		}
		for _, u := range same {
			if strings.EqualFold(u.ID, f.ID) {
				errs["id"] = "User " + u.ID + " exists: choose another ID."
			}
		}
	}
	if len(errs) > 0 {
		return w.renderUsers(c, http.StatusUnprocessableEntity, f, errs, "", nil)
	}
	tok, err := w.svc.AdminCreateAccount(ctx, me, a, temp, f.Reason)
	if err != nil {
		// Every field but the binding was checked above: what is left is
		// the organisation and sites (or a race for the ID).
		if msg, ok := formError(err); ok {
			return w.renderUsers(c, http.StatusUnprocessableEntity, f, fieldErrors{"sites": msg}, "", nil)
		}
		return w.fail(c, err)
	}
	shown := &shownOnce{User: f.ID, Token: tok, Done: "User " + f.ID + " created: they must change the temporary password at the first sign-in."}
	if generated {
		shown.Password = temp
	}
	c.Request().URL.RawQuery = ""
	return w.renderUsers(c, http.StatusCreated, newUserForm{Role: f.Role, Organisation: f.Organisation}, nil, "", shown)
}

// newUserErrors puts the domain's problems with each field of the create
// form beside it (custody.NewAccountProblems), and asks for a reason.
func newUserErrors(a custody.NewAccount, temp, reason string) fieldErrors {
	errs := fieldErrors{}
	for field, err := range custody.NewAccountProblems(a, temp) {
		if field == "password" {
			field = "temporary"
		}
		errs[field] = err.Error()
	}
	if strings.TrimSpace(reason) == "" {
		errs["reason"] = "Give a reason: it goes into the audit trail."
	}
	return errs
}

func (w *ui) adminUserPage(c echo.Context) error {
	return w.renderUser(c, http.StatusOK, c.Param("id"), nil, nil, nil, nil)
}

// renderUser renders an account's page; net, when not nil, is a refused
// binding form as typed.
func (w *ui) renderUser(c echo.Context, code int, id string, errs fieldErrors, reasons map[string]string, net *networkForm, shown *shownOnce) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	u, err := w.svc.UserAccount(ctx, me, id)
	if err != nil {
		return w.fail(c, err)
	}
	orgs, sites, err := w.registries(ctx, me)
	if err != nil {
		return w.fail(c, err)
	}
	v := userView{U: w.row(u), CanEdit: custody.MayAdminister(me.Role), Orgs: orgs, Sites: sites, Errs: errs, Reasons: reasons, Shown: shown,
		Net: networkForm{Organisation: u.Organisation, Sites: u.Sites}}
	if net != nil {
		v.Net = *net
	}
	v.SignInBlocked, v.SignInFailures = w.throttle.SignInBlocked(id)
	if v.CanEdit {
		if v.Tokens, err = w.svc.Tokens(ctx, me, id); err != nil {
			return w.fail(c, err)
		}
	}
	entries, err := w.svc.AuditTrail(ctx, me, custody.AuditFilter{Kind: custody.KindUser, Code: id, Newest: true, Limit: userAuditSize})
	if err != nil {
		return w.fail(c, err)
	}
	for i := len(entries) - 1; i >= 0; i-- { // newest first
		v.Audit = append(v.Audit, auditRow{AuditEntry: entries[i], Changes: auditreport.Changes(entries[i])})
	}
	return w.render(c, code, "admin_user", page{Title: "User " + u.ID, Nav: "admin", V: v})
}

// userActionDone returns the words that confirm action, one of what an
// administrator may do on an account's page; ok is false for any other.
func userActionDone(action string) (done string, ok bool) {
	switch action {
	case "disable", "enable":
		return action + "d", true
	case "unlock":
		return "unlocked: they may sign in and sign again", true
	case "reset":
		return "has a temporary password: they must change it at the next sign-in", true
	case "network":
		return "has a new organisation and site binding", true
	case "token":
		return "has a new API token", true
	case "revoke":
		return "had an API token revoked", true
	}
	return "", false
}

// adminUserAction does one action on an account, with its reason. A
// refusal re-renders the account's page with the message beside the
// action's field and the reason kept; a temporary password or token made
// is shown once on the page that answers.
func (w *ui) adminUserAction(c echo.Context) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	if !custody.MayAdminister(me.Role) {
		return w.refuse(c, http.StatusForbidden, "User accounts are managed by administrators.", "Ask a programme administrator.")
	}
	id, action, reason := c.Param("id"), c.Param("action"), c.FormValue("reason")
	done, known := userActionDone(action)
	if !known {
		return w.refuse(c, http.StatusNotFound, "No such action.", "")
	}
	ctx := c.Request().Context()
	if _, err := w.svc.UserAccount(ctx, me, id); err != nil {
		return w.fail(c, err)
	}
	tokID := c.FormValue("token")
	if action == "revoke" {
		action = "revoke-" + tokID // the refusal goes beside the token's row
	}
	var net *networkForm
	if action == "network" {
		net = &networkForm{Organisation: strings.TrimSpace(c.FormValue("organisation")), Sites: c.Request().PostForm["sites"], Reason: reason}
	}
	refused := func(field, msg string) error {
		return w.renderUser(c, http.StatusUnprocessableEntity, id, fieldErrors{action + "." + field: msg}, map[string]string{action: reason}, net, nil)
	}
	if strings.TrimSpace(reason) == "" {
		return refused("reason", "Give a reason: it goes into the audit trail.")
	}
	var shown *shownOnce
	field := "error" // where a domain refusal goes
	switch action {
	case "disable", "enable":
		_, err = w.svc.AdminSetDisabledFor(ctx, me, id, action == "disable", reason)
	case "unlock":
		if err = w.svc.AdminUnlockFor(ctx, me, id, reason); err == nil {
			w.throttle.ForgetUser(id)
		}
	case "reset":
		temp := c.FormValue("temporary")
		if temp == "" {
			temp = custody.NewTemporaryPassword()
			shown = &shownOnce{User: id, Password: temp}
		}
		field = "temporary"
		_, err = w.svc.AdminResetPassword(ctx, me, id, temp, reason)
	case "network":
		field = "sites"
		_, err = w.svc.SetUserNetwork(ctx, me, id, net.Organisation, net.Sites, reason)
	case "token":
		var tok string
		if tok, err = w.svc.AdminNewTokenFor(ctx, me, id, reason); err == nil {
			shown = &shownOnce{User: id, Token: tok}
		}
	default: // revoke
		err = w.svc.RevokeToken(ctx, me, id, tokID, reason)
	}
	if err != nil {
		if msg, ok := formError(err); ok {
			return refused(field, msg)
		}
		return w.fail(c, err)
	}
	msg := "User " + id + " " + done + "."
	if shown != nil {
		shown.Done = msg
		return w.renderUser(c, http.StatusOK, id, nil, nil, nil, shown)
	}
	w.flash(c, msg)
	return c.Redirect(http.StatusSeeOther, "/admin/users/"+url.PathEscape(id))
}
