package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
	"github.com/jackc/pgx/v5"
)

// migrateFixture is the report fixture's complete chain (users, readings
// of two legs, an excursion accepted by QA, infusion and its follow-up)
// with, beside it, what the rest of the store keeps: a registry entry,
// capacity and a quota with their audit trail, chains holding a slot
// claim, a quota use and a waiting-list hold, another API token, a
// quarantined payload, a checkpoint, a cosignature and a witness state.
func migrateFixture(t *testing.T) string {
	t.Helper()
	dir := newReportFixture(t).dir
	st, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	site := []byte(`{"code":"PLANT-1"}`)
	if err := st.CreateEntry(ctx, custody.KindSite, "PLANT-1", site, custody.AuditEntry{Time: at, Actor: "admin1",
		Kind: custody.ObjectKind(custody.KindSite), Code: "PLANT-1", Action: custody.AuditCreate, Reason: "network", New: site}); err != nil {
		t.Fatal(err)
	}
	capv, _ := json.Marshal(custody.Capacity{Site: "PLANT-1", Slots: map[string]int{"CAR-T": 3}})
	if err := st.UpdateCapacity(ctx, "PLANT-1", func(old []byte) ([]byte, custody.AuditEntry, error) {
		return capv, custody.AuditEntry{Time: at, Actor: "admin1", Kind: custody.KindCapacity, Code: "PLANT-1",
			Action: custody.AuditCapacitySet, Reason: "plant opens", New: capv}, nil
	}); err != nil {
		t.Fatal(err)
	}
	q := custody.Quota{Plant: "PLANT-1", Centre: "Mercy BMT", Slots: 5}
	qv, _ := json.Marshal(q)
	if err := st.UpdateQuota(ctx, q.Key(), func(old []byte) ([]byte, custody.AuditEntry, error) {
		return qv, custody.AuditEntry{Time: at, Actor: "qa1", Kind: custody.KindQuota, Code: q.Key(),
			Action: custody.AuditQuotaSet, Reason: "share the plant", New: qv}, nil
	}); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		if _, err := st.Append(ctx, storetest.Draft(storetest.COI(900+n), n, true, 0)); err != nil {
			t.Fatal(err)
		}
	}
	d := storetest.Draft(storetest.COI(901), 10, false, 1)
	d.Claims = []custody.Claim{{Site: "PLANT-1", Date: "2026-12-10", Product: "CAR-T"}}
	d.Quota = &custody.QuotaUse{Key: q.Key(), Period: "2026-12"}
	if _, err := st.Append(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateWaitlistHold(ctx, storetest.COI(902), &custody.Claim{Site: "PLANT-1", Date: "2026-12-11", Product: "CAR-T"},
		func(old []byte) ([]byte, []custody.AuditEntry, error) {
			v := []byte(`{"coi":"` + string(storetest.COI(902)) + `"}`)
			return v, []custody.AuditEntry{{Time: at, Actor: "coord", Kind: custody.KindWaitlist, Code: string(storetest.COI(902)),
				Action: custody.AuditWaitlistAdd, Reason: "offer", New: v}}, nil
		}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddToken(ctx, "qa1", custody.TokenHash("coid_second_token_of_qa1")); err != nil {
		t.Fatal(err)
	}
	if err := st.Quarantine(ctx, custody.QuarantineEntry{Topic: "shippers/SHP-7/telemetry", Received: at, Reason: "bad JSON",
		Size: 3, Payload: []byte("{{{")}); err != nil {
		t.Fatal(err)
	}
	size, err := st.TreeSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddCheckpoint(ctx, size, []byte("checkpoint note\n")); err != nil {
		t.Fatal(err)
	}
	if err := st.AddCosignature(ctx, custody.Cosignature{Size: size, Witness: "w1", Time: at, Line: "— w1 AAAA\n"}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutWitnessState(ctx, custody.WitnessState{Witness: "w1", Cosigned: size}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMigrate: a store holding every kind of record and what is kept
// beside the ledger is copied into an empty PostgreSQL schema with the
// same head hash and the same content, verified; migrating again into
// the now non-empty target is refused, writing nothing.
func TestMigrate(t *testing.T) {
	dir := migrateFixture(t)
	url := pgtest.Schema(t)
	out, errOut, exit, err := runCmd(t, nil, "migrate", "--from", dir, "--to", url, "--progress", "5")
	if err != nil {
		t.Fatalf("migrate: exit %d, %v\n%s%s", exit, err, out, errOut)
	}
	t.Log(out)
	if !strings.Contains(out, "verified in") || !strings.Contains(errOut, "records copied") || !strings.Contains(errOut, "readings copied") {
		t.Errorf("migrate printed %q, stderr %q", out, errOut)
	}
	ctx := context.Background()
	src, err := boltstore.Open(dir, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := dst.Check(ctx); err != nil {
		t.Fatal(err)
	}
	same := func(what string, get func(s interface {
		custody.Store
		custody.TelemetryStore
		custody.CosignatureStore
		custody.AuditLog
	}) (any, error)) {
		t.Helper()
		a, err := get(src)
		if err != nil {
			t.Fatalf("%s of the source: %v", what, err)
		}
		b, err := get(dst)
		if err != nil {
			t.Fatalf("%s of the copy: %v", what, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s differ:\nsource %+v\ncopy   %+v", what, a, b)
		}
	}
	type st = interface {
		custody.Store
		custody.TelemetryStore
		custody.CosignatureStore
		custody.AuditLog
	}
	same("head", func(s st) (any, error) { seq, h, err := s.Head(ctx); return []any{seq, h}, err })
	same("chains", func(s st) (any, error) { return s.Chains(ctx, "") })
	same("users", func(s st) (any, error) { return s.Users(ctx) })
	same("token owner", func(s st) (any, error) { return s.UserByToken(ctx, custody.TokenHash("coid_second_token_of_qa1")) })
	same("readings", func(s st) (any, error) { return s.ReadingsCount(ctx) })
	same("SHP-7 readings", func(s st) (any, error) {
		rs, _, err := s.ShipperReadings(ctx, "SHP-7", time.Time{}, time.Now().Add(24*time.Hour*365*10), 0)
		return rs, err
	})
	same("quarantine", func(s st) (any, error) { return s.QuarantineList(ctx, 0, 0) })
	same("registry", func(s st) (any, error) { return s.Entries(ctx, custody.KindSite, "", 0) })
	same("audit trail", func(s st) (any, error) { return s.AuditEntries(ctx, custody.AuditFilter{}) })
	same("slots", func(s st) (any, error) { return s.SiteSlots(ctx, nil, "", 0, "2026-12-01", "2026-12-31") })
	same("claims", func(s st) (any, error) { return s.SiteClaims(ctx, "PLANT-1", "2026-12-01", "2026-12-31", 0) })
	same("quota uses", func(s st) (any, error) { return s.QuotaUses(ctx, "2026-12") })
	same("quotas", func(s st) (any, error) { return s.Quotas(ctx) })
	same("waitlist", func(s st) (any, error) { return s.Waitlist(ctx) })
	same("cosignatures", func(s st) (any, error) { return s.CosignedCheckpoints(ctx, 0, 10) })
	same("witness states", func(s st) (any, error) { return s.WitnessStates(ctx) })
	same("checkpoint", func(s st) (any, error) {
		return s.(interface {
			LatestCheckpoint(context.Context) ([]byte, error)
		}).LatestCheckpoint(ctx)
	})
	same("excursion chains", func(s st) (any, error) { return s.ExcursionChains(ctx, false, "", 100) })
	same("PHI", func(s st) (any, error) {
		cs, err := s.Chains(ctx, "")
		if err != nil {
			return nil, err
		}
		var out []custody.PHI
		for _, c := range cs {
			p, err := s.PHI(ctx, c.COI)
			if err == nil {
				out = append(out, p)
			}
		}
		return out, nil
	})

	// Again into the target, now holding the copy: refused, nothing written.
	before, _, _ := dst.Head(ctx)
	out, _, exit, err = runCmd(t, nil, "migrate", "--from", dir, "--to", url)
	if exit != 1 || err == nil || !strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("into a non-empty target: exit %d, %v, %q; want exit 1 naming it not empty", exit, err, out)
	}
	if after, _, _ := dst.Head(ctx); after != before {
		t.Errorf("the refused migration changed the target's head from %d to %d", before, after)
	}
}

// TestMigrateRefused: a source a running coid holds (its directory lock)
// is refused, as is a missing one; a bad --to is a usage error, and an
// unreachable server's error never repeats the URL's password.
func TestMigrateRefused(t *testing.T) {
	dir := t.TempDir()
	addUser(t, dir, "qa1", custody.RoleQA)
	url := pgtest.Schema(t)
	held, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, exit, err := runCmd(t, nil, "migrate", "--from", dir, "--to", url)
	held.Close()
	if exit != 1 || err == nil || !strings.Contains(err.Error(), "another coid process holds it") {
		t.Fatalf("a running source: exit %d, %v; want exit 1, in use", exit, err)
	}
	ctx := context.Background()
	dst, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Empty(ctx); err != nil {
		t.Errorf("the refused migration wrote to the target: %v", err)
	}
	dst.Close()

	// A schema holding another application's tables: refused before coid
	// creates any of its own there.
	foreign := pgtest.Schema(t)
	conn, err := pgx.Connect(ctx, foreign)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE invoices (id int)`); err != nil {
		t.Fatal(err)
	}
	_, _, exit, err = runCmd(t, nil, "migrate", "--from", dir, "--to", foreign)
	if exit != 1 || err == nil || !strings.Contains(err.Error(), "another application") || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("a schema of another application: exit %d, %v", exit, err)
	}
	var tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&tables); err != nil || tables != 1 {
		t.Errorf("the refused migration left %d tables in the foreign schema (%v), want its 1", tables, err)
	}

	_, _, exit, err = runCmd(t, nil, "migrate", "--from", filepath.Join(dir, "nothing"), "--to", url)
	if exit != 1 || err == nil || !strings.Contains(err.Error(), "holds no coid ledger") {
		t.Errorf("a missing source: exit %d, %v", exit, err)
	}
	for _, args := range [][]string{{"--from", dir}, {"--to", url}, {"--from", dir, "--to", "mysql://u:s3cret@db/x"}} {
		_, _, exit, err := runCmd(t, nil, append([]string{"migrate"}, args...)...)
		if exit != 2 || err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("migrate %q: exit %d, %v; want a usage error without the password", args, exit, err)
		}
	}
	const bad = "postgres://coid:s3cret@127.0.0.1:1/coid?connect_timeout=5"
	out, errOut, exit, err := runCmd(t, nil, "migrate", "--from", dir, "--to", bad)
	if exit != 1 || err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("unreachable target: exit %d, %v; want exit 1 naming the server", exit, err)
	}
	if strings.Contains(err.Error()+out+errOut, "s3cret") {
		t.Errorf("the password was printed: %v %s %s", err, out, errOut)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

// TestImportFailsPartWay: the records of a ledger too large for one chunk
// of COPY data (4,000 records, about 3 MB) go to the server while the
// export is still being read; an export that fails after most of them
// were sent, by a read error or by a record changed after it was hashed,
// fails the import with its own error and leaves the target empty. The
// sound export is then copied and verifies, and the copy takes an append
// whose tree hashes extend the tree the import stored.
func TestImportFailsPartWay(t *testing.T) {
	dir := t.TempDir()
	benchLedger(t, dir, 4000)
	ctx := context.Background()
	src, err := boltstore.Open(dir, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	errRead := errors.New("the disk failed a read")
	// importWith imports src into dst, each record passing through change
	// on its way.
	importWith := func(dst *pgstore.Store, change func(custody.LogEntry) (custody.LogEntry, error)) (custody.Hash, error) {
		var head custody.Hash
		err := src.Export(ctx, func(e *custody.Export) error {
			head = e.HeadHash
			records := e.Records
			e.Records = func(fn func(custody.LogEntry) error) error {
				return records(func(le custody.LogEntry) error {
					le, err := change(le)
					if err != nil {
						return err
					}
					return fn(le)
				})
			}
			_, err := dst.Import(ctx, e, 0, nil)
			return err
		})
		return head, err
	}
	tests := []struct {
		name   string
		change func(custody.LogEntry) (custody.LogEntry, error)
		want   error
	}{
		{"the read fails", func(le custody.LogEntry) (custody.LogEntry, error) {
			if le.Key == 3500 {
				return le, errRead
			}
			return le, nil
		}, errRead},
		{"a record changed", func(le custody.LogEntry) (custody.LogEntry, error) {
			if le.Key == 3500 {
				le.Body = bytes.Clone(le.Body)
				le.Body[len(le.Body)-3] ^= 1
			}
			return le, nil
		}, custody.ErrChainBroken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst, err := pgstore.Open(ctx, pgtest.Schema(t), pgstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			if _, err := importWith(dst, tt.change); !errors.Is(err, tt.want) {
				t.Fatalf("import: %v; want %v", err, tt.want)
			}
			if err := dst.Empty(ctx); err != nil {
				t.Errorf("the failed import wrote: %v", err)
			}
		})
	}
	dst, err := pgstore.Open(ctx, pgtest.Schema(t), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	head, err := importWith(dst, func(le custody.LogEntry) (custody.LogEntry, error) { return le, nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyMigration(ctx, src, dst, head, slog.New(slog.DiscardHandler), io.Discard, func(err error) error { return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Append(ctx, storetest.Draft(storetest.COI(1), 4000, false, 100)); err != nil {
		t.Fatal(err)
	}
	if err := dst.Check(ctx); err != nil {
		t.Fatalf("the tree after an append to the copy: %v", err)
	}
	if n, err := dst.TreeSize(ctx); err != nil || n != 4001 {
		t.Errorf("tree of %d records (%v), want 4001", n, err)
	}
}
