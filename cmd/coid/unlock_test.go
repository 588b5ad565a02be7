package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestUserUnlockThroughTheRunningService: the offline unlock cannot run
// while the service holds the data directory, so a locked nurse waited
// for a restart. `coid user unlock --url` unlocks through the API with an
// administrator's token from COID_TOKEN; other tokens are refused.
func TestUserUnlockThroughTheRunningService(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	adminTok := addUser(t, dir, "admin1", custody.RoleAdmin)
	coordTok := addUser(t, dir, "coord", custody.RoleCoordinator)
	nurseTok := addUser(t, dir, "nurse1", custody.RoleNurse)
	srv := startServer(t, dir)
	base := srv.url + "/api/v1"
	coord, nurse := &client{t, base, coordTok}, &client{t, base, nurseTok}
	code, m := coord.do("POST", "/chains", map[string]any{
		"patient": map[string]any{"name": "Maria Example", "birth_date": "1961-04-30", "mrn": "MRN-77123"},
		"product": "Autologous anti-CD19 CAR-T", "sites": map[string]any{"collection": "Metro Apheresis", "manufacturing": "CellWorks NJ", "treatment": "Metro BMT"}})
	if code != 201 {
		t.Fatalf("enroll: %d %v", code, m)
	}
	rec := "/chains/" + m["coi"].(string) + "/records"
	note := func(password string) int {
		code, _ := nurse.do("POST", rec, map[string]any{"step": "note", "data": map[string]any{"text": "x"},
			"signatures": []any{map[string]any{"user": "nurse1", "password": password, "meaning": "authored"}}})
		return code
	}
	for range custody.MaxFailedSignatures {
		note("a-wrong-guess")
	}
	if c := note(pw("nurse1")); c != 401 {
		t.Fatalf("locked nurse signed: %d", c)
	}
	unlock := func(env ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"user", "unlock", "--url", srv.url, "--id", "nurse1"}, env, nil, &out, &errb)
		return out.String(), err
	}
	if _, err := unlock(); err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "COID_TOKEN") {
		t.Fatalf("without COID_TOKEN: %v", err)
	}
	if _, err := unlock("COID_TOKEN=" + nurseTok); !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("a nurse's token: %v", err)
	}
	if _, err := unlock("COID_TOKEN=coid_not-a-token"); !errors.Is(err, custody.ErrUnauthenticated) {
		t.Fatalf("a wrong token: %v", err)
	}
	if c := note(pw("nurse1")); c != 401 {
		t.Fatalf("refused unlocks unlocked: %d", c)
	}
	out, err := unlock("COID_TOKEN=" + adminTok)
	if err != nil || out != "unlocked nurse1\n" {
		t.Fatalf("administrator's unlock: %q %v", out, err)
	}
	if c := note(pw("nurse1")); c != 201 {
		t.Fatalf("after the unlock: %d", c)
	}
}
