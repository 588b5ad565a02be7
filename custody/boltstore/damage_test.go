package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/storetest"
	bolt "go.etcd.io/bbolt"
)

// damageStore writes a real store: 40 chains of 30 records, 12 users and
// 40 quarantined payloads (enough that the users and quarantine buckets
// have pages of their own), closes it and returns its directory.
func damageStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := context.Background()
	fill(t, s, 40, 30)
	for i := range 12 {
		u := custody.User{ID: fmt.Sprintf("user%02d", i), Name: fmt.Sprintf("Marker User %02d", i), Role: custody.RoleNurse, Created: t0}
		if err := s.CreateUser(ctx, u, custody.Hash{byte(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		if err := s.Quarantine(ctx, custody.QuarantineEntry{Topic: "shippers/SHP-1/telemetry", Received: t0,
			Reason: fmt.Sprintf("quarantine marker %02d", i), Size: 600, Payload: bytes.Repeat([]byte{'x'}, 600)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

const testPageSize = 4096

// leafElems finds, in the file's leaf pages (their page header names the
// page at its own offset: the ones bbolt reads, and stale copies in free
// pages), the elements whose value holds marker; it returns each
// element's offset in the file.
func leafElems(t *testing.T, b []byte, marker string) []int {
	t.Helper()
	var out []int
	for p := 2 * testPageSize; p+testPageSize <= len(b); p += testPageSize {
		id := binary.LittleEndian.Uint64(b[p:])
		flags := binary.LittleEndian.Uint16(b[p+8:])
		count := int(binary.LittleEndian.Uint16(b[p+10:]))
		if id != uint64(p/testPageSize) || flags != 0x02 {
			continue
		}
		for i := range count {
			e := p + 16 + i*16
			pos, ks, vs := int(binary.LittleEndian.Uint32(b[e+4:])), int(binary.LittleEndian.Uint32(b[e+8:])), int(binary.LittleEndian.Uint32(b[e+12:]))
			v0 := e + pos + ks
			if v0+vs <= len(b) && bytes.Contains(b[v0:v0+vs], []byte(marker)) {
				out = append(out, e)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no leaf element holds %q", marker)
	}
	return out
}

// damageFile changes the store file in dir with fn.
func damageFile(t *testing.T, dir string, fn func(b []byte)) {
	t.Helper()
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fn(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// hugeLength makes the value lengths of the elements holding marker point
// 256 MiB on, far past the end of the file and of bbolt's map of it.
func hugeLength(t *testing.T, marker string) func(b []byte) {
	return func(b []byte) {
		for _, e := range leafElems(t, b, marker) {
			binary.LittleEndian.PutUint32(b[e+12:], 256<<20)
		}
	}
}

// flipInValue overwrites the byte before marker in every value that holds
// it, so the value no longer decodes.
func flipInValue(t *testing.T, marker string) func(b []byte) {
	return func(b []byte) {
		n := 0
		for i := bytes.Index(b, []byte(marker)); i > 0; {
			b[i-1] = 0x01
			n++
			j := bytes.Index(b[i+1:], []byte(marker))
			if j < 0 {
				break
			}
			i += 1 + j
		}
		if n == 0 {
			t.Fatalf("%q not in the file", marker)
		}
	}
}

// pageType sets the type of the leaf pages holding marker to one bbolt
// does not know.
func pageType(t *testing.T, marker string) func(b []byte) {
	return func(b []byte) {
		for _, e := range leafElems(t, b, marker) {
			p := e / testPageSize * testPageSize
			binary.LittleEndian.PutUint16(b[p+8:], 0x40)
		}
	}
}

// TestVerifyOfADamagedValueLength: a record whose value length, on its
// leaf page, points past the end of the file is read in place by the
// verification workers. It must fail verification as damaged
// (custody.ErrDamaged, an ErrChainBroken), not end the process with
// "fatal error: fault" (what it did while the workers read the memory map
// without a fault guard), and the store must stay usable for what can
// still be read.
func TestVerifyOfADamagedValueLength(t *testing.T) {
	dir := damageStore(t)
	// Record 617 (chain 17's 16th record) is in the middle of the log.
	damageFile(t, dir, hugeLength(t, "handoff 617 checked"))
	st, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := custody.VerifyLog(context.Background(), st)
	if !errors.Is(err, custody.ErrDamaged) || !errors.Is(err, custody.ErrChainBroken) || rep.OK {
		t.Fatalf("verify of a damaged value length: %+v, %v", rep, err)
	}
	var fd *FileDamage
	if err := st.CheckFile(context.Background()); !errors.As(err, &fd) || fd.Bucket != "log" || fd.Key != "617" {
		t.Fatalf("CheckFile: %v", err)
	}
}

// TestCheckFileFindsDamageBesideTheLedger: damage in the users or the
// quarantine bucket passes the ledger's verification (it reads neither)
// but not CheckFile, which names the bucket, and the entry when it can.
func TestCheckFileFindsDamageBesideTheLedger(t *testing.T) {
	for _, tc := range []struct {
		name       string
		damage     func(t *testing.T) func([]byte)
		bucket     string
		key        string // "" when any
		ledgerFine bool   // custody.VerifyLog still passes
	}{
		{"sound", nil, "", "", true},
		{"user value", func(t *testing.T) func([]byte) { return flipInValue(t, "Marker User 07") }, "users", `"user07"`, true},
		{"user value length", func(t *testing.T) func([]byte) { return hugeLength(t, "Marker User 03") }, "users", "", true},
		{"user page type", func(t *testing.T) func([]byte) { return pageType(t, "Marker User 05") }, "users", "", true},
		{"quarantine value", func(t *testing.T) func([]byte) { return flipInValue(t, "quarantine marker 21") }, "quarantine", "22", true},
		{"quarantine value length", func(t *testing.T) func([]byte) { return hugeLength(t, "quarantine marker 30") }, "quarantine", "", true},
		{"quarantine page type", func(t *testing.T) func([]byte) { return pageType(t, "quarantine marker 12") }, "quarantine", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := damageStore(t)
			if tc.damage != nil {
				damageFile(t, dir, tc.damage(t))
			}
			st, err := Open(dir, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if rep, err := custody.VerifyLog(context.Background(), st); tc.ledgerFine && (err != nil || !rep.OK) {
				t.Fatalf("the ledger: %+v, %v", rep, err)
			}
			err = st.CheckFile(context.Background())
			if tc.bucket == "" {
				if err != nil {
					t.Fatalf("CheckFile of a sound file: %v", err)
				}
				return
			}
			var fd *FileDamage
			if !errors.As(err, &fd) || !errors.Is(err, custody.ErrDamaged) || !errors.Is(err, custody.ErrChainBroken) {
				t.Fatalf("CheckFile: %v, want a FileDamage", err)
			}
			if fd.Bucket != tc.bucket || (tc.key != "" && fd.Key != tc.key) {
				t.Fatalf("CheckFile names %q %q (%v), want %q %q", fd.Bucket, fd.Key, err, tc.bucket, tc.key)
			}
		})
	}
}

// TestOpenRefusesAFileNotCoids: an empty coid.db (bbolt would make a new
// database of it) and another program's bbolt file are refused as
// damaged, for reading and for writing, and left as they were; a file that
// is not bbolt's at all likewise.
func TestOpenRefusesAFileNotCoids(t *testing.T) {
	foreign := func(t *testing.T, path string) {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("widgets"))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte("v"))
		}); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
	}{
		{"empty", func(t *testing.T, path string) { os.WriteFile(path, nil, 0o600) }},
		{"another program's bbolt file", foreign},
		{"not bbolt", func(t *testing.T, path string) {
			os.WriteFile(path, bytes.Repeat([]byte("not a database "), 1000), 0o600)
		}},
	} {
		for _, ro := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/readonly=%v", tc.name, ro), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, FileName)
				tc.make(t, path)
				before, _ := os.ReadFile(path)
				st, err := Open(dir, Options{ReadOnly: ro, LockTimeout: 100e6})
				if err == nil {
					st.Close()
				}
				if !errors.Is(err, custody.ErrDamaged) {
					t.Fatalf("open: %v, want ErrDamaged", err)
				}
				if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
					t.Fatal("the refused file was changed")
				}
			})
		}
	}
}

// TestWriterFaultIsDamageNotACrash: the group-commit writer reads a
// chain's page to write its entry; an entry beside it on that page whose
// value length points past the end of the file made the writer fault and
// the whole service die ("fatal error: fault"). The append must fail as
// damaged, later ones at once, and the store must still close.
func TestWriterFaultIsDamageNotACrash(t *testing.T) {
	dir := damageStore(t)
	victim := string(storetest.COI(5))
	damageFile(t, dir, func(b []byte) {
		n := 0
		for _, e := range leafElems(t, b, victim) {
			pos, ks := int(binary.LittleEndian.Uint32(b[e+4:])), int(binary.LittleEndian.Uint32(b[e+8:]))
			if string(b[e+pos:e+pos+ks]) == victim { // the chains bucket's entry, not a record
				binary.LittleEndian.PutUint32(b[e+12:], 256<<20)
				n++
			}
		}
		if n == 0 {
			t.Fatal("no chain entry found")
		}
	})
	s, err := Open(dir, Options{LockTimeout: 100e6})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = s.Append(ctx, storetest.Draft(storetest.COI(6), 5000, false, 30))
	if !errors.Is(err, custody.ErrDamaged) {
		t.Fatalf("append beside a damaged entry: %v", err)
	}
	if _, err := s.Append(ctx, storetest.Draft(storetest.COI(7), 5001, false, 30)); !errors.Is(err, custody.ErrDamaged) {
		t.Fatalf("the next append: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Logf("close: %v", err)
	}
}

// TestCheckFileBranchKeyPastItsPage: a key length on one of the log's
// branch pages that points past the file. The cursors that read the log
// never read branch keys, bbolt's tx.Check does, in a goroutine of its
// own where the fault would end the process: CheckFile must find it first.
func TestCheckFileBranchKeyPastItsPage(t *testing.T) {
	dir := damageStore(t)
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var root int
	db.View(func(tx *bolt.Tx) error { root = int(tx.Bucket(bucketLog).RootPage()); return nil })
	db.Close()
	damageFile(t, dir, func(b []byte) {
		p := root * testPageSize
		if binary.LittleEndian.Uint16(b[p+8:]) != 0x01 || binary.LittleEndian.Uint16(b[p+10:]) < 2 {
			t.Fatal("the log's root is not a branch page")
		}
		binary.LittleEndian.PutUint32(b[p+16+16+4:], 256<<20) // element 1's key length
	})
	st, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var fd *FileDamage
	if err := st.CheckFile(context.Background()); !errors.As(err, &fd) || fd.Bucket != "log" {
		t.Fatalf("CheckFile: %v", err)
	}
}

// FuzzDamagedFile overwrites bytes of a real store file (a small one:
// 6 chains of 30 records, users, quarantined payloads) and opens, verifies
// and checks it read-only. Whatever the damage, nothing may crash or
// hang: each step either succeeds or fails with an error, and a file that
// opened, verified and checked sound must read every record back.
func FuzzDamagedFile(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		f.Fatal(err)
	}
	fill(f, s, 6, 30)
	ctx := context.Background()
	for i := range 12 {
		u := custody.User{ID: fmt.Sprintf("user%02d", i), Name: fmt.Sprintf("Marker User %02d", i), Role: custody.RoleNurse, Created: t0}
		if err := s.CreateUser(ctx, u, custody.Hash{byte(i + 1)}); err != nil {
			f.Fatal(err)
		}
	}
	for i := range 10 {
		if err := s.Quarantine(ctx, custody.QuarantineEntry{Topic: "t", Received: t0, Reason: fmt.Sprint(i), Size: 600,
			Payload: bytes.Repeat([]byte{'x'}, 600)}); err != nil {
			f.Fatal(err)
		}
	}
	s.Close()
	good, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint32(3*testPageSize+12), []byte{0xff, 0xff, 0xff, 0x7f})
	f.Add(uint32(5*testPageSize+16+12), []byte{0, 0, 0, 0x10})
	f.Add(uint32(testPageSize*7+8), []byte{0x40})
	f.Fuzz(func(t *testing.T, off uint32, b []byte) {
		if len(b) == 0 || len(b) > 16 {
			return
		}
		bad := bytes.Clone(good)
		copy(bad[int(off)%len(bad):], b)
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, FileName), bad, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := Open(d, Options{ReadOnly: true})
		if err != nil {
			return
		}
		defer st.Close()
		rep, err := custody.VerifyLog(ctx, st)
		if err != nil || !rep.OK {
			return
		}
		if st.CheckFile(ctx) != nil {
			return
		}
		for seq := uint64(1); seq <= rep.Records; seq++ {
			if _, err := st.Record(ctx, seq); err != nil {
				t.Fatalf("a file that verified and checked sound: record %d: %v", seq, err)
			}
		}
	})
}
