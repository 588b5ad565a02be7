package boltstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// requestRecord is request id's record of step at minute at, signed by
// a physician (submit) or QA.
func requestRecord(id custody.COI, step custody.Step, at int) custody.Record {
	now := time.Date(2026, 11, 23, 8, at, 0, 0, time.UTC)
	data, role := `{"text":"Latest CD19 status?"}`, custody.RoleQA
	if step == custody.StepAccessSubmit {
		data = `{"clinical_summary":"Relapse after transplant.","indication":"relapsed DLBCL","jurisdiction":"US-FDA-SP",` +
			`"manufacturing_site":"MFG-1","product":"CART-19","treatment_plan":"Single infusion.","treatment_site":"PAR-1","urgency":"emergency"}`
		role = custody.RolePhysician
	}
	return custody.Record{V: custody.EncodingVersion, Chain: id, Step: step, Time: now, Site: "PAR-1", SubmittedBy: "u1", Data: []byte(data),
		Signatures: []custody.Signature{{User: "u1", Name: "U One", Role: role, Meaning: custody.MeaningAuthored, Time: custody.FormatTime(now), Method: custody.ViaToken}}}
}

// TestAccessIndexBuildAndCheck: a ledger whose requests have no index
// entries (written before the store kept them) gets them at the next
// writable open, equal to what the records fold to; opened read-only it
// says it has no index rather than listing none; and CheckFile names an
// entry that disagrees with the ledger.
func TestAccessIndexBuildAndCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openT(t, dir)
	a, b := custody.COI("EAA99992600000"+"1"), custody.COI("EAA99992600000"+"2")
	var recsB []custody.Record
	for _, x := range []struct {
		rec      custody.Record
		newChain bool
		expect   uint64
		state    custody.State
	}{
		{requestRecord(a, custody.StepAccessSubmit, 0), true, 0, custody.AccessSubmitted},
		{requestRecord(b, custody.StepAccessSubmit, 1), true, 0, custody.AccessSubmitted},
		{requestRecord(b, custody.StepAccessRequestInfo, 5), false, 1, custody.AccessInfoRequested},
	} {
		if x.rec.Chain == b {
			recsB = append(recsB, x.rec)
		}
		var recs []custody.Record
		if x.rec.Chain == a {
			recs = []custody.Record{x.rec}
		} else {
			recs = recsB
		}
		w, err := custody.AccessRowOf(recs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(ctx, custody.Draft{Record: x.rec, NewChain: x.newChain, ExpectRecords: x.expect, State: x.state,
			Product: "CART-19", Sites: custody.Sites{Treatment: "PAR-1", Manufacturing: "MFG-1"}, Access: &w}); err != nil {
			t.Fatal(err)
		}
	}
	want, err := st.AccessRows(ctx, custody.AccessSubmitted, custody.AccessInfoRequested)
	if err != nil || len(want) != 2 || want[0].ID != a || want[1].ID != b || want[1].WaitingSince.IsZero() {
		t.Fatalf("rows as appended: %+v %v", want, err)
	}
	if err := st.CheckFile(ctx); err != nil {
		t.Fatalf("check of a sound file: %v", err)
	}
	st.Close()

	change := func(fn func(tx *bolt.Tx) error) {
		t.Helper()
		db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(fn); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	// An older ledger: no index, not marked built.
	forget := func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketAccess)
		for _, k := range [][]byte{accessKey(custody.AccessSubmitted, a), accessKey(custody.AccessInfoRequested, b)} {
			if err := idx.Delete(k); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Delete(keyAccessBuilt)
	}
	change(forget)
	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.AccessRows(ctx, custody.AccessSubmitted); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("rows of an unbuilt index read-only: %v, want ErrUnsupported", err)
	}
	ro.Close()
	st = openT(t, dir)
	got, err := st.AccessRows(ctx, custody.AccessSubmitted, custody.AccessInfoRequested)
	if err != nil || len(got) != 2 || !sameAccessRow(got[0], want[0]) || !sameAccessRow(got[1], want[1]) {
		t.Fatalf("rows built at open: %+v %v; want %+v", got, err, want)
	}
	st.Close()

	for _, c := range []struct {
		name string
		fn   func(tx *bolt.Tx) error
	}{
		{"urgency changed", func(tx *bolt.Tx) error {
			w := want[0]
			w.Urgency = custody.UrgencyStandard
			return tx.Bucket(bucketAccess).Put(accessKey(custody.AccessSubmitted, a), encodeAccessRow(&w))
		}},
		{"filed under another state", func(tx *bolt.Tx) error {
			idx := tx.Bucket(bucketAccess)
			if err := idx.Delete(accessKey(custody.AccessSubmitted, a)); err != nil {
				return err
			}
			return idx.Put(accessKey(custody.AccessDecided, a), encodeAccessRow(&want[0]))
		}},
		{"pause shortened", func(tx *bolt.Tx) error {
			w := want[1]
			w.WaitingSince = w.WaitingSince.Add(time.Hour)
			return tx.Bucket(bucketAccess).Put(accessKey(custody.AccessInfoRequested, b), encodeAccessRow(&w))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			change(func(tx *bolt.Tx) error {
				// Back to the sound index first.
				idx := tx.Bucket(bucketAccess)
				for _, k := range [][]byte{accessKey(custody.AccessDecided, a)} {
					if err := idx.Delete(k); err != nil {
						return err
					}
				}
				if err := idx.Put(accessKey(custody.AccessSubmitted, a), encodeAccessRow(&want[0])); err != nil {
					return err
				}
				if err := idx.Put(accessKey(custody.AccessInfoRequested, b), encodeAccessRow(&want[1])); err != nil {
					return err
				}
				return c.fn(tx)
			})
			st := openT(t, dir)
			defer st.Close()
			var d *FileDamage
			if err := st.CheckFile(ctx); !errors.As(err, &d) || d.Bucket != string(bucketAccess) {
				t.Errorf("CheckFile: %v, want damage in %s", err, bucketAccess)
			}
		})
	}
}
