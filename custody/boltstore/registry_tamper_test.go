package boltstore

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// The audit trail of registry and account changes is a hash chain: these
// tests change it on disk, as someone with the file could, and check that the whole-file
// check (coid verify) names the entry.
func TestAuditTrailTamper(t *testing.T) {
	admin := custody.User{ID: "admin1", Role: custody.RoleAdmin}
	setup := func(t *testing.T) *tamperEnv {
		e := newTamperEnv(t)
		for _, code := range []string{"A", "B", "C"} {
			if _, err := e.svc.RegisterOrganisation(e.ctx, admin, custody.Organisation{Code: code, Name: "Org " + code, Kind: custody.OrgCourier}, "set-up"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.svc.UpdateOrganisation(e.ctx, admin, "B", custody.Organisation{Name: "Org B renamed", Kind: custody.OrgCourier}, "rename"); err != nil {
			t.Fatal(err)
		}
		// An account change: entry 5 of the same trail.
		if err := e.st.CreateUser(e.ctx, custody.User{ID: "nurse1", Name: "Ana", Role: custody.RoleNurse, Created: t0}, custody.TokenHash("coid_tamper")); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.ChangeUser(e.ctx, "nurse1", func(u *custody.User) error { u.Disabled = true; return nil },
			func(before, after custody.User) custody.AuditEntry {
				return custody.AuditEntry{Time: t0, Actor: "admin1", Kind: custody.KindUser, Code: "nurse1", Action: custody.AuditUserDisable,
					Reason: "left", Old: custody.AuditValues(map[string]string{"disabled": "false"}), New: custody.AuditValues(map[string]string{"disabled": "true"})}
			}); err != nil {
			t.Fatal(err)
		}
		if err := e.st.CheckFile(e.ctx); err != nil {
			t.Fatalf("untouched file: %v", err)
		}
		trail, err := e.st.AuditEntries(e.ctx, custody.AuditFilter{})
		if err != nil || len(trail) != 5 {
			t.Fatalf("trail: %d entries, %v", len(trail), err)
		}
		if err := custody.VerifyAuditTrail(trail); err != nil {
			t.Fatalf("untouched trail: %v", err)
		}
		return e
	}
	tamper := func(e *tamperEnv, fn func(b *bolt.Bucket) error) {
		e.t.Helper()
		e.st.Close()
		db, err := bolt.Open(e.dir+"/"+FileName, 0o600, nil)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucketAudit)) }); err != nil {
			e.t.Fatal(err)
		}
		db.Close()
		e.open()
	}
	edit := func(seq uint64, fn func(a *custody.AuditEntry)) func(b *bolt.Bucket) error {
		return func(b *bolt.Bucket) error {
			var a custody.AuditEntry
			if err := json.Unmarshal(b.Get(u64(seq)), &a); err != nil {
				return err
			}
			fn(&a)
			v, err := json.Marshal(a)
			if err != nil {
				return err
			}
			return b.Put(u64(seq), v)
		}
	}
	cases := []struct {
		name, want string
		fn         func(b *bolt.Bucket) error
	}{
		{"reason changed", "does not match its hash", edit(4, func(a *custody.AuditEntry) { a.Reason = "typo fix" })},
		{"old value changed", "does not match its hash", edit(4, func(a *custody.AuditEntry) { a.Old = json.RawMessage(`{"code":"B"}`) })},
		{"actor changed, hash recomputed", "does not link", edit(2, func(a *custody.AuditEntry) {
			a.Actor = "someone.else"
			prev := custody.AuditEntry{Hash: a.Prev}
			_ = custody.SealAuditEntry(a, 2, &prev) // a consistent entry 2; entry 3 no longer links to it
		})},
		{"entry removed", "has no readable entry before it", func(b *bolt.Bucket) error { return b.Delete(u64(3)) }},
		{"account entry's values changed", "does not match its hash", edit(5, func(a *custody.AuditEntry) { a.New = json.RawMessage(`{"disabled":"false"}`) })},
		{"account entry before it removed", "has no readable entry before it", func(b *bolt.Bucket) error { return b.Delete(u64(4)) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := setup(t)
			tamper(e, c.fn)
			err := e.st.CheckFile(e.ctx)
			var fd *FileDamage
			if !errors.As(err, &fd) || fd.Bucket != string(bucketAudit) || !strings.Contains(err.Error(), c.want) || !errors.Is(err, custody.ErrChainBroken) {
				t.Fatalf("CheckFile = %v, want damage of %s saying %q", err, bucketAudit, c.want)
			}
			trail, err := e.st.AuditEntries(e.ctx, custody.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if err := custody.VerifyAuditTrail(trail); !errors.Is(err, custody.ErrChainBroken) {
				t.Errorf("VerifyAuditTrail = %v, want ErrChainBroken", err)
			}
		})
	}
}
