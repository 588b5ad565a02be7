package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMQTTAccountsEndToEnd: accounts written with coid mqtt-user, a coid
// serve whose embedded broker requires them, and coid simulate refused
// without them and stored with a gateway's.
func TestMQTTAccountsEndToEnd(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mqtt-accounts")
	mqttUser := func(stdin string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"mqtt-user"}, args...), nil, strings.NewReader(stdin), &out, &errb)
		return out.String() + errb.String(), err
	}
	const gwPass = "gateway password, long"
	if out, err := mqttUser(gwPass+"\n", "add", "--file", file, "--user", "gw-1", "--shippers", "*"); err != nil || !strings.Contains(out, "added gw-1") {
		t.Fatalf("add gateway: %v\n%s", err, out)
	}
	if _, err := mqttUser("shipper password, long\n", "add", "--file", file, "--user", "SHP-SIM-0009"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		stdin string
		args  []string
	}{
		{"another password, long\n", []string{"add", "--file", file, "--user", "gw-1"}},                       // named twice
		{"short\n", []string{"add", "--file", file, "--user", "gw-2"}},                                        // password too short
		{"a password, long enough\n", []string{"add", "--file", file, "--user", "bad user"}},                  // not an ID
		{"a password, long enough\n", []string{"add", "--file", file, "--user", "gw-3", "--shippers", "a b"}}, // bad shipper
		{"a password, long enough\n", []string{"add", "--user", "gw-4"}},                                      // no file
	} {
		if out, err := mqttUser(bad.stdin, bad.args...); err == nil || exitCode(err) != 2 {
			t.Errorf("mqtt-user %v: %v\n%s", bad.args, err, out)
		}
	}
	out, err := mqttUser("", "list", "--file", file)
	if err != nil || out != "gw-1\t*\nSHP-SIM-0009\tSHP-SIM-0009\n" {
		t.Fatalf("list: %v\n%q", err, out)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "password") || strings.Count(string(raw), "$argon2id$") != 2 {
		t.Fatalf("credentials file:\n%s", raw)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v", st.Mode())
	}

	dir := filepath.Join(t.TempDir(), "data")
	tok := addUser(t, dir, "qa9", "qa")
	srv := startServer(t, dir, "COID_MQTT_AUTH="+file)
	addr := brokerAddr(t, srv)
	if !strings.Contains(srv.stderr.String(), "authenticated=true") {
		t.Fatalf("broker started without accounts:\n%s", srv.stderr.String())
	}
	sim := func(extra ...string) error {
		var out, errb bytes.Buffer
		args := append([]string{"simulate", "--mqtt-url", "tcp://" + addr, "--shippers", "2", "--rate", "20", "--count", "20"}, extra...)
		return run(context.Background(), args, nil, nil, &out, &errb)
	}
	for _, creds := range [][]string{nil, {"--mqtt-username", "gw-1", "--mqtt-password", "wrong password"}} {
		if err := sim(creds...); err == nil || !strings.Contains(strings.ToLower(err.Error()), "not authorized") {
			t.Fatalf("simulate with credentials %q: %v", creds, err)
		}
	}
	if err := sim("--mqtt-username", "gw-1", "--mqtt-password", gwPass); err != nil {
		t.Fatalf("simulate as the gateway: %v", err)
	}
	// A shipper's account publishing for other shippers: the broker drops
	// the connection and simulate says so instead of counting the
	// messages as delivered; nothing of them is stored.
	if err := sim("--mqtt-username", "SHP-SIM-0009", "--mqtt-password", "shipper password, long", "--id-prefix", "SHP-X"); err == nil ||
		!strings.Contains(err.Error(), "dropped") {
		t.Fatalf("simulate for shippers the account may not publish: %v", err)
	}
	c := &client{t, srv.url + "/api/v1", tok}
	for _, id := range []string{"SHP-SIM-0001", "SHP-SIM-0002", "SHP-X-0001"} {
		code, m := c.do("GET", "/shippers/"+id+"/readings", nil)
		if n := len(m["readings"].([]any)); code != 200 || (n == 0) != (id == "SHP-X-0001") {
			t.Fatalf("%s readings: %d %v", id, code, m)
		}
	}
	// A new shipper's account, added while the service runs, applies on
	// SIGHUP; a broken file is refused and the old accounts stay.
	sim1 := func(user, pass string) error {
		var out, errb bytes.Buffer
		return run(context.Background(), []string{"simulate", "--mqtt-url", "tcp://" + addr, "--shippers", "1", "--id-prefix", "SHP-NEW",
			"--rate", "20", "--count", "5", "--mqtt-username", user, "--mqtt-password", pass}, nil, nil, &out, &errb)
	}
	if err := sim1("SHP-NEW-0001", "new shipper password"); err == nil {
		t.Fatal("an account not yet added was let in")
	}
	if _, err := mqttUser("new shipper password\n", "add", "--file", file, "--user", "SHP-NEW-0001"); err != nil {
		t.Fatal(err)
	}
	hup := func(want string) {
		t.Helper()
		n := strings.Count(srv.stderr.String(), want)
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for strings.Count(srv.stderr.String(), want) == n {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log after SIGHUP:\n%s", want, srv.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	hup("MQTT accounts reloaded")
	if err := sim1("SHP-NEW-0001", "new shipper password"); err != nil {
		t.Fatalf("the account added and reloaded: %v", err)
	}
	good, _ := os.ReadFile(file)
	if err := os.WriteFile(file, append(good, "garbage line\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	hup("MQTT accounts not reloaded")
	if err := sim1("SHP-NEW-0001", "new shipper password"); err != nil {
		t.Fatalf("after a refused reload: %v", err)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}

	// Without accounts the broker stays on loopback; --mqtt-auth is for
	// the embedded broker only.
	for _, args := range [][]string{
		{"--mqtt-listen", "0.0.0.0:0"},
		{"--mqtt-auth", file, "--mqtt-url", "tcp://127.0.0.1:1"},
		{"--mqtt-auth", filepath.Join(t.TempDir(), "missing")},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"serve", "--init", "--data", filepath.Join(t.TempDir(), "d"), "--http", "127.0.0.1:0"}, args...),
			nil, strings.NewReader(""), &out, &errb)
		if err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("serve %v: %v", args, err)
		}
	}
}

// TestServeMQTTOverTLS: coid serve's embedded broker with a certificate
// speaks MQTT over TLS; coid simulate with the CA stores readings through
// it, and plain MQTT to the same port gets nowhere. Beyond loopback,
// accounts without TLS are refused.
func TestServeMQTTOverTLS(t *testing.T) {
	tmp := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, tmp, "broker")
	accts := filepath.Join(tmp, "accounts")
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"mqtt-user", "add", "--file", accts, "--user", "gw-tls", "--shippers", "*"}, nil,
		strings.NewReader("gateway over tls\n"), &out, &errb); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "data")
	tok := addUser(t, dir, "qa9", "qa")
	srv := startServer(t, dir, "COID_MQTT_AUTH="+accts, "COID_MQTT_TLS_CERT="+certFile, "COID_MQTT_TLS_KEY="+keyFile)
	addr := brokerAddr(t, srv)
	if !strings.Contains(srv.stderr.String(), "tls=true") {
		t.Fatalf("broker without TLS:\n%s", srv.stderr.String())
	}
	sim := func(url string, extra ...string) error {
		var out, errb bytes.Buffer
		args := append([]string{"simulate", "--mqtt-url", url, "--shippers", "1", "--id-prefix", "SHP-TLS", "--rate", "20", "--count", "10",
			"--mqtt-username", "gw-tls", "--mqtt-password", "gateway over tls"}, extra...)
		return run(context.Background(), args, nil, nil, &out, &errb)
	}
	if err := sim("tcp://" + addr); err == nil {
		t.Fatal("plain MQTT accepted on the TLS port")
	}
	if err := sim("ssl://"+addr, "--mqtt-ca", certFile); err != nil {
		t.Fatalf("simulate over TLS: %v", err)
	}
	c := &client{t, srv.url + "/api/v1", tok}
	if code, m := c.do("GET", "/shippers/SHP-TLS-0001/readings", nil); code != 200 || len(m["readings"].([]any)) != 10 {
		t.Fatalf("readings over TLS: %d %v", code, m)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--mqtt-listen", "0.0.0.0:0", "--mqtt-auth", accts},                                   // accounts without TLS
		{"--mqtt-listen", "0.0.0.0:0", "--mqtt-tls-cert", certFile, "--mqtt-tls-key", keyFile}, // TLS without accounts
		{"--mqtt-tls-cert", certFile},                                                          // no key
		{"--mqtt-tls-cert", keyFile, "--mqtt-tls-key", keyFile},                                // not a certificate
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"serve", "--init", "--data", filepath.Join(t.TempDir(), "d"), "--http", "127.0.0.1:0"}, args...),
			nil, strings.NewReader(""), &out, &errb)
		if err == nil || exitCode(err) != 2 {
			t.Fatalf("serve %v: %v", args, err)
		}
	}
}
