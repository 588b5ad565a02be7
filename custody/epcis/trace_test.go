package epcis_test

import (
	"slices"
	"strings"
	"testing"
)

// The trace a partner runs on an export: a small subset of the EPCIS 2.0
// query interface's parameters (MATCH_epc, MATCH_outputEPC,
// EQ_transformationID and EQ_action), written from the standard's
// semantics, not from the exporter.

// query returns the events of list matching every parameter given: an
// epc in epcList (MATCH_epc), in outputEPCList (MATCH_outputEPC), the
// transformationID (EQ_transformationID) and the action (EQ_action).
func query(list []any, matchEPC, matchOutput, transformationID, action string) []map[string]any {
	var out []map[string]any
	for _, x := range list {
		ev := x.(map[string]any)
		if matchEPC != "" && !slices.Contains(asSlice(ev["epcList"]), any(matchEPC)) ||
			matchOutput != "" && !slices.Contains(asSlice(ev["outputEPCList"]), any(matchOutput)) ||
			transformationID != "" && ev["transformationID"] != transformationID ||
			action != "" && ev["action"] != action {
			continue
		}
		out = append(out, ev)
	}
	return out
}

// origin is where trace ends for one object: the ADD event that
// commissioned it and the instance/lot master data that event gave it.
type origin struct {
	epc   string
	event map[string]any
}

// trace follows epc back to the objects it was made from: a
// TransformationEvent that output it links it to the inputs of every event
// of the same transformationID (the standard's rule: one transformation
// may be reported by several events), and an object no transformation
// output ends at the ObjectEvent ADD that commissioned it. It returns the
// origins reached, and the transformations crossed.
func trace(list []any, epc string) (origins []origin, transformations []string) {
	seen := map[string]bool{}
	var walk func(epc string)
	walk = func(epc string) {
		if seen[epc] {
			return
		}
		seen[epc] = true
		made := query(list, "", epc, "", "")
		if len(made) == 0 {
			for _, ev := range query(list, epc, "", "", "ADD") {
				origins = append(origins, origin{epc, ev})
			}
			return
		}
		for _, t := range made {
			id := str(t["transformationID"])
			if !slices.Contains(transformations, id) {
				transformations = append(transformations, id)
			}
			for _, part := range query(list, "", "", id, "") {
				for _, in := range asSlice(part["inputEPCList"]) {
					walk(str(in))
				}
			}
		}
	}
	walk(epc)
	return origins, transformations
}

// traceProblems returns what is wrong with tracing final bag FP-02 of
// coi in events back to the collection and the COI.
func traceProblems(events []any, coi string) []string {
	var errs []string
	bag := func(b string) string { return base + "bag/" + coi + "-" + b }
	coiURI := base + "coi/" + coi
	origins, trans := trace(events, bag("FP-02"))
	if len(trans) != 1 {
		errs = append(errs, sprintf("final bag FP-02 crossed %d transformations %v, want the one manufacture", len(trans), trans))
	}
	var got []string
	for _, o := range origins {
		got = append(got, o.epc)
		if o.event["bizStep"] != "commissioning" || o.event["coid:step"] != "collect" {
			errs = append(errs, sprintf("%s commissioned by %v %v, want the collection", o.epc, o.event["coid:step"], o.event["bizStep"]))
		}
		ilmd, _ := o.event["ilmd"].(map[string]any)
		if ilmd["coid:coi"] != coiURI {
			errs = append(errs, sprintf("%s's collection names COI %v, want %s", o.epc, ilmd["coid:coi"], coiURI))
		}
		if ilmd["coid:din"] != base+"din/A999926123456" {
			errs = append(errs, sprintf("%s's collection names DIN %v", o.epc, ilmd["coid:din"]))
		}
	}
	slices.Sort(got)
	if want := []string{bag("APH-01"), bag("APH-02")}; !slices.Equal(got, want) {
		errs = append(errs, sprintf("final bag FP-02 traces back to %v, want the collection bags %v", got, want))
	}
	// The COI those bags were collected for was commissioned at enrollment.
	if enr := query(events, coiURI, "", "", "ADD"); len(enr) != 1 || enr[0]["coid:step"] != "enroll" {
		errs = append(errs, sprintf("commissioning of %s: %v", coiURI, enr))
	}
	return errs
}

func TestTraceFinalBagToCollection(t *testing.T) {
	e := newEnv(t)
	coi := fullJourney(e)
	doc := decode(t, export(t, e, coi))
	events := asSlice(doc["epcisBody"].(map[string]any)["eventList"])
	if errs := traceProblems(events, string(coi)); len(errs) > 0 {
		t.Fatalf("trace from a final bag:\n  %s", strings.Join(errs, "\n  "))
	}
	// The trace needs the TransformationEvent: without it (as when
	// manufacture was an ObjectEvent ADD of the final bags) the final bag
	// ends at its own commissioning.
	var without []any
	for _, x := range events {
		if x.(map[string]any)["type"] != "TransformationEvent" {
			without = append(without, x)
		}
	}
	if len(without) != len(events)-1 {
		t.Fatalf("%d TransformationEvents, want 1", len(events)-len(without))
	}
	if errs := traceProblems(without, string(coi)); len(errs) == 0 {
		t.Error("a trace without the TransformationEvent still reached the collection: the check is vacuous")
	}
}
