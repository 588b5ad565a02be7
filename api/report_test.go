package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/api/internal/nettest"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/epcis"
	"github.com/labstack/echo/v4"
)

// reportText extracts a PDF's text with pdftotext, or skips the caller
// when poppler-utils is not installed; under CI (CI=true), which installs
// it, it fails instead.
func reportText(t *testing.T, pdf []byte) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		const why = "pdftotext (poppler-utils) is not installed; install it to check the report's text"
		if os.Getenv("CI") != "" {
			t.Fatal("required in CI: " + why)
		}
		t.Skip(why)
	}
	f := filepath.Join(t.TempDir(), "r.pdf")
	if err := os.WriteFile(f, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-enc", "UTF-8", f, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

func TestCustodyReport(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	e.advance(t, coi, patientA.MRN, len(journey(coi, patientA.MRN)))
	path := chainPath(coi, "/report.pdf")

	r := e.do(t, http.MethodGet, path, qa, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("GET %s as qa: %s", path, r)
	}
	if ct := r.Header.Get(echo.HeaderContentType); ct != "application/pdf" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := r.Header.Get(echo.HeaderContentDisposition); !strings.Contains(cd, "coid-report-"+string(coi)) {
		t.Errorf("Content-Disposition %q", cd)
	}
	if !bytes.HasPrefix(r.Body, []byte("%PDF-")) {
		t.Fatalf("body is not a PDF")
	}
	again := e.do(t, http.MethodGet, path, qa, nil)
	if !bytes.Equal(r.Body, again.Body) {
		t.Error("the same chain at the same time gives a different report")
	}
	if r := e.do(t, http.MethodGet, path, admin, nil); r.Code != http.StatusOK {
		t.Errorf("admin: %s", r)
	}
	for _, u := range []string{coord, nurse1, courier, mfg} {
		r := e.do(t, http.MethodGet, path, u, nil)
		if code, _ := r.errorBody(t); r.Code != http.StatusForbidden || code != "forbidden" {
			t.Errorf("%s: %d %s, want 403", u, r.Code, code)
		}
	}
	if r := e.do(t, http.MethodGet, path, "", nil); r.Code != http.StatusUnauthorized {
		t.Errorf("no token: %s", r)
	}
	if r := e.do(t, http.MethodGet, chainPath("CHA999926999999", "/report.pdf"), qa, nil); r.Code != http.StatusNotFound {
		t.Errorf("unknown chain: %s", r)
	}
	if r := e.do(t, http.MethodGet, chainPath("NOTACOI", "/report.pdf"), qa, nil); r.Code != http.StatusBadRequest {
		t.Errorf("malformed COI: %s", r)
	}
	if r := e.do(t, http.MethodGet, path+"?tz=Mars/Olympus_Mons", qa, nil); r.Code != http.StatusBadRequest {
		t.Errorf("unknown zone: %s", r)
	}
	berlin := e.do(t, http.MethodGet, path+"?tz=Europe/Berlin", qa, nil)
	if berlin.Code != http.StatusOK {
		t.Fatalf("tz=Europe/Berlin: %s", berlin)
	}
	if !strings.Contains(e.logs.String(), "custody report generated") {
		t.Error("report generation not logged")
	}

	txt := reportText(t, r.Body)
	c := e.chain(t, coi)
	for _, w := range []string{string(coi), "initials ZQ, born 1961", "No telemetry available", "SHP-0042", "SHP-0099",
		"Leg 1", "Leg 2", "OK: " + reportItoa(len(c.Records)) + " records", c.Head, "Printed " + qa + " (user " + qa + ", role qa)"} {
		if !strings.Contains(txt, w) {
			t.Errorf("report lacks %q", w)
		}
	}
	for _, rec := range c.Records {
		if !strings.Contains(txt, string(rec.Step)) {
			t.Errorf("report lacks step %s", rec.Step)
		}
		for _, s := range rec.Signatures {
			if !strings.Contains(txt, s.Name+" ("+string(s.Role)+")") || !strings.Contains(txt, string(s.Meaning)) {
				t.Errorf("report lacks signature %s (%s) %s", s.Name, s.Role, s.Meaning)
			}
		}
	}
	for _, id := range patientA.identifiers() {
		if strings.Contains(txt, id) || bytes.Contains(r.Body, []byte(id)) {
			t.Errorf("report contains patient identifier %q", id)
		}
	}
	if bt := reportText(t, berlin.Body); !strings.Contains(bt, "CET") {
		t.Error("report with tz=Europe/Berlin shows no CET times")
	}
}

func reportItoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestCustodyReportEarlyChain(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientB)
	if r := e.do(t, http.MethodGet, chainPath(coi, "/report.pdf"), qa, nil); r.Code != http.StatusOK {
		t.Fatalf("enrolled chain: %s", r)
	}
	e.advance(t, coi, patientB.MRN, 2) // collect, ship: leg 1 open
	e.mustStep(t, coi, qa, custody.StepCancel, map[string]any{"reason": "courier lost the shipper"}, sig{qa, custody.MeaningApproved, ""})
	r := e.do(t, http.MethodGet, chainPath(coi, "/report.pdf"), qa, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("cancelled chain: %s", r)
	}
	if txt := reportText(t, r.Body); !strings.Contains(txt, "CANCELLED") || !strings.Contains(txt, "courier lost the shipper") {
		t.Errorf("cancelled chain's report does not say so")
	}
}

func TestEPCISExport(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	e.advance(t, coi, patientA.MRN, len(journey(coi, patientA.MRN)))
	path := chainPath(coi, "/epcis")
	for _, u := range []string{nurse1, qa, courier, admin} {
		r := e.do(t, http.MethodGet, path, u, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("GET %s as %s: %s", path, u, r)
		}
		if ct := r.Header.Get(echo.HeaderContentType); ct != "application/ld+json" {
			t.Errorf("Content-Type %q", ct)
		}
		var doc struct {
			Context       []any  `json:"@context"`
			Type          string `json:"type"`
			SchemaVersion string `json:"schemaVersion"`
			Body          struct {
				EventList []map[string]any `json:"eventList"`
			} `json:"epcisBody"`
		}
		if err := json.Unmarshal(r.Body, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Type != "EPCISDocument" || doc.SchemaVersion != "2.0" || len(doc.Context) == 0 || len(doc.Body.EventList) != 10 {
			t.Errorf("document: type %s, schemaVersion %s, %d events", doc.Type, doc.SchemaVersion, len(doc.Body.EventList))
		}
		for _, id := range patientA.identifiers() {
			if bytes.Contains(r.Body, []byte(id)) {
				t.Errorf("export contains patient identifier %q", id)
			}
		}
	}
	if r := e.do(t, http.MethodGet, path+"?tz=America/New_York", qa, nil); r.Code != http.StatusOK || !bytes.Contains(r.Body, []byte(`"eventTimeZoneOffset": "-05:00"`)) {
		t.Errorf("tz=America/New_York: %s", r)
	}
	if r := e.do(t, http.MethodGet, chainPath("CHA999926999999", "/epcis"), qa, nil); r.Code != http.StatusNotFound {
		t.Errorf("unknown chain: %s", r)
	}
	if r := e.do(t, http.MethodGet, path+"?tz=nowhere", qa, nil); r.Code != http.StatusBadRequest {
		t.Errorf("bad zone: %s", r)
	}
}

func TestEPCISBase(t *testing.T) {
	for _, c := range []struct{ name, base, want string }{
		{"configured", "https://coid.example.org/id/", "https://coid.example.org/id/"},
		{"default", "", epcis.DefaultBase},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *envConfig) { cfg.api.EPCISBase = c.base })
			coi := e.enroll(t, patientA)
			e.advance(t, coi, patientA.MRN, len(journey(coi, patientA.MRN)))
			r := e.do(t, http.MethodGet, chainPath(coi, "/epcis"), qa, nil)
			if r.Code != http.StatusOK {
				t.Fatalf("GET epcis: %s", r)
			}
			for _, id := range []string{c.want + "coi/" + string(coi), c.want + "bag/" + string(coi) + "-FP-01", c.want + "record/"} {
				if !bytes.Contains(r.Body, []byte(`"`+id)) {
					t.Errorf("export does not name %s", id)
				}
			}
			if bytes.Contains(r.Body, []byte("urn:coid:")) {
				t.Error("export still names urn:coid: identifiers")
			}
		})
	}
	// A base that is not an absolute http(s) URI ending in / is refused
	// when the server is built.
	for _, bad := range []string{"urn:coid:", "https://coid.example.org/id", "coid.example.org/id/"} {
		if _, err := api.New(api.Config{Service: newEnv(t).svc, Logger: slog.New(slog.DiscardHandler), EPCISBase: bad}); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("api.New with EPCISBase %q: %v, want ErrInvalid", bad, err)
		}
	}
}

// TestEPCISGS1Keys: once the registries give the chain's collection site
// a GLN (through a site mapping, the chain being older than the network)
// and its first shipper a GIAI (registered over the API, a bad one
// refused), the export names the site by its GS1 Digital Link URI; a
// site without a GLN stays under the base.
func TestEPCISGS1Keys(t *testing.T) {
	e := newEnv(t, func(cfg *envConfig) { cfg.api.EPCISBase = "https://coid.example.org/id/" })
	coi := e.enroll(t, patientA)
	e.advance(t, coi, patientA.MRN, len(journey(coi, patientA.MRN)))
	site := nettest.Site("HOSP-1", "Site HOSP-1", "HOSPA", "Europe/Paris", custody.SiteCollection, custody.SiteTreatment)
	site.GLN = "4006381333931"
	net := netOf(t, e)
	net.Register(t, "set-up", []custody.Organisation{{Code: "HOSPA", Name: "Hospital A", Kind: custody.OrgHospital},
		{Code: "FAST", Name: "FastCo", Kind: custody.OrgCourier}}, []custody.Site{site}, nil)
	for _, c := range []struct {
		giai string
		code int
	}{{"0614141 SH42", http.StatusBadRequest}, {"0614141SH/42", http.StatusCreated}} {
		r := e.do(t, http.MethodPost, "/api/v1/shippers", admin, map[string]any{"id": "SHP-0042", "courier": "FAST",
			"requalification_due": "2027-06-30", "giai": c.giai, "reason": "registered"})
		if r.Code != c.code || c.code == http.StatusCreated && !strings.Contains(r.String(), `"giai":"0614141SH/42"`) {
			t.Fatalf("register shipper with GIAI %q: %s, want %d", c.giai, r, c.code)
		}
	}
	net.Map(t, "network migration", map[string]string{"St. Elsewhere Apheresis": "HOSP-1"})
	// The chain now belongs to the network: a reader bound to its
	// collection site reads it.
	net.Bind(t, qa, "HOSPA", "HOSP-1")
	r := e.do(t, http.MethodGet, chainPath(coi, "/epcis"), qa, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("GET epcis: %s", r)
	}
	// (This journey has no telemetry, so no sensor element names the
	// shipper: custody/epcis's tests check the GIAI as deviceID, and
	// custody's that the service finds the chain's shippers' GIAIs.)
	for _, want := range []string{`"id": "https://id.gs1.org/414/4006381333931"`, `"source": "https://id.gs1.org/414/4006381333931"`,
		`"destination": "https://coid.example.org/id/site/A9999/CellWorks%20Plant%202"`} {
		if !bytes.Contains(r.Body, []byte(want)) {
			t.Errorf("export lacks %s\n%s", want, r.Body)
		}
	}
	if bytes.Contains(r.Body, []byte("St.%20Elsewhere%20Apheresis")) {
		t.Error("export still names the collection site by its free-text name")
	}
}
