package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody/pgstore/pgtest"
)

// TestStoreFlag: --store (and COID_STORE) must be a postgres:// URL
// (anything else is a usage error), and a PostgreSQL server that cannot be
// reached is reported by every command that opens the store, naming the
// server but never the password, without creating anything in --data.
func TestStoreFlag(t *testing.T) {
	const pg = "postgres://coid:s3cret@127.0.0.1:1/coid?connect_timeout=5"
	tests := []struct {
		name string
		env  []string
		args []string
	}{
		{"serve flag", nil, []string{"serve", "--store", pg, "--http", "127.0.0.1:0", "--mqtt-listen", "off"}},
		{"serve env", []string{"COID_STORE=" + pg}, []string{"serve", "--http", "127.0.0.1:0", "--mqtt-listen", "off"}},
		{"verify", nil, []string{"verify", "--store", pg}},
		{"user list", nil, []string{"user", "list", "--store", pg}},
		{"registry list", nil, []string{"registry", "list", "--store", pg, "--actor", "admin1", "--kind", "site"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := append(append([]string{}, tt.args...), "--data", dir)
			_, _, exit, err := runCmd(t, tt.env, args...)
			if err == nil || exit != 1 {
				t.Fatalf("exit %d, %v; want 1 and the server's error", exit, err)
			}
			if msg := err.Error(); strings.Contains(msg, "s3cret") || !strings.Contains(msg, "127.0.0.1:1") {
				t.Errorf("error %q: must name the server and never the password", msg)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("--data %s created by a store that could not be opened: %v", dir, err)
			}
		})
	}
	_, _, exit, err := runCmd(t, nil, "verify", "--store", "mysql://db/coid", "--data", t.TempDir())
	if exit != 2 || err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("bad --store: exit %d, %v; want a usage error naming postgres://", exit, err)
	}
}

// TestEndToEndOnPostgres: users added, a chain enrolled and collected
// through serve, all with COID_STORE naming PostgreSQL; the ledger, its
// tree and the counts verify offline with coid verify --store, and
// nothing is written to a bbolt file in --data.
func TestEndToEndOnPostgres(t *testing.T) {
	url := pgtest.Schema(t)
	env := []string{"COID_STORE=" + url}
	dir := filepath.Join(t.TempDir(), "data")
	tokens := map[string]string{}
	for _, id := range []string{"coord", "nurse1", "nurse2"} {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"user", "add", "--data", dir, "--id", id, "--name", "Printed " + id, "--role", string(roles[id])},
			env, strings.NewReader(pw(id)+"\n"), &out, &errb)
		if err != nil {
			t.Fatalf("user add %s: %v\n%s", id, err, errb.String())
		}
		tokens[id] = strings.TrimSpace(out.String())
	}
	srv := startServer(t, dir, env...)
	base := srv.url + "/api/v1"
	coord := &client{t, base, tokens["coord"]}
	code, m := coord.do("POST", "/chains", map[string]any{
		"patient": map[string]any{"name": "Maria Example", "birth_date": "1961-04-30", "mrn": "MRN-77123"},
		"product": "Autologous anti-CD19 CAR-T", "sites": map[string]any{"collection": "Metro Apheresis", "manufacturing": "CellWorks NJ", "treatment": "Metro BMT"}})
	if code != 201 {
		t.Fatalf("enroll: %d %v", code, m)
	}
	coi, _ := m["coi"].(string)
	nurse := &client{t, base, tokens["nurse1"]}
	if code, m := nurse.do("POST", "/chains/"+coi+"/records", map[string]any{"step": "collect", "data": collectData(),
		"signatures": []any{sg("nurse1", "performed"), sg("nurse2", "verified")}}); code != 201 {
		t.Fatalf("collect: %d %v", code, m)
	}
	if code, m := nurse.do("GET", "/verify", nil); code != 200 || m["ok"] != true || m["records"] != float64(2) {
		t.Fatalf("verify: %d %v", code, m)
	}
	if err := srv.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := os.Stat(ledgerFile(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a bbolt ledger was written in --data with --store set: %v", err)
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"verify", "--data", dir}, env, nil, &out, &errb); err != nil {
		t.Fatalf("coid verify --store: %v\n%s%s", err, out.String(), errb.String())
	}
	if !strings.HasPrefix(out.String(), "OK: 2 records verified") {
		t.Fatalf("coid verify printed %q", out.String())
	}
}
