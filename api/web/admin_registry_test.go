package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// fieldBlock returns the part of body that draws the form field name
// (its input and the refusal beside it), "" if the page has none.
func fieldBlock(body, name string) string {
	i := strings.Index(body, `data-field="`+name+`"`)
	if i < 0 {
		return ""
	}
	rest := body[i+len(name)+12:]
	if j := strings.Index(rest, `data-field="`); j >= 0 {
		rest = rest[:j]
	}
	if j := strings.Index(rest, "</form>"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// wantFieldError checks that the refusal shows beside field (and says
// want), and that no other field of the form shows one.
func wantFieldError(t *testing.T, p page, what, field, want string) {
	t.Helper()
	b := fieldBlock(p.Body, field)
	if !strings.Contains(b, `class="field-error"`) || !strings.Contains(b, want) {
		t.Errorf("%s: no refusal saying %q beside field %s:\n%s", what, want, field, excerpt(p.Body))
	}
	if n := strings.Count(p.Body, `class="field-error"`); n != 1 {
		t.Errorf("%s: %d field refusals on the page, want 1", what, n)
	}
	if strings.Contains(p.Body, `id="form-error"`) {
		t.Errorf("%s: the refusal is at the top of the form, not beside its field", what)
	}
}

// registryCase is one registry's screen as the table test drives it.
type registryCase struct {
	path, one, key string
	kind           custody.RegistryKind
	create         url.Values          // a good new entry, with its reason
	row            []string            // what its list row shows
	edit           map[string]string   // fields changed by the edit form
	edited         func(v any) bool    // the stored entry shows the edit
	bad            [2]string           // a field and a value the domain refuses
	badSays        string              // what the refusal says
	get            func() (any, error) // the stored entry
	count          func() int          // how many entries the registry holds
	// choices: a select of the form, the options it must offer and those
	// it must not.
	choices   string
	offers    []string
	offersNot []string
}

// TestAdminRegistries: for each registry, an administrator registers an
// entry, edits it through the service's update (with a reason, audited),
// sees bad input refused beside the field with what was typed kept and
// nothing changed, suspends and resumes it; an edit keeps the entry
// suspended.
func TestAdminRegistries(t *testing.T) {
	e := newWebEnv(t, false)
	ctx := context.Background()
	admin := e.users[wAdmin]
	adm := e.login(wAdmin)

	p := adm.get("/admin")
	wantCode(t, p, http.StatusOK, "admin index")
	wantBody(t, p, "admin index", `href="/admin/organisations"`, `href="/admin/sites"`, `href="/admin/products"`,
		`href="/admin/shippers"`, `href="/admin/site-mappings"`, `href="/admin" aria-current="page"`)
	wantCode(t, adm.post("/admin/organisations", url.Values{"code": {"CELLCO"}, "name": {"CellCo"}, "kind": {"manufacturer"}, "reason": {"network"}}),
		http.StatusSeeOther, "manufacturer")
	wantCode(t, adm.post("/admin/organisations", url.Values{"code": {"FASTCO"}, "name": {"FastCo"}, "kind": {"courier"}, "reason": {"network"}}),
		http.StatusSeeOther, "courier")

	orgs := func() int { l, _ := e.svc.Organisations(ctx, admin, "", 0); return len(l) }
	sitesN := func() int { l, _ := e.svc.Sites(ctx, admin, "", 0); return len(l) }
	productsN := func() int { l, _ := e.svc.Products(ctx, admin, "", 0); return len(l) }
	shippersN := func() int { l, _ := e.svc.Shippers(ctx, admin, "", 0); return len(l) }
	cases := []registryCase{
		{path: "organisations", kind: custody.KindOrganisation, one: "organisation", key: "APHP",
			create: url.Values{"code": {"APHP"}, "name": {"AP-HP"}, "kind": {"hospital"}, "reason": {"onboarding"}},
			row:    []string{"AP-HP", "<td>hospital</td>"},
			edit:   map[string]string{"name": "Assistance Publique"},
			edited: func(v any) bool { return v.(custody.Organisation).Name == "Assistance Publique" },
			bad:    [2]string{"kind", "bank"}, badSays: "must be manufacturer, hospital or courier",
			get:   func() (any, error) { return e.svc.Organisation(ctx, admin, "APHP") },
			count: orgs},
		{path: "sites", kind: custody.KindSite, one: "site", key: "PAR-1",
			create: siteValues("PAR-1"),
			row:    []string{"collection, treatment", "Europe/Paris", "Hopital Saint-Louis · APHP · FIN F1234", "accredited until 2027-06-30; qualified until 2027-01-15"},
			edit: map[string]string{"gln": "4006381333931", "time_zone": "Europe/Berlin", "qualification.expiry": "2027-03-01",
				"label_symbol": "both"},
			edited: func(v any) bool {
				s := v.(custody.Site)
				return s.GLN == "4006381333931" && s.TimeZone == "Europe/Berlin" && s.Qualification.Expiry == "2027-03-01" && s.Address != "" &&
					s.LabelSymbol == custody.LabelSymbolBoth
			},
			bad: [2]string{"gln", "4006381333932"}, badSays: "check digit is 1",
			get:     func() (any, error) { return e.svc.Site(ctx, admin, "PAR-1") },
			choices: "organisation", offers: []string{`<option value="CELLCO">CELLCO · CellCo (manufacturer)</option>`, `value="APHP"`}, offersNot: []string{`value="FASTCO"`},
			count: sitesN},
		{path: "products", kind: custody.KindProduct, one: "product", key: "CART-19",
			create: url.Values{"code": {"CART-19"}, "name": {"anti-CD19"}, "isbt_code": {"S1234V00"}, "storage_profile": {"cryogenic"},
				"shelf_life_hours": {"8760"}, "manufacturing_days": {"21"}, "apheresis_to_start_days": {"2"}, "reason": {"new product"}},
			row:  []string{"S1234V00", "cryogenic", "8760 h", "21 days"},
			edit: map[string]string{"shelf_life_hours": "4380", "storage_profile": "refrigerated", "release_days": "3"},
			edited: func(v any) bool {
				p := v.(custody.Product)
				return p.ShelfLifeHours == 4380 && p.StorageProfile == "refrigerated" && p.ApheresisToStartDays == 2 && p.ReleaseDays == 3 && p.ShippingDays == 0
			},
			bad: [2]string{"isbt_code", "12345678"}, badSays: "not an ISBT 128 product code",
			get:     func() (any, error) { return e.svc.Product(ctx, admin, "CART-19") },
			choices: "storage_profile", offers: []string{`<option value="cryogenic">`, `<option value="refrigerated">`},
			count: productsN},
		{path: "shippers", kind: custody.KindShipper, one: "shipper", key: "SHP-0007",
			create: url.Values{"id": {"SHP-0007"}, "courier": {"FASTCO"}, "requalification_due": {"2027-01-31"}, "reason": {"new shipper"}},
			row:    []string{"<td>FASTCO</td>", "<td>2027-01-31</td>"},
			edit:   map[string]string{"requalification_due": "2027-07-31", "giai": "0614141SH/7"},
			edited: func(v any) bool {
				s := v.(custody.Shipper)
				return s.RequalificationDue == "2027-07-31" && s.GIAI == "0614141SH/7"
			},
			bad: [2]string{"courier", "APHP"}, badSays: "not a courier",
			get:     func() (any, error) { return e.svc.Shipper(ctx, admin, "SHP-0007") },
			choices: "courier", offers: []string{`<option value="FASTCO">FASTCO · FastCo (courier)</option>`}, offersNot: []string{`value="APHP"`, `value="CELLCO"`},
			count: shippersN},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			base := "/admin/" + c.path
			p := adm.get(base)
			wantCode(t, p, http.StatusOK, "list")
			wantBody(t, p, "list", `id="registry-form"`, `action="`+base+`"`)
			if c.choices != "" {
				b := fieldBlock(p.Body, c.choices)
				if !strings.Contains(b, "<select") {
					t.Errorf("%s is not a select: %s", c.choices, b)
				}
				for _, o := range c.offers {
					if !strings.Contains(b, o) {
						t.Errorf("%s does not offer %s: %s", c.choices, o, b)
					}
				}
				for _, o := range c.offersNot {
					if strings.Contains(b, o) {
						t.Errorf("%s offers %s: %s", c.choices, o, b)
					}
				}
			}

			// Bad input when registering: refused beside the field,
			// what was typed kept, nothing written.
			bad := url.Values{}
			for k, v := range c.create {
				bad[k] = v
			}
			bad.Set(c.bad[0], c.bad[1])
			before := c.count()
			p = adm.post(base, bad)
			wantCode(t, p, http.StatusUnprocessableEntity, "bad register")
			wantFieldError(t, p, "bad register", c.bad[0], c.badSays)
			wantBody(t, p, "bad register kept", `value="`+c.create.Get("reason")+`"`)
			if c.bad[0] != "kind" && c.bad[0] != "courier" {
				wantBody(t, p, "bad register kept", `value="`+c.bad[1]+`"`)
			} else {
				wantBody(t, p, "bad register kept", `value="`+c.bad[1]+`" selected`)
			}
			if n := c.count(); n != before {
				t.Fatalf("a refused form registered: %d entries, want %d", n, before)
			}
			noReason := url.Values{}
			for k, v := range c.create {
				noReason[k] = v
			}
			noReason.Set("reason", " ")
			p = adm.post(base, noReason)
			wantCode(t, p, http.StatusUnprocessableEntity, "no reason")
			wantFieldError(t, p, "no reason", "reason", "reason is required")

			// Register.
			p = adm.post(base, c.create)
			wantCode(t, p, http.StatusSeeOther, "register")
			p = adm.get(base)
			wantBody(t, p, "list after register", append([]string{upper(c.one) + " " + c.key + " registered.", `id="` + c.one + `-` + c.key + `"`,
				`href="` + base + `/` + c.key + `/edit"`, "active</td>"}, c.row...)...)
			keyField := "code"
			if c.path == "shippers" {
				keyField = "id"
			}
			p = adm.post(base, c.create)
			wantCode(t, p, http.StatusUnprocessableEntity, "key taken")
			wantFieldError(t, p, "key taken", keyField, "already registered")

			// Edit: prefilled, the change stored with its audit entry.
			edit := base + "/" + c.key + "/edit"
			p = adm.get(edit)
			wantCode(t, p, http.StatusOK, "edit form")
			wantBody(t, p, "edit form", `action="`+edit+`"`, "Save changes")
			wantNotBody(t, p, "edit form", `id="entry-suspended"`)
			if fieldBlock(p.Body, keyField) != "" {
				t.Errorf("the edit form lets the key change")
			}
			vals := url.Values{}
			for k, v := range c.create {
				if k != keyField {
					vals[k] = v
				}
			}
			for k, v := range c.edit {
				vals.Set(k, v)
			}
			vals.Set("reason", "correction")
			old, _ := c.get()
			badEdit := url.Values{}
			for k, v := range vals {
				badEdit[k] = v
			}
			badEdit.Set(c.bad[0], c.bad[1])
			p = adm.post(edit, badEdit)
			wantCode(t, p, http.StatusUnprocessableEntity, "bad edit")
			wantFieldError(t, p, "bad edit", c.bad[0], c.badSays)
			wantBody(t, p, "bad edit kept", `value="correction"`)
			if now, _ := c.get(); !equalJSON(t, now, old) {
				t.Fatalf("a refused edit changed the entry: %+v, was %+v", now, old)
			}
			p = adm.post(edit, vals)
			wantCode(t, p, http.StatusSeeOther, "edit")
			wantBody(t, adm.get(base), "after edit", upper(c.one)+" "+c.key+" changed.")
			now, err := c.get()
			if err != nil || !c.edited(now) {
				t.Fatalf("after edit: %v %+v", err, now)
			}
			trail, err := e.svc.AuditTrail(ctx, admin, custody.AuditFilter{Kind: custody.ObjectKind(c.kind), Code: c.key})
			if err != nil || len(trail) != 2 || trail[1].Action != custody.AuditUpdate || trail[1].Reason != "correction" || trail[1].Actor != wAdmin {
				t.Fatalf("audit after edit: %v %+v", err, trail)
			}

			// Suspend, edit while suspended (it stays suspended), resume.
			sus := base + "/" + c.key + "/suspend"
			p = adm.post(sus, url.Values{"suspended": {"1"}, "reason": {""}})
			wantCode(t, p, http.StatusUnprocessableEntity, "suspend without reason")
			wantBody(t, p, "suspend without reason", `id="list-error"`, "every change needs its reason")
			wantCode(t, adm.post(sus, url.Values{"suspended": {"1"}, "reason": {"audit finding"}}), http.StatusSeeOther, "suspend")
			p = adm.get(base)
			wantBody(t, p, "after suspend", upper(c.one)+" "+c.key+" suspended.", "suspended</strong>", ">Resume</button>")
			vals.Set("reason", "second correction")
			for k, v := range c.create {
				if k != keyField && c.edit[k] == "" {
					vals[k] = v
				}
			}
			wantBody(t, adm.get(edit), "edit form of a suspended entry", `id="entry-suspended"`)
			wantCode(t, adm.post(edit, vals), http.StatusSeeOther, "edit while suspended")
			if v, _ := c.get(); !strings.Contains(jsonOf(t, v), `"suspended":true`) {
				t.Fatalf("an edit resumed the entry: %+v", v)
			}
			wantCode(t, adm.post(sus, url.Values{"suspended": {"0"}, "reason": {"renewed"}}), http.StatusSeeOther, "resume")
			wantCode(t, adm.post(sus, url.Values{"suspended": {"0"}, "reason": {"again"}}), http.StatusUnprocessableEntity, "resume twice")
			wantCode(t, adm.post(sus, url.Values{"suspended": {"1"}, "reason": {"x"}, "csrf": {"forged"}}), http.StatusForbidden, "forged CSRF")
			if v, _ := c.get(); strings.Contains(jsonOf(t, v), `"suspended":true`) {
				t.Fatalf("a forged form suspended the entry: %+v", v)
			}
		})
	}

	// QA reads every screen, without a form; the others are refused.
	qa := e.login(wQA)
	nurse := e.login(wNurse1)
	for _, c := range cases {
		base := "/admin/" + c.path
		p := qa.get(base)
		wantCode(t, p, http.StatusOK, "QA reads "+c.path)
		wantBody(t, p, "QA reads "+c.path, `id="`+c.one+`-`+c.key+`"`, ">View</a>")
		wantNotBody(t, p, "QA reads "+c.path, `action="/admin/`, `id="registry-form"`)
		p = qa.get(base + "/" + c.key + "/edit")
		wantCode(t, p, http.StatusOK, "QA views "+c.key)
		wantBody(t, p, "QA views "+c.key, "<fieldset disabled")
		wantNotBody(t, p, "QA views "+c.key, `action="/admin/`)
		before, _ := c.get()
		for _, path := range []string{base, base + "/" + c.key + "/edit", base + "/" + c.key + "/suspend"} {
			vals := url.Values{"suspended": {"1"}, "reason": {"qa"}}
			for k, v := range c.create {
				vals[k] = v
			}
			wantCode(t, qa.post(path, vals), http.StatusForbidden, "QA posts "+path)
			wantCode(t, nurse.post(path, vals), http.StatusForbidden, "nurse posts "+path)
		}
		if after, _ := c.get(); !equalJSON(t, after, before) {
			t.Errorf("QA or a nurse changed %s: %+v", c.key, after)
		}
		wantCode(t, nurse.get(base), http.StatusForbidden, "nurse opens "+c.path)
		wantCode(t, nurse.get(base+"/"+c.key+"/edit"), http.StatusForbidden, "nurse opens the edit form of "+c.key)
	}
	wantCode(t, nurse.get("/admin"), http.StatusForbidden, "nurse opens the index")
	wantNotBody(t, nurse.get("/scan"), "nurse nav", `href="/admin"`)
	wantCode(t, adm.get("/admin/sites/NOPE/edit"), http.StatusNotFound, "edit an unknown site")
}

// TestAdminSiteFormErrors: every field of the site form the domain
// refuses shows its refusal beside it, and a number that is not one is
// refused beside its field before the service is asked.
func TestAdminSiteFormErrors(t *testing.T) {
	e := newWebEnv(t, false)
	adm := e.login(wAdmin)
	wantCode(t, adm.post("/admin/organisations", url.Values{"code": {"APHP"}, "name": {"AP-HP"}, "kind": {"hospital"}, "reason": {"r"}}), http.StatusSeeOther, "org")
	cases := []struct{ field, value, says string }{
		{"code", "par 1", "only upper-case letters"},
		{"name", "", "site name is required"},
		{"organisation", "NOBODY", "no such organisation"},
		{"time_zone", "Mars/Olympus", "not an IANA time zone"},
		{"address", "", "site address is required"},
		{"country", "FRA", "ISO 3166-1"},
		{"fin", "O1234", "not an ISBT 128 FIN"},
		{"gln", "40063813339X1", "13 digits"},
		{"label_symbol", "pdf417", "must be qr, datamatrix or both"},
		{"accreditation.status", "maybe", "accreditation status"},
		{"accreditation.expiry", "30/06/2027", "not a date"},
		{"qualification.date", "", "qualification date is required"},
		{"qualification.expiry", "2025-01-01", "is not after"},
	}
	for _, c := range cases {
		v := siteValues("PAR-1")
		v.Set(c.field, c.value)
		p := adm.post("/admin/sites", v)
		wantCode(t, p, http.StatusUnprocessableEntity, c.field)
		wantFieldError(t, p, c.field, c.field, c.says)
		wantBody(t, p, c.field+" kept", `value="`+c.value+`"`, `value="treatment" checked`, `value="onboarding"`)
		if c.field != "address" {
			wantBody(t, p, c.field+" kept", `value="1 avenue Claude Vellefaux, Paris"`)
		}
	}
	v := siteValues("PAR-1")
	v.Del("kinds")
	wantFieldError(t, adm.post("/admin/sites", v), "no kinds", "kinds", "kinds must name")

	p := adm.post("/admin/products", url.Values{"code": {"CART-19"}, "name": {"anti-CD19"}, "isbt_code": {"S1234V00"}, "storage_profile": {"cryogenic"},
		"shelf_life_hours": {"a year"}, "manufacturing_days": {"21"}, "reason": {"r"}})
	wantCode(t, p, http.StatusUnprocessableEntity, "shelf life in words")
	wantFieldError(t, p, "shelf life in words", "shelf_life_hours", "whole number")
	wantBody(t, p, "shelf life kept", `value="a year"`)
	if l, _ := e.svc.Sites(context.Background(), e.users[wAdmin], "", 0); len(l) != 0 {
		t.Fatalf("refused forms registered %d sites", len(l))
	}
}

func upper(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func equalJSON(t *testing.T, a, b any) bool { return jsonOf(t, a) == jsonOf(t, b) }

// siteValues is a good site form for the organisation APHP.
func siteValues(code string) url.Values {
	return url.Values{"code": {code}, "name": {"Hopital Saint-Louis"}, "organisation": {"APHP"}, "kinds": {"collection", "treatment"},
		"time_zone": {"Europe/Paris"}, "address": {"1 avenue Claude Vellefaux, Paris"}, "country": {"FR"}, "fin": {"F1234"},
		"accreditation.status": {"accredited"}, "accreditation.expiry": {"2027-06-30"}, "qualification.training_done": {"1"},
		"qualification.date": {"2026-01-15"}, "qualification.expiry": {"2027-01-15"}, "reason": {"onboarding"}}
}

// TestAdminRegistryPaging: a registry longer than a page is listed a
// page at a time, in code order, with links to the next and the first
// page.
func TestAdminRegistryPaging(t *testing.T) {
	e := newWebEnv(t, false)
	ctx := context.Background()
	for i := range 51 {
		o := custody.Organisation{Code: fmt.Sprintf("ORG-%02d", i), Name: "Hospital", Kind: custody.OrgHospital}
		if _, err := e.svc.RegisterOrganisation(ctx, e.users[wAdmin], o, "network"); err != nil {
			t.Fatal(err)
		}
	}
	qa := e.login(wQA)
	p := qa.get("/admin/organisations")
	wantBody(t, p, "first page", `id="organisation-ORG-00"`, `id="organisation-ORG-49"`, `href="/admin/organisations?after=ORG-49" rel="next"`)
	wantNotBody(t, p, "first page", `id="organisation-ORG-50"`, `rel="first"`)
	p = qa.get("/admin/organisations?after=ORG-49")
	wantBody(t, p, "second page", `id="organisation-ORG-50"`, `href="/admin/organisations" rel="first"`)
	wantNotBody(t, p, "second page", `id="organisation-ORG-49"`, `rel="next"`)
}
