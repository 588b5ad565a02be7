package epcis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/epcis"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/dlclark/regexp2"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ---------------------------------------------------------------------------
// A real service over bbolt with an in-memory reading store, and a full
// journey with two legs, an excursion and its disposition.

// readings is a hand-written custody.ReadingStore.
type readings struct {
	mu sync.Mutex
	by map[string][]custody.Reading
}

var _ custody.ReadingStore = (*readings)(nil)

func (s *readings) ShipperReadings(_ context.Context, shipper string, from, to time.Time, _ uint64) ([]custody.Reading, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []custody.Reading
	for _, r := range s.by[shipper] {
		if (from.IsZero() || !r.DeviceTime.Before(from)) && (to.IsZero() || !r.DeviceTime.After(to)) {
			out = append(out, r)
		}
	}
	custody.SortReadings(out)
	return out, 1, nil
}

// ShipperReadingsPage pages ShipperReadings, never splitting an instant.
func (s *readings) ShipperReadingsPage(ctx context.Context, shipper string, from, to time.Time, limit int) ([]custody.Reading, error) {
	all, _, _ := s.ShipperReadings(ctx, shipper, from, to, 0)
	n := min(limit, len(all))
	for n > 0 && n < len(all) && all[n].DeviceTime.Equal(all[n-1].DeviceTime) {
		n++
	}
	return all[:n], nil
}

type env struct {
	t     testing.TB
	svc   *custody.Service
	store *boltstore.Store
	rs    *readings
	mu    sync.Mutex
	now   time.Time
	users map[string]custody.User
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) at(t time.Time) { e.mu.Lock(); e.now = t; e.mu.Unlock() }

func newEnv(t testing.TB) *env { t.Helper(); return newEnvJourney(t, nil) }

// newEnvJourney is newEnv with the service enforcing journey j (nil: the
// default journey).
func newEnvJourney(t testing.TB, j *custody.Journey) *env {
	t.Helper()
	store, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, rs: &readings{by: map[string][]custody.Reading{}}, now: time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC),
		users: map[string]custody.User{}}
	svc, err := custody.NewService(custody.Config{Store: store, Hasher: passwd.Fast(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: e.clock, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())),
		Telemetry: custody.TelemetryConfig{Readings: e.rs}, Journey: j})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	for id, role := range map[string]custody.Role{"coord": custody.RoleCoordinator, "nurse1": custody.RoleNurse, "nurse2": custody.RoleNurse,
		"courier1": custody.RoleCourier, "mfg1": custody.RoleManufacturing, "qa1": custody.RoleQA} {
		if _, err := svc.AddUser(context.Background(), id, "Printed "+id, role, "pw-"+id+"-secret"); err != nil {
			t.Fatal(err)
		}
		e.users[id], _ = store.User(context.Background(), id)
	}
	t.Cleanup(func() {
		rep, err := custody.VerifyLogJourney(context.Background(), store, j)
		if err != nil || !rep.OK {
			t.Errorf("ledger does not verify after the test: %+v %v", rep, err)
		}
		store.Close()
	})
	return e
}

func sig(user string, m custody.Meaning) custody.SignatureRequest {
	return custody.SignatureRequest{User: user, Password: "pw-" + user + "-secret", Meaning: m}
}

func (e *env) step(coi custody.COI, at time.Time, step custody.Step, data any, sigs ...custody.SignatureRequest) custody.Record {
	e.t.Helper()
	e.at(at)
	b, _ := json.Marshal(data)
	r, err := e.svc.Record(context.Background(), e.users[sigs[0].User], coi, custody.StepRequest{Step: step, Data: b, Signatures: sigs})
	if err != nil {
		e.t.Fatalf("%s: %v", step, err)
	}
	return r
}

func f64(v float64) *float64 { return &v }

// addReadings stores readings every step in [a, b] for shipper, at temp
// except temp2 in [x, y).
func (e *env) addReadings(shipper string, a, b time.Time, step time.Duration, temp float64, x, y time.Time, temp2 float64) {
	e.rs.mu.Lock()
	defer e.rs.mu.Unlock()
	n := uint64(len(e.rs.by[shipper]))
	for t := a; !t.After(b); t = t.Add(step) {
		n++
		v := temp + 0.5*math.Sin(float64(t.Unix())/3600)
		if !t.Before(x) && t.Before(y) {
			v = temp2
		}
		v = math.Round(v*10) / 10
		e.rs.by[shipper] = append(e.rs.by[shipper], custody.Reading{Shipper: shipper, Seq: n, HasSeq: true, DeviceTime: t, TempC: f64(v), TiltDeg: f64(2)})
	}
}

func d(day, h, m int) time.Time { return time.Date(2026, 11, day, h, m, 0, 0, time.UTC) }

// fullJourney runs a chain through the whole journey: leg 1 refrigerated
// with a temperature excursion accepted by QA, leg 2 cryogenic.
func fullJourney(e *env) custody.COI {
	e.t.Helper()
	ctx := context.Background()
	e.at(d(20, 8, 0))
	c, err := e.svc.Enroll(ctx, e.users["coord"], custody.EnrollRequest{Patient: custody.PHI{Name: "Jane Q Doe", BirthDate: "1970-01-02", MRN: "MRN-0012345"},
		Product: "Autologous CAR-T cells", Sites: custody.Sites{Collection: "St Elsewhere Apheresis", Manufacturing: "CellWorks NJ", Treatment: "St Elsewhere BMT"}})
	if err != nil {
		e.t.Fatal(err)
	}
	coi := c.COI
	e.step(coi, d(20, 10, 30), custody.StepCollect, map[string]any{"din": "A999926123456", "volume_ml": 212.5, "bags": 2,
		"started_at": "2026-11-20T08:40:00Z", "ended_at": "2026-11-20T10:10:00Z"},
		sig("nurse1", custody.MeaningPerformed), sig("nurse2", custody.MeaningVerified))
	e.step(coi, d(20, 11, 0), custody.StepShip, map[string]any{"shipper": "SHP-0042", "profile": "refrigerated"},
		sig("nurse1", custody.MeaningHandedOver), sig("courier1", custody.MeaningReceived))
	e.addReadings("SHP-0042", d(20, 11, 0), d(21, 9, 0), 5*time.Minute, 5, d(21, 2, 0), d(21, 2, 40), 9.5)
	// Recorded while still going on, its end recorded once it was over.
	e.at(d(21, 2, 5))
	warm := custody.Excursion{ID: custody.ExcursionID(custody.ExcursionTemperature, d(21, 2, 0)),
		Kind: custody.ExcursionTemperature, Start: d(21, 2, 0), Worst: f64(9.1), Limit: f64(8),
		Duration: 5 * time.Minute, Breach: 5 * time.Minute}
	exc, ok, err := e.svc.RecordExcursion(ctx, coi, 1, warm)
	if err != nil || !ok {
		e.t.Fatalf("record excursion: %v %v", ok, err)
	}
	e.at(d(21, 2, 45))
	warm.End, warm.Worst, warm.Duration, warm.Breach = d(21, 2, 40), f64(9.5), 40*time.Minute, 40*time.Minute
	if _, ok, err := e.svc.ReviseExcursion(ctx, coi, 1, warm); err != nil || !ok {
		e.t.Fatalf("record excursion end: %v %v", ok, err)
	}
	e.step(coi, d(21, 9, 0), custody.StepReceive, map[string]any{"seal_intact": true}, sig("mfg1", custody.MeaningReceived))
	e.step(coi, d(28, 15, 0), custody.StepManufacture, map[string]any{"final_bags": 2}, sig("mfg1", custody.MeaningPerformed))
	e.step(coi, d(29, 9, 0), custody.StepDisposition, map[string]any{"excursion": exc.Seq, "decision": "accept",
		"reason": "within stability data"}, sig("qa1", custody.MeaningApproved))
	e.step(coi, d(30, 10, 0), custody.StepRelease, map[string]any{}, sig("qa1", custody.MeaningApproved))
	e.step(coi, d(30, 14, 0), custody.StepShip, map[string]any{"shipper": "SHP-0099", "profile": "cryogenic"},
		sig("mfg1", custody.MeaningHandedOver), sig("courier1", custody.MeaningReceived))
	e.addReadings("SHP-0099", d(30, 14, 0), d(30, 23, 0), time.Minute, -185, time.Time{}, time.Time{}, 0)
	e.step(coi, d(30, 23, 0), custody.StepReceive, map[string]any{"seal_intact": true}, sig("nurse1", custody.MeaningReceived))
	e.step(coi, d(30, 23, 30), custody.StepCorrection, map[string]any{"corrects": exc.Seq - 2, "reason": "volume was 215 mL"},
		sig("nurse1", custody.MeaningAuthored))
	// A wrong wristband first: the mismatch, its acknowledgement (the bag
	// set aside) and QA's acceptance after the investigation.
	fp1 := custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1})
	e.at(time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC))
	b, _ := json.Marshal(map[string]any{"bag_code": fp1, "wristband_code": "MRN-0099999"})
	if _, err := e.svc.Record(ctx, e.users["nurse1"], coi, custody.StepRequest{Step: custody.StepBedsideVerify, Data: b,
		Signatures: []custody.SignatureRequest{sig("nurse1", custody.MeaningVerified), sig("nurse2", custody.MeaningVerified)}}); !errors.Is(err, custody.ErrConflict) {
		e.t.Fatalf("bedside check with a wrong wristband: %v", err)
	}
	mc, _ := e.svc.Chain(ctx, coi)
	mm := mc.Mismatches[0].Seq
	e.at(time.Date(2026, 12, 1, 8, 35, 0, 0, time.UTC))
	if _, err := e.svc.AcknowledgeMismatch(ctx, e.users["nurse2"], coi, mm, custody.ViaSession); err != nil {
		e.t.Fatal(err)
	}
	e.step(coi, time.Date(2026, 12, 1, 8, 50, 0, 0, time.UTC), custody.StepDisposition, map[string]any{"excursion": mm, "decision": "accept",
		"reason": "another patient's wristband was scanned; identity confirmed"}, sig("qa1", custody.MeaningApproved))
	e.step(coi, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), custody.StepBedsideVerify, map[string]any{
		"bag_code": custody.LabelPayload(custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1}), "wristband_code": "MRN-0012345"},
		sig("nurse1", custody.MeaningVerified), sig("nurse2", custody.MeaningVerified))
	e.step(coi, time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), custody.StepInfuse, map[string]any{}, sig("nurse2", custody.MeaningPerformed))
	return coi
}

// base is the URI base the tests' exports are configured with.
const base = "https://coid.example.org/id/"

// gs1IDs are the GS1 keys the tests' exports are given: the collection
// site has a GLN and the first leg's shipper a GIAI (one with characters
// a URI must percent-encode); the other site and shipper have none.
var gs1IDs = custody.GS1IDs{
	SiteGLN:     map[string]string{"St Elsewhere Apheresis": "4006381333931"},
	ShipperGIAI: map[string]string{"SHP-0042": "0614141/SH:42"},
}

// export builds the chain's input from the service, as the API does.
func export(t testing.TB, e *env, coi custody.COI) []byte {
	t.Helper()
	ctx := context.Background()
	c, err := e.svc.Chain(ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	in := &epcis.Input{Chain: c, CreatedAt: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC), Base: base, GS1: gs1IDs}
	for _, l := range c.Legs {
		_, rs, err := e.svc.LegReadings(ctx, coi, l.N)
		if err != nil {
			t.Fatal(err)
		}
		in.Telemetry = append(in.Telemetry, epcis.Telemetry{Available: true, Readings: rs})
	}
	var buf bytes.Buffer
	if err := epcis.Write(&buf, in); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ---------------------------------------------------------------------------
// GS1's schema.

// schemaPath finds GS1's EPCIS 2.0 JSON schema: $COID_EPCIS_SCHEMA (CI sets
// it), else the shared copy beside the repository.
func schemaPath(t testing.TB) string {
	if p := os.Getenv("COID_EPCIS_SCHEMA"); p != "" {
		// A relative path may be relative to this package or, as CI gives
		// it, to the module root.
		cands := []string{p}
		if !filepath.IsAbs(p) {
			cands = append(cands, filepath.Join("..", "..", p))
		}
		for _, c := range cands {
			if _, err := os.Stat(c); err == nil {
				return c
			}
		}
		t.Fatalf("COID_EPCIS_SCHEMA=%s: no such file here or relative to the module root", p)
	}
	for _, p := range []string{"../../../shared/standards/epcis-2.0-schema.json", "../../shared/standards/epcis-2.0-schema.json"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	skipUnlessCI(t, "GS1's EPCIS 2.0 JSON schema not found: set COID_EPCIS_SCHEMA to gs1/EPCIS JSON-Schema/EPCIS-JSON-Schema.json (CI sets it to ../shared/standards/epcis-2.0-schema.json)")
	return ""
}

// re2 adapts regexp2 (ECMAScript syntax, which the schema's negative
// lookaheads need) to the validator.
type re2 struct{ *regexp2.Regexp }

func (r re2) MatchString(s string) bool { ok, _ := r.Regexp.MatchString(s); return ok }
func (r re2) String() string            { return r.Regexp.String() }

func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.UseRegexpEngine(func(s string) (jsonschema.Regexp, error) {
		r, err := regexp2.Compile(s, regexp2.ECMAScript)
		if err != nil {
			return nil, err
		}
		return re2{r}, nil
	})
	const id = "https://gs1.github.io/EPCIS/EPCIS-JSON-Schema.json"
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(id)
	if err != nil {
		t.Fatalf("compile GS1 schema: %v", err)
	}
	return s
}

func validate(t testing.TB, s *jsonschema.Schema, b []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(v)
}

func TestFullJourneyValidatesAgainstGS1Schema(t *testing.T) {
	s := compileSchema(t)
	e := newEnv(t)
	b := export(t, e, fullJourney(e))
	if err := validate(t, s, b); err != nil {
		t.Fatalf("export does not validate against GS1's EPCIS 2.0 schema: %v\n%s", err, b)
	}
	if os.Getenv("COID_EPCIS_DUMP") != "" {
		_ = os.WriteFile(filepath.Join(os.Getenv("COID_EPCIS_DUMP")), b, 0o644)
	}
	// The schema rejects what it should: the checker is not vacuous.
	for name, mutate := range mutations() {
		t.Run("schema rejects "+name, func(t *testing.T) {
			var doc map[string]any
			_ = json.Unmarshal(b, &doc)
			mutate(doc)
			bad, _ := json.Marshal(doc)
			if err := validate(t, s, bad); err == nil {
				t.Errorf("GS1's schema accepted a document with %s", name)
			}
		})
	}
}

// mutations break an exported document in ways the schema forbids.
func mutations() map[string]func(map[string]any) {
	ev := func(doc map[string]any, i int) map[string]any {
		return doc["epcisBody"].(map[string]any)["eventList"].([]any)[i].(map[string]any)
	}
	return map[string]func(map[string]any){
		"no schemaVersion":               func(doc map[string]any) { delete(doc, "schemaVersion") },
		"no @context":                    func(doc map[string]any) { delete(doc, "@context") },
		"no eventTime":                   func(doc map[string]any) { delete(ev(doc, 0), "eventTime") },
		"no eventTimeZoneOffset":         func(doc map[string]any) { delete(ev(doc, 1), "eventTimeZoneOffset") },
		"bad time zone offset":           func(doc map[string]any) { ev(doc, 2)["eventTimeZoneOffset"] = "+0000" },
		"no action":                      func(doc map[string]any) { delete(ev(doc, 3), "action") },
		"unknown action":                 func(doc map[string]any) { ev(doc, 3)["action"] = "MOVE" },
		"CBV bizStep as full URN":        func(doc map[string]any) { ev(doc, 2)["bizStep"] = "urn:epcglobal:cbv:bizstep:shipping" },
		"unknown bizStep word":           func(doc map[string]any) { ev(doc, 2)["bizStep"] = "flying" },
		"readPoint without id":           func(doc map[string]any) { ev(doc, 0)["readPoint"] = map[string]any{} },
		"unknown event member":           func(doc map[string]any) { ev(doc, 0)["colour"] = "blue" },
		"transformation with an epcList": func(doc map[string]any) { ev(doc, 5)["epcList"] = ev(doc, 5)["outputEPCList"] },
		"transformation with an action":  func(doc map[string]any) { ev(doc, 5)["action"] = "ADD" },
		"transformation without its ID and inputs": func(doc map[string]any) {
			delete(ev(doc, 5), "transformationID")
			delete(ev(doc, 5), "inputEPCList")
		},
	}
}

// ---------------------------------------------------------------------------
// The project's own structural checks: what the schema requires of the
// parts this exporter writes, so that they hold even where the schema is
// not at hand.

var (
	offsetRE = regexp.MustCompile(`^([+]|[-])((0[0-9]|1[0-3]):([0-5][0-9])|14:00)$`)
	// idRE matches the identifiers the export writes: URIs under the
	// configured base, and GS1 Digital Link URIs of GLNs and GIAIs.
	idRE     = regexp.MustCompile(`^(https://coid\.example\.org/id/[a-z]+/[A-Za-z0-9%._~-]+(/[A-Za-z0-9%._~-]+)?|https://id\.gs1\.org/414/[0-9]{13}|https://id\.gs1\.org/8004/[0-9][A-Za-z0-9%._~-]*)$`)
	bizSteps = []string{"commissioning", "shipping", "receiving", "sensor_reporting", "inspecting", "holding", "dispensing", "decommissioning"}
	disps    = []string{"active", "in_transit", "in_progress", "conformant", "non_conformant", "mismatch_instance", "non_sellable_other", "dispensed", "inactive", "available"}
	actions  = []string{"ADD", "OBSERVE", "DELETE"}
	eventKey = []string{"type", "eventTime", "eventTimeZoneOffset", "eventID", "epcList", "action", "bizStep", "disposition", "persistentDisposition", "readPoint",
		"bizLocation", "sourceList", "destinationList", "sensorElementList", "ilmd"}
	// transformKey are a TransformationEvent's members: no epcList and no
	// action, input and output lists and a transformationID instead.
	transformKey = []string{"type", "eventTime", "eventTimeZoneOffset", "eventID", "inputEPCList", "outputEPCList", "transformationID",
		"bizStep", "disposition", "readPoint", "bizLocation", "sourceList", "destinationList", "sensorElementList", "ilmd"}
)

// checkStructure returns what is wrong with an exported document.
func checkStructure(doc map[string]any) []string {
	var errs []string
	fail := func(f string, a ...any) { errs = append(errs, sprintf(f, a...)) }
	for _, k := range []string{"@context", "type", "schemaVersion", "creationDate", "epcisBody"} {
		if _, ok := doc[k]; !ok {
			fail("document: required member %q missing", k)
		}
	}
	if doc["type"] != "EPCISDocument" || doc["schemaVersion"] != "2.0" {
		fail("document: type %v, schemaVersion %v", doc["type"], doc["schemaVersion"])
	}
	if ctx, _ := doc["@context"].([]any); len(ctx) == 0 || ctx[0] != epcis.Context {
		fail("document: @context %v does not start with the EPCIS context", doc["@context"])
	}
	if _, err := time.Parse(time.RFC3339, str(doc["creationDate"])); err != nil {
		fail("document: creationDate %v", doc["creationDate"])
	}
	body, _ := doc["epcisBody"].(map[string]any)
	list, ok := body["eventList"].([]any)
	if !ok {
		fail("epcisBody.eventList missing")
	}
	for i, x := range list {
		ev, _ := x.(map[string]any)
		at := sprintf("event %d", i)
		required, members := []string{"type", "eventTime", "eventTimeZoneOffset", "action", "epcList"}, eventKey
		switch ev["type"] {
		case "ObjectEvent":
		case "TransformationEvent":
			required, members = []string{"type", "eventTime", "eventTimeZoneOffset", "transformationID"}, transformKey
			if len(asSlice(ev["inputEPCList"])) == 0 && len(asSlice(ev["outputEPCList"])) == 0 {
				fail("%s: a TransformationEvent with neither inputs nor outputs", at)
			}
			if !idRE.MatchString(str(ev["transformationID"])) {
				fail("%s: transformationID %v", at, ev["transformationID"])
			}
		default:
			fail("%s: type %v", at, ev["type"])
		}
		for _, k := range required {
			if _, ok := ev[k]; !ok {
				fail("%s: required member %q missing", at, k)
			}
		}
		for k := range ev {
			if !slices.Contains(members, k) && !strings.HasPrefix(k, "coid:") {
				fail("%s: member %q is neither a %v member nor a coid: extension", at, k, ev["type"])
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, str(ev["eventTime"])); err != nil {
			fail("%s: eventTime %v", at, ev["eventTime"])
		}
		if !offsetRE.MatchString(str(ev["eventTimeZoneOffset"])) {
			fail("%s: eventTimeZoneOffset %q does not match the schema's pattern", at, ev["eventTimeZoneOffset"])
		}
		if _, ok := ev["action"]; ok && !slices.Contains(actions, str(ev["action"])) {
			fail("%s: action %v", at, ev["action"])
		}
		if v, ok := ev["bizStep"]; ok && !slices.Contains(bizSteps, str(v)) {
			fail("%s: bizStep %v is not a CBV word this exporter uses", at, v)
		}
		if v, ok := ev["disposition"]; ok && !slices.Contains(disps, str(v)) {
			fail("%s: disposition %v", at, v)
		}
		if !idRE.MatchString(str(ev["eventID"])) {
			fail("%s: eventID %v", at, ev["eventID"])
		}
		for _, list := range []string{"epcList", "inputEPCList", "outputEPCList"} {
			seen := map[string]bool{}
			for _, u := range asSlice(ev[list]) {
				if !idRE.MatchString(str(u)) || seen[str(u)] {
					fail("%s: %s entry %v is not a unique coid URI", at, list, u)
				}
				seen[str(u)] = true
			}
		}
		for _, k := range []string{"readPoint", "bizLocation"} {
			if v, ok := ev[k]; ok {
				if !idRE.MatchString(str(v.(map[string]any)["id"])) {
					fail("%s: %s %v needs an id URI", at, k, v)
				}
			}
		}
		if ev["action"] != "ADD" && ev["type"] != "TransformationEvent" && ev["ilmd"] != nil {
			fail("%s: ilmd on a %v event", at, ev["action"])
		}
		for _, se := range asSlice(ev["sensorElementList"]) {
			el := se.(map[string]any)
			reps := asSlice(el["sensorReport"])
			if len(reps) == 0 {
				fail("%s: sensorElement without sensorReport", at)
			}
			md := el["sensorMetadata"].(map[string]any)
			if !idRE.MatchString(str(md["deviceID"])) {
				fail("%s: sensorMetadata.deviceID %v", at, md["deviceID"])
			}
			for _, rp := range reps {
				r := rp.(map[string]any)
				if r["type"] == nil {
					fail("%s: sensorReport without type", at)
				}
				if x, ok := r["exception"]; ok && x != "ALARM_CONDITION" && x != "ERROR_CONDITION" {
					fail("%s: sensorReport exception %v", at, x)
				}
			}
		}
	}
	return errs
}

func sprintf(f string, a ...any) string { return fmt.Sprintf(f, a...) }

func str(v any) string { s, _ := v.(string); return s }

func asSlice(v any) []any { s, _ := v.([]any); return s }

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestStructure(t *testing.T) {
	e := newEnv(t)
	coi := fullJourney(e)
	b := export(t, e, coi)
	doc := decode(t, b)
	if errs := checkStructure(doc); len(errs) > 0 {
		t.Fatalf("export breaks the structure the schema requires:\n  %s", strings.Join(errs, "\n  "))
	}
	// A document missing a required member fails the checks.
	for _, k := range []string{"schemaVersion", "creationDate", "@context"} {
		bad := decode(t, b)
		delete(bad, k)
		if errs := checkStructure(bad); len(errs) == 0 {
			t.Errorf("structural check accepts a document without %s", k)
		}
	}
	bad := decode(t, b)
	ev := bad["epcisBody"].(map[string]any)["eventList"].([]any)[2].(map[string]any)
	delete(ev, "eventTimeZoneOffset")
	if errs := checkStructure(bad); len(errs) == 0 {
		t.Error("structural check accepts an event without eventTimeZoneOffset")
	}
	ev["eventTimeZoneOffset"] = "UTC"
	if errs := checkStructure(bad); len(errs) == 0 {
		t.Error("structural check accepts eventTimeZoneOffset UTC")
	}

	// The events: one per handoff, in order, with the CBV vocabulary.
	c, _ := e.svc.Chain(context.Background(), coi)
	events := doc["epcisBody"].(map[string]any)["eventList"].([]any)
	type want struct{ step, bizStep, disp, action string }
	wants := []want{
		{"enroll", "commissioning", "active", "ADD"}, {"collect", "commissioning", "active", "ADD"},
		{"ship", "shipping", "in_transit", "OBSERVE"}, {"excursion", "sensor_reporting", "", "OBSERVE"},
		{"receive", "receiving", "in_progress", "OBSERVE"}, {"manufacture", "commissioning", "active", ""},
		{"disposition", "inspecting", "conformant", "OBSERVE"}, {"release", "inspecting", "conformant", "OBSERVE"},
		{"ship", "shipping", "in_transit", "OBSERVE"}, {"receive", "receiving", "active", "OBSERVE"},
		{"mismatch", "inspecting", "mismatch_instance", "OBSERVE"}, {"acknowledge", "holding", "non_sellable_other", "OBSERVE"},
		{"disposition", "inspecting", "conformant", "OBSERVE"},
		{"bedside-verify", "inspecting", "conformant", "OBSERVE"}, {"infuse", "dispensing", "dispensed", "OBSERVE"},
	}
	if len(events) != len(wants) {
		t.Fatalf("%d events, want %d (every record but the correction)", len(events), len(wants))
	}
	for i, w := range wants {
		ev := events[i].(map[string]any)
		if ev["coid:step"] != w.step || str(ev["bizStep"]) != w.bizStep || str(ev["disposition"]) != w.disp || str(ev["action"]) != w.action {
			t.Errorf("event %d: step %v bizStep %v disposition %v action %v; want %+v", i, ev["coid:step"], ev["bizStep"], ev["disposition"], ev["action"], w)
		}
		if ev["eventTimeZoneOffset"] != "+00:00" {
			t.Errorf("event %d: offset %v", i, ev["eventTimeZoneOffset"])
		}
	}
	coiURN := base + "coi/" + string(coi)
	bagURI := func(bag string) any { return base + "bag/" + string(coi) + "-" + bag }
	if got := events[0].(map[string]any)["epcList"].([]any); len(got) != 1 || got[0] != coiURN {
		t.Errorf("enroll epcList %v", got)
	}
	// QA's decisions carry what they decided, why, and about which record;
	// the acknowledgement sets the mismatch's bag aside.
	byStep := func(step string, nth int) map[string]any {
		for _, ev := range events {
			if m := ev.(map[string]any); m["coid:step"] == step {
				if nth == 0 {
					return m
				}
				nth--
			}
		}
		t.Fatalf("no %s event", step)
		return nil
	}
	exc, mm := byStep("excursion", 0), byStep("mismatch", 0)
	if d := byStep("disposition", 0); d["coid:decision"] != "accept" || d["coid:reason"] != "within stability data" || d["coid:about"] != exc["eventID"] {
		t.Errorf("excursion disposition event %v", d)
	}
	if d := byStep("disposition", 1); d["coid:decision"] != "accept" || d["coid:about"] != mm["eventID"] ||
		!slices.Contains(d["epcList"].([]any), bagURI("FP-01")) {
		t.Errorf("mismatch disposition event %v", d)
	}
	if a := byStep("acknowledge", 0); a["coid:about"] != mm["eventID"] || !slices.Contains(a["epcList"].([]any), bagURI("FP-01")) {
		t.Errorf("acknowledgement event %v", a)
	}
	// Two final-product bags were made; only the one the bedside check
	// verified was dispensed.
	if got := events[len(events)-1].(map[string]any)["epcList"].([]any); !slices.Contains(got, bagURI("FP-01")) ||
		slices.Contains(got, bagURI("FP-02")) {
		t.Errorf("infuse epcList %v: want FP-01 only", got)
	}
	ship := events[2].(map[string]any)
	if got := ship["epcList"].([]any); !slices.Contains(got, any(coiURN)) || !slices.Contains(got, bagURI("APH-01")) {
		t.Errorf("ship epcList %v", got)
	}
	// Sites by their GLN where they have one, else under the base.
	if ship["readPoint"].(map[string]any)["id"] != "https://id.gs1.org/414/4006381333931" {
		t.Errorf("ship readPoint %v, want the collection site's GLN", ship["readPoint"])
	}
	if got := ship["sourceList"].([]any)[0].(map[string]any)["source"]; got != "https://id.gs1.org/414/4006381333931" {
		t.Errorf("ship source %v, want the collection site's GLN", got)
	}
	if got := ship["destinationList"].([]any)[0].(map[string]any)["destination"]; got != base+"site/A9999/CellWorks%20NJ" {
		t.Errorf("ship destination %v, want the manufacturing site under the base", got)
	}
	// Leg 1's receipt carries its temperature summary and the excursion.
	recv := events[4].(map[string]any)
	ses := asSlice(recv["sensorElementList"])
	if len(ses) != 2 {
		t.Fatalf("receive sensorElementList %v", recv["sensorElementList"])
	}
	md := ses[0].(map[string]any)["sensorMetadata"].(map[string]any)
	rp := asSlice(ses[0].(map[string]any)["sensorReport"])[0].(map[string]any)
	if md["deviceID"] != "https://id.gs1.org/8004/0614141%2FSH%3A42" || md["startTime"] != "2026-11-20T11:00:00Z" || md["endTime"] != "2026-11-21T09:00:00Z" {
		t.Errorf("sensorMetadata %v", md)
	}
	if rp["type"] != "gs1:Temperature" || rp["uom"] != "CEL" || rp["maxValue"] != 9.5 || rp["minValue"] == nil || rp["meanValue"] == nil {
		t.Errorf("sensorReport %v", rp)
	}
	// The excursion as of receipt: with the end and worst value that the
	// system recorded after the excursion record, which said 9.1 and
	// no end.
	alarm := asSlice(ses[1].(map[string]any)["sensorReport"])[0].(map[string]any)
	if alarm["exception"] != "ALARM_CONDITION" || alarm["maxValue"] != 9.5 || alarm["coid:excursion"] != events[3].(map[string]any)["eventID"] {
		t.Errorf("excursion alarm %v", alarm)
	}
	if md := ses[1].(map[string]any)["sensorMetadata"].(map[string]any); md["endTime"] != "2026-11-21T02:40:00Z" {
		t.Errorf("excursion alarm metadata %v", md)
	}
	excEv := asSlice(events[3].(map[string]any)["sensorElementList"])[0].(map[string]any)
	if r := asSlice(excEv["sensorReport"])[0].(map[string]any); r["maxValue"] != 9.1 || excEv["sensorMetadata"].(map[string]any)["endTime"] != nil {
		t.Errorf("excursion event as recorded: %v", excEv)
	}
	// The corrected record's event names its correction.
	corrected := events[1].(map[string]any)
	if cs := asSlice(corrected["coid:corrections"]); len(cs) != 1 || cs[0].(map[string]any)["coid:reason"] != "volume was 215 mL" {
		t.Errorf("collect event corrections %v", corrected["coid:corrections"])
	}
	// Identifiers are the records' hashes: stable across exports.
	for i, r := range slices.DeleteFunc(slices.Clone(c.Records), func(r custody.Record) bool { return r.Step == custody.StepCorrection }) {
		if got := events[i].(map[string]any)["eventID"]; got != base+"record/"+r.Hash.String() {
			t.Errorf("event %d eventID %v", i, got)
		}
	}
	if !bytes.Equal(b, export(t, e, coi)) {
		t.Error("two exports of the same chain differ")
	}
	// No patient identifier.
	for _, phi := range []string{"Jane", "1970-01-02", "MRN-0012345"} {
		if bytes.Contains(b, []byte(phi)) {
			t.Errorf("export contains %q", phi)
		}
	}
}

func TestExportRefusesIncompleteInput(t *testing.T) {
	if _, err := epcis.Export(&epcis.Input{CreatedAt: time.Now()}); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("no chain: %v", err)
	}
}

func TestIDs(t *testing.T) {
	ids := epcis.IDs{Base: base, Facility: "A9999", GS1: gs1IDs}
	def := epcis.IDs{Facility: "A9999"}
	for _, c := range []struct{ name, got, want string }{
		{"site without a GLN, escaped", ids.Site("St. Mary's / Ward 5:B ü"), base + "site/A9999/St.%20Mary%27s%20%2F%20Ward%205%3AB%20%C3%BC"},
		{"site with a GLN", ids.Site("St Elsewhere Apheresis"), "https://id.gs1.org/414/4006381333931"},
		{"shipper with a GIAI", ids.Shipper("SHP-0042"), "https://id.gs1.org/8004/0614141%2FSH%3A42"},
		{"shipper without", ids.Shipper("SHP-0099"), base + "shipper/SHP-0099"},
		{"bag", ids.Bag("CHA999926000001-FP-01"), base + "bag/CHA999926000001-FP-01"},
		{"COI", ids.COI("CHA999926000001"), base + "coi/CHA999926000001"},
		{"DIN", ids.DIN("A999926123456"), base + "din/A999926123456"},
		{"default base", def.COI("CHA999926000001"), "https://coid.invalid/id/coi/CHA999926000001"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s, want %s", c.name, c.got, c.want)
		}
	}
}

func TestValidateBase(t *testing.T) {
	for _, c := range []struct {
		base string
		ok   bool
	}{
		{"https://coid.example.org/id/", true},
		{"http://coid.example.org/", true},
		{epcis.DefaultBase, true},
		{"https://coid.example.org/id", false}, // no trailing slash
		{"urn:coid:", false},
		{"coid.example.org/id/", false},
		{"ftp://coid.example.org/id/", false},
		{"https:///id/", false},
		{"https://coid.example.org/id/?x=1/", false},
		{"https://coid.example.org/id/#/", false},
		{"https://user@coid.example.org/id/", false},
	} {
		err := epcis.ValidateBase(c.base)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("ValidateBase(%q) = %v, want ok %v", c.base, err, c.ok)
		}
	}
	// An export with a bad base writes nothing.
	e := newEnv(t)
	c, _ := e.svc.Chain(context.Background(), fullJourney(e))
	var buf bytes.Buffer
	if err := epcis.Write(&buf, &epcis.Input{Chain: c, CreatedAt: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC), Base: "urn:coid:"}); !errors.Is(err, custody.ErrInvalid) || buf.Len() > 0 {
		t.Errorf("export with base urn:coid: = %v, %d bytes", err, buf.Len())
	}
}

// skipUnlessCI skips a test whose outside part (a broker, a schema, a
// tool) is missing, except in CI (CI=true), where it must run and so
// fails instead.
func skipUnlessCI(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("required in CI: %s", why)
	}
	tb.Skip(why)
}
