package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	bolt "go.etcd.io/bbolt"
)

// syncBuffer is a bytes.Buffer safe for the server's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is a running `coid serve` started through run.
type server struct {
	url    string
	stderr *syncBuffer
	stop   func() error
}

// serveArgs are the flags every test server gets: port 0 for HTTP, no
// fixed ports for anything else, and --init, since many tests serve a
// directory no user was added to.
func serveArgs(dir string) []string {
	return []string{"serve", "--init", "--data", dir, "--http", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0"}
}

func startServer(t *testing.T, dir string, extraEnv ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, serveArgs(dir), extraEnv, strings.NewReader(""), pw, stderr)
		pw.CloseWithError(fmt.Errorf("run returned: %v", err))
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("server did not start: %v\nstderr:\n%s", err, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	_, addr, ok := strings.Cut(strings.TrimSpace(line), "serving HTTP on ")
	if !ok {
		cancel()
		t.Fatalf("unexpected first line %q", line)
	}
	s := &server{url: addr, stderr: stderr}
	var once sync.Once
	var stopErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(60 * time.Second): // catches a hang only
				stopErr = errors.New("server did not shut down in 60 s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { s.stop() })
	return s
}

func addUser(t *testing.T, dir, id string, role custody.Role) string {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"user", "add", "--data", dir, "--id", id, "--name", "Printed " + id, "--role", string(role)},
		nil, strings.NewReader(pw(id)+"\n"), &out, &errb)
	if err != nil {
		t.Fatalf("user add %s: %v\n%s", id, err, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	if !strings.HasPrefix(tok, custody.TokenPrefix) {
		t.Fatalf("user add printed %q, want a token", tok)
	}
	return tok
}

func pw(id string) string { return "pw-" + id + "-long-enough" }

type client struct {
	t     *testing.T
	base  string
	token string
}

func (c *client) do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		c.t.Fatalf("%s %s: non-JSON response %d: %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

func sg(user string, meaning custody.Meaning) map[string]any {
	return map[string]any{"user": user, "password": pw(user), "meaning": meaning}
}

var roles = map[string]custody.Role{"coord": custody.RoleCoordinator, "nurse1": custody.RoleNurse, "nurse2": custody.RoleNurse,
	"courier1": custody.RoleCourier, "mfg1": custody.RoleManufacturing, "qa1": custody.RoleQA}

// TestEndToEndJourney runs a whole vein-to-vein journey through the real
// run, on port 0, every step signed, with each refusal the API promises,
// then verifies the ledger offline with `coid verify`.
func TestEndToEndJourney(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tokens := map[string]string{}
	for id, role := range roles {
		tokens[id] = addUser(t, dir, id, role)
	}
	srv := startServer(t, dir)
	base := srv.url + "/api/v1"
	coord := &client{t, base, tokens["coord"]}
	nurse := &client{t, base, tokens["nurse1"]}

	if code, m := (&client{t, srv.url, ""}).do("GET", "/healthz", nil); code != 200 || m["status"] != "ok" {
		t.Fatalf("healthz %d %v", code, m)
	}
	code, m := coord.do("POST", "/chains", map[string]any{
		"patient": map[string]any{"name": "Maria Example", "birth_date": "1961-04-30", "mrn": "MRN-77123"},
		"product": "Autologous anti-CD19 CAR-T", "sites": map[string]any{"collection": "Metro Apheresis", "manufacturing": "CellWorks NJ", "treatment": "Metro BMT"}})
	if code != 201 {
		t.Fatalf("enroll: %d %v", code, m)
	}
	coi, _ := m["coi"].(string)
	display, _ := m["coi_display"].(string)
	if len(coi) != 15 || display != coi+" "+string(custody.COI(coi).K()) {
		t.Fatalf("coi %q display %q", coi, display)
	}
	rec := "/chains/" + coi + "/records"

	refusals := []struct {
		name   string
		c      *client
		method string
		path   string
		body   any
		status int
		code   string
	}{
		{"no token", &client{t, base, ""}, "GET", "/chains/" + coi, nil, 401, "unauthenticated"},
		{"unknown chain", nurse, "GET", "/chains/CHA999926999999", nil, 404, "not_found"},
		{"wrong K", nurse, "GET", "/chains/" + coi + "Q", nil, 400, "invalid"},
		{"malformed JSON", nurse, "POST", rec, `{"step":"collect",`, 400, "invalid"},
		{"out of order", nurse, "POST", rec, map[string]any{"step": "release", "data": map[string]any{}, "signatures": []any{sg("qa1", "approved")}}, 409, "conflict"},
		{"wrong role", nurse, "POST", rec, map[string]any{"step": "collect", "data": collectData(),
			"signatures": []any{sg("nurse1", "performed"), sg("courier1", "verified")}}, 403, "forbidden"},
		{"bad password", nurse, "POST", rec, map[string]any{"step": "collect", "data": collectData(),
			"signatures": []any{sg("nurse1", "performed"), map[string]any{"user": "nurse2", "password": "not-it", "meaning": "verified"}}}, 401, "unauthenticated"},
		{"nurse enrolls", nurse, "POST", "/chains", map[string]any{"patient": map[string]any{"name": "x", "birth_date": "1970-01-01", "mrn": "1"},
			"product": "p", "sites": map[string]any{"collection": "a", "manufacturing": "b", "treatment": "c"}}, 403, "forbidden"},
	}
	for _, r := range refusals {
		t.Run("refuse "+r.name, func(t *testing.T) {
			r.c.t = t
			code, m := r.c.do(r.method, r.path, r.body)
			e, _ := m["error"].(map[string]any)
			if code != r.status || e["code"] != r.code || e["message"] == "" {
				t.Fatalf("%d %v, want %d %s", code, m, r.status, r.code)
			}
		})
	}

	steps := []struct {
		step string
		data any
		sigs []any
	}{
		{"collect", collectData(), []any{sg("nurse1", "performed"), sg("nurse2", "verified")}},
		{"ship", map[string]any{"shipper": "SHP-0042", "profile": "cryogenic"}, []any{sg("nurse1", "handed-over"), sg("courier1", "received")}},
		{"receive", map[string]any{"seal_intact": true}, []any{sg("mfg1", "received")}},
		{"manufacture", map[string]any{"final_bags": 1}, []any{sg("mfg1", "performed")}},
		{"release", map[string]any{}, []any{sg("qa1", "approved")}},
		{"ship", map[string]any{"shipper": "SHP-0043", "profile": "cryogenic"}, []any{sg("mfg1", "handed-over"), sg("courier1", "received")}},
		{"receive", map[string]any{"seal_intact": true}, []any{sg("nurse1", "received")}},
		{"bedside-verify", map[string]any{"bag_code": "C1:" + coi + string(custody.COI(coi).K()) + ":FP-01", "wristband_code": "MRN-77123"},
			[]any{sg("nurse1", "verified"), sg("nurse2", "verified")}},
		{"infuse", map[string]any{}, []any{sg("nurse2", "performed")}},
	}
	for _, s := range steps {
		code, m := nurse.do("POST", rec, map[string]any{"step": s.step, "data": s.data, "signatures": s.sigs})
		if code != 201 {
			t.Fatalf("%s: %d %v", s.step, code, m)
		}
		raw, _ := json.Marshal(m)
		if bytes.Contains(raw, []byte(pw(s.sigs[0].(map[string]any)["user"].(string)))) || bytes.Contains(raw, []byte("pw-")) {
			t.Fatalf("%s: response echoes a password: %s", s.step, raw)
		}
	}
	code, m = nurse.do("GET", "/chains/"+coi, nil)
	if code != 200 || m["state"] != "infused" || len(m["records"].([]any)) != 10 {
		t.Fatalf("chain after infuse: %d state=%v", code, m["state"])
	}
	if code, m := nurse.do("POST", rec, map[string]any{"step": "ship", "data": map[string]any{"shipper": "S", "profile": "cryogenic"},
		"signatures": []any{sg("mfg1", "handed-over"), sg("courier1", "received")}}); code != 409 {
		t.Fatalf("step on a closed chain: %d %v", code, m)
	}
	for _, p := range []string{"/chains/" + coi + "/verify", "/verify"} {
		if code, m := nurse.do("GET", p, nil); code != 200 || m["ok"] != true || m["records"] != float64(10) {
			t.Fatalf("%s: %d %v", p, code, m)
		}
	}
	if code, m := nurse.do("GET", "/chains?state=infused", nil); code != 200 || m["count"] != float64(1) {
		t.Fatalf("list: %d %v", code, m)
	}
	logs := srv.stderr.String()
	if err := srv.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, secret := range []string{"Maria Example", "MRN-77123", "1961-04-30", "pw-", tokens["nurse1"]} {
		if strings.Contains(logs, secret) {
			t.Fatalf("log output contains %q", secret)
		}
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"verify", "--data", dir}, nil, nil, &out, &errb); err != nil {
		t.Fatalf("coid verify: %v\n%s", err, out.String())
	}
	if !strings.HasPrefix(out.String(), "OK: 10 records verified") {
		t.Fatalf("coid verify printed %q", out.String())
	}
}

func collectData() map[string]any {
	return map[string]any{"din": "A999926123456", "volume_ml": 180, "bags": 2,
		"started_at": "2026-11-20T08:00:00Z", "ended_at": "2026-11-20T11:00:00Z"}
}

// TestVerifyCommandNamesTamperedRecord changes one byte of a stored record
// on disk; `coid verify` must fail and name that record.
func TestVerifyCommandNamesTamperedRecord(t *testing.T) {
	dir := t.TempDir()
	tok := addUser(t, dir, "coord", custody.RoleCoordinator)
	srv := startServer(t, dir)
	c := &client{t, srv.url + "/api/v1", tok}
	for range 3 {
		if code, m := c.do("POST", "/chains", map[string]any{"patient": map[string]any{"name": "A B", "birth_date": "1980-01-01", "mrn": "9"},
			"product": "p", "sites": map[string]any{"collection": "a", "manufacturing": "b", "treatment": "c"}}); code != 201 {
			t.Fatalf("enroll %d %v", code, m)
		}
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, "coid.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("log"))
		k := []byte{0, 0, 0, 0, 0, 0, 0, 2}
		v := append([]byte(nil), b.Get(k)...)
		i := bytes.Index(v, []byte(`"product"`))
		v[i+12] ^= 0x20 // one letter of the product name changes case
		return b.Put(k, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err = run(context.Background(), []string{"verify", "--data", dir}, nil, nil, &out, &errb)
	if !errors.Is(err, errVerifyFailed) || exitCode(err) != 3 {
		t.Fatalf("verify of a tampered ledger: %v (exit %d)", err, exitCode(err))
	}
	if !strings.Contains(out.String(), "record 2:") {
		t.Fatalf("verify did not name record 2: %q", out.String())
	}
}

// TestVerifyCommandNamesTamperedChainIndex changes the chains bucket on
// disk, which no hash covers, keeping each chain's record count and head:
// `coid verify` must still fail and name the chain.
func TestVerifyCommandNamesTamperedChainIndex(t *testing.T) {
	tests := []struct {
		name   string
		change func(entry []byte) []byte
		want   string
	}{
		// The entry ends with its one record's position, a one-byte delta:
		// chain 1's enroll is record 1; make it name chain 2's, record 2.
		{"position of another chain's record", func(v []byte) []byte { v[len(v)-1] = 2; return v }, "record 1: chain %s index gives record 2"},
		// The state is a length-prefixed string: same length, other state.
		{"state changed", func(v []byte) []byte { return bytes.Replace(v, []byte("\x08enrolled"), []byte("\x08released"), 1) }, `record 1: chain %s summary says it is "released"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tok := addUser(t, dir, "coord", custody.RoleCoordinator)
			srv := startServer(t, dir)
			c := &client{t, srv.url + "/api/v1", tok}
			var cois []string
			for range 3 {
				code, m := c.do("POST", "/chains", map[string]any{"patient": map[string]any{"name": "A B", "birth_date": "1980-01-01", "mrn": "9"},
					"product": "p", "sites": map[string]any{"collection": "a", "manufacturing": "b", "treatment": "c"}})
				if code != 201 {
					t.Fatalf("enroll %d %v", code, m)
				}
				cois = append(cois, fmt.Sprint(m["coi"]))
			}
			if err := srv.stop(); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(filepath.Join(dir, "coid.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket([]byte("chains"))
				v := tt.change(append([]byte(nil), b.Get([]byte(cois[0]))...))
				return b.Put([]byte(cois[0]), v)
			})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			err = run(context.Background(), []string{"verify", "--data", dir}, nil, nil, &out, &errb)
			if !errors.Is(err, errVerifyFailed) || exitCode(err) != 3 {
				t.Fatalf("verify of a tampered chain index: %v (exit %d); printed %q", err, exitCode(err), out.String())
			}
			if want := fmt.Sprintf(tt.want, cois[0]); !strings.Contains(out.String(), want) {
				t.Fatalf("verify printed %q, want %q", out.String(), want)

			}
		})
	}
}

func TestDataDirectoryInUse(t *testing.T) {
	dir := t.TempDir()
	startServer(t, dir)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"user", "add", "--data", dir, "--id", "x", "--name", "X", "--role", "nurse"},
		nil, strings.NewReader("long-password\n"), &out, &errb)
	if !errors.Is(err, custody.ErrInUse) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("user add while serving: %v", err)
	}
	if err := run(context.Background(), []string{"verify", "--data", dir}, nil, nil, &out, &errb); !errors.Is(err, custody.ErrInUse) {
		t.Fatalf("verify while serving: %v", err)
	}
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		args  []string
		env   []string
		stdin string
		exit  int
		out   string
	}{
		{"no command", nil, nil, "", 2, ""},
		{"unknown command", []string{"frobnicate"}, nil, "", 2, ""},
		{"version", []string{"version"}, nil, "", 0, "coid "},
		{"bad FIN flag", []string{"serve", "--data", dir, "--fin", "O1234"}, nil, "", 2, ""},
		{"bad FIN env", []string{"serve", "--data", dir}, []string{"COID_FIN=a9999"}, "", 2, ""},
		{"bad log level", []string{"serve", "--data", dir, "--log-level", "loud"}, nil, "", 2, ""},
		{"bad access SLA flag", []string{"serve", "--data", dir, "--access-sla-emergency", "0s"}, nil, "", 2, ""},
		{"bad access SLA env", []string{"serve", "--data", dir}, []string{"COID_ACCESS_SLA_STANDARD=-1h"}, "", 2, ""},
		{"user add without password", []string{"user", "add", "--data", dir, "--id", "n", "--name", "N", "--role", "nurse"}, nil, "", 2, ""},
		{"user add bad role", []string{"user", "add", "--data", dir, "--id", "n", "--name", "N", "--role", "surgeon"}, nil, "long-password\n", 1, ""},
		{"user add short password", []string{"user", "add", "--data", dir, "--id", "n", "--name", "N", "--role", "nurse"}, nil, "short\n", 1, ""},
		{"user add", []string{"user", "add", "--data", dir, "--id", "n1", "--name", "N One", "--role", "nurse"}, nil, "long-password\n", 0, custody.TokenPrefix},
		{"user add again", []string{"user", "add", "--data", dir, "--id", "n1", "--name", "N One", "--role", "nurse"}, nil, "long-password\n", 1, ""},
		{"user list", []string{"user", "list", "--data", dir}, nil, "", 0, "n1"},
		{"verify empty", []string{"verify", "--data", dir}, nil, "", 0, "OK: 0 records"},
		{"verify missing dir", []string{"verify", "--data", filepath.Join(dir, "nope")}, nil, "", 1, ""},
		{"env data dir", []string{"user", "list"}, []string{"COID_DATA=" + dir}, "", 0, "n1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, tt.env, strings.NewReader(tt.stdin), &out, &errb)
			got := 0
			if err != nil {
				got = exitCode(err)
			}
			if got != tt.exit || !strings.Contains(out.String(), tt.out) {
				t.Fatalf("exit %d (%v), stdout %q; want exit %d containing %q", got, err, out.String(), tt.exit, tt.out)
			}
			if strings.Contains(out.String()+errb.String(), "long-password") {
				t.Fatal("a password was echoed")
			}
		})
	}
}

// TestHotBackup copies the data file from a running service; the copy
// verifies offline with the same head as the live ledger.
func TestHotBackup(t *testing.T) {
	dir := t.TempDir()
	coord := addUser(t, dir, "coord", custody.RoleCoordinator)
	qa := addUser(t, dir, "qa1", custody.RoleQA)
	srv := startServer(t, dir)
	c := &client{t, srv.url + "/api/v1", coord}
	for range 2 {
		if code, m := c.do("POST", "/chains", map[string]any{"patient": map[string]any{"name": "A B", "birth_date": "1980-01-01", "mrn": "9"},
			"product": "p", "sites": map[string]any{"collection": "a", "manufacturing": "b", "treatment": "c"}}); code != 201 {
			t.Fatalf("enroll %d %v", code, m)
		}
	}
	_, live := c.do("GET", "/verify", nil)
	get := func(tok string) *http.Response {
		req, _ := http.NewRequest("GET", srv.url+"/api/v1/backup", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := get(coord); resp.StatusCode != 403 {
		t.Fatalf("coordinator backup: %d", resp.StatusCode)
	}
	resp := get(qa)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("backup: %d", resp.StatusCode)
	}
	copyDir := t.TempDir()
	b, _ := io.ReadAll(resp.Body)
	if err := os.WriteFile(filepath.Join(copyDir, "coid.db"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"verify", "--data", copyDir}, nil, nil, &out, &errb); err != nil {
		t.Fatalf("verify backup: %v %s", err, out.String())
	}
	if !strings.Contains(out.String(), "OK: 2 records") || !strings.Contains(out.String(), live["head"].(string)) {
		t.Fatalf("backup verify %q, live head %v", out.String(), live["head"])
	}
	old := fmt.Sprintf("2:%s", live["head"])
	if !strings.Contains(out.String(), "checkpoint "+old) {
		t.Fatalf("verify prints no checkpoint: %q", out.String())
	}

	// The ledger grows; a checkpoint is taken of it. The old backup, put
	// back in its place (a rollback), verifies on its own, but not
	// against the later checkpoint: that is what checkpoints are for.
	if code, m := c.do("POST", "/chains", map[string]any{"patient": map[string]any{"name": "C D", "birth_date": "1981-01-01", "mrn": "10"},
		"product": "p", "sites": map[string]any{"collection": "a", "manufacturing": "b", "treatment": "c"}}); code != 201 {
		t.Fatalf("enroll %d %v", code, m)
	}
	_, now := c.do("GET", "/verify?checkpoint="+old, nil)
	if now["ok"] != true || now["records"] != float64(3) {
		t.Fatalf("live ledger against its earlier checkpoint: %v", now)
	}
	later := fmt.Sprintf("3:%s", now["head"])
	if code, m := c.do("GET", "/verify?checkpoint=3:nothex", nil); code != 400 {
		t.Fatalf("malformed checkpoint: %d %v", code, m)
	}
	out.Reset()
	err := run(context.Background(), []string{"verify", "--data", copyDir, "--checkpoint", old, "--checkpoint", later}, nil, nil, &out, &errb)
	if exitCode(err) != 3 || !strings.Contains(out.String(), "record 3") || !strings.Contains(out.String(), "cut back") {
		t.Fatalf("rolled-back copy against a later checkpoint: %v\n%s", err, out.String())
	}
	wrong := fmt.Sprintf("2:%s", now["head"]) // record 2 is not that one
	out.Reset()
	if err := run(context.Background(), []string{"verify", "--data", copyDir, "--checkpoint", wrong}, nil, nil, &out, &errb); exitCode(err) != 3 ||
		!strings.Contains(out.String(), "rewritten") {
		t.Fatalf("copy against a checkpoint it never held: %v\n%s", err, out.String())
	}
	if err := run(context.Background(), []string{"verify", "--data", copyDir, "--checkpoint", "2:xyz"}, nil, nil, &out, &errb); exitCode(err) != 2 {
		t.Fatalf("malformed --checkpoint: %v", err)
	}
}

// TestVerifyOfADamagedFile: `coid verify` on a ledger cut short (an
// interrupted copy) says the file is damaged and exits non-zero, without a
// panic's stack trace.
func TestVerifyOfADamagedFile(t *testing.T) {
	dir := t.TempDir()
	addUser(t, dir, "qa9", custody.RoleQA)
	p := filepath.Join(dir, "coid.db")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 2 * 4096; i < len(b); i += 4096 {
		copy(b[i:], bytes.Repeat([]byte{0xA5}, 64))
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err = run(context.Background(), []string{"verify", "--data", dir}, nil, nil, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "damaged") || exitCode(err) != 3 || !strings.Contains(out.String(), "FAILED") {
		t.Fatalf("verify of a damaged file: %v (exit %d)", err, exitCode(err))
	}
}

// TestOfflineUserCommandsCreateNothingByMistake: a mistyped --data must
// not start an empty ledger (user list would then show no users and exit
// 0), and a refused user add creates nothing.
func TestOfflineUserCommandsCreateNothingByMistake(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	for _, args := range [][]string{
		{"user", "list", "--data", dir},
		{"user", "unlock", "--data", dir, "--id", "nurse1"},
		{"user", "token", "--data", dir, "--id", "nurse1"},
		{"user", "add", "--data", dir, "--id", "nurse1", "--name", "N One", "--role", "surgeon"},
		{"user", "add", "--data", dir, "--id", "bad id", "--name", "N One", "--role", "nurse"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, nil, strings.NewReader("a-long-enough-password\n"), &out, &errb)
		if err == nil || exitCode(err) == 0 {
			t.Errorf("%v: %v, want a refusal", args, err)
		}
		if _, serr := os.Stat(dir); serr == nil {
			t.Fatalf("%v created %s", args, dir)
		}
	}
}

// TestShutdownLetsRequestsInFlightFinish: a signed step being recorded
// when the service is told to stop is answered (201), not failed with an
// internal error; an open alert stream is ended rather than waited for.
//
// No wall clock: each request is sent with Expect: 100-continue, so its
// body is sent, and the test learns of it, only once the handler reads it;
// the stop starts when every request is in a handler. The signer has the
// cheapest argon2id parameters, and the only time bound (60 s) catches a
// hang.
func TestShutdownLetsRequestsInFlightFinish(t *testing.T) {
	dir := t.TempDir()
	coord := &client{t: t, token: addUser(t, dir, "coord9", custody.RoleCoordinator)}
	nurse := &client{t: t, token: addFastUser(t, dir, "nurse9", custody.RoleNurse)}
	srv := startServer(t, dir)
	coord.base, nurse.base = srv.url, srv.url
	code, m := coord.do(http.MethodPost, "/api/v1/chains", map[string]any{
		"patient": map[string]any{"name": "Pat Ient", "birth_date": "1970-01-02", "mrn": "MRN-1"}, "product": "CAR-T",
		"sites": map[string]any{"collection": "A", "manufacturing": "B", "treatment": "C"}})
	if code != http.StatusCreated {
		t.Fatalf("enroll: %d %v", code, m)
	}
	coi := m["coi"].(string)
	// An alert stream stays open until the server ends it.
	req, _ := http.NewRequest(http.MethodGet, srv.url+"/api/v1/alerts/stream", nil)
	req.Header.Set("Authorization", "Bearer "+nurse.token)
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	streamEnded := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, stream.Body)
		streamEnded <- err
	}()
	// The transport sends a body only after the server's 100 Continue,
	// which it sends when the handler first reads the body; never on a
	// timer.
	tr := &http.Transport{ExpectContinueTimeout: time.Hour}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	const n = 3
	codes := make(chan int, n)
	inHandler := make(chan struct{}, n)
	for i := range n {
		body, _ := json.Marshal(map[string]any{"step": "note", "data": map[string]any{"text": fmt.Sprint("note ", i)},
			"signatures": []map[string]any{{"user": "nurse9", "password": pw("nurse9"), "meaning": "authored"}}})
		req, _ := http.NewRequest(http.MethodPost, srv.url+"/api/v1/chains/"+coi+"/records",
			&signalReader{r: bytes.NewReader(body), read: inHandler})
		req.ContentLength = int64(len(body))
		req.Header.Set("Authorization", "Bearer "+nurse.token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Expect", "100-continue")
		go func() {
			resp, err := hc.Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	for range n {
		select {
		case <-inHandler:
		case <-time.After(60 * time.Second):
			t.Fatal("requests not in a handler after 60 s: hung")
		}
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	for range n {
		if c := <-codes; c != http.StatusCreated {
			t.Errorf("a request in flight at shutdown got %d, want 201", c)
		}
	}
	select {
	case <-streamEnded:
	case <-time.After(60 * time.Second):
		t.Fatal("the alert stream was not ended by the shutdown")
	}
	if log := srv.stderr.String(); strings.Contains(log, "cut off") {
		t.Errorf("the shutdown waited for the stream and cut requests off:\n%s", log)
	}
}

// signalReader is a request body that sends on read at its first Read:
// with Expect: 100-continue, when the server's handler asked for it.
type signalReader struct {
	r    io.Reader
	read chan<- struct{}
	once sync.Once
}

func (s *signalReader) Read(p []byte) (int, error) {
	s.once.Do(func() { s.read <- struct{}{} })
	return s.r.Read(p)
}

// addFastUser adds a user with the cheapest argon2id parameters, straight
// to the store of dir (no server may hold it), and returns the token. A
// signature check then costs microseconds, even under -race on a busy
// machine.
func addFastUser(t *testing.T, dir, id string, role custody.Role) string {
	t.Helper()
	store, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc, err := custody.NewService(custody.Config{Store: store, Hasher: passwd.Fast(), Logger: slog.New(slog.DiscardHandler),
		Now: time.Now, FIN: "A9999"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := svc.AddUser(context.Background(), id, "Printed "+id, role, pw(id))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
