package custody

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// TestSealBeforeTimeWeighting: a seal made before MKT was time-weighted
// carries no method; recomputing it the way checkSeal does (method "" and
// no cap) gives the equal-weight figure and the same JSON, so such seals
// still verify.
func TestSealBeforeTimeWeighting(t *testing.T) {
	p := BuiltinProfiles()["refrigerated"]
	start := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	var rs []Reading
	for i, m := range []int{0, 1, 2, 3, 60, 61, 62} { // a burst, then a gap
		c := float64(2 + i)
		rs = append(rs, Reading{Shipper: "SHP-0042", Seq: uint64(i + 1), HasSeq: true, DeviceTime: start.Add(time.Duration(m) * time.Minute), TempC: &c})
	}
	legacy := sealReadings(rs, p, "", 0)
	want := math.Round(MeanKineticTemperature([]float64{2, 3, 4, 5, 6, 7, 8})*1000) / 1000
	if legacy.MKTC == nil || *legacy.MKTC != want || legacy.MKTMethod != "" || legacy.MKTMaxGap != 0 {
		t.Fatalf("legacy seal MKT %v %q %s, want %v with no method", legacy.MKTC, legacy.MKTMethod, legacy.MKTMaxGap, want)
	}
	b, _ := json.Marshal(legacy)
	if strings.Contains(string(b), "mkt_method") || strings.Contains(string(b), "mkt_max_gap") {
		t.Fatalf("legacy seal JSON names a method: %s", b)
	}
	now := SealReadings(rs, p)
	if now.MKTMethod != MKTTimeWeighted || now.MKTMaxGap != p.SilenceAfter() || *now.MKTC == *legacy.MKTC {
		t.Fatalf("new seal %v %q %s, legacy %v", *now.MKTC, now.MKTMethod, now.MKTMaxGap, *legacy.MKTC)
	}
	again := sealReadings(rs, p, now.MKTMethod, now.MKTMaxGap)
	a, _ := json.Marshal(again)
	c, _ := json.Marshal(now)
	if string(a) != string(c) {
		t.Fatalf("recomputed seal %s differs from %s", a, c)
	}
}
