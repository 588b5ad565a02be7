package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
)

func keyCmd(t *testing.T, dir string, sub string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"key", sub, "--data", dir}, nil, strings.NewReader(""), &out, &errb); err != nil {
		t.Fatalf("key %s: %v\n%s", sub, err, errb.String())
	}
	return out.String()
}

func getCheckpoint(t *testing.T, s *server, token string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/log/checkpoint", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("checkpoint: %d %s", resp.StatusCode, b)
	}
	return b
}

// TestKeyCommands: the ledger comes with a checkpoint key (0600, never
// printed); the service signs checkpoints that `coid key show`'s verifier
// key opens; after `coid key rotate` the service signs with the new key
// and the checkpoints of the old one still open with `coid key export`'s
// keys.
func TestKeyCommands(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"key", "show", "--data", dir}, nil, strings.NewReader(""), &out, &errb); err == nil {
		t.Fatal("key show without a ledger succeeded")
	}
	tok := addUser(t, dir, "nurse1", custody.RoleNurse)
	priv, err := os.ReadFile(filepath.Join(dir, verifiable.KeyFile))
	if err != nil {
		t.Fatal("no key made with the ledger:", err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, verifiable.KeyFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode())
	}
	v1 := strings.TrimSpace(keyCmd(t, dir, "show"))

	s := startServer(t, dir, "COID_CHECKPOINT_INTERVAL=100ms")
	old := getCheckpoint(t, s, tok)
	if c, err := verifiable.Open(old, v1); err != nil || c.Size != 0 {
		t.Fatalf("checkpoint %q with %s: %+v %v", old, v1, c, err)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	rot := keyCmd(t, dir, "rotate")
	v2 := strings.TrimSpace(keyCmd(t, dir, "show"))
	if v2 == v1 || !strings.Contains(rot, v1) || !strings.Contains(rot, v2) {
		t.Fatalf("rotate printed %q; show %q then %q", rot, v1, v2)
	}
	export := keyCmd(t, dir, "export")
	var keys []string
	for _, line := range strings.Split(strings.TrimSpace(export), "\n") {
		f := strings.Fields(line)
		keys = append(keys, f[len(f)-1])
	}
	s = startServer(t, dir, "COID_CHECKPOINT_INTERVAL=100ms")
	// Sign one now: the ledger has not grown since the restart.
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/proofs/checkpoint", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("sign: %v %v", resp, err)
	}
	newer := getCheckpoint(t, s, tok)
	if _, err := verifiable.Open(newer, v2); err != nil {
		t.Fatalf("after rotation the checkpoint does not open with the new key: %v\n%s", err, newer)
	}
	for name, cp := range map[string][]byte{"old": old, "new": newer} {
		if _, err := verifiable.Open(cp, keys...); err != nil {
			t.Errorf("%s checkpoint with the exported keys: %v", name, err)
		}
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	// The private key is nowhere in what the commands print or log.
	secret := strings.TrimSpace(string(priv))
	// PRIVATE+KEY+name+hash+data: the data is base64 and may itself hold '+'.
	parts := strings.SplitN(secret, "+", 5)
	if len(parts) != 5 || len(parts[4]) < 40 {
		t.Fatalf("the private key file does not hold a signed-note private key")
	}
	secret = parts[4]
	for _, text := range []string{rot, export, v1, v2, s.stderr.String()} {
		if strings.Contains(text, secret) {
			t.Fatal("the private key was printed")
		}
	}
}
