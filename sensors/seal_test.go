package sensors

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenSeal is the content of testdata/sensors/seal_v1.golden.json: a
// fixed leg's readings in their canonical encodings, in sealing order, and
// the seal computed from them, so that another implementation can check its
// canonical encoding, its readings hash and its seal figures.
type goldenSeal struct {
	Comment   string          `json:"comment"`
	Profile   custody.Profile `json:"profile"`
	Canonical []string        `json:"canonical"`
	Seal      custody.LegSeal `json:"seal"`
}

// goldenReadings is a fixed refrigerated leg with awkward values: no seq,
// a tie in device time, nanoseconds, a time zone, negative zero, tiny and
// long decimals, and readings without temperature.
func goldenReadings() []custody.Reading {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	tenth := 0.1 // a variable, so that tenth*3 is computed in float64
	return []custody.Reading{
		{Shipper: "SHP-0042", Seq: 3, HasSeq: true, DeviceTime: at("2026-11-22T13:10:00Z"), TempC: fp(8.5), LidOpen: bp(false)},
		{Shipper: "SHP-0042", Seq: 1, HasSeq: true, DeviceTime: at("2026-11-22T13:00:00Z"), TempC: fp(4.2), TiltDeg: fp(3.5),
			LidOpen: bp(false), Light: bp(false), BatteryPct: fp(88), LN2Pct: fp(0.0000001), Lat: fp(40.71), Lon: fp(-74.01)},
		{Shipper: "SHP-0042", Seq: 2, HasSeq: true, DeviceTime: at("2026-11-22T14:05:00.000000001+01:00"), TempC: fp(1.9999999999999998)},
		{Shipper: "SHP-0042", DeviceTime: at("2026-11-22T13:05:00.000000001Z"), LidOpen: bp(true)},
		{Shipper: "SHP-0042", Seq: 4, HasSeq: true, DeviceTime: at("2026-11-22T13:20:00.5Z"), TempC: fp(tenth * 3)},
		{Shipper: "SHP-0042", Seq: 5, HasSeq: true, DeviceTime: at("2026-11-22T13:30:00Z"), TempC: fp(math.Copysign(0, -1))},
		{Shipper: "SHP-0042", Seq: 6, HasSeq: true, DeviceTime: at("2026-11-22T13:45:00Z"), TempC: fp(5), BatteryPct: fp(87.25)},
	}
}

func TestSealGolden(t *testing.T) {
	p := custody.BuiltinProfiles()["refrigerated"]
	rs := goldenReadings()
	g := goldenSeal{
		Comment: "coid-reading-v1: readings_hash = hex(sha256(concat(canonical[i] + \"\\n\"))); regenerate with go test ./sensors -run TestSealGolden -update",
		Profile: p,
		Seal:    custody.SealReadings(rs, p),
	}
	sorted := append([]custody.Reading(nil), rs...)
	custody.SortReadings(sorted)
	h := sha256.New()
	for _, r := range sorted {
		c := r.AppendCanonical(nil)
		g.Canonical = append(g.Canonical, string(c))
		h.Write(append(c, '\n'))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != g.Seal.ReadingsHash {
		t.Fatalf("seal hash %s, documented construction gives %s", g.Seal.ReadingsHash, got)
	}
	got, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("..", "testdata", "sensors", "seal_v1.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("seal changed; if the change is intended run with -update.\ngot:\n%s\nwant:\n%s", got, want)
	}
	// The golden file is self-consistent for other implementations: its
	// canonical lines decode to the same readings and hash to its seal.
	var back goldenSeal
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	h.Reset()
	for _, c := range back.Canonical {
		h.Write([]byte(c + "\n"))
		if _, err := Decode("SHP-0042", []byte(c), time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC)); err != nil {
			t.Errorf("golden canonical line %s does not decode: %v", c, err)
		}
	}
	if hex.EncodeToString(h.Sum(nil)) != back.Seal.ReadingsHash {
		t.Error("golden canonical lines do not hash to the golden readings_hash")
	}
}
