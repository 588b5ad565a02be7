package main

import (
	"context"
	"crypto/rand"
	"log/slog"
	"path/filepath"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/verifiable"
)

// stores is the storage the commands work with, as the custody interfaces:
// openStores is the one place that knows the backend (bbolt), so every
// other function takes the interface it needs.
type stores struct {
	// ledger is the ledger, chains, PHI and users (custody.Service's).
	ledger custody.Store
	// telemetry is the readings and the quarantine.
	telemetry custody.TelemetryStore
	// checkFile checks what the backend keeps beside the ledger (users,
	// readings, the quarantine) and its own structure, for coid verify.
	checkFile func(ctx context.Context) error
	// close releases the store; nothing may use it afterwards.
	close func() error
	// tree is the ledger's Merkle tree and signed checkpoints, and keys
	// the checkpoint signing keys (nil when opened read-only).
	tree verifiable.Source
	keys *verifiable.Keys
	// cosignatures keeps the witnesses' cosignatures of the checkpoints.
	cosignatures custody.CosignatureStore
}

// storeOptions says how openStores opens the data directory.
type storeOptions struct {
	// readOnly opens the data for reading only (offline commands that
	// change nothing), leaving a running service's writes alone.
	readOnly bool
	// logger hears of what the store does on its own; nil discards.
	logger *slog.Logger
}

// openStores opens the store in the data directory dir.
func openStores(dir string, opt storeOptions) (stores, error) {
	st, err := boltstore.Open(dir, boltstore.Options{ReadOnly: opt.readOnly, Logger: opt.logger})
	if err != nil {
		return stores{}, err
	}
	out := stores{ledger: st, telemetry: st, checkFile: st.CheckFile, close: st.Close, tree: st, cosignatures: st}
	if !opt.readOnly {
		// The checkpoint signing key is made with the ledger (or, for a
		// ledger older than its tree, at its first writable open).
		if out.keys, err = verifiable.OpenKeys(dir, rand.Reader); err != nil {
			st.Close()
			return stores{}, err
		}
	}
	return out, nil
}

// ledgerFile is the file in data directory dir that holds the ledger: its
// absence means no ledger was started there.
func ledgerFile(dir string) string {
	return filepath.Join(dir, boltstore.FileName)
}
