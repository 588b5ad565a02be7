package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/verifiable"
)

const keyHelp = `The checkpoint signing key signs the ledger's checkpoints (C2SP
tlog-checkpoint in a C2SP signed note, Ed25519). It is made with the ledger
and kept in --data as checkpoint.key (mode 0600); it is never printed or
logged. What auditors need is its verifier key, which is public.

Several instances on one PostgreSQL store sign one log, so they sign with
one key: make it once with "coid key create --out FILE", hand the file to
every instance as a secret, and name it with --checkpoint-key FILE
(COID_CHECKPOINT_KEY_FILE). The database records the log's verifier key
at the first checkpoint; an instance with another key refuses to start.

  show    prints the active verifier key (signed-note verifier format).
  rotate  makes a new key; the old private key is destroyed and its
          verifier key kept as retired, so the checkpoints it signed
          still verify. Restart coid serve to sign with the new key.
          With --store, the database's record of the log's key is
          replaced too. (Not for a --checkpoint-key file.)
  export  prints every verifier key, active and retired, one a line, for
          auditors who check checkpoints signed before a rotation.
  create  writes a new signing key to --out (mode 0600; refused if the
          file exists) for --checkpoint-key, named --origin (default
          coid/ and 16 random hex digits), and prints its verifier key.
`

// runKey runs "coid key show|rotate|export" on the keys in --data (or the
// --checkpoint-key file), and "coid key create".
func runKey(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "create" {
		return runKeyCreate(args[1:], env, stdout, stderr)
	}
	if len(args) == 0 || (args[0] != "show" && args[0] != "rotate" && args[0] != "export") {
		return usagef("key: want show, rotate, export or create")
	}
	var s settings
	fs := newFlags("key "+args[0], env, stderr, &s)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	var keys *verifiable.Keys
	var err error
	if s.checkpointKey != "" {
		keys, err = verifiable.LoadKeyFile(s.checkpointKey)
	} else {
		keys, err = verifiable.LoadKeys(s.data)
	}
	if errors.Is(err, custody.ErrNotFound) && s.checkpointKey == "" {
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
		var pg *pgstore.Store
		if s.store != "" && s.checkpointKey == "" {
			// The database records the log's key: it must be this one,
			// and becomes the new one.
			if pg, err = pgstore.Open(ctx, s.store, pgstore.Options{}); err != nil {
				return fmt.Errorf("key rotate: --store %s: %w", redactedURL(s.store), err)
			}
			defer pg.Close()
			if err := pg.BindLogKey(ctx, old); err != nil {
				return fmt.Errorf("key rotate: %w", err)
			}
		}
		if err := keys.Rotate(rand.Reader, time.Now()); err != nil {
			return fmt.Errorf("key rotate: %w", err)
		}
		if pg != nil {
			if err := pg.ReplaceLogKey(ctx, old, keys.Verifier()); err != nil {
				return fmt.Errorf("key rotate: the key in %s was rotated, but the database still records the old one: %w", s.data, err)
			}
		}
		fmt.Fprintf(stdout, "retired %s\nactive  %s\nRestart coid serve to sign with the new key.\n", old, keys.Verifier())
	case "export":
		fmt.Fprint(stdout, keys.Export())
	}
	return nil
}

// runKeyCreate runs "coid key create --out FILE [--origin NAME]": a new
// signing key in a file of its own, for --checkpoint-key.
func runKeyCreate(args, env []string, stdout, stderr io.Writer) error {
	var s settings
	fs := newFlags("key create", env, stderr, &s)
	out := fs.String("out", "", "file to write the new signing key to (mode 0600); must not exist")
	origin := fs.String("origin", "", "the log's origin, the name of its key; default coid/ and 16 random hex digits")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("key create: give --out FILE, the new key file")
	}
	name := *origin
	if name == "" {
		var err error
		if name, err = verifiable.DefaultOrigin(rand.Reader); err != nil {
			return fmt.Errorf("key create: %w", err)
		}
	}
	keys, err := verifiable.CreateKeyFile(*out, name, rand.Reader)
	if errors.Is(err, custody.ErrInvalid) {
		return usagef("key create: %v", err)
	}
	if err != nil {
		return fmt.Errorf("key create: %w", err)
	}
	fmt.Fprintln(stdout, keys.Verifier())
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
