package web_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestConfiguredProfileLimits: a profile loaded from a profiles file (not
// built in), and a built-in one the file redefines, show the configured
// limits on the web chain page and in the custody report, for a leg still
// in transit (no seal records them yet).
func TestConfiguredProfileLimits(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	custom := custody.Profile{Name: "deep-frozen", MinC: f(-90), MaxC: f(-60), Grace: 5 * time.Minute,
		ExpectedInterval: time.Minute, SilenceIntervals: 15}
	room := custody.BuiltinProfiles()["room"]
	room.MinC, room.MaxC = f(16), f(24)
	for _, tc := range []struct {
		profile custody.Profile
		page    string
		report  string
	}{
		{custom, "deep-frozen profile (-90 to -60 °C)", "deep-frozen: -90"},
		{room, "room profile (16 to 24 °C)", "room: 16"},
	} {
		t.Run(tc.profile.Name, func(t *testing.T) {
			e := newWebEnvProfiles(t, false, []custody.Profile{custom, room})
			coi := e.enroll()
			e.advance(coi, custody.StateCollected)
			e.step(coi, custody.StepShip, `{"shipper":"SHP-0001","profile":"`+tc.profile.Name+`"}`,
				wsig(wNurse1, custody.MeaningHandedOver), wsig(wCourier, custody.MeaningReceived))
			b := e.login(wQA)
			p := b.get(coiPath(coi))
			wantBody(t, p, "chain page", tc.page)
			r := b.get(coiPath(coi) + "/report.pdf")
			if r.Code != http.StatusOK || !strings.HasPrefix(r.Body, "%PDF-") {
				t.Fatalf("report: %d", r.Code)
			}
			txt := strings.Join(strings.Fields(reportText(t, []byte(r.Body))), " ")
			if !strings.Contains(txt, tc.report) || strings.Contains(txt, "profile not configured here") {
				t.Errorf("report lacks the configured limits %q:\n%s", tc.report, txt)
			}
		})
	}
}

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
