package web

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The administration screens of the registries: the index, and one screen
// serving the organisations, sites, products and shippers alike. Each has
// a paged list with the entries' state, a form to register one, an edit
// form per entry (the service's update, as the API's PUT) and suspend and
// resume, every change with its reason. A refused form comes back with
// what was typed and each refusal beside the field it concerns (the
// domain names the field: custody.FieldError). Administrators change; QA
// reads (the others get the refusal page). The domain enforces the same
// rules: the screens only map them.

// adminPageSize is how many entries a registry list page shows.
const adminPageSize = 50

// regField is one input of a registry form, as the template draws it.
type regField struct {
	// Name is the input's name: the JSON member the API spells
	// ("accreditation.expiry"), so a domain FieldError finds its input.
	Name  string
	Label string
	Hint  string
	// Type is text, number, date, select, kinds (a checkbox per site
	// kind) or check (one checkbox, value 1).
	Type     string
	Options  []regOption
	Value    string
	Error    string
	Required bool
	Max      int
	Upper    bool // typed in capitals (codes)
	Numeric  bool // typed as digits (GLN)
}

// ID is the field's HTML id.
func (f regField) ID() string { return "f-" + strings.ReplaceAll(f.Name, ".", "-") }

// regOption is one choice of a select or of the kinds checkboxes.
type regOption struct {
	Value, Label string
	Checked      bool
}

// registryRow is one entry of a list page.
type registryRow struct {
	Key       string
	Sub       string // a second line under the key (its name)
	Cells     []string
	Suspended bool
}

// registryScreen is one registry's screen: its words and how it reads,
// fills and changes its entries. Every registry's is built by
// newRegistryScreen from the service's methods.
type registryScreen struct {
	Path     string // "sites": the screen is /admin/sites
	Title    string // "Sites"
	One      string // "site"
	KeyName  string // the key's field: "code", or "id" for shippers
	KeyLabel string
	Columns  []string

	list    func(ctx context.Context, me custody.User, after string) ([]registryRow, string, error)
	current func(ctx context.Context, me custody.User, key string) (url.Values, bool, error) // its form values, and whether it is suspended
	fields  func(ctx context.Context, me custody.User, v url.Values) ([]regField, error)
	save    func(ctx context.Context, me custody.User, key string, v url.Values, reason string) (map[string]string, error)
	suspend func(ctx context.Context, me custody.User, key string, suspended bool, reason string) error
}

// registryOps are a registry's service methods and its mapping to and
// from form values.
type registryOps[T any] struct {
	key      func(T) string
	row      func(T) registryRow
	toForm   func(T) url.Values
	fromForm func(url.Values, *T) map[string]string // the values' own errors (numbers), by field
	register func(context.Context, custody.User, T, string) (T, error)
	update   func(context.Context, custody.User, string, T, string) (T, error)
	suspend  func(context.Context, custody.User, string, bool, string) (T, error)
	get      func(context.Context, custody.User, string) (T, error)
	list     func(context.Context, custody.User, string, int) ([]T, error)
}

func newRegistryScreen[T any](s registryScreen, o registryOps[T],
	fields func(ctx context.Context, me custody.User, v url.Values) ([]regField, error)) *registryScreen {
	s.fields = fields
	s.list = func(ctx context.Context, me custody.User, after string) ([]registryRow, string, error) {
		entries, err := o.list(ctx, me, after, adminPageSize)
		if err != nil {
			return nil, "", err
		}
		rows := make([]registryRow, len(entries))
		for i, e := range entries {
			rows[i] = o.row(e)
		}
		next := ""
		if len(entries) == adminPageSize {
			next = o.key(entries[len(entries)-1])
		}
		return rows, next, nil
	}
	s.current = func(ctx context.Context, me custody.User, key string) (url.Values, bool, error) {
		v, err := o.get(ctx, me, key)
		if err != nil {
			return nil, false, err
		}
		return o.toForm(v), o.row(v).Suspended, nil
	}
	s.save = func(ctx context.Context, me custody.User, key string, v url.Values, reason string) (map[string]string, error) {
		var entry T
		if key != "" {
			// The stored entry under the typed fields: what the form does
			// not carry (suspended) stays as it is.
			stored, err := o.get(ctx, me, key)
			if err != nil {
				return nil, err
			}
			entry = stored
		}
		if errs := o.fromForm(v, &entry); len(errs) > 0 {
			return errs, nil
		}
		var err error
		if key == "" {
			_, err = o.register(ctx, me, entry, reason)
		} else {
			_, err = o.update(ctx, me, key, entry, reason)
		}
		return nil, err
	}
	s.suspend = func(ctx context.Context, me custody.User, key string, suspended bool, reason string) error {
		_, err := o.suspend(ctx, me, key, suspended, reason)
		return err
	}
	return &s
}

// registryScreens returns the four registries' screens.
func (w *ui) registryScreens() []*registryScreen {
	svc := w.svc
	orgOptions := func(ctx context.Context, me custody.User, kinds ...custody.OrganisationKind) ([]regOption, error) {
		orgs, err := svc.Organisations(ctx, me, "", custody.MaxRegistryPage)
		if err != nil {
			return nil, err
		}
		opts := []regOption{{Value: "", Label: "Choose…"}}
		for _, o := range orgs {
			if !slices.Contains(kinds, o.Kind) {
				continue
			}
			l := o.Code + " · " + o.Name + " (" + string(o.Kind) + ")"
			if o.Suspended {
				l += ", suspended"
			}
			opts = append(opts, regOption{Value: o.Code, Label: l})
		}
		return opts, nil
	}
	orgs := newRegistryScreen(registryScreen{Path: "organisations", Title: "Organisations", One: "organisation", KeyName: "code", KeyLabel: "Code",
		Columns: []string{"Organisation", "Kind"}},
		registryOps[custody.Organisation]{
			key: func(o custody.Organisation) string { return o.Code },
			row: func(o custody.Organisation) registryRow {
				return registryRow{Key: o.Code, Sub: o.Name, Cells: []string{string(o.Kind)}, Suspended: o.Suspended}
			},
			toForm: func(o custody.Organisation) url.Values {
				return url.Values{"code": {o.Code}, "name": {o.Name}, "kind": {string(o.Kind)}}
			},
			fromForm: func(v url.Values, o *custody.Organisation) map[string]string {
				o.Code = strings.TrimSpace(v.Get("code"))
				o.Name, o.Kind = v.Get("name"), custody.OrganisationKind(v.Get("kind"))
				return nil
			},
			register: svc.RegisterOrganisation, update: svc.UpdateOrganisation, suspend: svc.SuspendOrganisation,
			get: svc.Organisation, list: svc.Organisations,
		},
		func(_ context.Context, _ custody.User, v url.Values) ([]regField, error) {
			return []regField{
				codeField("code", "Code", v),
				{Name: "name", Label: "Name", Type: "text", Required: true, Max: 200, Value: v.Get("name")},
				{Name: "kind", Label: "Kind", Type: "select", Value: v.Get("kind"),
					Options: selected(choices([]string{"hospital", "manufacturer", "courier"}), v.Get("kind"))},
			}, nil
		})
	sites := newRegistryScreen(registryScreen{Path: "sites", Title: "Sites", One: "site", KeyName: "code", KeyLabel: "Code",
		Columns: []string{"Site", "Kinds", "Zone", "Accreditation; qualification"}},
		registryOps[custody.Site]{
			key: func(s custody.Site) string { return s.Code },
			row: func(s custody.Site) registryRow {
				kinds := make([]string, len(s.Kinds))
				for i, k := range s.Kinds {
					kinds[i] = string(k)
				}
				acc := string(s.Accreditation.Status)
				if s.Accreditation.Expiry != "" {
					acc += " until " + s.Accreditation.Expiry
				}
				qual := "not qualified"
				if s.Qualification.TrainingDone {
					qual = "qualified until " + s.Qualification.Expiry
				}
				sub := s.Name + " · " + s.Organisation
				if s.FIN != "" {
					sub += " · FIN " + s.FIN
				}
				if s.GLN != "" {
					sub += " · GLN " + s.GLN
				}
				return registryRow{Key: s.Code, Sub: sub, Suspended: s.Suspended,
					Cells: []string{strings.Join(kinds, ", "), s.TimeZone, acc + "; " + qual}}
			},
			toForm: func(s custody.Site) url.Values {
				v := url.Values{"code": {s.Code}, "name": {s.Name}, "organisation": {s.Organisation}, "time_zone": {s.TimeZone},
					"address": {s.Address}, "country": {s.Country}, "fin": {s.FIN}, "gln": {s.GLN}, "label_symbol": {strings.TrimPrefix(s.LabelSymbol, custody.LabelSymbolQR)},
					"accreditation.status": {string(s.Accreditation.Status)}, "accreditation.expiry": {s.Accreditation.Expiry},
					"qualification.date": {s.Qualification.Date}, "qualification.expiry": {s.Qualification.Expiry}}
				for _, k := range s.Kinds {
					v.Add("kinds", string(k))
				}
				if s.Qualification.TrainingDone {
					v.Set("qualification.training_done", "1")
				}
				return v
			},
			fromForm: func(v url.Values, s *custody.Site) map[string]string {
				s.Code = strings.TrimSpace(v.Get("code"))
				s.Name, s.Address = v.Get("name"), v.Get("address")
				s.Organisation, s.TimeZone = strings.TrimSpace(v.Get("organisation")), strings.TrimSpace(v.Get("time_zone"))
				s.Country, s.FIN, s.GLN = strings.TrimSpace(v.Get("country")), strings.TrimSpace(v.Get("fin")), strings.TrimSpace(v.Get("gln"))
				s.LabelSymbol = v.Get("label_symbol")
				s.Kinds = nil
				for _, k := range v["kinds"] {
					s.Kinds = append(s.Kinds, custody.SiteRole(k))
				}
				s.Accreditation = custody.Accreditation{Status: custody.AccreditationStatus(v.Get("accreditation.status")),
					Expiry: strings.TrimSpace(v.Get("accreditation.expiry"))}
				s.Qualification = custody.Qualification{TrainingDone: v.Get("qualification.training_done") == "1",
					Date: strings.TrimSpace(v.Get("qualification.date")), Expiry: strings.TrimSpace(v.Get("qualification.expiry"))}
				return nil
			},
			register: svc.RegisterSite, update: svc.UpdateSite, suspend: svc.SuspendSite, get: svc.Site, list: svc.Sites,
		},
		func(ctx context.Context, me custody.User, v url.Values) ([]regField, error) {
			opts, err := orgOptions(ctx, me, custody.OrgHospital, custody.OrgManufacturer)
			if err != nil {
				return nil, err
			}
			kinds := choices([]string{"collection", "manufacturing", "treatment"}, v["kinds"]...)
			return []regField{
				codeField("code", "Code", v),
				{Name: "name", Label: "Name", Type: "text", Required: true, Max: 200, Value: v.Get("name")},
				{Name: "organisation", Label: "Organisation", Hint: "a hospital for collection and treatment, a manufacturer for manufacturing",
					Type: "select", Required: true, Value: v.Get("organisation"), Options: selected(opts, v.Get("organisation"))},
				{Name: "kinds", Label: "Kinds", Type: "kinds", Options: kinds},
				{Name: "time_zone", Label: "Time zone", Hint: "IANA name, e.g. Europe/Paris", Type: "text", Required: true, Max: 64, Value: v.Get("time_zone")},
				{Name: "address", Label: "Address", Type: "text", Required: true, Max: 500, Value: v.Get("address")},
				{Name: "country", Label: "Country", Hint: "two letters, e.g. FR", Type: "text", Required: true, Max: 2, Upper: true, Value: v.Get("country")},
				{Name: "fin", Label: "FIN", Hint: "ISBT 128 facility number (A9999, 1AB23); empty if none", Type: "text", Max: 5, Upper: true, Value: v.Get("fin")},
				{Name: "gln", Label: "GLN", Hint: "GS1 global location number: 13 digits; empty if none", Type: "text", Max: 13, Numeric: true, Value: v.Get("gln")},
				{Name: "label_symbol", Label: "Label symbol", Hint: "the 2-D code on its bag labels; each carries the same ISBT 128 data",
					Type: "select", Value: v.Get("label_symbol"), Options: selected([]regOption{
						{Value: "", Label: "QR (default)"}, {Value: custody.LabelSymbolDataMatrix, Label: "Data Matrix"},
						{Value: custody.LabelSymbolBoth, Label: "QR and Data Matrix"}}, v.Get("label_symbol"))},
				{Name: "accreditation.status", Label: "Accreditation", Type: "select", Value: v.Get("accreditation.status"),
					Options: selected(choices([]string{"accredited", "pending", "withdrawn", "none"}), v.Get("accreditation.status"))},
				{Name: "accreditation.expiry", Label: "Accreditation expiry", Type: "date", Value: v.Get("accreditation.expiry")},
				{Name: "qualification.training_done", Label: "Staff training done", Type: "check", Value: v.Get("qualification.training_done")},
				{Name: "qualification.date", Label: "Qualified on", Type: "date", Value: v.Get("qualification.date")},
				{Name: "qualification.expiry", Label: "Qualification expiry", Type: "date", Value: v.Get("qualification.expiry")},
			}, nil
		})
	products := newRegistryScreen(registryScreen{Path: "products", Title: "Products", One: "product", KeyName: "code", KeyLabel: "Code",
		Columns: []string{"Product", "ISBT 128 code", "Storage profile", "Shelf life", "Manufacturing"}},
		registryOps[custody.Product]{
			key: func(p custody.Product) string { return p.Code },
			row: func(p custody.Product) registryRow {
				return registryRow{Key: p.Code, Sub: p.Name, Suspended: p.Suspended, Cells: []string{p.ISBTCode, p.StorageProfile,
					strconv.Itoa(p.ShelfLifeHours) + " h", strconv.Itoa(p.ManufacturingDays) + " days"}}
			},
			toForm: func(p custody.Product) url.Values {
				return url.Values{"code": {p.Code}, "name": {p.Name}, "isbt_code": {p.ISBTCode}, "storage_profile": {p.StorageProfile},
					"shelf_life_hours": {strconv.Itoa(p.ShelfLifeHours)}, "manufacturing_days": {strconv.Itoa(p.ManufacturingDays)},
					"apheresis_to_start_days": {optionalNumber(p.ApheresisToStartDays)}, "release_days": {optionalNumber(p.ReleaseDays)},
					"shipping_days": {optionalNumber(p.ShippingDays)}, "infusion_window_days": {optionalNumber(p.InfusionWindowDays)}}
			},
			fromForm: func(v url.Values, p *custody.Product) map[string]string {
				p.Code = strings.TrimSpace(v.Get("code"))
				p.Name, p.ISBTCode, p.StorageProfile = v.Get("name"), strings.TrimSpace(v.Get("isbt_code")), v.Get("storage_profile")
				errs := map[string]string{}
				p.ShelfLifeHours = wholeNumber(v, "shelf_life_hours", "The shelf life", errs)
				p.ManufacturingDays = wholeNumber(v, "manufacturing_days", "The manufacturing time", errs)
				p.ApheresisToStartDays = optionalWholeNumber(v, "apheresis_to_start_days", "The time to manufacturing start", errs)
				p.ReleaseDays = optionalWholeNumber(v, "release_days", "The QA release time", errs)
				p.ShippingDays = optionalWholeNumber(v, "shipping_days", "The shipping time", errs)
				p.InfusionWindowDays = optionalWholeNumber(v, "infusion_window_days", "The infusion window", errs)
				return errs
			},
			register: svc.RegisterProduct, update: svc.UpdateProduct, suspend: svc.SuspendProduct, get: svc.Product, list: svc.Products,
		},
		func(_ context.Context, _ custody.User, v url.Values) ([]regField, error) {
			profiles := append([]regOption{{Value: "", Label: "Choose…"}}, choices(svc.Profiles())...)
			return []regField{
				codeField("code", "Code", v),
				{Name: "name", Label: "Name", Type: "text", Required: true, Max: 200, Value: v.Get("name")},
				{Name: "isbt_code", Label: "ISBT 128 product code", Hint: "8 characters, a cellular therapy (S) or regenerated tissue (P) code, e.g. S1234V00", Type: "text", Required: true, Max: 8, Value: v.Get("isbt_code")},
				{Name: "storage_profile", Label: "Storage profile", Type: "select", Required: true, Value: v.Get("storage_profile"),
					Options: selected(profiles, v.Get("storage_profile"))},
				{Name: "shelf_life_hours", Label: "Shelf life", Hint: "hours after release", Type: "number", Required: true, Value: v.Get("shelf_life_hours")},
				{Name: "manufacturing_days", Label: "Manufacturing time", Hint: "days from manufacturing start to its end", Type: "number", Required: true, Value: v.Get("manufacturing_days")},
				{Name: "apheresis_to_start_days", Label: "Apheresis to manufacturing start", Hint: "days; empty: not set, and chains of it cannot be booked", Type: "number", Value: v.Get("apheresis_to_start_days")},
				{Name: "release_days", Label: "QA release", Hint: "days from manufacturing end; empty: not set", Type: "number", Value: v.Get("release_days")},
				{Name: "shipping_days", Label: "Shipping", Hint: "days from release to arrival at the treatment site; empty: not set", Type: "number", Value: v.Get("shipping_days")},
				{Name: "infusion_window_days", Label: "Infusion window", Hint: "days from arrival; empty: not set", Type: "number", Value: v.Get("infusion_window_days")},
			}, nil
		})
	shippers := newRegistryScreen(registryScreen{Path: "shippers", Title: "Shippers", One: "shipper", KeyName: "id", KeyLabel: "Shipper ID",
		Columns: []string{"Shipper", "Courier", "Requalification due"}},
		registryOps[custody.Shipper]{
			key: func(s custody.Shipper) string { return s.ID },
			row: func(s custody.Shipper) registryRow {
				return registryRow{Key: s.ID, Suspended: s.Suspended, Cells: []string{s.Courier, s.RequalificationDue}}
			},
			toForm: func(s custody.Shipper) url.Values {
				return url.Values{"id": {s.ID}, "courier": {s.Courier}, "requalification_due": {s.RequalificationDue}, "giai": {s.GIAI}}
			},
			fromForm: func(v url.Values, s *custody.Shipper) map[string]string {
				s.ID = strings.TrimSpace(v.Get("id"))
				s.Courier, s.RequalificationDue = strings.TrimSpace(v.Get("courier")), strings.TrimSpace(v.Get("requalification_due"))
				s.GIAI = strings.TrimSpace(v.Get("giai"))
				return nil
			},
			register: svc.RegisterShipper, update: svc.UpdateShipper, suspend: svc.SuspendShipper, get: svc.Shipper, list: svc.Shippers,
		},
		func(ctx context.Context, me custody.User, v url.Values) ([]regField, error) {
			opts, err := orgOptions(ctx, me, custody.OrgCourier)
			if err != nil {
				return nil, err
			}
			return []regField{
				{Name: "id", Label: "Shipper ID", Hint: "as its telemetry names it", Type: "text", Required: true, Max: custody.MaxShipperIDLen, Value: v.Get("id")},
				{Name: "courier", Label: "Courier", Type: "select", Required: true, Value: v.Get("courier"), Options: selected(opts, v.Get("courier"))},
				{Name: "requalification_due", Label: "Requalification due", Type: "date", Required: true, Value: v.Get("requalification_due")},
				{Name: "giai", Label: "GIAI", Hint: "GS1 global individual asset identifier: company prefix, then asset reference, up to 30 characters; empty if none", Type: "text", Max: custody.MaxGIAILen, Value: v.Get("giai")},
			}, nil
		})
	return []*registryScreen{orgs, sites, products, shippers}
}

func codeField(name, label string, v url.Values) regField {
	return regField{Name: name, Label: label, Hint: "capital letters, digits, hyphens", Type: "text", Required: true, Max: 32, Upper: true, Value: v.Get(name)}
}

// choices are options whose value is their label, those in checked
// ticked.
func choices(values []string, checked ...string) []regOption {
	out := make([]regOption, len(values))
	for i, v := range values {
		out[i] = regOption{Value: v, Label: v, Checked: slices.Contains(checked, v)}
	}
	return out
}

// selected ticks the option v, adding it when it is not among them (a
// value typed elsewhere, or a reference no longer listed), so a refused
// form shows what was sent.
func selected(opts []regOption, v string) []regOption {
	found := false
	for i := range opts {
		opts[i].Checked = opts[i].Value == v
		found = found || opts[i].Checked
	}
	if !found && v != "" {
		opts = append(opts, regOption{Value: v, Label: v, Checked: true})
	}
	return opts
}

// wholeNumber reads a whole-number field, noting in errs when it is not
// one.
func wholeNumber(v url.Values, name, what string, errs map[string]string) int {
	n, err := strconv.Atoi(strings.TrimSpace(v.Get(name)))
	if err != nil {
		errs[name] = what + " must be a whole number."
	}
	return n
}

// optionalNumber shows a lead time in a form: empty when not set (0).
func optionalNumber(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// optionalWholeNumber reads an optional whole number: empty is 0 (not
// set); anything else not a whole number is named in errs.
func optionalWholeNumber(v url.Values, name, what string, errs map[string]string) int {
	if strings.TrimSpace(v.Get(name)) == "" {
		return 0
	}
	return wholeNumber(v, name, what, errs)
}

// registryView is what admin_registry.html gets.
type registryView struct {
	S        *registryScreen
	Rows     []registryRow
	Next     string
	HasAfter bool
	CanEdit  bool
	// Editing is the key of the entry the edit form changes; "" on the
	// list page, whose form registers.
	Editing     string
	Fields      []regField
	Reason      string
	ReasonError string
	// Error is a refusal of the form no field answers for.
	Error string
	// ListError is the refusal of a suspend or resume from the list.
	ListError string
	// Suspended says the entry edited is suspended (an edit keeps it so).
	Suspended bool
}

// registerAdminRegistries registers the registry screens' routes on g.
func (w *ui) registerAdminRegistries(g *echo.Group) {
	for _, s := range w.registryScreens() {
		base := "/admin/" + s.Path
		g.GET(base, func(c echo.Context) error { return w.registryList(c, s) })
		g.POST(base, func(c echo.Context) error { return w.registrySave(c, s, "") })
		g.GET(base+"/:code/edit", func(c echo.Context) error { return w.registryEdit(c, s) })
		g.POST(base+"/:code/edit", func(c echo.Context) error { return w.registrySave(c, s, c.Param("code")) })
		g.POST(base+"/:code/suspend", func(c echo.Context) error { return w.registrySuspend(c, s) })
	}
	g.GET("/admin/site-mappings", w.siteMappingsPage)
	g.POST("/admin/site-mappings", w.siteMappingSave)
}

// adminGate says whether the session's user may open the
// administration screens (administrators, QA read-only), and refuses
// otherwise.
func (w *ui) adminGate(c echo.Context) (custody.User, bool, error) {
	me := sessionUser(c)
	if custody.MayViewAdministration(me.Role) {
		return me, true, nil
	}
	return me, false, w.refuse(c, http.StatusForbidden, "The administration screens are for administrators (QA may read them).",
		"Ask a programme administrator.")
}

// adminChangeGate lets only administrators send a change, before any of
// it is read.
func (w *ui) adminChangeGate(c echo.Context) (custody.User, bool, error) {
	me, ok, err := w.adminGate(c)
	if !ok {
		return me, ok, err
	}
	if !custody.MayAdminister(me.Role) {
		return me, false, w.refuse(c, http.StatusForbidden, "Only administrators change the registries.", "QA reads them.")
	}
	return me, true, nil
}

func (w *ui) adminIndex(c echo.Context) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	return w.render(c, http.StatusOK, "admin", page{Title: "Administration", Nav: "admin", V: custody.MayAdminister(me.Role)})
}

func (w *ui) registryList(c echo.Context, s *registryScreen) error {
	return w.renderRegistry(c, s, http.StatusOK, registryView{}, url.Values{}, nil)
}

// renderSuspendRefused renders the list page with the refusal of a
// suspend or resume above the list.
func (w *ui) renderSuspendRefused(c echo.Context, s *registryScreen, msg string) error {
	return w.renderRegistry(c, s, http.StatusUnprocessableEntity, registryView{ListError: msg}, url.Values{}, nil)
}

func (w *ui) registryEdit(c echo.Context, s *registryScreen) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	key := c.Param("code")
	v, suspended, err := s.current(c.Request().Context(), me, key)
	if err != nil {
		return w.fail(c, err)
	}
	return w.renderRegistry(c, s, http.StatusOK, registryView{Editing: key, Suspended: suspended}, v, nil)
}

// renderRegistry renders the list page (view.Editing "") or the edit
// form of the entry view.Editing, with the form's values v and its
// refusals by field; view brings the reason typed and the refusals no
// field answers for.
func (w *ui) renderRegistry(c echo.Context, s *registryScreen, code int, view registryView, v url.Values, errs map[string]string) error {
	me, ok, err := w.adminGate(c)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	view.S, view.CanEdit = s, custody.MayAdminister(me.Role)
	editing := view.Editing
	title := s.Title
	if editing == "" {
		after := c.QueryParam("after")
		view.HasAfter = after != ""
		if view.Rows, view.Next, err = s.list(ctx, me, after); err != nil {
			return w.fail(c, err)
		}
	} else {
		title = "Edit " + s.One + " " + editing
		if !view.CanEdit {
			title = upperFirst(s.One) + " " + editing
		}
	}
	if view.CanEdit || editing != "" {
		if view.Fields, err = s.fields(ctx, me, v); err != nil {
			return w.fail(c, err)
		}
		if editing != "" {
			view.Fields = slices.DeleteFunc(view.Fields, func(f regField) bool { return f.Name == s.KeyName })
		}
		for i := range view.Fields {
			view.Fields[i].Error = errs[view.Fields[i].Name]
			delete(errs, view.Fields[i].Name)
		}
		view.ReasonError = errs["reason"]
		delete(errs, "reason")
	}
	for _, k := range slices.Sorted(maps.Keys(errs)) { // a refusal of a field the form does not show
		view.Error = strings.TrimSpace(view.Error + " " + errs[k])
	}
	return w.render(c, code, "admin_registry", page{Title: title, Nav: "admin", V: view})
}

// registrySave registers an entry (key "") or updates the entry key from
// the form.
func (w *ui) registrySave(c echo.Context, s *registryScreen, key string) error {
	me, ok, err := w.adminChangeGate(c)
	if !ok {
		return err
	}
	form, err := c.FormParams()
	if err != nil {
		return w.fail(c, err)
	}
	reason := form.Get("reason")
	refused := func(errs map[string]string, msg string) error {
		return w.renderRegistry(c, s, http.StatusUnprocessableEntity, registryView{Editing: key, Reason: reason, Error: msg}, form, errs)
	}
	errs, err := s.save(c.Request().Context(), me, key, form, reason)
	if len(errs) > 0 {
		return refused(errs, "")
	}
	if err != nil {
		if _, isForm := formError(err); !isForm {
			return w.fail(c, err)
		}
		field := custody.ErrorField(err)
		if field == "" && key == "" && errors.Is(err, custody.ErrConflict) {
			field = s.KeyName // the only conflict a new entry meets on its own: its key is taken
		}
		if field == "" {
			return refused(nil, err.Error())
		}
		return refused(map[string]string{field: fieldMessage(err)}, "")
	}
	word := "registered"
	if key != "" {
		word = "changed"
	} else {
		key = form.Get(s.KeyName)
	}
	w.flash(c, upperFirst(s.One)+" "+strings.TrimSpace(key)+" "+word+".")
	return c.Redirect(http.StatusSeeOther, "/admin/"+s.Path)
}

func (w *ui) registrySuspend(c echo.Context, s *registryScreen) error {
	me, ok, err := w.adminChangeGate(c)
	if !ok {
		return err
	}
	key, suspend, reason := c.Param("code"), c.FormValue("suspended") == "1", c.FormValue("reason")
	if err := s.suspend(c.Request().Context(), me, key, suspend, reason); err != nil {
		if msg, ok := formError(err); ok {
			return w.renderSuspendRefused(c, s, msg)
		}
		return w.fail(c, err)
	}
	word := "resumed"
	if suspend {
		word = "suspended"
	}
	w.flash(c, upperFirst(s.One)+" "+key+" "+word+".")
	return c.Redirect(http.StatusSeeOther, "/admin/"+s.Path)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// fieldMessage is the refusal's text to show beside its field: the
// field error's own, without the operation that wraps it.
func fieldMessage(err error) string {
	var fe *custody.FieldError
	if errors.As(err, &fe) {
		return fe.Error()
	}
	return err.Error()
}

// formError is the message a form shows for a domain refusal of what was
// typed (invalid, or in conflict with what is registered); false for
// other errors, which get the error page.
func formError(err error) (string, bool) {
	if errors.Is(err, custody.ErrInvalid) || errors.Is(err, custody.ErrConflict) || errors.Is(err, custody.ErrNotFound) {
		return err.Error(), true
	}
	return "", false
}
