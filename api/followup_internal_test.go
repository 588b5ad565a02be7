package api

import (
	"bytes"
	"encoding/csv"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestFollowUpCSVNeutralisesFormulas: free-text cells (a product or site
// named before the registries) that a spreadsheet would run as a formula
// are prefixed with '; the coded cells read back as written.
func TestFollowUpCSVNeutralisesFormulas(t *testing.T) {
	rows := []custody.FollowUpRow{{COI: "CHA999926000001", Product: `=HYPERLINK("http://x","y")`, TreatmentSite: "+SUM(A1)",
		Day: 7, AssessedDate: "2026-12-27", CRSGrade: 0, ICANSGrade: 4, Response: "NE", Recorded: time.Date(2027, 1, 5, 12, 0, 0, 0, time.UTC), Seq: 17}}
	var buf bytes.Buffer
	if err := writeFollowUpCSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CHA999926000001", `'=HYPERLINK("http://x","y")`, "'+SUM(A1)", "7", "2026-12-27", "0", "4", "NE", "2027-01-05T12:00:00Z", "17"}
	if len(got) != 2 || len(got[1]) != len(want) {
		t.Fatalf("csv: %q", got)
	}
	for i := range want {
		if got[1][i] != want[i] {
			t.Errorf("column %s = %q, want %q", FollowUpCSVHeader[i], got[1][i], want[i])
		}
	}
}
