package api_test

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	_ "time/tzdata" // the zone option is tested with named zones

	"github.com/coid-project/coid/custody"
	"github.com/makiuchi-d/gozxing"
	zxdatamatrix "github.com/makiuchi-d/gozxing/datamatrix"
	zxqrcode "github.com/makiuchi-d/gozxing/qrcode"
)

// labelPath is the path of a bag's label in format ext, with a query.
func labelPath(bag custody.BagID, ext, query string) string {
	p := chainPath(bag.COI, "/bags/", bag.String(), "/label.", ext)
	if query != "" {
		p += "?" + query
	}
	return p
}

// labelledChain enrolls patientA and records collect, ship, receive and
// manufacture, so the chain has bags APH-01, APH-02, FP-01 and FP-02.
func labelledChain(t *testing.T, e *env) (custody.COI, []custody.BagID) {
	t.Helper()
	coi := e.enroll(t, patientA)
	e.advance(t, coi, patientA.MRN, 4)
	return coi, []custody.BagID{
		{COI: coi, Kind: custody.BagApheresis, N: 1}, {COI: coi, Kind: custody.BagApheresis, N: 2},
		{COI: coi, Kind: custody.BagFinalProduct, N: 1}, {COI: coi, Kind: custody.BagFinalProduct, N: 2},
	}
}

// mustLabel fetches a label that must be printed and checks its headers.
func (e *env) mustLabel(t *testing.T, path, user, contentType, disposition string) []byte {
	t.Helper()
	r := e.do(t, http.MethodGet, path, user, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("GET %s: %s", path, r)
	}
	if ct := r.Header.Get("Content-Type"); ct != contentType {
		t.Errorf("GET %s: Content-Type %q, want %q", path, ct, contentType)
	}
	if cd := r.Header.Get("Content-Disposition"); cd != disposition {
		t.Errorf("GET %s: Content-Disposition %q, want %q", path, cd, disposition)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("GET %s: Cache-Control %q: a label shows patient identifiers and must not be cached", path, cc)
	}
	return r.Body
}

// decodeCode reads a QR code or Data Matrix symbol from img with gozxing.
func decodeCode(t *testing.T, img image.Image, symbology string) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	var r gozxing.Reader = zxqrcode.NewQRCodeReader()
	if symbology == "datamatrix" {
		r = zxdatamatrix.NewDataMatrixReader()
	}
	res, err := r.Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Fatalf("decode %s: %v", symbology, err)
	}
	return res.GetText()
}

// scanResolves posts a decoded code to /api/v1/scan and checks that it
// names bag.
func (e *env) scanResolves(t *testing.T, code string, bag custody.BagID) {
	t.Helper()
	r := e.do(t, http.MethodPost, "/api/v1/scan", nurse1, map[string]string{"code": code})
	if r.Code != http.StatusOK {
		t.Fatalf("scan %q: %s", code, r)
	}
	m := r.object(t)
	if m["coi"] != string(bag.COI) || m["bag"] != bag.String() || m["bag_kind"] != string(bag.Kind) || m["form"] != "isbt" {
		t.Errorf("scan %q resolved to coi %v bag %v kind %v form %v; want %s", code, m["coi"], m["bag"], m["bag_kind"], m["form"], bag)
	}
}

var (
	pdfStreamLen = regexp.MustCompile(`/Length (\d+)`)
	pdfInlineImg = regexp.MustCompile(`BI /W (\d+) /H (\d+) /CS /G /BPC 1 /F \[/AHx /Fl\] ID\n([0-9a-f\n]*)>\nEI`)
)

// pdfPageContents returns the decompressed content stream of each page
// of a PDF as fpdf writes it (uncompressed object syntax, one stream per
// object, each page's content after its page object), in page order.
func pdfPageContents(t *testing.T, pdf []byte) []string {
	t.Helper()
	var out []string
	for off := 0; ; {
		i := bytes.Index(pdf[off:], []byte("stream\n"))
		if i < 0 {
			return out
		}
		i += off
		if i >= 3 && string(pdf[i-3:i]) == "end" {
			off = i + len("stream\n")
			continue
		}
		start := bytes.LastIndex(pdf[:i], []byte(" obj\n"))
		m := pdfStreamLen.FindSubmatch(pdf[max(start, 0):i])
		if start < 0 || m == nil {
			t.Fatalf("stream at %d without an object or /Length", i)
		}
		n, _ := strconv.Atoi(string(m[1]))
		data := i + len("stream\n")
		off = data + n
		if bytes.Contains(pdf[start:i], []byte("/Subtype")) {
			continue // not page content
		}
		r, err := zlib.NewReader(bytes.NewReader(pdf[data : data+n]))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
}

// pdfCodeImages returns the inline images of each page of a PDF, where
// the labels package draws the 2-D codes: 1-bit gray rows, Flate-compressed
// and hex-encoded.
func pdfCodeImages(t *testing.T, pdf []byte) [][]image.Image {
	t.Helper()
	var out [][]image.Image
	for _, page := range pdfPageContents(t, pdf) {
		var imgs []image.Image
		for _, m := range pdfInlineImg.FindAllStringSubmatch(page, -1) {
			w, _ := strconv.Atoi(m[1])
			h, _ := strconv.Atoi(m[2])
			z, err := hex.DecodeString(strings.ReplaceAll(m[3], "\n", ""))
			if err != nil {
				t.Fatal(err)
			}
			r, err := zlib.NewReader(bytes.NewReader(z))
			if err != nil {
				t.Fatal(err)
			}
			pix, err := io.ReadAll(r)
			stride := (w + 7) / 8 // 1 bit a pixel, 1 is white
			if err != nil || len(pix) != stride*h {
				t.Fatalf("inline image %dx%d: %d bytes, %v", w, h, len(pix), err)
			}
			img := image.NewGray(image.Rect(0, 0, w, h))
			for i := range img.Pix {
				if pix[i/w*stride+i%w/8]&(0x80>>(i%w%8)) != 0 {
					img.Pix[i] = 0xff
				}
			}
			imgs = append(imgs, img)
		}
		out = append(out, imgs)
	}
	return out
}

// pdfPageText returns the decompressed page content of a PDF.
func pdfPageText(t *testing.T, pdf []byte) string {
	t.Helper()
	return strings.Join(pdfPageContents(t, pdf), "\n")
}

// TestLabelRoundTrip prints every bag's label through the API as a PNG
// and a PDF, in both symbologies, reads the code back with a real decoder
// and resolves what it read through /api/v1/scan to the same chain and bag.
func TestLabelRoundTrip(t *testing.T) {
	e := newEnv(t)
	_, bags := labelledChain(t, e)
	for _, sym := range []string{"qr", "datamatrix"} {
		for _, bag := range bags {
			t.Run(sym+"/"+bag.String(), func(t *testing.T) {
				for _, size := range []string{"", "&size=200"} {
					body := e.mustLabel(t, labelPath(bag, "png", "symbology="+sym+size), nurse1,
						"image/png", `inline; filename="`+bag.String()+`.png"`)
					img, err := png.Decode(bytes.NewReader(body))
					if err != nil {
						t.Fatal(err)
					}
					want := 512
					if size != "" {
						want = 200
					}
					if b := img.Bounds(); b.Dx() != want || b.Dy() != want {
						t.Errorf("PNG is %v, want %dx%d", b, want, want)
					}
					code := decodeCode(t, img, sym)
					if c, err := custody.ParseCode(code); err != nil || c.Form != "isbt" || c.ISBT == nil || c.Bag == nil || *c.Bag != bag {
						t.Errorf("decoded %q: %+v, %v; want the ISBT 128 compound message of %s", code, c, err, bag)
					}
					e.scanResolves(t, code, bag)
				}

				pdf := e.mustLabel(t, labelPath(bag, "pdf", "symbology="+sym), nurse1,
					"application/pdf", `inline; filename="`+bag.String()+`.pdf"`)
				pages := pdfCodeImages(t, pdf)
				if len(pages) != 1 || len(pages[0]) != 1 {
					t.Fatalf("PDF has %d pages, want 1 with 1 code", len(pages))
				}
				e.scanResolves(t, decodeCode(t, pages[0][0], sym), bag)

				zpl := e.mustLabel(t, labelPath(bag, "zpl", "symbology="+sym), nurse1,
					"text/plain; charset=utf-8", `attachment; filename="`+bag.String()+`.zpl"`)
				cmd := "^BQN,2,"
				if sym == "datamatrix" {
					cmd = "^BXN,"
				}
				if !bytes.Contains(zpl, []byte(cmd)) || !bytes.Contains(zpl, []byte("&/"+string(bag.COI))) || !bytes.Contains(zpl, []byte("=,"+custody.BagDivisions(bag)+"^FS")) {
					t.Errorf("ZPL lacks %s with the payload:\n%s", cmd, zpl)
				}
			})
		}
	}
	t.Run("chain sheet", func(t *testing.T) {
		coi := bags[0].COI
		pdf := e.mustLabel(t, chainPath(coi, "/labels.pdf"), qa, "application/pdf", `inline; filename="`+string(coi)+`-labels.pdf"`)
		if n := bytes.Count(pdf, []byte("/Type /Page\n")); n != len(bags) {
			t.Errorf("%d pages, want one per bag (%d)", n, len(bags))
		}
		pages := pdfCodeImages(t, pdf)
		if len(pages) != len(bags) {
			t.Fatalf("%d pages for %d bags", len(pages), len(bags))
		}
		for i, imgs := range pages { // pages in bag order
			if len(imgs) != 1 {
				t.Fatalf("page %d has %d codes", i+1, len(imgs))
			}
			e.scanResolves(t, decodeCode(t, imgs[0], "qr"), bags[i])
		}
	})
}

// TestLabelContentPrinted checks what the label shows: the patient's name
// and birth date from the PHI store (the one place they are printed), the
// DIN on apheresis bags only, times in the chosen zone and in UTC.
func TestLabelContentPrinted(t *testing.T) {
	e := newEnv(t)
	_, bags := labelledChain(t, e)
	aph := string(e.mustLabel(t, labelPath(bags[0], "zpl", "zone=Europe/Berlin"), nurse1,
		"text/plain; charset=utf-8", `attachment; filename="`+bags[0].String()+`.zpl"`))
	for _, want := range []string{patientA.Name, patientA.BirthDate, "autologous anti-CD19 CAR-T", "FOR AUTOLOGOUS USE ONLY",
		"COLLECTED", "2026-11-22 11:30 CET (UTC+01:00)", "2026-11-22 10:30 UTC", "Store at 2-8 _C2_B0C", "FIN A9999"} {
		if !strings.Contains(aph, want) {
			t.Errorf("APH label lacks %q:\n%s", want, aph)
		}
	}
	// The DIN and its K, one character per fixed-pitch cell.
	din := custody.DIN("A999926123456")
	var cells strings.Builder
	for _, m := range regexp.MustCompile(`\^FB\d+,1,0,C\^FH_\^FD(.)\^FS`).FindAllStringSubmatch(aph, -1) {
		cells.WriteString(m[1])
	}
	if !strings.Contains(cells.String(), string(din)+string(din.K())) {
		t.Errorf("identifier cells %q lack DIN %s", cells.String(), din.Display())
	}

	fp := e.mustLabel(t, labelPath(bags[3], "pdf", ""), mfg, "application/pdf", `inline; filename="`+bags[3].String()+`.pdf"`)
	text := pdfPageText(t, fp)
	for _, want := range []string{"(" + patientA.Name + ") Tj", "(MANUFACTURED) Tj", "(2026-11-22 12:00 UTC) Tj",
		"(Store at or below -150 \xb0C) Tj", "(" + bags[3].String() + ") Tj"} {
		if !strings.Contains(text, want) {
			t.Errorf("FP label page lacks %s", want)
		}
	}
	// The final product carries the DIN of the collection it was made
	// from, as every bag label does (DESIGN section 3).
	if !strings.Contains(text, "(DIN) Tj") {
		t.Error("FP label prints no DIN")
	}
}

// TestLabelDeterministic: the same label twice gives the same bytes, and
// records appended later do not change a bag's label: the PDF's dates are
// the registering record's time, not the request's.
func TestLabelDeterministic(t *testing.T) {
	e := newEnv(t)
	coi, bags := labelledChain(t, e)
	paths := []string{
		labelPath(bags[0], "png", ""), labelPath(bags[2], "png", "symbology=datamatrix&size=300"),
		labelPath(bags[0], "pdf", ""), labelPath(bags[3], "pdf", "symbology=datamatrix&zone=America/New_York"),
		labelPath(bags[1], "zpl", ""), labelPath(bags[2], "zpl", "dpi=203"),
		chainPath(coi, "/labels.pdf"),
	}
	first := map[string][]byte{}
	for _, p := range paths {
		a := e.do(t, http.MethodGet, p, nurse1, nil)
		b := e.do(t, http.MethodGet, p, nurse2, nil)
		if a.Code != http.StatusOK || b.Code != http.StatusOK {
			t.Fatalf("GET %s: %s; %s", p, a, b)
		}
		if !bytes.Equal(a.Body, b.Body) {
			t.Errorf("GET %s twice: different bytes", p)
		}
		first[p] = a.Body
	}
	c := e.chain(t, coi)
	if want := fmt.Sprintf("/CreationDate (D:%s)", c.Records[1].Time.UTC().Format("20060102150405")); !bytes.Contains(first[paths[2]], []byte(want)) {
		t.Errorf("APH label PDF lacks %s, the collect record's time", want)
	}
	e.mustStep(t, coi, qa, custody.StepNote, map[string]any{"text": "labels printed"}, sig{qa, custody.MeaningAuthored, ""})
	for _, p := range paths {
		if r := e.do(t, http.MethodGet, p, qa, nil); r.Code != http.StatusOK || !bytes.Equal(r.Body, first[p]) {
			t.Errorf("GET %s after a later record: %d, bytes changed: %v", p, r.Code, !bytes.Equal(r.Body, first[p]))
		}
	}
}

// TestLabelErrors: refusals by role, and requests that name the wrong bag
// or ask for what cannot be printed, each with a clear 4xx and the error
// body every route returns.
func TestLabelErrors(t *testing.T) {
	e := newEnv(t)
	coi, bags := labelledChain(t, e)
	other := e.enroll(t, patientB)
	fp1 := bags[2]
	k := string(coi.K())
	wrongK := "0"
	if k == "0" {
		wrongK = "1"
	}
	for _, tc := range []struct {
		name, path, user string
		status           int
		code, msg        string
	}{
		{"courier png", labelPath(fp1, "png", ""), courier, 403, "forbidden", "may not print labels"},
		{"courier pdf", labelPath(fp1, "pdf", ""), courier, 403, "forbidden", "may not print labels"},
		{"courier zpl", labelPath(fp1, "zpl", ""), courier, 403, "forbidden", "may not print labels"},
		{"courier sheet", chainPath(coi, "/labels.pdf"), courier, 403, "forbidden", "may not print labels"},
		{"admin pdf", labelPath(fp1, "pdf", ""), admin, 403, "forbidden", "may not print labels"},
		{"admin sheet", chainPath(coi, "/labels.pdf"), admin, 403, "forbidden", "may not print labels"},
		{"bag of another chain", chainPath(other, "/bags/", fp1.String(), "/label.pdf"), nurse1, 400, "invalid", "belongs to chain"},
		{"bag ID without COI", chainPath(coi, "/bags/FP-01/label.pdf"), nurse1, 400, "invalid", "whole bag ID"},
		{"malformed bag", chainPath(coi, "/bags/", string(coi), "-XY-01/label.zpl"), nurse1, 400, "invalid", "APH or FP"},
		{"bag with wrong K", chainPath(coi, "/bags/", string(coi)+wrongK, "-FP-01/label.zpl"), nurse1, 400, "invalid", "check character"},
		{"unregistered bag", labelPath(custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 3}, "pdf", ""), nurse1, 404, "not_found", "not registered"},
		{"unregistered bag png", labelPath(custody.BagID{COI: coi, Kind: custody.BagApheresis, N: 3}, "png", ""), nurse1, 404, "not_found", "not registered"},
		{"unknown chain", labelPath(custody.BagID{COI: "CHA999926999999", Kind: custody.BagApheresis, N: 1}, "pdf", ""), nurse1, 404, "not_found", ""},
		{"chain without bags", chainPath(other, "/labels.pdf"), nurse1, 404, "not_found", "no bags"},
		{"wrong K in coi", chainPath(custody.COI(string(coi)+wrongK), "/bags/", fp1.String(), "/label.pdf"), nurse1, 400, "invalid", "check character"},
		{"wrong K in coi, sheet", chainPath(custody.COI(string(coi)+wrongK), "/labels.pdf"), nurse1, 400, "invalid", "check character"},
		{"unknown symbology", labelPath(fp1, "png", "symbology=pdf417"), nurse1, 400, "invalid", "qr, datamatrix or both"},
		{"unknown symbology pdf", labelPath(fp1, "pdf", "symbology=aztec"), nurse1, 400, "invalid", "qr, datamatrix or both"},
		{"unknown symbology sheet", chainPath(coi, "/labels.pdf?symbology=x"), nurse1, 400, "invalid", "qr, datamatrix or both"},
		{"size too large", labelPath(fp1, "png", "size=5000"), nurse1, 400, "invalid", "size"},
		{"size zero", labelPath(fp1, "png", "size=0"), nurse1, 400, "invalid", "size"},
		{"size not a number", labelPath(fp1, "png", "size=big"), nurse1, 400, "invalid", "size"},
		{"size below the code", labelPath(fp1, "png", "size=30"), nurse1, 400, "invalid", "size 30 px"},
		{"unknown zone", labelPath(fp1, "pdf", "zone=Mars/Olympus"), nurse1, 400, "invalid", "time zone"},
		{"server-local zone", labelPath(fp1, "pdf", "zone=Local"), nurse1, 400, "invalid", "IANA"},
		{"zone path", labelPath(fp1, "zpl", "zone=../../etc/passwd"), nurse1, 400, "invalid", "time zone"},
		{"dpi too low", labelPath(fp1, "zpl", "dpi=72"), nurse1, 400, "invalid", "dpi"},
		{"stock too small", labelPath(fp1, "pdf", "width_mm=30&height_mm=20"), nurse1, 400, "invalid", "smaller than"},
		{"stock not a size", labelPath(fp1, "pdf", "width_mm=-1"), nurse1, 400, "invalid", "width_mm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.ledgerRecords(t)
			r := e.do(t, http.MethodGet, tc.path, tc.user, nil)
			if r.Code != tc.status {
				t.Fatalf("GET %s: %s, want %d", tc.path, r, tc.status)
			}
			code, msg := r.errorBody(t)
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("error %s %q, want %s mentioning %q", code, msg, tc.code, tc.msg)
			}
			if r.Header.Get("Content-Disposition") != "" {
				t.Error("an error carries Content-Disposition")
			}
			for _, id := range append(patientA.identifiers(), patientB.identifiers()...) {
				if strings.Contains(string(r.Body), id) {
					t.Errorf("error body contains patient identifier %q", id)
				}
			}
			if after := e.ledgerRecords(t); after != before {
				t.Errorf("a label request wrote to the ledger")
			}
		})
	}
	t.Run("COI and bag with K, escaped or not", func(t *testing.T) {
		for _, p := range []string{
			chainPath(custody.COI(string(coi)+k), "/bags/", string(coi)+k, "-FP-01/label.zpl"),
			"/api/v1/chains/" + strings.ReplaceAll(string(coi)+k, "*", "%2A") + "/bags/" + strings.ReplaceAll(string(coi)+k, "*", "%2A") + "-FP-01/label.zpl",
			"/api/v1/chains/" + string(coi) + "%20" + strings.ReplaceAll(k, "*", "%2A") + "/bags/" + fp1.String() + "/label.zpl",
		} {
			r := e.do(t, http.MethodGet, p, nurse1, nil)
			if r.Code != http.StatusOK || !bytes.Contains(r.Body, []byte("=,"+custody.BagDivisions(fp1)+"^FS")) {
				t.Errorf("GET %s: %s", p, r)
			}
		}
	})
	t.Run("every role that handles bags", func(t *testing.T) {
		for _, u := range []string{coord, nurse1, mfg, qa} {
			if r := e.do(t, http.MethodGet, labelPath(fp1, "pdf", ""), u, nil); r.Code != http.StatusOK {
				t.Errorf("%s: %s", u, r)
			}
		}
	})
}

// TestLabelLogsNoPHI: printing is logged with the chain, bag and user, and
// the log never holds the patient identifiers the labels print.
func TestLabelLogsNoPHI(t *testing.T) {
	e := newEnv(t)
	coi, bags := labelledChain(t, e)
	printed := 0
	for _, bag := range bags {
		for _, ext := range []string{"png", "pdf", "zpl"} {
			e.mustLabel(t, labelPath(bag, ext, "symbology=datamatrix"), nurse2, map[string]string{
				"png": "image/png", "pdf": "application/pdf", "zpl": "text/plain; charset=utf-8"}[ext],
				map[string]string{"png": "inline", "pdf": "inline", "zpl": "attachment"}[ext]+`; filename="`+bag.String()+"."+ext+`"`)
			printed++
		}
	}
	sheet := e.mustLabel(t, chainPath(coi, "/labels.pdf"), mfg, "application/pdf", `inline; filename="`+string(coi)+`-labels.pdf"`)
	printed += len(bags)
	// The labels do carry the identifiers: the test is not vacuous.
	if !strings.Contains(pdfPageText(t, sheet), patientA.Name) {
		t.Fatal("the sheet does not print the patient's name")
	}
	// Refused labels are not logged as printed: a forbidden role, and
	// options that could never print, which are checked first.
	if r := e.do(t, http.MethodGet, labelPath(bags[0], "pdf", ""), courier, nil); r.Code != http.StatusForbidden {
		t.Fatalf("courier: %s", r)
	}
	for _, q := range []string{"width_mm=30", "dpi=1200", "symbology=aztec"} {
		if r := e.do(t, http.MethodGet, labelPath(bags[0], "zpl", q), nurse2, nil); r.Code != http.StatusBadRequest {
			t.Fatalf("%s: %s", q, r)
		}
	}
	logs := e.logs.String()
	if n := strings.Count(logs, `msg="label printed"`); n != printed {
		t.Errorf("%d label printed lines, want %d", n, printed)
	}
	for _, want := range []string{
		"coi=" + string(coi), "bag=" + bags[3].String(), "user=" + nurse2, "user=" + mfg,
		"path=/api/v1/chains/" + string(coi) + "/bags/" + bags[0].String() + "/label.zpl",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	for _, id := range patientA.identifiers() {
		if strings.Contains(logs, id) {
			t.Errorf("log contains patient identifier %q", id)
		}
	}
}

// TestLabelSiteSymbol: a label printed without a symbology carries the
// label symbol its site registered (QR, Data Matrix or both side by side),
// each code read back by an independent decoder and resolved by /scan; a
// symbology in the request overrides the site's; an unknown symbol is
// refused by the registry.
func TestLabelSiteSymbol(t *testing.T) {
	e := networkEnv(t, "2027-03-01")
	r := e.do(t, http.MethodPost, "/api/v1/chains", coord, networkEnroll(netSites, "CART-19"))
	var ch struct{ COI custody.COI }
	if err := json.Unmarshal(r.Body, &ch); err != nil || r.Code != http.StatusCreated {
		t.Fatalf("enroll: %s", r)
	}
	e.advance(t, ch.COI, patientA.MRN, 1) // collect at PAR-1: the apheresis bags are labelled there
	bag := custody.BagID{COI: ch.COI, Kind: custody.BagApheresis, N: 1}
	if r := e.do(t, http.MethodPost, "/api/v1/sites", admin, with(regSite, "code", "PAR-9", "label_symbol", "pdf417")); r.Code != http.StatusBadRequest ||
		!strings.Contains(string(r.Body), "qr, datamatrix or both") {
		t.Errorf("site with label_symbol pdf417: %s, want 400 naming the symbols", r)
	}
	for _, tc := range []struct {
		site, query string
		want        []string // the symbology of each code on the PDF page, in order
		zpl         []string
	}{
		{"", "", []string{"qr"}, []string{"^BQN,2,"}},
		{"both", "", []string{"qr", "datamatrix"}, []string{"^BQN,2,", "^BXN,"}},
		{"both", "symbology=datamatrix", []string{"datamatrix"}, []string{"^BXN,"}},
		{"datamatrix", "", []string{"datamatrix"}, []string{"^BXN,"}},
		{"datamatrix", "symbology=both", []string{"qr", "datamatrix"}, []string{"^BQN,2,", "^BXN,"}},
		{"qr", "", []string{"qr"}, []string{"^BQN,2,"}},
	} {
		t.Run(tc.site+"/"+tc.query, func(t *testing.T) {
			if r := e.do(t, http.MethodPut, "/api/v1/sites/PAR-1", admin, with(regSite, "label_symbol", tc.site, "reason", "label printers")); r.Code != http.StatusOK {
				t.Fatalf("PUT site: %s", r)
			}
			pdf := e.mustLabel(t, labelPath(bag, "pdf", tc.query), nurse1, "application/pdf", `inline; filename="`+bag.String()+`.pdf"`)
			pages := pdfCodeImages(t, pdf)
			if len(pages) != 1 || len(pages[0]) != len(tc.want) {
				t.Fatalf("PDF: %d page(s), codes %v; want one page with %v", len(pages), len(pages[0]), tc.want)
			}
			for i, sym := range tc.want {
				e.scanResolves(t, decodeCode(t, pages[0][i], sym), bag)
			}
			zpl := string(e.mustLabel(t, labelPath(bag, "zpl", tc.query), nurse1, "text/plain; charset=utf-8", `attachment; filename="`+bag.String()+`.zpl"`))
			n := 0
			for _, cmd := range []string{"^BQN,2,", "^BXN,"} {
				if strings.Contains(zpl, cmd) {
					n++
				}
			}
			if n != len(tc.zpl) {
				t.Errorf("ZPL has %d symbols, want %v:\n%s", n, tc.zpl, zpl)
			}
			for _, cmd := range tc.zpl {
				if !strings.Contains(zpl, cmd) {
					t.Errorf("ZPL lacks %s:\n%s", cmd, zpl)
				}
			}
			png1 := e.mustLabel(t, labelPath(bag, "png", tc.query), nurse1, "image/png", `inline; filename="`+bag.String()+`.png"`)
			img, err := png.Decode(bytes.NewReader(png1))
			if err != nil {
				t.Fatal(err)
			}
			e.scanResolves(t, decodeCode(t, img, tc.want[0]), bag) // a PNG is one code: the QR code of both
		})
	}
}
