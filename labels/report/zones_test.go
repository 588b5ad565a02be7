package report_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestSiteZonesText checks a report of a chain whose collection site is in
// Chicago and manufacturing site in Berlin: each record at a registered
// site is shown in its site's local time beside UTC, the sites block names
// each site's zone, and a record at the unregistered treatment site falls
// back to the default zone (UTC here). The extracted text is also kept as
// a golden file (-update rewrites it).
func TestSiteZonesText(t *testing.T) {
	c, tele := fullJourney(t)
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	in := input(c, tele, nil)
	in.SiteZones = custody.SiteZones{c.Sites.Collection: chicago, c.Sites.Manufacturing: berlin(t)}
	txt := pdfText(t, render(t, in))
	flat := squash(txt)
	for _, w := range []string{
		"Collection site " + c.Sites.Collection + " (time zone America/Chicago)",
		"Manufacturing site " + c.Sites.Manufacturing + " (time zone Europe/Berlin)",
		"local times are in each registered site's time zone, other times in UTC",
	} {
		if !strings.Contains(flat, w) {
			t.Errorf("report text lacks %q", w)
		}
	}
	if strings.Contains(flat, c.Sites.Treatment+" (time zone") {
		t.Error("the unregistered treatment site is given a zone")
	}
	seen := map[string]bool{}
	for _, r := range c.Records {
		zone, ok := in.SiteZones[r.Site]
		if !ok {
			continue
		}
		local := r.Time.In(zone).Format("2006-01-02 15:04:05 MST")
		seen[r.Time.In(zone).Format("MST")] = true
		if !strings.Contains(txt, local) || !strings.Contains(txt, r.Time.UTC().Format("2006-01-02 15:04:05")+" UTC") {
			t.Errorf("record %d at %s: %q and its UTC time not in the report", r.Seq, r.Site, local)
		}
	}
	for _, abbr := range []string{"CST", "CET"} {
		if !seen[abbr] {
			t.Errorf("the fixture has no record in %s", abbr)
		}
	}
	path := filepath.Join(goldenDir, "site-zones.txt")
	if *update {
		if err := os.WriteFile(path, []byte(txt), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./labels/report -update to create it)", err)
	}
	if string(want) != txt {
		t.Errorf("report text differs from %s; if the change is intended, run go test ./labels/report -update and read it", path)
	}
}
