package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
)

const keyHelp = `The checkpoint signing key signs the ledger's checkpoints (C2SP
tlog-checkpoint in a C2SP signed note, Ed25519). It is made with the ledger
and kept in --data as checkpoint.key (mode 0600); it is never printed or
logged. What auditors need is its verifier key, which is public.

  show    prints the active verifier key (signed-note verifier format).
  rotate  makes a new key; the old private key is destroyed and its
          verifier key kept as retired, so the checkpoints it signed
          still verify. Restart coid serve to sign with the new key.
  export  prints every verifier key, active and retired, one a line, for
          auditors who check checkpoints signed before a rotation.
`

// runKey runs "coid key show|rotate|export" on the keys in --data.
func runKey(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "show" && args[0] != "rotate" && args[0] != "export") {
		return usagef("key: want show, rotate or export")
	}
	var s settings
	fs := newFlags("key "+args[0], env, stderr, &s)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	keys, err := verifiable.LoadKeys(s.data)
	if errors.Is(err, custody.ErrNotFound) {
		// A ledger older than its key gets one now.
		if !hasLedger(s) {
			return fmt.Errorf("key %s: no ledger in %s (check --data or COID_DATA): %w", args[0], s.data, custody.ErrNotFound)
		}
		keys, err = verifiable.OpenKeys(s.data, rand.Reader)
	}
	if err != nil {
		return fmt.Errorf("key %s: %w", args[0], err)
	}
	switch args[0] {
	case "show":
		fmt.Fprintln(stdout, keys.Verifier())
	case "rotate":
		old := keys.Verifier()
		if err := keys.Rotate(rand.Reader, time.Now()); err != nil {
			return fmt.Errorf("key rotate: %w", err)
		}
		fmt.Fprintf(stdout, "retired %s\nactive  %s\nRestart coid serve to sign with the new key.\n", old, keys.Verifier())
	case "export":
		fmt.Fprint(stdout, keys.Export())
	}
	return nil
}

// envDuration returns the duration in env's key, def if it is unset, and
// -1 (which the flag's check refuses) if it is not a duration.
func envDuration(env []string, key string, def time.Duration) time.Duration {
	v := getenv(env, key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return -1
	}
	return d
}
