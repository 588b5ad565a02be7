package web_test

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// Physicians of the expanded-access tests: wPhys at PAR-1 (where the
// coordinator works), wPhys2 at PAR-2.
const (
	wPhys  = "dr.gil"
	wPhys2 = "dr.ada"
)

// accessWebEnv is usersNetwork with a document store in the returned
// directory (documents of at most 64 KiB), a physician at each treatment
// site and QA working at the plant (its access team).
func accessWebEnv(t testing.TB) (*webEnv, string) {
	t.Helper()
	return accessWebEnvMax(t, 64<<10)
}

// accessWebEnvMax is accessWebEnv with documents of at most max bytes.
func accessWebEnvMax(t testing.TB, max int64) (*webEnv, string) {
	t.Helper()
	dir := t.TempDir()
	ds, err := custody.NewDocumentStore(dir, max)
	if err != nil {
		t.Fatal(err)
	}
	e := newWebEnvWith(t, false, nil, ds)
	usersNetwork(t, e)
	for id, site := range map[string]string{wPhys: "PAR-1", wPhys2: "PAR-2"} {
		if _, err := e.svc.AddUserIn(context.Background(), id, "Dr "+id, custody.RolePhysician, webPassword(id), "APHP", []string{site}); err != nil {
			t.Fatal(err)
		}
	}
	e.net().Bind(t, wQA, "CELLCO", "MFG-1")
	return e, dir
}

// accessForm is a request form as a physician at PAR-1 fills it.
func accessForm() url.Values {
	return url.Values{"urgency": {"standard"}, "indication": {"Relapsed DLBCL after two lines"},
		"clinical_summary": {"Relapse 3 months after transplant.\r\nECOG 1."}, "treatment_plan": {"Single infusion; follow-up days 7, 14, 28, 90."},
		"jurisdiction": {custody.USFDASinglePatient}, "product": {"CART-19"}, "treatment_site": {"PAR-1"}, "manufacturing_site": {"MFG-1"},
		"sig_user_1": {wPhys}, "sig_password_1": {webPassword(wPhys)}}
}

var requestRE = regexp.MustCompile(`^/access/requests/(EA[A-Z0-9]{13})$`)

// submitRequest submits accessForm through the form and returns the id.
func submitRequest(t *testing.T, b *browser) custody.COI {
	t.Helper()
	b.get("/access/requests/new")
	p := b.post("/access/requests", accessForm())
	wantCode(t, p, http.StatusSeeOther, "submit")
	m := requestRE.FindStringSubmatch(p.Location)
	if m == nil {
		t.Fatalf("submit went to %q", p.Location)
	}
	return custody.COI(m[1])
}

// requests counts the requests in the ledger.
func requests(t *testing.T, e *webEnv) int {
	t.Helper()
	n := 0
	for _, st := range []custody.State{custody.AccessSubmitted, custody.AccessInfoRequested, custody.AccessDecided, custody.AccessEnrolled, custody.AccessWithdrawn} {
		cs, err := e.store.Chains(context.Background(), st)
		if err != nil {
			t.Fatal(err)
		}
		n += len(cs)
	}
	return n
}

// webPDF is a small well-formed PDF; notes are comments that make
// different documents.
func webPDF(notes ...string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	for _, n := range notes {
		b.WriteString("% " + n + "\n")
	}
	b.WriteString("1 0 obj << /Type /Catalog >> endobj\n")
	off := b.Len()
	b.WriteString("xref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer << /Size 2 /Root 1 0 R >>\nstartxref\n" + strconv.Itoa(off) + "\n%%EOF\n")
	return b.Bytes()
}

// postDoc posts a multipart form as the request page does: the CSRF
// token first (unless csrf is false), the fields, then the document.
func (b *browser) postDoc(path string, v url.Values, filename string, file []byte, csrf bool) page {
	b.e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if csrf {
		mw.WriteField("csrf", b.csrf)
	}
	for k, xs := range v {
		for _, x := range xs {
			mw.WriteField(k, x)
		}
	}
	if filename != "" || file != nil {
		fw, _ := mw.CreateFormFile("document", filename)
		fw.Write(file)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, b.e.ts.URL+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

// wantAccessFieldError checks that the refusal shows beside field.
func wantAccessFieldError(t *testing.T, p page, what, field, says string) {
	t.Helper()
	i := strings.Index(p.Body, `data-field="`+field+`"`)
	if i < 0 {
		t.Fatalf("%s: no field %s on the page\n%s", what, field, excerpt(p.Body))
	}
	rest := p.Body[i:]
	if j := strings.Index(rest[1:], `data-field="`); j >= 0 {
		rest = rest[:j+1]
	}
	if !strings.Contains(rest, `class="field-error"`) || !strings.Contains(rest, says) {
		t.Errorf("%s: field %s does not show %q beside it:\n%s", what, field, says, rest)
	}
}

// TestAccessRequestFormRefusals: each refusal of the physician's form is
// shown beside its field (or above the form when it concerns none), what
// was typed is kept, and nothing is written.
func TestAccessRequestFormRefusals(t *testing.T) {
	e, _ := accessWebEnv(t)
	doc := e.login(wPhys)
	p := doc.get("/access/requests/new")
	wantCode(t, p, http.StatusOK, "form")
	wantBody(t, p, "form", `value="US-FDA-SP"`, `value="CART-19"`, `value="PAR-1"`, `value="MFG-1"`, `name="sig_password_1"`)
	wantNotBody(t, p, "form", `value="PAR-2"`, `name="mrn"`, `name="birth_date"`, `value="CART-OLD"`)
	for _, c := range []struct {
		name, field, value string
		code               int
		errField, says     string
	}{
		{"no indication", "indication", " ", http.StatusBadRequest, "indication", "Indication is required"},
		{"bad urgency", "urgency", "soon", http.StatusBadRequest, "urgency", "must be emergency or standard"},
		{"no summary", "clinical_summary", "", http.StatusBadRequest, "clinical_summary", "Clinical_summary is required"},
		{"unknown jurisdiction", "jurisdiction", "XX-NONE", http.StatusNotFound, "jurisdiction", "XX-NONE"},
		{"wrong password", "sig_password_1", "not-the-password", http.StatusUnauthorized, "signatures", "Check the user ID and password"},
		{"identifier in the text", "clinical_summary", "MRN 0012345, relapsed", http.StatusBadRequest, "", "labels a patient identifier"},
		{"site where the physician does not work", "treatment_site", "PAR-2", http.StatusForbidden, "", "PAR-2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := accessForm()
			v.Set(c.field, c.value)
			p := doc.post("/access/requests", v)
			wantCode(t, p, c.code, c.name)
			wantBody(t, p, c.name, "The request was not submitted.", "Single infusion; follow-up days 7, 14, 28, 90.")
			if c.field != "indication" {
				wantBody(t, p, c.name, `value="Relapsed DLBCL after two lines"`)
			}
			if c.field != "clinical_summary" {
				wantBody(t, p, c.name, "Relapse 3 months after transplant.")
			}
			if c.errField != "" {
				wantAccessFieldError(t, p, c.name, c.errField, c.says)
			} else {
				wantBody(t, p, c.name, c.says)
			}
			wantNotBody(t, p, c.name, "not-the-password")
			if n := requests(t, e); n != 0 {
				t.Fatalf("%d requests written", n)
			}
		})
	}
	// Submitted: the page shows it, its paragraphs kept.
	id := submitRequest(t, doc)
	p = doc.get("/access/requests/" + string(id))
	wantCode(t, p, http.StatusOK, "request page")
	wantBody(t, p, "request page", "Request "+string(id)+" submitted", "Submitted, waiting for the access team", "Relapse 3 months after transplant.\nECOG 1.",
		`id="access-clock"`, "Service level", "Pending:</strong> Letter of authorisation issued", "IRB approval or IRB waiver", "Withdraw the request")
	wantNotBody(t, p, "request page before approval", `id="form-loa-issued"`, `id="access-enroll"`, `id="form-decide"`)
}

// TestAccessRequestScope: the pages answer the physicians of the
// request's site and its access team; another site's physician gets "not
// found" for the page, its forms and its documents, other roles a
// refusal; a form without its CSRF token (urlencoded or multipart) is
// refused with nothing written.
func TestAccessRequestScope(t *testing.T) {
	e, dir := accessWebEnv(t)
	doc := e.login(wPhys)
	id := submitRequest(t, doc)
	path := "/access/requests/" + string(id)
	for _, c := range []struct {
		user string
		code int
	}{{wPhys, 200}, {wPhys2, 404}, {wCoord, 200}, {wQA, 200}, {wNurse1, 403}, {wMfg, 403}, {wAdmin, 403}} {
		b := e.login(c.user)
		wantCode(t, b.get(path), c.code, c.user+" reads the request")
		list := b.get("/access/requests")
		if c.code == 403 {
			wantCode(t, list, 403, c.user+" lists")
			continue
		}
		wantCode(t, list, 200, c.user+" lists")
		if (c.code == 200) != strings.Contains(list.Body, string(id)) {
			t.Errorf("%s: list shows the request: %v, want %v", c.user, !(c.code == 200), c.code == 200)
		}
	}
	other := e.login(wPhys2)
	wantCode(t, other.get("/access/requests/new"), 200, "a physician's form")
	wantCode(t, e.login(wCoord).get("/access/requests/new"), 403, "a coordinator's form")
	wantCode(t, other.post(path+"/steps/withdraw", url.Values{"text": {"mine"}, "sig_user_1": {wPhys2}, "sig_password_1": {webPassword(wPhys2)}}), 404, "other site withdraws")
	wantCode(t, other.postDoc(path+"/steps/respond", url.Values{"text": {"x"}}, "a.pdf", webPDF(), true), 404, "other site uploads")
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Fatalf("an upload by another site left %d files", len(es))
	}
	wantCode(t, other.get(path+"/documents/"+strings.Repeat("ab", 32)), 404, "other site downloads")

	// CSRF: urlencoded and multipart forms without the token.
	p := doc.post(path+"/steps/withdraw", url.Values{"csrf": {"forged"}, "text": {"x"}, "sig_user_1": {wPhys}, "sig_password_1": {webPassword(wPhys)}})
	wantCode(t, p, http.StatusForbidden, "forged token")
	wantBody(t, p, "forged token", "This form was not accepted.")
	wantCode(t, doc.postDoc(path+"/steps/respond", url.Values{"text": {"x"}}, "a.pdf", webPDF(), false), http.StatusForbidden, "multipart without its token")
	p = doc.post("/access/requests", url.Values{"csrf": {""}})
	wantCode(t, p, http.StatusForbidden, "submit without token")
	if n := requests(t, e); n != 1 {
		t.Fatalf("%d requests after refused forms", n)
	}
	coordUser, err := e.svc.User(context.Background(), wCoord)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.AccessRequest(context.Background(), coordUser, id)
	if err != nil || len(r.Events) != 1 || r.State != custody.AccessSubmitted {
		t.Fatalf("after refused forms: %+v %v", r, err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Fatalf("refused forms left %d files", len(es))
	}
}

// TestAccessChecklistAndEnroll: the access team asks and decides, the
// physician answers with a document; the checklist's steps refuse what
// is wrong beside its field (no reference, no document, not a PDF, too
// large, an identifier in the file's name) with nothing stored; enrollment
// is shown blocked with the domain's message until the requirements are
// met, then leads to the chain, which links back.
func TestAccessChecklistAndEnroll(t *testing.T) {
	e, dir := accessWebEnv(t)
	doc := e.login(wPhys)
	id := submitRequest(t, doc)
	path := "/access/requests/" + string(id)
	qa := e.login(wQA)
	qaSig := url.Values{"sig_user_1": {wQA}, "sig_password_1": {webPassword(wQA)}}
	docSig := url.Values{"sig_user_1": {wPhys}, "sig_password_1": {webPassword(wPhys)}}
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, x := range v {
			out[k] = x
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	files := func() int {
		es, _ := os.ReadDir(dir)
		return len(es)
	}

	p := qa.get(path)
	wantBody(t, p, "access team's page", `id="form-request-info"`, `id="form-decide"`)
	wantNotBody(t, p, "access team's page", `id="form-respond"`, `id="form-withdraw"`)
	wantCode(t, qa.post(path+"/steps/request-info", with(qaSig, "text", "CD19 status?")), http.StatusSeeOther, "request-info")

	// The physician answers; a refused answer keeps its text.
	p = doc.post(path+"/steps/respond", with(docSig, "text", ""))
	wantCode(t, p, http.StatusBadRequest, "blank answer")
	wantAccessFieldError(t, p, "blank answer", "text", "Text is required")
	p = doc.postDoc(path+"/steps/respond", with(docSig, "text", "CD19 positive."), "biopsy.txt", []byte("GIF89a not a pdf"), true)
	wantCode(t, p, http.StatusBadRequest, "answer with a non-PDF")
	wantAccessFieldError(t, p, "answer with a non-PDF", "document", "Not a PDF")
	wantBody(t, p, "answer with a non-PDF", "CD19 positive.")
	if files() != 0 {
		t.Fatal("a refused document was stored")
	}
	wantCode(t, doc.postDoc(path+"/steps/respond", with(docSig, "text", "CD19 positive."), "biopsy.pdf", webPDF(), true), http.StatusSeeOther, "answer")
	if files() != 1 {
		t.Fatalf("%d files after the answer's document", files())
	}
	p = doc.get(path)
	wantBody(t, p, "after the answer", "Supporting document", "/documents/", "CD19 positive.", "Printed "+wQA)

	// A step out of order is the domain's conflict.
	p = doc.post(path+"/steps/respond", with(docSig, "text", "again"))
	wantCode(t, p, http.StatusConflict, "respond twice")
	wantBody(t, p, "respond twice", "Respond is not allowed while the request is access-submitted")
	p = qa.postDoc(path+"/steps/loa-issued", qaSig, "loa.pdf", webPDF(), true)
	wantCode(t, p, http.StatusConflict, "LOA before the decision")
	if files() != 1 {
		t.Fatal("a refused step stored its document")
	}
	p = qa.post(path+"/steps/decide", with(qaSig, "text", "Meets criteria"))
	wantCode(t, p, http.StatusBadRequest, "decide without a decision")
	wantAccessFieldError(t, p, "decide without a decision", "approve", "Approve is given with a decide, and only then.")
	wantCode(t, qa.post(path+"/steps/decide", with(qaSig, "text", "Meets criteria", "approve", "true")), http.StatusSeeOther, "approve")

	// Enrollment is blocked, with the domain's words, until the steps are
	// recorded; a coordinator who sends the form anyway is refused.
	coord := e.login(wCoord)
	p = coord.get(path)
	wantBody(t, p, "coordinator before the steps", `id="enroll-blocked"`, "still requires loa-issued; ind-acknowledged; irb-approved or irb-waived", `disabled aria-disabled="true"`)
	enroll := url.Values{"name": {"Jo Example"}, "birth_date": {"1960-01-02"}, "mrn": {"MRN-998877"}, "collection": {"PAR-1"},
		"sig_user_1": {wCoord}, "sig_password_1": {webPassword(wCoord)}}
	p = coord.post(path+"/enroll", enroll)
	wantCode(t, p, http.StatusConflict, "enroll too early")
	wantBody(t, p, "enroll too early", `id="enroll-error"`, "still requires loa-issued")

	// The checklist's refusals, each beside its field, nothing stored.
	for _, c := range []struct {
		name, step, field, says string
		by                      *browser
		v                       url.Values
		file                    []byte
		filename                string
		code                    int
	}{
		{"letter missing", "loa-issued", "document", "Attach the letter of authorisation", qa, qaSig, nil, "", http.StatusBadRequest},
		{"letter not a PDF", "loa-issued", "document", "Not a PDF", qa, qaSig, []byte("%PDF-1.4 but no trailer"), "loa.pdf", http.StatusBadRequest},
		{"letter too large", "loa-issued", "document", "Larger than 65536 bytes", qa, qaSig, append(webPDF(), bytes.Repeat([]byte("%"), 70<<10)...), "loa.pdf", http.StatusRequestEntityTooLarge},
		{"identifier in the file's name", "loa-issued", "document", "labels a patient identifier", qa, qaSig, webPDF(), "loa MRN 4471.pdf", http.StatusBadRequest},
		{"no acknowledgement number", "ind-acknowledged", "reference", "Reference is required", doc, docSig, nil, "", http.StatusBadRequest},
		{"LOA by the physician", "loa-issued", "", "may not sign", doc, docSig, webPDF("by the physician"), "loa.pdf", http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := files()
			p := c.by.postDoc(path+"/steps/"+c.step, c.v, c.filename, c.file, true)
			wantCode(t, p, c.code, c.name)
			if c.field != "" {
				wantAccessFieldError(t, p, c.name, c.field, c.says)
			} else {
				wantBody(t, p, c.name, c.says)
			}
			// A document the store accepted, sent with a form the domain
			// then refuses, stays stored (unreferenced), for the retry.
			if stored := files() != n; stored != (c.step == "loa-issued" && c.by == doc) {
				t.Errorf("%s: document stored %v", c.name, stored)
			}
		})
	}
	wantCode(t, qa.postDoc(path+"/steps/loa-issued", with(qaSig, "text", "LOA sent to the physician"), "loa.pdf", webPDF("letter"), true), http.StatusSeeOther, "LOA")
	wantCode(t, doc.postDoc(path+"/steps/ind-acknowledged", with(docSig, "reference", "IND 123456"), "", nil, true), http.StatusSeeOther, "IND")
	wantCode(t, coord.postDoc(path+"/steps/irb-waived", url.Values{"sig_user_1": {wCoord}, "sig_password_1": {webPassword(wCoord)}},
		"waiver.pdf", webPDF("waiver"), true), http.StatusSeeOther, "IRB waiver")
	p = coord.get(path)
	wantBody(t, p, "checklist met", "✓ Done:</strong> Letter of authorisation issued", "✓ Done:</strong> IND acknowledged by FDA",
		"IND 123456", "✓ Done:</strong> IRB approval or IRB waiver", "IRB waiver (PDF", `id="form-access-enroll"`)
	wantNotBody(t, p, "checklist met", `id="enroll-blocked"`, `id="form-irb-approved"`)

	// The documents download for the request's readers.
	hashes := regexp.MustCompile(`/documents/([0-9a-f]{64})`).FindAllStringSubmatch(p.Body, -1)
	if len(hashes) == 0 {
		t.Fatal("no document links")
	}
	dl := doc.get(path + "/documents/" + hashes[0][1])
	wantCode(t, dl, http.StatusOK, "download")
	if !strings.HasPrefix(dl.Body, "%PDF-") || dl.Header.Get("Content-Type") != "application/pdf" {
		t.Errorf("download: %s %.10q", dl.Header.Get("Content-Type"), dl.Body)
	}

	p = coord.post(path+"/enroll", enroll)
	wantCode(t, p, http.StatusSeeOther, "enroll")
	if !strings.HasPrefix(p.Location, "/chains/") {
		t.Fatalf("enroll went to %q", p.Location)
	}
	coi := strings.TrimPrefix(p.Location, "/chains/")
	p = coord.get(p.Location)
	wantBody(t, p, "chain page", `id="access-request-link"`, `href="/access/requests/`+string(id)+`"`)
	p = doc.get(path)
	wantBody(t, p, "request after enrollment", "Enrolled as a therapy chain", `href="/chains/`+coi+`"`)
	wantNotBody(t, p, "request after enrollment", "Jo Example", "MRN-998877")
}

// TestAccessDocumentBeyondFormLimit: a document form takes a PDF larger
// than the UI's limit on other forms (1 MB), up to the document store's
// own limit, and is still refused beyond that, nothing stored; a form
// without a document keeps the ordinary limit.
func TestAccessDocumentBeyondFormLimit(t *testing.T) {
	e, dir := accessWebEnvMax(t, 3<<20)
	doc := e.login(wPhys)
	id := submitRequest(t, doc)
	path := "/access/requests/" + string(id)
	qa := e.login(wQA)
	qaSig := url.Values{"sig_user_1": {wQA}, "sig_password_1": {webPassword(wQA)}}
	wantCode(t, qa.post(path+"/steps/decide", url.Values{"text": {"ok"}, "approve": {"true"}, "sig_user_1": {wQA}, "sig_password_1": {webPassword(wQA)}}), http.StatusSeeOther, "approve")
	big := webPDF(strings.Repeat("x", 2<<20))
	p := qa.postDoc(path+"/steps/loa-issued", qaSig, "loa.pdf", webPDF(strings.Repeat("y", 4<<20)), true)
	wantCode(t, p, http.StatusRequestEntityTooLarge, "beyond the store's limit")
	wantAccessFieldError(t, p, "beyond the store's limit", "document", "Larger than 3145728 bytes")
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Fatalf("a refused document left %d files", len(es))
	}
	wantCode(t, qa.postDoc(path+"/steps/loa-issued", qaSig, "loa.pdf", big, true), http.StatusSeeOther, "a 2 MB letter")
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Fatalf("%d files after the 2 MB letter", len(es))
	}
	p = doc.post(path+"/steps/withdraw", url.Values{"text": {strings.Repeat("z", 2<<20)}})
	wantCode(t, p, http.StatusRequestEntityTooLarge, "a 2 MB urlencoded form")
}

// TestAccessRequestListPaged: a physician's list holds the requests of
// the sites where they work, a page at a time, with a link to the next.
func TestAccessRequestListPaged(t *testing.T) {
	e, _ := accessWebEnv(t)
	ctx := context.Background()
	sub := custody.AccessSubmission{Urgency: custody.UrgencyStandard, Indication: "DLBCL", ClinicalSummary: "Relapse.", TreatmentPlan: "One infusion.",
		Jurisdiction: custody.USFDASinglePatient, Product: "CART-19", TreatmentSite: "PAR-1", ManufacturingSite: "MFG-1"}
	for i := range 52 {
		who, site := wPhys, "PAR-1"
		if i == 51 {
			who, site = wPhys2, "PAR-2"
		}
		u, err := e.svc.User(ctx, who)
		if err != nil {
			t.Fatal(err)
		}
		s := sub
		s.TreatmentSite = site
		if _, err := e.svc.SubmitAccess(ctx, u, s, nil); err != nil {
			t.Fatal(err)
		}
	}
	rows := regexp.MustCompile(`<tr data-request="(EA[0-9A-Z]+)"`)
	doc := e.login(wPhys)
	p := doc.get("/access/requests")
	wantCode(t, p, http.StatusOK, "first page")
	first := rows.FindAllStringSubmatch(p.Body, -1)
	next := regexp.MustCompile(`href="(/access/requests\?after=EA[0-9A-Z]+)" id="access-next"`).FindStringSubmatch(p.Body)
	if len(first) != 50 || next == nil {
		t.Fatalf("first page: %d rows, next link %v", len(first), next)
	}
	p = doc.get(next[1])
	second := rows.FindAllStringSubmatch(p.Body, -1)
	if len(second) != 1 || second[0][1] <= first[49][1] || strings.Contains(p.Body, `id="access-next"`) {
		t.Fatalf("second page: %v", second)
	}
	p = e.login(wPhys2).get("/access/requests")
	if got := rows.FindAllStringSubmatch(p.Body, -1); len(got) != 1 || got[0][1] != "EAA999926000052" {
		t.Errorf("PAR-2's physician lists %v", got)
	}
	wantCode(t, doc.get("/access/requests?after=nonsense"), http.StatusBadRequest, "a bad cursor")
}

// TestAccessEmergencyChecklist: an emergency request's checklist is the
// jurisdiction's emergency path; once FDA's emergency authorisation is
// recorded the IRB report shows its due time (5 working days) with its
// form, and is flagged overdue once the time has passed.
func TestAccessEmergencyChecklist(t *testing.T) {
	e, _ := accessWebEnv(t)
	doc := e.login(wPhys)
	doc.get("/access/requests/new")
	v := accessForm()
	v.Set("urgency", "emergency")
	p := doc.post("/access/requests", v)
	wantCode(t, p, http.StatusSeeOther, "submit")
	path := p.Location
	qa := e.login(wQA)
	docSig := url.Values{"sig_user_1": {wPhys}, "sig_password_1": {webPassword(wPhys)}}
	wantCode(t, qa.post(path+"/steps/decide", url.Values{"text": {"urgent, ok"}, "approve": {"true"}, "sig_user_1": {wQA}, "sig_password_1": {webPassword(wQA)}}), http.StatusSeeOther, "approve")
	p = doc.get(path)
	wantBody(t, p, "emergency checklist", "on its emergency path", `data-check="loa-issued"`, `data-check="emergency-authorised"`,
		"Pending:</strong> IRB told of the emergency use", "due within 5 working days of the emergency authorisation", `id="form-emergency-authorised"`)
	wantNotBody(t, p, "emergency checklist", `data-check="ind-acknowledged"`, `id="form-irb-reported"`)
	// Friday 2026-11-27 12:00 UTC: five working days on is Friday 4 December.
	e.clock.Advance(5 * 24 * time.Hour)
	doc = e.login(wPhys) // the session has expired meanwhile
	doc.get(path)
	wantCode(t, doc.postDoc(path+"/steps/emergency-authorised", url.Values{"sig_user_1": {wPhys}, "sig_password_1": {webPassword(wPhys)}, "text": {"FDA by telephone"}}, "", nil, true),
		http.StatusSeeOther, "emergency authorisation")
	p = doc.get(path)
	wantBody(t, p, "after the authorisation", "✓ Done:</strong> Emergency authorisation", `id="form-irb-reported"`, `class="due">due 2026-12-04 13:00 CET (2026-12-04 12:00 UTC)`,
		`class="check-item pending" data-check="irb-reported"`)
	e.clock.Advance(8 * 24 * time.Hour)
	doc = e.login(wPhys)
	p = doc.get(path)
	wantBody(t, p, "past the deadline", `class="check-item overdue" data-check="irb-reported"`, "Overdue:</strong> IRB told of the emergency use")
	wantCode(t, doc.postDoc(path+"/steps/irb-reported", docSig, "report.pdf", webPDF("report"), true), http.StatusSeeOther, "IRB report")
	wantBody(t, doc.get(path), "reported", "✓ Done:</strong> IRB told of the emergency use", "Report to the IRB (PDF")
}
