package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/verifiable"
)

// reportFixture is a data directory holding one complete chain with two
// legs of stored readings and an excursion QA accepted, and the API's
// report and export of it, fetched before the store was closed.
type reportFixture struct {
	dir      string
	coi      custody.COI
	apiPDF   []byte
	apiEPCIS []byte
}

var reportAt = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func newReportFixture(t testing.TB) *reportFixture {
	t.Helper()
	dir := t.TempDir()
	store, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := custody.NewService(custody.Config{Store: store, Hasher: passwd.Fast(), Logger: log,
		Now: func() time.Time { return now }, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())),
		Telemetry: custody.TelemetryConfig{Readings: store}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tokens := map[string]string{}
	for id, role := range map[string]custody.Role{"coord": custody.RoleCoordinator, "nurse1": custody.RoleNurse, "nurse2": custody.RoleNurse,
		"courier1": custody.RoleCourier, "mfg1": custody.RoleManufacturing, "qa1": custody.RoleQA} {
		if tokens[id], err = svc.AddUser(ctx, id, "Printed "+id, role, pw(id)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := svc.Enroll(ctx, custody.User{ID: "coord", Name: "Printed coord", Role: custody.RoleCoordinator}, custody.EnrollRequest{
		Patient: custody.PHI{Name: "Ximena Okonkwo-Lindqvist", BirthDate: "1969-04-03", MRN: "MRN-4471902"},
		Product: "autologous anti-BCMA CAR-T", Sites: custody.Sites{Collection: "Mercy Apheresis", Manufacturing: "CellWorks Plant 2", Treatment: "Mercy BMT"}})
	if err != nil {
		t.Fatal(err)
	}
	coi := c.COI
	sr := func(id string, m custody.Meaning) custody.SignatureRequest {
		return custody.SignatureRequest{User: id, Password: pw(id), Meaning: m}
	}
	step := func(at time.Time, s custody.Step, data any, sigs ...custody.SignatureRequest) custody.Record {
		t.Helper()
		now = at
		b, _ := json.Marshal(data)
		u, _ := store.User(ctx, sigs[0].User)
		r, err := svc.Record(ctx, u, coi, custody.StepRequest{Step: s, Data: b, Signatures: sigs})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		return r
	}
	readings := func(shipper string, a, b time.Time, every time.Duration, base float64, hot time.Time, hotFor time.Duration, hotC float64) {
		t.Helper()
		var rs []custody.Reading
		n := uint64(0)
		for at := a; !at.After(b); at = at.Add(every) {
			n++
			v := math.Round((base+0.4*math.Sin(float64(at.Unix())/5000))*10) / 10
			if !at.Before(hot) && at.Before(hot.Add(hotFor)) {
				v = hotC
			}
			tilt := 2.0
			rs = append(rs, custody.Reading{Shipper: shipper, Seq: n, HasSeq: true, DeviceTime: at, ReceivedTime: at, TempC: &v, TiltDeg: &tilt})
		}
		if _, err := store.AddReadings(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	day := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }
	step(day(20, 10), custody.StepCollect, map[string]any{"din": "A999926123456", "volume_ml": 180, "bags": 2,
		"started_at": "2026-11-20T08:00:00Z", "ended_at": "2026-11-20T09:30:00Z"},
		sr("nurse1", custody.MeaningPerformed), sr("nurse2", custody.MeaningVerified))
	step(day(20, 11), custody.StepShip, map[string]any{"shipper": "SHP-7", "profile": "refrigerated"},
		sr("nurse1", custody.MeaningHandedOver), sr("courier1", custody.MeaningReceived))
	readings("SHP-7", day(20, 11), day(21, 9), 5*time.Minute, 5, day(21, 2), 45*time.Minute, 11)
	now = day(21, 3)
	exc, _, err := svc.RecordExcursion(ctx, coi, 1, custody.Excursion{ID: custody.ExcursionID(custody.ExcursionTemperature, day(21, 2)),
		Kind: custody.ExcursionTemperature, Start: day(21, 2), End: day(21, 2).Add(45 * time.Minute), Worst: ptr(11.0), Limit: ptr(8.0),
		Duration: 45 * time.Minute, Breach: 45 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	step(day(21, 9), custody.StepReceive, map[string]any{"seal_intact": true}, sr("mfg1", custody.MeaningReceived))
	step(day(27, 9), custody.StepManufacture, map[string]any{"final_bags": 1}, sr("mfg1", custody.MeaningPerformed))
	step(day(27, 10), custody.StepDisposition, map[string]any{"excursion": exc.Seq, "decision": "accept", "reason": "stability data cover 45 min at 11 C"},
		sr("qa1", custody.MeaningApproved))
	step(day(28, 9), custody.StepRelease, map[string]any{}, sr("qa1", custody.MeaningApproved))
	step(day(28, 10), custody.StepShip, map[string]any{"shipper": "SHP-8", "profile": "cryogenic"},
		sr("mfg1", custody.MeaningHandedOver), sr("courier1", custody.MeaningReceived))
	readings("SHP-8", day(28, 10), day(29, 8), time.Minute, -186, time.Time{}, 0, 0)
	step(day(29, 8), custody.StepReceive, map[string]any{"seal_intact": true}, sr("nurse1", custody.MeaningReceived))
	step(day(29, 12), custody.StepBedsideVerify, map[string]any{"bag_code": custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1}),
		"wristband_code": "MRN-4471902"}, sr("nurse1", custody.MeaningVerified), sr("nurse2", custody.MeaningVerified))
	step(day(29, 13), custody.StepInfuse, map[string]any{}, sr("nurse2", custody.MeaningPerformed))

	// The API's report and export, at the time the command will be given.
	now = reportAt
	keys, err := verifiable.OpenKeys(dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vlog := verifiable.NewLog(store, keys, func() time.Time { return now }, log)
	srv, err := api.New(api.Config{Service: svc, Logger: log, Version: "test", Log: vlog})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) []byte {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+tokens["qa1"])
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		return rec.Body.Bytes()
	}
	f := &reportFixture{dir: dir, coi: coi}
	f.apiPDF = get("/api/v1/chains/" + string(coi) + "/report.pdf?tz=Europe/Berlin")
	f.apiEPCIS = get("/api/v1/chains/" + string(coi) + "/epcis?tz=Europe/Berlin")
	return f
}

func ptr(v float64) *float64 { return &v }

func runReportCmd(args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	err = run(context.Background(), append([]string{"report"}, args...), nil, strings.NewReader(""), &o, &e)
	return o.String(), e.String(), err
}

func TestReportCommand(t *testing.T) {
	f := newReportFixture(t)
	out := filepath.Join(t.TempDir(), "report.pdf")
	at := reportAt.Format(time.RFC3339)
	_, stderr, err := runReportCmd("--data", f.dir, "--user", "qa1", "--tz", "Europe/Berlin", "--at", at, "-o", out, string(f.coi))
	if err != nil {
		t.Fatalf("coid report: %v\n%s", err, stderr)
	}
	pdf, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pdf, f.apiPDF) {
		t.Errorf("the command's report (%d bytes) differs from the API's (%d bytes) for the same chain, user and time", len(pdf), len(f.apiPDF))
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("report file mode %v, %v; want 0600", fi.Mode(), err)
	}
	// Flags after the COI, output to stdout: the same bytes.
	stdout, _, err := runReportCmd("--data", f.dir, string(f.coi), "--user", "qa1", "--tz", "Europe/Berlin", "--at", at)
	if err != nil || stdout != string(pdf) {
		t.Errorf("report to stdout: %v, same bytes %v", err, stdout == string(pdf))
	}
	if bin, err := exec.LookPath("pdftotext"); err == nil {
		txt, err := exec.Command(bin, out, "-").Output()
		if err != nil {
			t.Fatal(err)
		}
		flat := strings.Join(strings.Fields(string(txt)), " ")
		for _, w := range []string{"SHP-7", "SHP-8", "Excursion (temperature) on leg 1", "ACCEPT by Printed qa1", "stability data cover",
			"refrigerated: 2 °C to 8 °C", "mean kinetic temperature", "telemetry sealed", "Printed qa1 (user qa1, role qa)", "initials XO, born 1969"} {
			if !strings.Contains(flat, w) {
				t.Errorf("report lacks %q", w)
			}
		}
		if strings.Contains(flat, "No telemetry available") {
			t.Error("the command found no telemetry in the data directory")
		}
	} else {
		skipUnlessCI(t, "pdftotext (poppler-utils) is not installed; the report's text is not checked")
	}

	// Without --user the offline operator is named.
	if _, stderr, err := runReportCmd("--data", f.dir, "--at", at, "-o", out, string(f.coi)); err != nil {
		t.Errorf("without --user: %v %s", err, stderr)
	}
	// EPCIS, byte for byte as the API.
	stdout, _, err = runReportCmd("--data", f.dir, "--format", "epcis", "--tz", "Europe/Berlin", "--at", at, string(f.coi))
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(f.apiEPCIS) {
		t.Errorf("the command's EPCIS export differs from the API's")
	}
}

func TestReportCommandRefusals(t *testing.T) {
	f := newReportFixture(t)
	cases := []struct {
		name  string
		args  []string
		usage bool
		is    error
	}{
		{"no COI", []string{"--data", f.dir}, true, nil},
		{"two COIs", []string{"--data", f.dir, string(f.coi), string(f.coi)}, true, nil},
		{"bad zone", []string{"--data", f.dir, "--tz", "Mars/Base", string(f.coi)}, true, nil},
		{"bad time", []string{"--data", f.dir, "--at", "yesterday", string(f.coi)}, true, nil},
		{"bad format", []string{"--data", f.dir, "--format", "docx", string(f.coi)}, true, nil},
		{"nurse may not", []string{"--data", f.dir, "--user", "nurse1", string(f.coi)}, false, custody.ErrForbidden},
		{"unknown user", []string{"--data", f.dir, "--user", "ghost", string(f.coi)}, false, custody.ErrNotFound},
		{"unknown chain", []string{"--data", f.dir, "CHA999926999999"}, false, custody.ErrNotFound},
		{"not a COI", []string{"--data", f.dir, "hello"}, false, custody.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runReportCmd(c.args...)
			var u usageError
			switch {
			case err == nil:
				t.Fatal("accepted")
			case c.usage && !errors.As(err, &u):
				t.Errorf("%v, want a usage error", err)
			case c.is != nil && !errors.Is(err, c.is):
				t.Errorf("%v, want %v", err, c.is)
			}
		})
	}
}
