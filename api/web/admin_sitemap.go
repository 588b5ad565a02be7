package web

import (
	"net/http"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The site-mappings screen: the free-text site names of chains enrolled
// before the network was registered that no registered site answers to,
// each with a choice of registered site and a reason, and the mappings
// already made, each of which can be changed the same way. Administrators
// map; QA reads.

// mappingRow is one site name on the screen, with its form as typed.
type mappingRow struct {
	Name    string
	Current string // the site it is mapped to; "" while unmapped
	Options []regOption
	Reason  string
	// CanEdit and CSRF draw the row's form.
	CanEdit bool
	CSRF    string
	// SiteError, ReasonError and Error are the refusal of the last
	// submission for this name: beside the site, beside the reason, or
	// for the name itself.
	SiteError, ReasonError, Error string
}

// mappingsView is what admin_sitemap.html gets.
type mappingsView struct {
	CanEdit      bool
	Unmapped     []mappingRow
	Mapped       []mappingRow
	NextUnmapped string
	NextMapped   string
	HasAfter     bool
	Error        string // a refusal for a name not on this page
}

// mappingSubmit is a refused submission, shown on its row.
type mappingSubmit struct {
	name, site, reason        string
	siteErr, reasonErr, other string
}

func (w *ui) siteMappingsPage(c echo.Context) error {
	return w.renderSiteMappings(c, http.StatusOK, nil)
}

func (w *ui) renderSiteMappings(c echo.Context, code int, sub *mappingSubmit) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	ua, ma := c.QueryParam("unmapped_after"), c.QueryParam("mapped_after")
	names, err := w.svc.UnmappedSiteNames(ctx, me, ua, adminPageSize)
	if err != nil {
		return w.fail(c, err)
	}
	maps, err := w.svc.SiteMappings(ctx, me, ma, adminPageSize)
	if err != nil {
		return w.fail(c, err)
	}
	v := mappingsView{CanEdit: custody.MayAdminister(me.Role), HasAfter: ua != "" || ma != ""}
	var sites []custody.Site
	if v.CanEdit {
		if sites, err = w.svc.Sites(ctx, me, "", custody.MaxRegistryPage); err != nil {
			return w.fail(c, err)
		}
	}
	csrf := w.sessions.snapshot(session(c)).CSRF
	row := func(name, current string) mappingRow {
		r := mappingRow{Name: name, Current: current, CanEdit: v.CanEdit, CSRF: csrf}
		chosen := current
		if sub != nil && sub.name == name {
			chosen, r.Reason = sub.site, sub.reason
			r.SiteError, r.ReasonError, r.Error = sub.siteErr, sub.reasonErr, sub.other
			sub = nil
		}
		if v.CanEdit {
			r.Options = []regOption{{Value: "", Label: "Choose the registered site…"}}
			for _, s := range sites {
				if s.Suspended && s.Code != current {
					continue
				}
				r.Options = append(r.Options, regOption{Value: s.Code, Label: s.Code + " · " + s.Name})
			}
			r.Options = selected(r.Options, chosen)
		}
		return r
	}
	for _, n := range names {
		v.Unmapped = append(v.Unmapped, row(n, ""))
	}
	for _, m := range maps {
		v.Mapped = append(v.Mapped, row(m.Name, m.Site))
	}
	if len(names) == adminPageSize {
		v.NextUnmapped = names[len(names)-1]
	}
	if len(maps) == adminPageSize {
		v.NextMapped = maps[len(maps)-1].Name
	}
	if sub != nil { // the name is on no row of this page
		v.Error = strings.TrimSpace(sub.name + ": " + strings.TrimSpace(sub.siteErr+" "+sub.reasonErr+" "+sub.other))
	}
	return w.render(c, code, "admin_sitemap", page{Title: "Site mappings", Nav: "admin", V: v})
}

func (w *ui) siteMappingSave(c echo.Context) error {
	me, ok, err := w.adminChangeGate(c)
	if !ok {
		return err
	}
	sub := &mappingSubmit{name: c.FormValue("name"), site: strings.TrimSpace(c.FormValue("site")), reason: c.FormValue("reason")}
	if sub.site == "" {
		sub.siteErr = "Choose the registered site this name stands for."
		return w.renderSiteMappings(c, http.StatusUnprocessableEntity, sub)
	}
	m, _, err := w.svc.MapSiteName(c.Request().Context(), me, sub.name, sub.site, sub.reason)
	if err != nil {
		msg, ok := formError(err)
		if !ok {
			return w.fail(c, err)
		}
		switch custody.ErrorField(err) {
		case "site":
			sub.siteErr = fieldMessage(err)
		case "reason":
			sub.reasonErr = fieldMessage(err)
		default:
			sub.other = msg
		}
		return w.renderSiteMappings(c, http.StatusUnprocessableEntity, sub)
	}
	w.flash(c, "Site name “"+m.Name+"” mapped to "+m.Site+".")
	return c.Redirect(http.StatusSeeOther, "/admin/site-mappings")
}
