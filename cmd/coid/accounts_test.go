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

// TestUserAccountCommands: coid user reset, passwd, tokens, revoke,
// disable and enable run through the running service with the caller's
// token, and what they change takes effect at once.
func TestUserAccountCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	adminTok := addUser(t, dir, "admin1", custody.RoleAdmin)
	nurseTok := addUser(t, dir, "nurse1", custody.RoleNurse)
	srv := startServer(t, dir)
	nurse := &client{t, srv.url + "/api/v1", nurseTok}
	user := func(stdin string, env []string, args ...string) (string, error) {
		t.Helper()
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"user"}, args...), env, strings.NewReader(stdin), &out, &errb)
		return out.String(), err
	}
	asAdmin, asNurse := []string{"COID_TOKEN=" + adminTok}, []string{"COID_TOKEN=" + nurseTok}
	u := []string{"--url", srv.url}

	usage := []struct {
		name  string
		stdin string
		env   []string
		args  []string
		want  string
	}{
		{"no url", "", asAdmin, []string{"disable", "--id", "nurse1", "--reason", "x"}, "--url"},
		{"no token", "", nil, append([]string{"disable", "--id", "nurse1", "--reason", "x"}, u...), "COID_TOKEN"},
		{"no reason", "", asAdmin, append([]string{"disable", "--id", "nurse1"}, u...), "--reason"},
		{"no id", "", asAdmin, append([]string{"reset", "--reason", "x"}, u...), "--id"},
		{"reset without password", "", asAdmin, append([]string{"reset", "--id", "nurse1", "--reason", "x"}, u...), "stdin"},
		{"passwd with one line", "only-one\n", asNurse, append([]string{"passwd"}, u...), "stdin"},
		{"revoke without token", "", asNurse, append([]string{"revoke"}, u...), "--token"},
	}
	for _, tc := range usage {
		if _, err := user(tc.stdin, tc.env, tc.args...); err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a usage error naming %s", tc.name, err, tc.want)
		}
	}

	// A nurse may not reset; the administrator does, and the nurse's
	// token then opens only the password change.
	if _, err := user("temporary-pass\n", asNurse, append([]string{"reset", "--id", "nurse1", "--reason", "x"}, u...)...); !errors.Is(err, custody.ErrForbidden) {
		t.Fatalf("nurse resets: %v", err)
	}
	out, err := user("temporary-pass\n", asAdmin, append([]string{"reset", "--id", "nurse1", "--reason", "forgot"}, u...)...)
	if err != nil || !strings.Contains(out, "must be changed") {
		t.Fatalf("reset: %q %v", out, err)
	}
	if _, err := user("", asNurse, append([]string{"tokens"}, u...)...); !errors.Is(err, custody.ErrPasswordChange) || !strings.Contains(err.Error(), "coid user passwd") {
		t.Fatalf("tokens while the change is due: %v", err)
	}
	if code, _ := nurse.do("GET", "/chains", nil); code != 403 {
		t.Fatalf("chains while the change is due: %d", code)
	}
	if _, err := user("wrong-current\nnew-password-1\n", asNurse, append([]string{"passwd"}, u...)...); !errors.Is(err, custody.ErrUnauthenticated) {
		t.Fatalf("passwd with a wrong current password: %v", err)
	}
	out, err = user("temporary-pass\nnew-password-1\n", asNurse, append([]string{"passwd"}, u...)...)
	if err != nil || !strings.Contains(out, "password changed for nurse1") {
		t.Fatalf("passwd: %q %v", out, err)
	}
	if code, _ := nurse.do("GET", "/chains", nil); code != 200 {
		t.Fatalf("chains after the change: %d", code)
	}

	// Tokens: listed without the token; revoked at once.
	code, m := (&client{t, srv.url + "/api/v1", adminTok}).do("POST", "/users/nurse1/tokens", nil)
	if code != 201 {
		t.Fatalf("new token: %d %v", code, m)
	}
	second := m["token"].(string)
	out, err = user("", asNurse, append([]string{"tokens"}, u...)...)
	secondID := custody.TokenID(custody.TokenHash(second))
	if err != nil || !strings.Contains(out, secondID) || strings.Contains(out, second) || strings.Count(out, "\n") != 3 || !strings.Contains(out, "yes") {
		t.Fatalf("tokens:\n%s %v", out, err)
	}
	if _, err := user("", asAdmin, append([]string{"revoke", "--id", "nurse1", "--token", secondID}, u...)...); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("administrator's revoke without a reason: %v", err)
	}
	if out, err := user("", asNurse, append([]string{"revoke", "--token", secondID}, u...)...); err != nil || out != "revoked token "+secondID+"\n" {
		t.Fatalf("revoke: %q %v", out, err)
	}
	if code, _ := (&client{t, srv.url + "/api/v1", second}).do("GET", "/me", nil); code != 401 {
		t.Fatalf("revoked token: %d", code)
	}

	// Disable and enable, with the reason in the audit trail.
	if out, err := user("", asAdmin, append([]string{"disable", "--id", "nurse1", "--reason", "left the ward"}, u...)...); err != nil || out != "disabled nurse1\n" {
		t.Fatalf("disable: %q %v", out, err)
	}
	if code, _ := nurse.do("GET", "/me", nil); code != 401 {
		t.Fatalf("disabled user's token: %d", code)
	}
	if _, err := user("", asAdmin, append([]string{"enable", "--id", "nurse1", "--reason", "back"}, u...)...); err != nil {
		t.Fatal(err)
	}
	if code, _ := nurse.do("GET", "/me", nil); code != 200 {
		t.Fatalf("enabled user's token: %d", code)
	}
	code, m = (&client{t, srv.url + "/api/v1", adminTok}).do("GET", "/users/nurse1/audit", nil)
	var actions []string
	for _, e := range m["entries"].([]any) {
		actions = append(actions, e.(map[string]any)["action"].(string))
	}
	want := "user.add user.password_reset user.password_change token.issue token.revoke user.disable user.enable"
	if code != 200 || strings.Join(actions, " ") != want {
		t.Fatalf("audit: %d %v, want %s", code, actions, want)
	}
	// coid user add works on the data directory: the trail names it.
	if by := m["entries"].([]any)[0].(map[string]any)["actor"]; by != "offline" {
		t.Errorf("the offline user add is attributed to %v, want offline", by)
	}
}

// TestServePasswordPolicyFlags: out-of-range password policy values are
// refused before anything is opened.
func TestServePasswordPolicyFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"--password-history", "99"}},
		{nil, []string{"--password-expiry-days", "-1"}},
		{[]string{"COID_PASSWORD_EXPIRY_DAYS=ninety"}, nil},
		{[]string{"COID_PASSWORD_HISTORY=25"}, nil},
	} {
		_, _, exit, err := runCmd(t, tc.env, append([]string{"serve", "--data", dir, "--http", "127.0.0.1:0"}, tc.args...)...)
		if exit != 2 || err == nil || !strings.Contains(err.Error(), "password") {
			t.Errorf("%v %v: exit %d %v, want a usage error", tc.env, tc.args, exit, err)
		}
	}
}
