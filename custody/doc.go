// Package custody is the domain core of coid: chain-of-identity identifiers
// (ISBT 128 COI, DIN and bag IDs), ledger records and their canonical
// encoding and hashing, the typed data of each step (StepData: one type
// per step, ParseData, Record.Parsed), the vein-to-vein journey table and
// the rules that enforce it (Service.Record), the one read of a chain that
// every export uses (ChainView), users and their accounts (password
// change, reset, expiry and history, tokens: accounts.go), the
// registries (registry.go), the one hash-linked administrative audit trail
// of account and registry changes (audit.go), electronic signatures
// and their lockout, who may do what (role policy), the PHI guard, the cold-chain
// telemetry model (readings, profiles, leg seals, excursion records),
// verification of the hash chains, the sentinel errors, and the store
// contract that persistence packages implement (store.go: Store,
// TelemetryStore and the interfaces they compose), with the linking of
// records every backend calls (Link) and the group-commit batcher a backend
// may plug its transactions into (GroupCommit).
//
// Access throttling (quota.go, waitlist.go): quotas of a plant's
// manufacturing starts per treatment centre and calendar month, counted
// in the booking's own store transaction; and a waiting list ordered by
// a documented fairness rule (AllocateSlot: urgency, then time waiting;
// a centre at its quota, or a chain that passed the slot, is skipped),
// whose every allocation decision is in the audit trail.
//
// It imports only the standard library. Everything that needs an outside
// dependency lives in a package of its own that depends on this one, never
// the other way round, and comes in through Config: the store
// (custody/boltstore), the password hasher (custody/passwd), the text
// folder of the PHI guard (custody/phitext). The cold-chain rules are in
// custody/coldchain, the store contract's conformance suite in
// custody/storetest.
package custody
