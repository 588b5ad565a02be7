package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	bolt "go.etcd.io/bbolt"
)

// realStore writes a real data directory: a QA user (through coid user
// add; its token is returned), 10 more users, 200 one-record chains whose
// data carry "record marker NNNN", and 40 quarantined payloads whose
// reasons carry "quarantine marker NN": enough that the log, users and
// quarantine buckets have pages of their own.
func realStore(t *testing.T, dir string) string {
	t.Helper()
	tok := addUser(t, dir, "qa1", custody.RoleQA)
	for i := range 10 {
		addUser(t, dir, fmt.Sprintf("nurse%02d", i), custody.RoleNurse)
	}
	st, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	for i := 1; i <= 200; i++ {
		coi, err := custody.NewCOI("A9999", 2026, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.Append(ctx, custody.Draft{Record: custody.Record{V: custody.EncodingVersion, Chain: coi, Step: custody.StepEnroll,
			Time: at, Site: "CellWorks NJ", SubmittedBy: "qa1", Data: fmt.Appendf(nil, `{"text":"record marker %04d"}`, i)},
			NewChain: true, State: custody.StateEnrolled, Product: "CAR-T"})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		if err := st.Quarantine(ctx, custody.QuarantineEntry{Topic: "shippers/SHP-1/telemetry", Received: at,
			Reason: fmt.Sprintf("quarantine marker %02d", i), Size: 600, Payload: bytes.Repeat([]byte{'x'}, 600)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return tok
}

// editFile changes dir's coid.db with fn.
func editFile(t *testing.T, dir string, fn func(t *testing.T, b []byte)) {
	t.Helper()
	p := filepath.Join(dir, boltstore.FileName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	fn(t, b)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// valueLength sets, on the file's leaf pages (4 KiB, at the offset their
// header names), the value length of each element whose value holds
// marker to 256 MiB: it points far past the end of the file.
func valueLength(marker string) func(t *testing.T, b []byte) {
	return func(t *testing.T, b []byte) {
		n := 0
		for p := 2 * 4096; p+4096 <= len(b); p += 4096 {
			if binary.LittleEndian.Uint64(b[p:]) != uint64(p/4096) || binary.LittleEndian.Uint16(b[p+8:]) != 0x02 {
				continue
			}
			for i := range int(binary.LittleEndian.Uint16(b[p+10:])) {
				e := p + 16 + i*16
				v0 := e + int(binary.LittleEndian.Uint32(b[e+4:])) + int(binary.LittleEndian.Uint32(b[e+8:]))
				vs := int(binary.LittleEndian.Uint32(b[e+12:]))
				if v0+vs <= len(b) && bytes.Contains(b[v0:v0+vs], []byte(marker)) {
					binary.LittleEndian.PutUint32(b[e+12:], 256<<20)
					n++
				}
			}
		}
		if n == 0 {
			t.Fatalf("no leaf element holds %q", marker)
		}
	}
}

// flipBefore overwrites the byte before each copy of marker in the file.
func flipBefore(marker string) func(t *testing.T, b []byte) {
	return func(t *testing.T, b []byte) {
		n := 0
		for i := 0; ; {
			j := bytes.Index(b[i:], []byte(marker))
			if j < 0 {
				break
			}
			b[i+j-1] = 0x01
			n++
			i += j + 1
		}
		if n == 0 {
			t.Fatalf("%q not in the file", marker)
		}
	}
}

// TestVerifyExitCodes: coid verify exits 0 on a sound store, 3 on a
// damaged one whichever part is damaged (a record's value length, which
// ended it with "fatal error: fault", exit 2; a users or quarantine page,
// which it passed as OK; a file that is not a coid store, exit 1), naming
// the part; 1 when it cannot run; 2 on a usage error.
func TestVerifyExitCodes(t *testing.T) {
	foreign := func(t *testing.T, dir string) {
		os.MkdirAll(dir, 0o700)
		db, err := bolt.Open(filepath.Join(dir, boltstore.FileName), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err })
		db.Close()
	}
	writeFile := func(b []byte) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			os.MkdirAll(dir, 0o700)
			os.WriteFile(filepath.Join(dir, boltstore.FileName), b, 0o600)
		}
	}
	for _, tc := range []struct {
		name   string
		make   func(t *testing.T, dir string) // nil: a real store
		damage func(t *testing.T, b []byte)
		args   []string
		exit   int
		out    string // in stdout, or in the error
	}{
		{name: "sound", exit: 0, out: "OK: 200 records verified"},
		{name: "record value length", damage: valueLength("record marker 0123"), exit: 3, out: "record 123"},
		{name: "users page", damage: flipBefore("Printed nurse04"), exit: 3, out: `bucket "users", entry "nurse04"`},
		{name: "users value length", damage: valueLength("Printed nurse07"), exit: 3, out: `bucket "users"`},
		{name: "quarantine page", damage: flipBefore("quarantine marker 17"), exit: 3, out: `bucket "quarantine", entry 18`},
		{name: "quarantine value length", damage: valueLength("quarantine marker 33"), exit: 3, out: `bucket "quarantine"`},
		{name: "another program's bbolt file", make: foreign, exit: 3, out: "not a coid ledger"},
		{name: "not bbolt", make: writeFile(bytes.Repeat([]byte("not a database "), 1000)), exit: 3, out: "not a coid store"},
		{name: "empty file", make: writeFile(nil), exit: 3, out: "empty"},
		{name: "no ledger", make: func(t *testing.T, dir string) {}, exit: 1, out: "no ledger"},
		{name: "bad flag", args: []string{"--bogus"}, exit: 2, out: "bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if tc.make != nil {
				tc.make(t, dir)
			} else {
				realStore(t, dir)
			}
			if tc.damage != nil {
				editFile(t, dir, tc.damage)
			}
			var out, errb bytes.Buffer
			err := run(context.Background(), append([]string{"verify", "--data", dir}, tc.args...), nil, nil, &out, &errb)
			code := 0
			if err != nil {
				code = exitCode(err)
			}
			all := out.String() + fmt.Sprint(err)
			if code != tc.exit || !strings.Contains(all, tc.out) {
				t.Fatalf("exit %d, want %d; want %q in:\n%s\n%s", code, tc.exit, tc.out, all, errb.String())
			}
			if code == 3 && !strings.Contains(out.String(), "FAILED") {
				t.Fatalf("exit 3 without FAILED: %s", out.String())
			}
		})
	}
}

// TestServeVerifyOfADamagedRecordStaysUp: GET /api/v1/verify on a running
// server, over a record whose value length points past the end of the
// file, answers 500 store_damaged, and the server stays up (it died with
// "fatal error: fault" while the verification workers read the memory map
// without a fault guard).
func TestServeVerifyOfADamagedRecordStaysUp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tok := realStore(t, dir)
	editFile(t, dir, valueLength("record marker 0150"))
	srv := startServer(t, dir)
	c := &client{t: t, base: srv.url + "/api/v1", token: tok}
	for range 2 {
		code, body := c.do("GET", "/verify", nil)
		e, _ := body["error"].(map[string]any)
		if code != 500 || e["code"] != "store_damaged" {
			t.Fatalf("verify of a damaged record: %d %v", code, body)
		}
	}
	if !strings.Contains(srv.stderr.String(), "record 150") {
		t.Fatalf("the log does not name the damaged record:\n%s", srv.stderr.String())
	}
	if code, body := c.do("GET", "/me", nil); code != 200 {
		t.Fatalf("after verify: /me %d %v", code, body)
	}
	if err := srv.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// TestServeRefusesAFileNotCoids: serve does not start on an empty coid.db
// (bbolt would make a new, empty ledger of it) or another program's bbolt
// file (it would fill it with coid's buckets), and leaves either as it was.
func TestServeRefusesAFileNotCoids(t *testing.T) {
	for name, make := range map[string]func(path string) error{
		"empty": func(path string) error { return os.WriteFile(path, nil, 0o600) },
		"foreign": func(path string) error {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				return err
			}
			defer db.Close()
			return db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err })
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, boltstore.FileName)
			if err := make(path); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			// Should it start, it is stopped at once (its first line).
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var errb bytes.Buffer
			err := run(ctx, serveArgs(dir), nil, strings.NewReader(""), cancelOnWrite(cancel), &errb)
			if err == nil || !strings.Contains(err.Error(), "damaged") {
				t.Fatalf("serve on a file not coid's: %v", err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Fatal("serve changed the file it refused")
			}
		})
	}
}

// cancelOnWrite is a writer that calls cancel when written to.
type cancelOnWrite func()

func (c cancelOnWrite) Write(p []byte) (int, error) { c(); return len(p), nil }
