package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
)

// labelPatient is the patient of the label tests' chain.
var labelPatient = custody.PHI{Name: "Ximena Okonkwo-Lindqvist", BirthDate: "1969-04-03", MRN: "MRN-4471902"}

// labelFixture is a data directory holding one chain with two apheresis
// and two final-product bags, and an API server over it that is used
// before the directory is closed and handed to the command line.
type labelFixture struct {
	dir    string
	coi    custody.COI
	tokens map[string]string
	api    map[string][]byte // API response bodies by request path
}

// newLabelFixture builds the chain through the domain, fetches the labels
// at paths through the API, and closes the store.
func newLabelFixture(t *testing.T, paths func(custody.COI) []string) *labelFixture {
	t.Helper()
	dir := t.TempDir()
	store, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := custody.NewService(custody.Config{Store: store, Hasher: passwd.Fast(), Logger: log,
		Now: func() time.Time { return now }, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles()))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f := &labelFixture{dir: dir, tokens: map[string]string{}, api: map[string][]byte{}}
	users := map[string]custody.Role{"coord": custody.RoleCoordinator, "nurse1": custody.RoleNurse, "nurse2": custody.RoleNurse,
		"courier1": custody.RoleCourier, "mfg1": custody.RoleManufacturing, "admin1": custody.RoleAdmin}
	for id, role := range users {
		if f.tokens[id], err = svc.AddUser(ctx, id, "Printed "+id, role, "pw-"+id+"-long-enough"); err != nil {
			t.Fatal(err)
		}
	}
	sigReq := func(id string, m custody.Meaning) custody.SignatureRequest {
		return custody.SignatureRequest{User: id, Password: "pw-" + id + "-long-enough", Meaning: m}
	}
	c, err := svc.Enroll(ctx, custody.User{ID: "coord", Name: "Printed coord", Role: custody.RoleCoordinator}, custody.EnrollRequest{
		Patient: labelPatient, Product: "autologous anti-BCMA CAR-T",
		Sites: custody.Sites{Collection: "Mercy Apheresis", Manufacturing: "CellWorks Plant 2", Treatment: "Mercy BMT"}})
	if err != nil {
		t.Fatal(err)
	}
	f.coi = c.COI
	for _, st := range []struct {
		step custody.Step
		data any
		sigs []custody.SignatureRequest
	}{
		{custody.StepCollect, map[string]any{"din": "A999926123456", "volume_ml": 180, "bags": 2,
			"started_at": "2026-11-22T08:00:00Z", "ended_at": "2026-11-22T10:30:00Z"},
			[]custody.SignatureRequest{sigReq("nurse1", custody.MeaningPerformed), sigReq("nurse2", custody.MeaningVerified)}},
		{custody.StepShip, map[string]any{"shipper": "SHP-7", "profile": "refrigerated"},
			[]custody.SignatureRequest{sigReq("nurse1", custody.MeaningHandedOver), sigReq("courier1", custody.MeaningReceived)}},
		{custody.StepReceive, map[string]any{"seal_intact": true}, []custody.SignatureRequest{sigReq("mfg1", custody.MeaningReceived)}},
		{custody.StepManufacture, map[string]any{"final_bags": 2}, []custody.SignatureRequest{sigReq("mfg1", custody.MeaningPerformed)}},
	} {
		data, _ := json.Marshal(st.data)
		if _, err := svc.Record(ctx, custody.User{ID: "nurse1", Role: custody.RoleNurse}, c.COI,
			custody.StepRequest{Step: st.step, Data: data, Signatures: st.sigs}); err != nil {
			t.Fatalf("%s: %v", st.step, err)
		}
	}
	srv, err := api.New(api.Config{Service: svc, Logger: log, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths(c.COI) {
		req := httptest.NewRequest(http.MethodGet, p, nil)
		req.Header.Set("Authorization", "Bearer "+f.tokens["nurse1"])
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, rec.Code, rec.Body)
		}
		f.api[p] = rec.Body.Bytes()
	}
	return f
}

func (f *labelFixture) bag(kind custody.BagKind, n int) custody.BagID {
	return custody.BagID{COI: f.coi, Kind: kind, N: n}
}

// runLabelCmd runs "coid label" through run.
func runLabelCmd(args []string, env ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = run(context.Background(), append([]string{"label"}, args...), env, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

func bagLabelPath(b custody.BagID, ext, query string) string {
	p := "/api/v1/chains/" + string(b.COI) + "/bags/" + b.String() + "/label." + ext
	if query != "" {
		p += "?" + query
	}
	return p
}

// TestLabelCommandMatchesAPI: coid label prints the bytes the API serves
// for the same bag and options.
func TestLabelCommandMatchesAPI(t *testing.T) {
	aph := func(coi custody.COI) custody.BagID { return custody.BagID{COI: coi, Kind: custody.BagApheresis, N: 2} }
	fp := func(coi custody.COI) custody.BagID {
		return custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1}
	}
	cases := []struct {
		name  string
		path  func(custody.COI) string
		args  func(custody.COI) []string
		env   []string
		isPDF bool
	}{
		{"pdf, defaults",
			func(c custody.COI) string { return bagLabelPath(fp(c), "pdf", "") },
			func(c custody.COI) []string { return []string{fp(c).String()} }, nil, true},
		{"pdf, data matrix, zone, stock",
			func(c custody.COI) string {
				return bagLabelPath(aph(c), "pdf", "symbology=datamatrix&zone=Europe/Berlin&dpi=203&width_mm=101.6&height_mm=76.2")
			},
			func(c custody.COI) []string {
				return []string{"--symbology", "datamatrix", "--zone", "Europe/Berlin", "--dpi", "203", "--width-mm", "101.6",
					"--height-mm", "76.2", aph(c).String()}
			}, nil, true},
		{"png",
			func(c custody.COI) string { return bagLabelPath(fp(c), "png", "") },
			func(c custody.COI) []string { return []string{"--format", "png", fp(c).String()} }, nil, false},
		{"png, data matrix, size, flags after the bag",
			func(c custody.COI) string { return bagLabelPath(aph(c), "png", "symbology=datamatrix&size=300") },
			func(c custody.COI) []string {
				return []string{aph(c).String(), "--format", "png", "--symbology", "datamatrix", "--size", "300"}
			}, nil, false},
		{"zpl, zone from the environment",
			func(c custody.COI) string { return bagLabelPath(aph(c), "zpl", "zone=America/Chicago") },
			func(c custody.COI) []string { return []string{"--format", "zpl", aph(c).String()} },
			[]string{"COID_LABEL_ZONE=America/Chicago"}, false},
		{"zpl from a scanned payload",
			func(c custody.COI) string { return bagLabelPath(fp(c), "zpl", "symbology=datamatrix") },
			func(c custody.COI) []string {
				return []string{"--format", "zpl", "--symbology", "datamatrix", custody.LabelPayload(fp(c))}
			}, nil, false},
		{"chain sheet",
			func(c custody.COI) string { return "/api/v1/chains/" + string(c) + "/labels.pdf" },
			func(c custody.COI) []string { return []string{c.Display()} }, nil, true},
	}
	f := newLabelFixture(t, func(coi custody.COI) []string {
		var ps []string
		for _, tc := range cases {
			ps = append(ps, tc.path(coi))
		}
		return ps
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := f.api[tc.path(f.coi)]
			args := append([]string{"--data", f.dir, "--user", "nurse2"}, tc.args(f.coi)...)
			out, errb, err := runLabelCmd(args, tc.env...)
			if err != nil {
				t.Fatalf("coid label %v: %v\n%s", args, err, errb)
			}
			if !bytes.Equal([]byte(out), want) {
				t.Fatalf("coid label %v: %d bytes differ from the API's %d", args, len(out), len(want))
			}
			if tc.isPDF && !bytes.HasPrefix(want, []byte("%PDF-")) {
				t.Fatal("not a PDF")
			}
			if !strings.Contains(errb, `msg="label printed"`) || !strings.Contains(errb, "user=nurse2") {
				t.Errorf("stderr lacks the label printed line:\n%s", errb)
			}
			for _, id := range []string{labelPatient.Name, labelPatient.BirthDate, labelPatient.MRN} {
				if strings.Contains(errb, id) {
					t.Errorf("stderr contains patient identifier %q", id)
				}
			}
		})
	}
	t.Run("-o FILE", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "fp.pdf")
		out, errb, err := runLabelCmd([]string{"--data", f.dir, "--user", "mfg1", "-o", path, fp(f.coi).String()})
		if err != nil || out != "" {
			t.Fatalf("err %v, stdout %d bytes\n%s", err, len(out), errb)
		}
		b, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(b, f.api[bagLabelPath(fp(f.coi), "pdf", "")]) {
			t.Fatalf("file differs from the API's bytes (%v)", err)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("file mode %v, want 0600: it holds patient identifiers", fi.Mode().Perm())
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(left) != 0 {
			t.Errorf("temporary files left: %v", left)
		}
	})
}

func TestLabelCommandRefusals(t *testing.T) {
	f := newLabelFixture(t, func(custody.COI) []string { return nil })
	fp1 := f.bag(custody.BagFinalProduct, 1).String()
	data := []string{"--data", f.dir}
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		exit int
		err  error
		msg  string
	}{
		{"no bag", append(data, "--user", "nurse1"), nil, 2, nil, "exactly one"},
		{"two bags", append(data, "--user", "nurse1", fp1, fp1), nil, 2, nil, "exactly one"},
		{"no user", append(data, fp1), nil, 2, nil, "--user"},
		{"unknown format", append(data, "--user", "nurse1", "--format", "svg", fp1), nil, 2, nil, "pdf, png or zpl"},
		{"unknown symbology", append(data, "--user", "nurse1", "--symbology", "aztec", fp1), nil, 2, nil, "qr, datamatrix or both"},
		{"unknown zone", append(data, "--user", "nurse1", "--zone", "Mars/Olympus", fp1), nil, 2, nil, "time zone"},
		{"local zone", append(data, "--user", "nurse1", fp1), []string{"COID_LABEL_ZONE=Local"}, 2, nil, "IANA"},
		{"png of a chain", append(data, "--user", "nurse1", "--format", "png", string(f.coi)), nil, 2, nil, "one bag's code"},
		{"unknown flag", append(data, "--user", "nurse1", "--colour", "red", fp1), nil, 2, nil, ""},
		{"courier", append(data, "--user", "courier1", fp1), nil, 1, custody.ErrForbidden, "may not print labels"},
		{"admin", append(data, "--user", "admin1", string(f.coi)), nil, 1, custody.ErrForbidden, "may not print labels"},
		{"unknown user", append(data, "--user", "ghost", fp1), nil, 1, custody.ErrNotFound, "ghost"},
		{"unregistered bag", append(data, "--user", "nurse1", string(f.coi)+"-FP-03"), nil, 1, custody.ErrNotFound, "not registered"},
		{"wrong K", append(data, "--user", "nurse1", string(f.coi)+"0-FP-01"), nil, 1, custody.ErrInvalid, "check character"},
		{"not a code", append(data, "--user", "nurse1", "hello"), nil, 1, custody.ErrInvalid, ""},
		{"stock too small", append(data, "--user", "nurse1", "--width-mm", "30", fp1), nil, 1, custody.ErrInvalid, "smaller than"},
		{"missing data directory", []string{"--data", filepath.Join(f.dir, "nope"), "--user", "nurse1", fp1}, nil, 1, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "wrong K" && f.coi.K() == '0' {
				t.Skip("K is 0")
			}
			out, errb, err := runLabelCmd(tc.args, tc.env...)
			if err == nil {
				t.Fatalf("coid label %v succeeded", tc.args)
			}
			if got := exitCode(err); got != tc.exit {
				t.Errorf("exit %d (%v), want %d", got, err, tc.exit)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("err = %v, want %v", err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err %q does not mention %q", err, tc.msg)
			}
			if out != "" {
				t.Errorf("%d bytes on stdout after a refusal", len(out))
			}
			if strings.Contains(errb, "label printed") {
				t.Error("a refused label was logged as printed")
			}
		})
	}
}
