package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// accessDraft is request id's record of step (submit when newChain), at
// t0 plus at minutes, leading to state with the index row w.
func accessDraft(id custody.COI, step custody.Step, at int, newChain bool, expect uint64, state custody.State, w custody.AccessRow) custody.Draft {
	now := t0.Add(time.Duration(at) * time.Minute)
	data, role, site := []byte(`{"text":"Latest CD19 status?"}`), custody.RoleQA, "MFG-1"
	if newChain {
		data = []byte(`{"clinical_summary":"Relapse after transplant.","indication":"relapsed DLBCL","jurisdiction":"US-FDA-SP",` +
			`"manufacturing_site":"MFG-1","product":"CART-19","treatment_plan":"Single infusion.","treatment_site":"PAR-1","urgency":"emergency"}`)
		role, site = custody.RolePhysician, "PAR-1"
	}
	return custody.Draft{
		Record: custody.Record{V: custody.EncodingVersion, Chain: id, Step: step, Time: now, Site: site, SubmittedBy: "u1", Data: data,
			Signatures: []custody.Signature{{User: "u1", Name: "U One", Role: role, Meaning: custody.MeaningAuthored,
				Time: custody.FormatTime(now), Method: custody.ViaToken}}},
		NewChain: newChain, ExpectRecords: expect, State: state, Product: "CART-19",
		Sites: custody.Sites{Treatment: "PAR-1", Manufacturing: "MFG-1"}, OpenIssues: custody.IssueCounts{Kept: true}, Access: &w,
	}
}

// accessID is the suite's n-th request identifier.
func accessID(n int) custody.COI {
	return custody.COI("EAA99992600000" + string(rune('0'+n)))
}

// testAccessIndex: the row a request draft carries is stored with the
// record under the draft's state, moved when the state changes, and
// untouched by a draft the store refuses; rows come back by state in
// identifier order.
func testAccessIndex(t *testing.T, s Store) {
	ctx := context.Background()
	idx, ok := s.(custody.AccessIndex)
	if !ok {
		t.Fatalf("%T does not keep the access index (custody.AccessIndex)", s)
	}
	row := func(id custody.COI, st custody.State, submitted int) custody.AccessRow {
		return custody.AccessRow{ID: id, State: st, Urgency: custody.UrgencyEmergency, Treatment: "PAR-1", Manufacturing: "MFG-1",
			Submitted: t0.Add(time.Duration(submitted) * time.Minute)}
	}
	rows := func(states ...custody.State) []custody.COI {
		t.Helper()
		got, err := idx.AccessRows(ctx, states...)
		if err != nil {
			t.Fatalf("AccessRows: %v", err)
		}
		var ids []custody.COI
		for _, w := range got {
			ids = append(ids, w.ID)
		}
		return ids
	}
	// Submitted out of identifier order: listed in identifier order.
	for i, n := range []int{3, 1, 2} {
		mustAppend(t, s, accessDraft(accessID(n), custody.StepAccessSubmit, i, true, 0, custody.AccessSubmitted, row(accessID(n), custody.AccessSubmitted, i)))
	}
	if got, want := rows(custody.AccessSubmitted), []custody.COI{accessID(1), accessID(2), accessID(3)}; !slices.Equal(got, want) {
		t.Fatalf("submitted rows %v, want %v", got, want)
	}
	// Information requested for 2: its row moves, with the pause.
	w := row(accessID(2), custody.AccessInfoRequested, 1)
	w.WaitingSince = t0.Add(10 * time.Minute)
	w.Assignee = "qa1"
	mustAppend(t, s, accessDraft(accessID(2), custody.StepAccessRequestInfo, 10, false, 1, custody.AccessInfoRequested, w))
	if got, want := rows(custody.AccessSubmitted), []custody.COI{accessID(1), accessID(3)}; !slices.Equal(got, want) {
		t.Fatalf("submitted rows after request-info %v, want %v", got, want)
	}
	got, err := idx.AccessRows(ctx, custody.AccessInfoRequested)
	if err != nil || len(got) != 1 || got[0].ID != accessID(2) || got[0].State != custody.AccessInfoRequested ||
		!got[0].WaitingSince.Equal(w.WaitingSince) || !got[0].Submitted.Equal(w.Submitted) || got[0].Assignee != "qa1" ||
		got[0].Urgency != custody.UrgencyEmergency || got[0].Treatment != "PAR-1" || got[0].Manufacturing != "MFG-1" {
		t.Fatalf("info-requested rows %+v, %v; want %+v", got, err, w)
	}
	// States in the order asked.
	if got, want := rows(custody.AccessInfoRequested, custody.AccessSubmitted), []custody.COI{accessID(2), accessID(1), accessID(3)}; !slices.Equal(got, want) {
		t.Fatalf("rows of two states %v, want %v", got, want)
	}
	// A stale draft is refused and changes no row.
	stale := accessDraft(accessID(1), custody.StepAccessRequestInfo, 20, false, 0, custody.AccessInfoRequested, row(accessID(1), custody.AccessInfoRequested, 1))
	if _, err := s.Append(ctx, stale); !errors.Is(err, custody.ErrRetry) {
		t.Fatalf("stale draft: %v, want ErrRetry", err)
	}
	if got, want := rows(custody.AccessSubmitted), []custody.COI{accessID(1), accessID(3)}; !slices.Equal(got, want) {
		t.Fatalf("submitted rows after a refused draft %v, want %v", got, want)
	}
	if got := rows(custody.AccessDecided); len(got) != 0 {
		t.Fatalf("decided rows %v, want none", got)
	}
	// A therapy chain has no row.
	mustAppend(t, s, Draft(COI(1), 100, true, 0))
	if got := rows(custody.StateEnrolled); len(got) != 0 {
		t.Fatalf("rows of therapy chains: %v", got)
	}
}
