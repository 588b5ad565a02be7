package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/verifiable"
)

// stores is the storage the commands work with, as the custody interfaces:
// openStores is the one place that knows the backends (bbolt, PostgreSQL),
// so every other function takes the interface it needs.
type stores struct {
	// ledger is the ledger, chains, PHI and users (custody.Service's).
	ledger custody.Store
	// telemetry is the readings and the quarantine.
	telemetry custody.TelemetryStore
	// checkFile checks what the backend keeps beside the ledger (users,
	// readings, the quarantine) and its own structure, for coid verify.
	checkFile func(ctx context.Context) error
	// checkBesideLedger is checkFile for coid verify, which verifies
	// every record against its hash beside it and reports that first: a
	// backend may then leave out what that verification does; nil for
	// checkFile.
	checkBesideLedger func(ctx context.Context) error
	// close releases the store; nothing may use it afterwards.
	close func() error
	// tree is the ledger's Merkle tree and signed checkpoints, and keys
	// the checkpoint signing keys (nil when opened read-only).
	tree verifiable.Source
	keys *verifiable.Keys
	// keyErr is why keys may not sign this store's checkpoints: on
	// PostgreSQL, a key other than the log's (pgstore.ErrLogKey). serve
	// refuses to start with it; the store itself refuses every
	// checkpoint signed with such a key.
	keyErr error
	// cosignatures keeps the witnesses' cosignatures of the checkpoints.
	cosignatures custody.CosignatureStore
	// leadership elects the instance that runs the excursion monitor
	// among those sharing the store; nil when only this process can open
	// it (bbolt).
	leadership custody.Leadership
	// shared keeps the web sessions and sign-in throttle of the instances
	// sharing the store; nil when only this process can open it (bbolt),
	// which keeps them in memory.
	shared custody.SharedState
	// bus carries alerts to the instances sharing the store; nil when
	// only this process can open it (bbolt).
	bus custody.Broadcaster
}

// storeOptions says how openStores opens the data directory.
type storeOptions struct {
	// readOnly opens the data for reading only (offline commands that
	// change nothing), leaving a running service's writes alone.
	readOnly bool
	// logger hears of what the store does on its own; nil discards.
	logger *slog.Logger
	// url is --store: empty for the bbolt file in the data directory.
	url string
	// cmd names the command, for the errors.
	cmd string
	// keyFile is --checkpoint-key: the file of the log's signing key;
	// empty for the key in the data directory.
	keyFile string
}

// openStores opens the store in the data directory dir, or the one at
// opt.url.
func openStores(dir string, opt storeOptions) (stores, error) {
	if err := checkStoreURL(opt.cmd, opt.url); err != nil {
		return stores{}, err
	}
	if opt.keyFile != "" && opt.url == "" && !opt.readOnly {
		return stores{}, usagef("--checkpoint-key (COID_CHECKPOINT_KEY_FILE) is for instances sharing a --store postgres://; "+
			"with the bbolt file the key is %s in --data", verifiable.KeyFile)
	}
	var out stores
	if opt.url != "" {
		st, err := pgstore.Open(context.Background(), opt.url, pgstore.Options{Logger: opt.logger})
		if err != nil {
			return stores{}, fmt.Errorf("--store %s: %w", redactedURL(opt.url), err)
		}
		out = stores{ledger: st, telemetry: st, checkFile: st.Check, close: st.Close, tree: st, cosignatures: st, leadership: st, shared: st, bus: st}
	} else {
		st, err := boltstore.Open(dir, boltstore.Options{ReadOnly: opt.readOnly, Logger: opt.logger})
		if err != nil {
			return stores{}, err
		}
		out = stores{ledger: st, telemetry: st, checkFile: st.CheckFile, checkBesideLedger: st.CheckFileBesideLedger, close: st.Close, tree: st, cosignatures: st}
	}
	if !opt.readOnly {
		if err := out.openKeys(dir, opt); err != nil {
			out.close()
			return stores{}, err
		}
	}
	return out, nil
}

// openKeys loads the checkpoint signing key: the file --checkpoint-key
// names, or the one in the data directory dir, made with the ledger (or,
// for a ledger older than its tree, at its first writable open). With
// PostgreSQL the key is bound to the store (pgstore.Store.BindLogKey):
// one that is not the log's is kept in keyErr, and the store refuses the
// checkpoints it signs.
func (out *stores) openKeys(dir string, opt storeOptions) error {
	var err error
	switch {
	case opt.keyFile != "":
		if out.keys, err = verifiable.LoadKeyFile(opt.keyFile); err != nil {
			return fmt.Errorf("--checkpoint-key: %w", err)
		}
	default:
		if opt.url != "" {
			if err = os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
		}
		if out.keys, err = verifiable.OpenKeys(dir, rand.Reader); err != nil {
			return err
		}
	}
	if pg, ok := out.ledger.(*pgstore.Store); ok {
		out.keyErr = pg.BindLogKey(context.Background(), out.keys.Verifier())
	}
	return nil
}

// ledgerFile is the file in data directory dir that holds the ledger: its
// absence means no ledger was started there.
func ledgerFile(dir string) string {
	return filepath.Join(dir, boltstore.FileName)
}

// hasLedger reports whether the settings name a ledger to open: a
// PostgreSQL store (--store), or a bbolt file in --data. Commands that
// must not start a ledger by mistake ask it first.
func hasLedger(s settings) bool {
	if s.store != "" {
		return true
	}
	_, err := os.Stat(ledgerFile(s.data))
	return err == nil
}

// checkStoreFlag checks the --store flag of fs, once parsed, before the
// command does anything (checkStoreURL).
func checkStoreFlag(fs *flag.FlagSet) error {
	if f := fs.Lookup("store"); f != nil {
		return checkStoreURL(commandName(fs), f.Value.String())
	}
	return nil
}

// checkStoreURL checks --store (COID_STORE) for command cmd: empty is the
// bbolt file in --data; a postgres:// URL names a PostgreSQL store
// (custody/pgstore). Anything else is a usage error. The URL's password is
// never repeated.
func checkStoreURL(cmd, raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return usagef("%s: --store (COID_STORE) must be a postgres://host/database URL, or empty for the bbolt file in --data", cmd)
	}
	return nil
}

// redactedURL is a --store URL as errors and logs name it: without its
// password.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(malformed URL)"
	}
	return u.Redacted()
}
