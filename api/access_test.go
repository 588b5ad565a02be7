package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

const physician = "dr.gil"

// withDocuments gives the service a document store in dir, of at most
// max bytes per document.
func withDocuments(tb testing.TB, dir string, max int64) option {
	ds, err := custody.NewDocumentStore(dir, max)
	if err != nil {
		tb.Fatal(err)
	}
	return func(c *envConfig) { c.docs = ds }
}

// accessAPIEnv is networkEnv with a physician at PAR-1 and a document
// store in docs.
func accessAPIEnv(t testing.TB, docs string) *env { return accessAPIEnvMax(t, docs, 1<<20) }

// accessAPIEnvMax is accessAPIEnv with documents of at most max bytes.
func accessAPIEnvMax(t testing.TB, docs string, max int64) *env {
	t.Helper()
	e := networkEnv(t, "2027-03-01", withDocuments(t, docs, max))
	tok, err := e.svc.AddUserIn(context.Background(), physician, "Dr Gil", custody.RolePhysician, password(physician), "APHP", []string{"PAR-1"})
	if err != nil {
		t.Fatal(err)
	}
	e.tokens[physician] = tok
	return e
}

func pdfBytes() []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n")
	off := b.Len()
	b.WriteString("xref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer << /Size 2 /Root 1 0 R >>\nstartxref\n" + strconv.Itoa(off) + "\n%%EOF\n")
	return b.Bytes()
}

// upload posts body as the "file" part, with fields, as user.
func (e *env) upload(t *testing.T, id, user, filename string, body []byte, fields map[string]string) response {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	fw, _ := w.CreateFormFile("file", filename)
	fw.Write(body)
	w.Close()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/access/requests/"+id+"/documents", &buf)
	req.Header.Set(echo.HeaderContentType, w.FormDataContentType())
	req.Header.Set(echo.HeaderAuthorization, "Bearer "+e.tokens[user])
	return e.serve(t, req)
}

func accessBody(urgency string) map[string]any {
	return map[string]any{"urgency": urgency, "indication": "relapsed DLBCL", "clinical_summary": "Relapse after transplant; ECOG 1.",
		"treatment_plan": "Single infusion; follow-up days 7, 14, 28, 90.", "jurisdiction": custody.USFDASinglePatient,
		"product": "CART-19", "treatment_site": "PAR-1", "manufacturing_site": "MFG-1"}
}

// TestAccessAPIEndToEnd: a physician submits, the access team asks for
// information and approves, the regulatory steps are checked off with a
// document attached, enrollment is refused until they are all done, then
// the chain is enrolled and linked both ways; documents are scoped and
// refused uploads store nothing.
func TestAccessAPIEndToEnd(t *testing.T) {
	docs := t.TempDir()
	e := accessAPIEnv(t, docs)
	if r := e.do(t, http.MethodPost, "/api/v1/access/requests", nurse1, accessBody("standard")); r.Code != http.StatusForbidden {
		t.Fatalf("nurse submits: %s", r)
	}
	phi := with(accessBody("standard"), "clinical_summary", "MRN 0012345 relapsed")
	if r := e.do(t, http.MethodPost, "/api/v1/access/requests", physician, phi); r.Code != http.StatusBadRequest {
		t.Fatalf("PHI submitted: %s", r)
	}
	r := e.do(t, http.MethodPost, "/api/v1/access/requests", physician, accessBody("standard"))
	if r.Code != http.StatusCreated {
		t.Fatalf("submit: %s", r)
	}
	id := r.object(t)["id"].(string)
	base := "/api/v1/access/requests/" + id
	step := func(user, step string, data map[string]any, want int) map[string]any {
		t.Helper()
		r := e.do(t, http.MethodPost, base+"/records", user, map[string]any{"step": step, "data": data})
		if r.Code != want {
			t.Fatalf("%s by %s: %s, want %d", step, user, r, want)
		}
		if want != http.StatusCreated {
			return nil
		}
		return r.object(t)
	}
	step(qa, "request-info", map[string]any{"text": "CD19 status?"}, http.StatusCreated)
	step(physician, "respond", map[string]any{"text": "CD19 positive."}, http.StatusCreated)
	step(physician, "decide", map[string]any{"text": "mine", "approve": true}, http.StatusForbidden)
	if got := step(qa, "decide", map[string]any{"text": "Meets criteria", "approve": true}, http.StatusCreated); got["state"] != string(custody.AccessApproved) {
		t.Fatalf("after decide: %v", got["state"])
	}

	// Uploads: wrong type, too large and PHI in a field store nothing.
	for name, c := range map[string]struct {
		file   []byte
		fields map[string]string
		want   int
	}{
		"not a pdf": {[]byte("GIF89a not a pdf at all"), nil, http.StatusBadRequest},
		"too large": {append(pdfBytes(), bytes.Repeat([]byte("%"), 2<<20)...), nil, http.StatusRequestEntityTooLarge},
		"phi field": {pdfBytes(), map[string]string{"title": "LOA, DOB 1970-01-02"}, http.StatusBadRequest},
	} {
		if r := e.upload(t, id, qa, "loa.pdf", c.file, c.fields); r.Code != c.want {
			t.Errorf("%s: %s, want %d", name, r, c.want)
		}
		if es, _ := os.ReadDir(docs); len(es) != 0 {
			t.Fatalf("%s left %d files", name, len(es))
		}
	}
	up := e.upload(t, id, qa, "loa.pdf", pdfBytes(), map[string]string{"title": "Letter of authorisation"})
	if up.Code != http.StatusCreated {
		t.Fatalf("upload: %s", up)
	}
	hash := up.object(t)["hash"].(string)
	if es, _ := os.ReadDir(docs); len(es) != 1 || es[0].Name() != hash {
		t.Fatalf("store holds %v, want only %s", es, hash)
	}
	step(qa, "loa-issued", map[string]any{"documents": []string{hash}}, http.StatusCreated)

	enroll := map[string]any{"patient": map[string]any{"name": "Alice Martin", "birth_date": "1961-07-14", "mrn": "PAR-778812"}, "collection_site": "PAR-1"}
	r = e.do(t, http.MethodPost, base+"/enroll", coord, enroll)
	if code, _ := r.errorBody(t); r.Code != http.StatusConflict || code != "requirements_unmet" {
		t.Fatalf("enroll before the IND and IRB: %s", r)
	}
	step(physician, "ind-acknowledged", map[string]any{"reference": "IND 123456"}, http.StatusCreated)
	step(coord, "irb-approved", map[string]any{"reference": "IRB-77"}, http.StatusCreated)
	r = e.do(t, http.MethodPost, base+"/enroll", coord, enroll)
	if r.Code != http.StatusCreated {
		t.Fatalf("enroll: %s", r)
	}
	coi := r.object(t)["coi"].(string)
	got := e.do(t, http.MethodGet, base, physician, nil).object(t)
	if got["coi"] != coi || got["state"] != string(custody.AccessEnrolled) {
		t.Fatalf("request after enroll: %v %v", got["coi"], got["state"])
	}
	ch := e.do(t, http.MethodGet, "/api/v1/chains/"+coi, coord, nil)
	var chain struct {
		Records []struct {
			Data json.RawMessage `json:"data"`
		} `json:"records"`
	}
	if err := json.Unmarshal(ch.Body, &chain); err != nil || len(chain.Records) == 0 {
		t.Fatalf("chain: %s", ch)
	}
	var ed custody.EnrollData
	if err := json.Unmarshal(chain.Records[0].Data, &ed); err != nil || string(ed.Request) != id {
		t.Fatalf("enroll record names %q, want %s", ed.Request, id)
	}

	// Downloads: the request's readers get the attached document; others
	// and unattached hashes are not found.
	dl := e.do(t, http.MethodGet, base+"/documents/"+hash, physician, nil)
	if dl.Code != http.StatusOK || !bytes.Equal(dl.Body, pdfBytes()) || dl.Header.Get(echo.HeaderContentType) != "application/pdf" {
		t.Fatalf("download: %d %q", dl.Code, dl.Header.Get(echo.HeaderContentType))
	}
	if r := e.do(t, http.MethodGet, base+"/documents/"+hash, courier, nil); r.Code != http.StatusNotFound {
		t.Fatalf("courier downloads: %s", r)
	}
	if r := e.do(t, http.MethodGet, base+"/documents/"+custody.Hash{1}.String(), physician, nil); r.Code != http.StatusNotFound {
		t.Fatalf("unattached document: %s", r)
	}
	list := e.do(t, http.MethodGet, "/api/v1/access/requests?state=access-enrolled", qa, nil)
	if reqs, _ := list.object(t)["requests"].([]any); list.Code != http.StatusOK || len(reqs) != 1 {
		t.Fatalf("list: %s", list)
	}
	// Request chains stay out of the therapy chain list.
	chains := e.do(t, http.MethodGet, "/api/v1/chains", coord, nil)
	if chains.Code != http.StatusOK || bytes.Contains(chains.Body, []byte(id)) || !bytes.Contains(chains.Body, []byte(coi)) {
		t.Fatalf("chain list: %s", chains)
	}
	if r := e.do(t, http.MethodGet, "/api/v1/verify", qa, nil); r.Code != http.StatusOK || r.object(t)["ok"] != true {
		t.Fatalf("verify: %s", r)
	}
}

// TestJurisdictionsAPI: the built-in jurisdiction is listed; an
// administrator registers another, and requests may name it.
func TestJurisdictionsAPI(t *testing.T) {
	e := accessAPIEnv(t, t.TempDir())
	r := e.do(t, http.MethodGet, "/api/v1/access/jurisdictions", qa, nil)
	if l, _ := r.object(t)["jurisdictions"].([]any); r.Code != http.StatusOK || len(l) != 1 {
		t.Fatalf("list: %s", r)
	}
	j := map[string]any{"code": "UK-MHRA-NP", "name": "UK named patient", "required": [][]string{{"loa-issued"}}, "reason": "UK programme"}
	if r := e.do(t, http.MethodPost, "/api/v1/access/jurisdictions", qa, j); r.Code != http.StatusForbidden {
		t.Fatalf("QA registers: %s", r)
	}
	if r := e.do(t, http.MethodPost, "/api/v1/access/jurisdictions", admin, j); r.Code != http.StatusCreated {
		t.Fatalf("register: %s", r)
	}
	if r := e.do(t, http.MethodPost, "/api/v1/access/requests", physician, with(accessBody("standard"), "jurisdiction", "UK-MHRA-NP")); r.Code != http.StatusCreated {
		t.Fatalf("submit under UK: %s", r)
	}
}

// TestAccessUploadStreams: a 20 MB PDF sent through the upload route as
// a browser sends it (multipart) is stored whole while the server and
// the client together allocate less than 2 MB.
func TestAccessUploadStreams(t *testing.T) {
	docs := t.TempDir()
	e := accessAPIEnvMax(t, docs, 25<<20)
	r := e.do(t, http.MethodPost, "/api/v1/access/requests", physician, accessBody("standard"))
	if r.Code != http.StatusCreated {
		t.Fatalf("submit: %s", r)
	}
	id := r.object(t)["id"].(string)
	const size = 20 << 20
	pr, pw := io.Pipe()
	w := multipart.NewWriter(pw)
	go func() {
		fw, _ := w.CreateFormFile("file", "big.pdf")
		head := "%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n"
		pad := size - len(head) - 200
		io.WriteString(fw, head)
		io.Copy(fw, io.LimitReader(zeroReader{}, int64(pad)))
		io.WriteString(fw, "xref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer << /Size 2 /Root 1 0 R >>\nstartxref\n"+strconv.Itoa(len(head)+pad)+"\n%%EOF\n")
		pw.CloseWithError(w.Close())
	}()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/access/requests/"+id+"/documents", pr)
	req.Header.Set(echo.HeaderContentType, w.FormDataContentType())
	req.Header.Set(echo.HeaderAuthorization, "Bearer "+e.tokens[physician])
	rec := httptest.NewRecorder()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	e.srv.Handler().ServeHTTP(rec, req)
	runtime.ReadMemStats(&after)
	if rec.Code != http.StatusCreated {
		t.Fatalf("upload: %d %s", rec.Code, rec.Body)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 2<<20 {
		t.Fatalf("a 20 MB upload allocated %d bytes", got)
	} else {
		t.Logf("a 20 MB upload allocated %d bytes", got)
	}
	if es, _ := os.ReadDir(docs); len(es) != 1 {
		t.Fatalf("store holds %d files", len(es))
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
