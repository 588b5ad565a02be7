package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coid-project/coid/api/internal/nettest"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/fhir"
	"github.com/labstack/echo/v4"
)

var updateFHIR = flag.Bool("update-fhir", false, "rewrite the FHIR golden files in testdata/fhir")

// fhirValidatorDir holds the npm FHIR validators .ci/run installs.
const fhirValidatorDir = "../testdata/fhir-validator"

// validateFHIR runs the independent FHIR R4 validators (npm: fhir, the R4
// structure definitions, and @asymmetrik/fhir-json-schema-validator, the
// official JSON schema) on each resource and returns their complaints,
// one per line. Without node or the installed validators the test skips,
// and fails under CI.
func validateFHIR(tb testing.TB, resources map[string][]byte) string {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(fhirValidatorDir, "node_modules", "fhir"))
	}
	if err != nil {
		why := "the FHIR validators are not installed (cd testdata/fhir-validator && npm ci): " + err.Error()
		if os.Getenv("CI") != "" {
			tb.Fatal("required in CI: " + why)
		}
		tb.Skip(why)
	}
	dir := tb.TempDir()
	var files []string
	for _, name := range slices.Sorted(maps.Keys(resources)) {
		f := filepath.Join(dir, name+".json")
		if err := os.WriteFile(f, resources[name], 0o600); err != nil {
			tb.Fatal(err)
		}
		files = append(files, f)
	}
	out, err := exec.Command(node, append([]string{filepath.Join(fhirValidatorDir, "validate.js")}, files...)...).CombinedOutput()
	if err != nil && len(out) == 0 {
		tb.Fatalf("validator: %v", err)
	}
	return strings.ReplaceAll(string(out), dir+string(filepath.Separator), "")
}

func (e *env) fhirGet(tb testing.TB, target, user string) response {
	tb.Helper()
	r := e.do(tb, http.MethodGet, target, user, nil)
	if ct := r.Header.Get(echo.HeaderContentType); ct != fhir.MediaType {
		tb.Errorf("GET %s: Content-Type %q, want %s", target, ct, fhir.MediaType)
	}
	return r
}

// fhirChainFixture is a chain through the whole journey, with patientB's
// chain beside it.
func fhirChainFixture(tb testing.TB, e *env) custody.COI {
	tb.Helper()
	coi := e.enroll(tb, patientA)
	e.advance(tb, coi, patientA.MRN, len(journey(coi, patientA.MRN)))
	other := e.enroll(tb, patientB)
	e.advance(tb, other, patientB.MRN, 2)
	authored := sig{nurse1, custody.MeaningAuthored, ""}
	e.mustStep(tb, other, nurse1, custody.StepNote, map[string]any{"text": "shipper lid taped"}, authored)
	collect := e.chain(tb, other).Records[1]
	e.mustStep(tb, other, nurse1, custody.StepCorrection, map[string]any{"corrects": collect.Seq, "reason": "DIN misread", "din": "A999926123457"}, authored)
	e.mustStep(tb, other, qa, custody.StepCancel, map[string]any{"reason": "withdrew"}, sig{qa, custody.MeaningApproved, ""})
	return coi
}

// fhirCancelled is the second chain of fhirChainFixture: collected,
// shipped, with a note and a correction, then cancelled.
const fhirCancelled = custody.COI("CHA999926000002")

// fhirRoutes are one request of every FHIR route over the chain coi.
func fhirRoutes(coi custody.COI) map[string]string {
	aph := custody.BagID{COI: coi, Kind: custody.BagApheresis, N: 1}.String()
	fp := custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1}.String()
	return map[string]string{
		"capability":          "/fhir/r4/metadata",
		"product-aph":         "/fhir/r4/BiologicallyDerivedProduct/" + aph,
		"product-fp":          "/fhir/r4/BiologicallyDerivedProduct/" + fp,
		"products-by-coi":     "/fhir/r4/BiologicallyDerivedProduct?coi=" + string(coi),
		"products-by-bag":     "/fhir/r4/BiologicallyDerivedProduct?identifier=" + url.QueryEscape(fhir.SystemBag+"|"+fp),
		"provenance":          "/fhir/r4/Provenance/" + fhir.ProvenanceID(coi, 2),
		"provenances-by-coi":  "/fhir/r4/Provenance?coi=" + string(coi),
		"provenances-by-bag":  "/fhir/r4/Provenance?target=BiologicallyDerivedProduct/" + fp,
		"chain-bundle":        "/fhir/r4/Bundle/" + string(coi),
		"cancelled-bundle":    "/fhir/r4/Bundle/" + string(fhirCancelled),
		"outcome-bad-request": "/fhir/r4/BiologicallyDerivedProduct?colour=red",
		"outcome-not-found":   "/fhir/r4/Bundle/CHA999926999999",
	}
}

// TestFHIRResourcesValidate: every resource kind the interface serves
// (CapabilityStatement, BiologicallyDerivedProduct, Provenance, Bundle of
// type searchset and collection, OperationOutcome) passes both independent
// validators, and the validators refuse a broken resource.
func TestFHIRResourcesValidate(t *testing.T) {
	e := newEnv(t)
	coi := fhirChainFixture(t, e)
	resources := map[string][]byte{}
	kinds := map[string]bool{}
	for name, target := range fhirRoutes(coi) {
		r := e.fhirGet(t, target, nurse1)
		want := http.StatusOK
		switch {
		case strings.HasPrefix(name, "outcome-bad"):
			want = http.StatusBadRequest
		case strings.HasPrefix(name, "outcome-not"):
			want = http.StatusNotFound
		}
		if r.Code != want {
			t.Fatalf("%s: GET %s: %s, want %d", name, target, r, want)
		}
		var v struct {
			ResourceType string `json:"resourceType"`
			Type         string `json:"type"`
		}
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		kinds[strings.TrimSuffix(v.ResourceType+" "+v.Type, " ")] = true
		resources[name] = r.Body
	}
	for _, k := range []string{"CapabilityStatement", "BiologicallyDerivedProduct", "Provenance", "Bundle searchset", "Bundle collection", "OperationOutcome"} {
		if !kinds[k] {
			t.Errorf("no %s among the responses validated (%v)", k, slices.Sorted(maps.Keys(kinds)))
		}
	}
	// The validators can fail: a Provenance without its recorded time, an
	// element R4 does not define, a status outside its value set. Both
	// broken resources go to the same run as the served ones.
	var prov, prod map[string]any
	if err := json.Unmarshal(resources["provenance"], &prov); err != nil {
		t.Fatal(err)
	}
	delete(prov, "recorded")
	if err := json.Unmarshal(resources["product-fp"], &prod); err != nil {
		t.Fatal(err)
	}
	prod["status"], prod["expiry"] = "shipped", "2027-01-01"
	broken := map[string]any{"broken-provenance": prov, "broken-product": prod}
	for name, v := range broken {
		resources[name], _ = json.Marshal(v)
	}
	out := validateFHIR(t, resources)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" && !strings.HasPrefix(line, "broken-") {
			t.Errorf("the FHIR validators refuse coid's output: %s", line)
		}
	}
	for name := range broken {
		if !strings.Contains(out, name+".json: ") {
			t.Errorf("the validators accept the %s: %s", name, resources[name])
		}
	}
	t.Logf("validator output:\n%s", out)
}

// TestFHIRMapping: what a hospital's system reads from the resources: the
// bag's identifiers and ISBT 128 product code, collection, processing and
// storage; each record's who, role, when and signature meaning.
func TestFHIRMapping(t *testing.T) {
	e := newEnv(t)
	coi := fhirChainFixture(t, e)
	fp := custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1}.String()
	aph := custody.BagID{COI: coi, Kind: custody.BagApheresis, N: 1}.String()

	var p struct {
		ID          string `json:"id"`
		Status      string `json:"status"`
		ProductCode struct {
			Coding []json.RawMessage
			Text   string
		} `json:"productCode"`
		Identifier []struct{ System, Value string }
		Parent     []struct{ Reference string }
		Processing []struct {
			TimeDateTime string `json:"timeDateTime"`
		}
		Storage []struct {
			Description string
			Scale       string
		}
	}
	r := e.fhirGet(t, "/fhir/r4/BiologicallyDerivedProduct/"+fp, nurse1)
	if err := json.Unmarshal(r.Body, &p); err != nil || r.Code != http.StatusOK {
		t.Fatalf("%s: %v", r, err)
	}
	ids := map[string]string{}
	for _, id := range p.Identifier {
		ids[id.System] = id.Value
	}
	if ids[fhir.SystemBag] != fp || ids[fhir.SystemCOI] != string(coi) || ids[fhir.SystemDIN] != "A999926123456" {
		t.Errorf("identifiers %v", ids)
	}
	if len(p.ProductCode.Coding) != 0 || p.ProductCode.Text != "autologous anti-CD19 CAR-T" {
		t.Errorf("free-text product: productCode %+v, want its text alone", p.ProductCode)
	}
	if p.Status != "unavailable" { // infused
		t.Errorf("infused bag's status %q", p.Status)
	}
	if len(p.Parent) != 2 || p.Parent[0].Reference != "BiologicallyDerivedProduct/"+aph {
		t.Errorf("parent %v, want the apheresis bags", p.Parent)
	}
	if len(p.Processing) != 1 || p.Processing[0].TimeDateTime == "" {
		t.Errorf("processing %v", p.Processing)
	}
	if len(p.Storage) != 1 || !strings.Contains(p.Storage[0].Description, "cryogenic") || p.Storage[0].Scale != "celsius" {
		t.Errorf("final product storage %v, want the cryogenic leg", p.Storage)
	}
	var a struct {
		Collection struct {
			CollectedPeriod struct{ Start, End string } `json:"collectedPeriod"`
		}
		Storage []struct{ Description string }
	}
	r = e.fhirGet(t, "/fhir/r4/BiologicallyDerivedProduct/"+aph, nurse1)
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatal(err)
	}
	if a.Collection.CollectedPeriod.Start != "2026-11-22T08:00:00Z" || a.Collection.CollectedPeriod.End != "2026-11-22T10:30:00Z" {
		t.Errorf("collection %+v", a.Collection)
	}
	if len(a.Storage) != 1 || !strings.Contains(a.Storage[0].Description, "refrigerated") {
		t.Errorf("apheresis storage %v", a.Storage)
	}

	// The collect record: performed by nurse1, verified by nurse2.
	var prov struct {
		Recorded string
		Target   []struct{ Reference string }
		Activity struct{ Coding []struct{ Code string } }
		Agent    []struct {
			Type struct{ Coding []struct{ Code string } }
			Role []struct{ Coding []struct{ Code string } }
			Who  struct {
				Identifier struct{ Value string }
			}
		}
		Signature []struct {
			Type []struct{ System, Code string }
			When string
		}
	}
	r = e.fhirGet(t, "/fhir/r4/Provenance/"+fhir.ProvenanceID(coi, 2), nurse1)
	if err := json.Unmarshal(r.Body, &prov); err != nil || r.Code != http.StatusOK {
		t.Fatalf("%s: %v", r, err)
	}
	if prov.Activity.Coding[0].Code != "collect" || len(prov.Target) != 2 || prov.Recorded == "" {
		t.Errorf("collect provenance: %s", r.Body)
	}
	if len(prov.Agent) != 2 || prov.Agent[0].Who.Identifier.Value != nurse1 || prov.Agent[0].Type.Coding[0].Code != "performer" ||
		prov.Agent[0].Role[0].Coding[0].Code != "nurse" || prov.Agent[1].Type.Coding[0].Code != "verifier" {
		t.Errorf("agents: %s", r.Body)
	}
	if len(prov.Signature) != 2 || prov.Signature[1].Type[0].Code != "1.2.840.10065.1.12.1.5" ||
		prov.Signature[1].Type[1].Code != string(custody.MeaningVerified) || prov.Signature[1].When == "" {
		t.Errorf("signatures: %s", r.Body)
	}
}

// TestFHIRCancelledChain: every record is a Provenance, notes and
// corrections included (targeting the chain by its COI), and a cancelled
// chain's bags are unavailable.
func TestFHIRCancelledChain(t *testing.T) {
	e := newEnv(t)
	fhirChainFixture(t, e)
	var b struct {
		Entry []struct {
			Resource struct {
				Activity struct{ Coding []struct{ Code string } }
				Target   []struct {
					Reference  string
					Identifier struct{ System, Value string }
				}
			}
		}
	}
	r := e.fhirGet(t, "/fhir/r4/Provenance?coi="+string(fhirCancelled), nurse1)
	if err := json.Unmarshal(r.Body, &b); err != nil || r.Code != http.StatusOK {
		t.Fatalf("%s: %v", r, err)
	}
	var steps []string
	for _, en := range b.Entry {
		steps = append(steps, en.Resource.Activity.Coding[0].Code)
		if code := en.Resource.Activity.Coding[0].Code; code == "note" || code == "correction" {
			if tg := en.Resource.Target; len(tg) != 1 || tg[0].Identifier.System != fhir.SystemCOI || tg[0].Identifier.Value != string(fhirCancelled) {
				t.Errorf("%s targets %+v, want the chain's COI", code, tg)
			}
		}
	}
	if want := []string{"enroll", "collect", "ship", "note", "correction", "cancel"}; !slices.Equal(steps, want) {
		t.Errorf("records %v, want %v", steps, want)
	}
	bag := custody.BagID{COI: fhirCancelled, Kind: custody.BagApheresis, N: 2}.String()
	r = e.fhirGet(t, "/fhir/r4/BiologicallyDerivedProduct/"+bag, nurse1)
	if !strings.Contains(string(r.Body), `"status":"unavailable"`) {
		t.Errorf("cancelled chain's bag: %s", r)
	}
}

// TestFHIRProductCode: a chain of a registered product carries the
// registry's ISBT 128 product code and name; a chain of free-text product
// carries its text alone (TestFHIRMapping).
func TestFHIRProductCode(t *testing.T) {
	e := networkEnv(t, "2027-03-01")
	r := e.do(t, http.MethodPost, "/api/v1/chains", coord, networkEnroll(netSites, "CART-19"))
	var ch struct{ COI custody.COI }
	if err := json.Unmarshal(r.Body, &ch); err != nil || r.Code != http.StatusCreated {
		t.Fatalf("enroll: %s", r)
	}
	for _, tc := range []struct {
		coi        custody.COI
		code, text string
	}{
		{ch.COI, "S1234V00", "anti-CD19 CAR-T"},
	} {
		e.advance(t, tc.coi, patientA.MRN, 1)
		var p struct {
			ProductCode struct {
				Coding []struct{ System, Code string }
				Text   string
			} `json:"productCode"`
		}
		bag := custody.BagID{COI: tc.coi, Kind: custody.BagApheresis, N: 1}.String()
		r := e.fhirGet(t, "/fhir/r4/BiologicallyDerivedProduct/"+bag, nurse1)
		if err := json.Unmarshal(r.Body, &p); err != nil || r.Code != http.StatusOK {
			t.Fatalf("%s: %v", r, err)
		}
		var code string
		if len(p.ProductCode.Coding) == 1 && p.ProductCode.Coding[0].System == fhir.SystemISBT {
			code = p.ProductCode.Coding[0].Code
		}
		if code != tc.code || p.ProductCode.Text != tc.text {
			t.Errorf("%s: productCode %s, want ISBT 128 %q, text %q", tc.coi, r.Body, tc.code, tc.text)
		}
		// The resource with its ISBT 128 coding (and the registered
		// sites' data) passes the independent validators too.
		if out := strings.TrimSpace(validateFHIR(t, map[string][]byte{"product-isbt": r.Body})); out != "" {
			t.Errorf("the FHIR validators refuse the product with its ISBT 128 code: %s", out)
		}
	}
}

// TestFHIRPaging: a search pages by _count with next links, bounded, and
// the pages together are the whole result, in order.
func TestFHIRPaging(t *testing.T) {
	e := newEnv(t)
	coi := fhirChainFixture(t, e)
	type bundle struct {
		Total int
		Link  []struct{ Relation, URL string }
		Entry []struct {
			Resource struct{ ID string }
		}
	}
	get := func(target string) bundle {
		var b bundle
		r := e.fhirGet(t, target, nurse1)
		if err := json.Unmarshal(r.Body, &b); err != nil || r.Code != http.StatusOK {
			t.Fatalf("GET %s: %s: %v", target, r, err)
		}
		return b
	}
	all := get("/fhir/r4/Provenance?coi=" + string(coi))
	if all.Total != 10 || len(all.Entry) != 10 || len(all.Link) != 1 {
		t.Fatalf("whole chain: total %d, %d entries, links %v", all.Total, len(all.Entry), all.Link)
	}
	var paged []string
	next := "/fhir/r4/Provenance?_count=3&coi=" + string(coi)
	for pages := 0; next != ""; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		b := get(next)
		if len(b.Entry) > 3 || b.Total != 10 {
			t.Fatalf("page of %d entries, total %d", len(b.Entry), b.Total)
		}
		for _, en := range b.Entry {
			paged = append(paged, en.Resource.ID)
		}
		next = ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				u, err := url.Parse(l.URL)
				if err != nil || !strings.HasSuffix(u.Path, "/fhir/r4/Provenance") {
					t.Fatalf("next link %q", l.URL)
				}
				next = u.RequestURI()
			}
		}
	}
	for i, en := range all.Entry {
		if i >= len(paged) || paged[i] != en.Resource.ID {
			t.Fatalf("pages give %v, the whole search %v", paged, all.Entry)
		}
	}
	if len(paged) != 10 {
		t.Errorf("pages hold %d records, want 10", len(paged))
	}
}

// TestFHIRBadSearch: malformed searches and ids are 400 OperationOutcomes
// (issue code invalid) naming what is wrong.
func TestFHIRBadSearch(t *testing.T) {
	e := newEnv(t)
	coi := fhirChainFixture(t, e)
	fp := custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1}.String()
	for _, tc := range []struct {
		name, target, want string
	}{
		{"no parameter", "/fhir/r4/BiologicallyDerivedProduct", "needs one of identifier"},
		{"unknown parameter", "/fhir/r4/BiologicallyDerivedProduct?colour=red", `unknown search parameter "colour"`},
		{"patient parameter", "/fhir/r4/BiologicallyDerivedProduct?patient=" + url.QueryEscape(patientA.MRN), `unknown search parameter "patient"`},
		{"repeated parameter", "/fhir/r4/BiologicallyDerivedProduct?coi=" + string(coi) + "&coi=" + string(coi), "given 2 times"},
		{"empty value", "/fhir/r4/BiologicallyDerivedProduct?coi=", "coi is empty"},
		{"bad COI", "/fhir/r4/BiologicallyDerivedProduct?coi=CHX1", "not a COI"},
		{"bad bag ID", "/fhir/r4/BiologicallyDerivedProduct?identifier=" + string(coi) + "-XX-01", "not a bag ID"},
		{"unsearchable system", "/fhir/r4/BiologicallyDerivedProduct?identifier=" + url.QueryEscape("http://example.org/mrn|"+patientA.MRN), "is not searchable"},
		{"DIN system", "/fhir/r4/BiologicallyDerivedProduct?identifier=" + url.QueryEscape(fhir.SystemDIN+"|A999926123456"), "is not searchable"},
		{"empty system", "/fhir/r4/BiologicallyDerivedProduct?identifier=" + url.QueryEscape("|"+fp), "give the system"},
		{"_count zero", "/fhir/r4/BiologicallyDerivedProduct?coi=" + string(coi) + "&_count=0", "_count must be"},
		{"_count too large", "/fhir/r4/Provenance?coi=" + string(coi) + "&_count=201", "_count must be"},
		{"_count not a number", "/fhir/r4/Provenance?coi=" + string(coi) + "&_count=ten", "_count must be"},
		{"_offset negative", "/fhir/r4/Provenance?coi=" + string(coi) + "&_offset=-1", "_offset must be"},
		{"_format xml", "/fhir/r4/Provenance?coi=" + string(coi) + "&_format=xml", "only json"},
		{"target not a product", "/fhir/r4/Provenance?target=Patient/1", "target must be"},
		{"target bad bag", "/fhir/r4/Provenance?target=BiologicallyDerivedProduct/x", "not a bag ID"},
		{"provenance _id", "/fhir/r4/Provenance?_id=" + string(coi), "want <COI>-<record position>"},
		{"read bad bag", "/fhir/r4/BiologicallyDerivedProduct/nope", "not a bag ID"},
		{"read bad provenance", "/fhir/r4/Provenance/" + string(coi) + "-07", "want <COI>-<record position>"},
		{"read bad bundle", "/fhir/r4/Bundle/nope", "not a COI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.fhirGet(t, tc.target, nurse1)
			var o struct {
				ResourceType string
				Issue        []struct{ Severity, Code, Diagnostics string }
			}
			if err := json.Unmarshal(r.Body, &o); err != nil {
				t.Fatal(err)
			}
			if r.Code != http.StatusBadRequest || o.ResourceType != "OperationOutcome" || len(o.Issue) != 1 ||
				o.Issue[0].Code != "invalid" || o.Issue[0].Severity != "error" || !strings.Contains(o.Issue[0].Diagnostics, tc.want) {
				t.Errorf("GET %s: %s, want a 400 OperationOutcome saying %q", tc.target, r, tc.want)
			}
			if strings.Contains(string(r.Body), patientA.MRN) {
				t.Errorf("the outcome repeats the MRN: %s", r.Body)
			}
		})
	}
}

// TestFHIRAuthentication: every FHIR route needs a token; without one the
// answer is a 401 OperationOutcome.
func TestFHIRAuthentication(t *testing.T) {
	e := newEnv(t)
	coi := fhirChainFixture(t, e)
	for name, target := range fhirRoutes(coi) {
		for _, auth := range []string{"", "Bearer nonsense"} {
			r := e.doAuth(t, http.MethodGet, target, auth, nil)
			if r.Code != http.StatusUnauthorized || !strings.Contains(string(r.Body), `"resourceType":"OperationOutcome"`) ||
				!strings.Contains(string(r.Body), `"code":"login"`) {
				t.Errorf("%s with %q: %s, want a 401 OperationOutcome", name, auth, r)
			}
		}
	}
}

// TestFHIRNoPHI: no FHIR response, and no log line, holds the patient's
// name, birth date or MRN.
func TestFHIRNoPHI(t *testing.T) {
	e := newEnv(t)
	coi := fhirChainFixture(t, e)
	targets := fhirRoutes(coi)
	targets["bad identifier"] = "/fhir/r4/BiologicallyDerivedProduct?identifier=" + url.QueryEscape(patientA.MRN)
	targets["bad coi"] = "/fhir/r4/BiologicallyDerivedProduct?coi=" + url.QueryEscape(patientA.Name)
	for _, user := range []string{nurse1, qa, admin, courier} {
		for name, target := range targets {
			r := e.fhirGet(t, target, user)
			for _, part := range append(identifierParts, patientA.identifiers()...) {
				if strings.Contains(string(r.Body), part) {
					t.Errorf("%s as %s holds %q", name, user, part)
				}
			}
		}
	}
	// There is no Patient resource: asking for one is a 404 OperationOutcome.
	for _, target := range []string{"/fhir/r4/Patient", "/fhir/r4/Patient?identifier=" + url.QueryEscape(patientA.MRN), "/fhir/r4/Patient/1"} {
		r := e.fhirGet(t, target, admin)
		if r.Code != http.StatusNotFound || !strings.Contains(string(r.Body), `"resourceType":"OperationOutcome"`) || strings.Contains(string(r.Body), "7730419") {
			t.Errorf("GET %s: %s, want a 404 OperationOutcome", target, r)
		}
	}
	for _, part := range append(identifierParts, patientA.identifiers()...) {
		if strings.Contains(e.logs.String(), part) {
			t.Errorf("the log holds %q", part)
		}
	}
}

// TestFHIRReadScope: the FHIR routes keep the chain routes' read scope: a
// chain the user may not read is not found (404 OperationOutcome) and left
// out of searches (an empty searchset), never 403.
func TestFHIRReadScope(t *testing.T) {
	e := newEnv(t)
	net := scopeChain(t, e, "MRN-SCOPE-1", nettest.ScopeSites())
	n := netOf(t, e)
	n.Scope(t, "SHP-0042")
	maps.Copy(e.tokens, n.AddUsers(t, nettest.ScopeUsers()))
	aph := custody.BagID{COI: net, Kind: custody.BagApheresis, N: 1}.String()
	reads := []string{
		"/fhir/r4/BiologicallyDerivedProduct/" + aph,
		"/fhir/r4/Provenance/" + fhir.ProvenanceID(net, 1),
		"/fhir/r4/Bundle/" + string(net),
	}
	searches := []string{
		"/fhir/r4/BiologicallyDerivedProduct?coi=" + string(net),
		"/fhir/r4/BiologicallyDerivedProduct?identifier=" + aph,
		"/fhir/r4/Provenance?coi=" + string(net),
		"/fhir/r4/Provenance?target=BiologicallyDerivedProduct/" + aph,
	}
	for _, tc := range []struct {
		user string
		may  bool
	}{
		{"nurse.here", true}, {"nurse.there", false}, {"qa.manu", true}, {"qa.other", false},
		{"courier.cour", true}, {"courier.cour2", false}, {"mfg.unbound", false}, {admin, true},
	} {
		t.Run(tc.user, func(t *testing.T) {
			for _, target := range reads {
				r := e.fhirGet(t, target, tc.user)
				want := http.StatusNotFound
				if tc.may {
					want = http.StatusOK
				}
				if r.Code != want {
					t.Errorf("GET %s: %s, want %d", target, r, want)
				}
				if !tc.may && !strings.Contains(string(r.Body), `"code":"not-found"`) {
					t.Errorf("GET %s: %s, want an OperationOutcome not-found", target, r.Body)
				}
			}
			for _, target := range searches {
				r := e.fhirGet(t, target, tc.user)
				var b struct {
					Total int
					Entry []json.RawMessage
				}
				if err := json.Unmarshal(r.Body, &b); err != nil || r.Code != http.StatusOK {
					t.Fatalf("GET %s: %s: %v", target, r, err)
				}
				if got := b.Total > 0 && len(b.Entry) > 0; got != tc.may {
					t.Errorf("GET %s: %d results, want results %v", target, b.Total, tc.may)
				}
			}
		})
	}
}

var recordHash = regexp.MustCompile(`"[0-9a-f]{64}"`)

// TestFHIRGolden: the whole chain as a Bundle, against the reviewed
// document in testdata/fhir (go test ./api -run TestFHIRGolden
// -update-fhir rewrites it). The same chain and clock give the same bytes.
func TestFHIRGolden(t *testing.T) {
	e := newEnv(t)
	coi := fhirChainFixture(t, e)
	for name, target := range map[string]string{
		"chain-bundle.json":     "/fhir/r4/Bundle/" + string(coi),
		"cancelled-bundle.json": "/fhir/r4/Bundle/" + string(fhirCancelled),
		"capability.json":       "/fhir/r4/metadata",
	} {
		r := e.fhirGet(t, target, nurse1)
		if r.Code != http.StatusOK {
			t.Fatalf("GET %s: %s", target, r)
		}
		var got bytes.Buffer
		if err := json.Indent(&got, r.Body, "", "  "); err != nil {
			t.Fatal(err)
		}
		got.WriteByte('\n')
		// Record hashes cover the enrollment's salted commitment to the
		// patient's identifiers, which differs on every run.
		gotBytes := recordHash.ReplaceAll(got.Bytes(), []byte(`"<record hash>"`))
		got.Reset()
		got.Write(gotBytes)
		path := filepath.Join("..", "testdata", "fhir", name)
		if *updateFHIR {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update-fhir to create it)", err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s differs from %s (run with -update-fhir after reviewing the change):\n%s", target, path, got.Bytes())
		}
	}
}
