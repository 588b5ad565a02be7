package pgstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
)

// triageRecord is chain id's record of step at minute at with data.
func triageRecord(id custody.COI, step custody.Step, at int, data string) custody.Record {
	now := time.Date(2026, 11, 23, 8, at, 0, 0, time.UTC)
	return custody.Record{V: custody.EncodingVersion, Chain: id, Step: step, Time: now, Site: "PAR-1", SubmittedBy: "u1", Data: []byte(data),
		Signatures: []custody.Signature{{User: "u1", Name: "U One", Role: custody.RoleQA, Meaning: custody.MeaningAuthored,
			Time: custody.FormatTime(now), Method: custody.ViaToken}}}
}

const submitData = `{"clinical_summary":"Relapse after transplant.","indication":"relapsed DLBCL","jurisdiction":"US-FDA-SP",` +
	`"manufacturing_site":"MFG-1","product":"CART-19","treatment_plan":"Single infusion.","treatment_site":"PAR-1","urgency":"emergency"}`

// triageLedger appends two requests (a submitted, b waiting for the
// physician) and an infused chain c with its day-7 follow-up, each draft
// carrying the index row its records fold to, as the service's do.
func triageLedger(t *testing.T, s *pgstore.Store) (a, b, c custody.COI) {
	t.Helper()
	ctx := context.Background()
	a, b, c = custody.COI("EAA999926000001"), custody.COI("EAA999926000002"), storetest.COI(3)
	sites := custody.Sites{Treatment: "PAR-1", Manufacturing: "MFG-1"}
	recs := map[custody.COI][]custody.Record{}
	for _, x := range []struct {
		rec   custody.Record
		state custody.State
	}{
		{triageRecord(a, custody.StepAccessSubmit, 0, submitData), custody.AccessSubmitted},
		{triageRecord(b, custody.StepAccessSubmit, 1, submitData), custody.AccessSubmitted},
		{triageRecord(b, custody.StepAccessRequestInfo, 5, `{"text":"Latest CD19 status?"}`), custody.AccessInfoRequested},
		{triageRecord(c, custody.StepEnroll, 2, `{"text":"enrolled"}`), custody.StateEnrolled},
		{triageRecord(c, custody.StepInfuse, 3, `{"text":"infused"}`), custody.StateInfused},
		{triageRecord(c, custody.StepFollowUp, 4, `{"day":7,"response":"CR","assessed_date":"2026-11-30"}`), custody.StateInfused},
	} {
		coi := x.rec.Chain
		d := custody.Draft{Record: x.rec, NewChain: len(recs[coi]) == 0, ExpectRecords: uint64(len(recs[coi])), State: x.state,
			Product: "CART-19", Sites: sites}
		recs[coi] = append(recs[coi], x.rec)
		if x.state.Access() {
			w, err := custody.AccessRowOf(recs[coi])
			if err != nil {
				t.Fatal(err)
			}
			d.Access = &w
		} else {
			d.FollowUp = custody.FollowUpPendingOf(coi, "CART-19", sites, recs[coi])
		}
		if _, err := s.Append(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	return a, b, c
}

// indexRows reads both indexes.
func indexRows(t *testing.T, s *pgstore.Store) ([]custody.AccessRow, []custody.FollowUpPending, error) {
	t.Helper()
	ctx := context.Background()
	rows, err := s.AccessRows(ctx, custody.AccessSubmitted, custody.AccessInfoRequested)
	if err != nil {
		return nil, nil, err
	}
	var fs []custody.FollowUpPending
	err = s.FollowUpPending(ctx, "", func(p custody.FollowUpPending) bool {
		fs = append(fs, p)
		return true
	})
	return rows, fs, err
}

// TestTriageIndexesBuildAndCheck: the rows appends write are what the
// records fold to (Check agrees); a database whose indexes are empty and
// not marked built (written before migration 10) gets the same rows at
// the next open; a request record appended without its row makes the
// access index say it is incomplete until the next open rebuilds it; and
// Check names a row that disagrees with the ledger.
func TestTriageIndexesBuildAndCheck(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	s := open(t, url)
	a, b, c := triageLedger(t, s)
	wantRows, wantFollowUps, err := indexRows(t, s)
	if err != nil || len(wantRows) != 2 || wantRows[0].ID != a || wantRows[1].ID != b || wantRows[1].WaitingSince.IsZero() ||
		wantRows[0].Urgency != custody.UrgencyEmergency {
		t.Fatalf("access rows as appended: %+v %v", wantRows, err)
	}
	if len(wantFollowUps) != 1 || wantFollowUps[0].COI != c || !slices.Equal(wantFollowUps[0].Done, []int{7}) || wantFollowUps[0].Infused.IsZero() {
		t.Fatalf("follow-up entries as appended: %+v", wantFollowUps)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("check of a sound database: %v", err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	same := func(what string, s *pgstore.Store) {
		t.Helper()
		rows, fs, err := indexRows(t, s)
		if err != nil || len(rows) != len(wantRows) || len(fs) != len(wantFollowUps) {
			t.Fatalf("%s: %+v %+v %v; want %+v %+v", what, rows, fs, err, wantRows, wantFollowUps)
		}
		for i := range rows {
			if rows[i] != wantRows[i] {
				t.Errorf("%s: row %+v, want %+v", what, rows[i], wantRows[i])
			}
		}
		if f := fs[0]; f.COI != c || f.Product != "CART-19" || f.Sites != wantFollowUps[0].Sites || !f.Infused.Equal(wantFollowUps[0].Infused) ||
			!slices.Equal(f.Done, wantFollowUps[0].Done) {
			t.Errorf("%s: follow-up entry %+v, want %+v", what, f, wantFollowUps[0])
		}
	}

	// A database written before the indexes.
	exec(`DELETE FROM access_rows; DELETE FROM followup_pending; DELETE FROM index_builds`)
	if _, err := s.AccessRows(ctx, custody.AccessSubmitted); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("rows of an unbuilt index: %v, want ErrUnsupported", err)
	}
	same("built at open", open(t, url))
	if err := s.Check(ctx); err != nil {
		t.Fatalf("check of the built indexes: %v", err)
	}

	// A request record without its row.
	d := custody.Draft{Record: triageRecord(a, custody.StepAccessRequestInfo, 9, `{"text":"Weight?"}`), ExpectRecords: 1,
		State: custody.AccessInfoRequested, Product: "CART-19", Sites: custody.Sites{Treatment: "PAR-1", Manufacturing: "MFG-1"}}
	if _, err := s.Append(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AccessRows(ctx, custody.AccessSubmitted); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("rows after a request record without its row: %v, want ErrUnsupported", err)
	}
	rows, err := open(t, url).AccessRows(ctx, custody.AccessInfoRequested)
	if err != nil || len(rows) != 2 || rows[0].ID != a || !rows[0].WaitingSince.Equal(d.Record.Time) {
		t.Fatalf("rows rebuilt at open: %+v %v", rows, err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("check of the rebuilt index: %v", err)
	}

	for _, tc := range []struct{ name, sql string }{
		{"urgency changed", `UPDATE access_rows SET urgency = 'standard' WHERE coi = 'EAA999926000002'`},
		{"filed under another state", `UPDATE access_rows SET state = 'access-decided' WHERE coi = 'EAA999926000002'`},
		{"pause shortened", `UPDATE access_rows SET waiting_since = waiting_since + 3600000000000 WHERE coi = 'EAA999926000002'`},
		{"request without a row", `DELETE FROM access_rows WHERE coi = 'EAA999926000001'`},
		{"row of a therapy chain", `INSERT INTO access_rows SELECT '` + string(c) + `', state, view_state, urgency, treatment, manufacturing,
			submitted, decided, paused, waiting_since, assignee FROM access_rows WHERE coi = 'EAA999926000001'`},
		{"follow-up forgotten", `UPDATE followup_pending SET done = '{}'`},
		{"infusion moved", `UPDATE followup_pending SET infused = infused + 1`},
		{"infused chain without an entry", `DELETE FROM followup_pending`},
		{"entry of a request", `INSERT INTO followup_pending SELECT 'EAA999926000001', product, collection, manufacturing, treatment,
			infused, done FROM followup_pending`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exec(tc.sql)
			if err := s.Check(ctx); !errors.Is(err, custody.ErrChainBroken) {
				t.Errorf("check: %v, want ErrChainBroken", err)
			}
			// Back to the sound indexes: rebuilt at open.
			exec(`DELETE FROM index_builds`)
			open(t, url)
			if err := s.Check(ctx); err != nil {
				t.Fatalf("check after the rebuild: %v", err)
			}
		})
	}
}
