package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// TestQuarantineKeepsWholePayload: a rejected payload up to 1 MiB (all the
// decoder would read) is kept byte for byte; of a longer one the first MiB,
// with its full size.
func TestQuarantineKeepsWholePayload(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	whole := bytes.Repeat([]byte(`{"shipper":"SHP-1","seq":1,"temp_c":-180},`), MaxQuarantinePayloadBytes/42+1)
	whole = append(whole[:MaxQuarantinePayloadBytes-1], ']')
	long := append(bytes.Clone(whole), "trailing"...)
	for _, p := range [][]byte{whole, long} {
		if err := s.Quarantine(ctx, custody.QuarantineEntry{Topic: "shippers/SHP-1/telemetry", Received: t0, Reason: "bad",
			Size: len(p), Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.QuarantineList(ctx, 0, 0)
	if err != nil || len(list) != 2 {
		t.Fatalf("%d entries, %v", len(list), err)
	}
	if got := list[1]; !bytes.Equal(got.Payload, whole) || got.Size != len(whole) {
		t.Fatalf("1 MiB payload: kept %d of %d bytes", len(got.Payload), got.Size)
	}
	if got := list[0]; !bytes.Equal(got.Payload, whole) || got.Size != len(long) {
		t.Fatalf("longer payload: kept %d bytes, size %d", len(got.Payload), got.Size)
	}
}

// TestQuarantineBytesBounded: large payloads are dropped oldest first once
// the quarantine holds MaxQuarantineBytes (lowered here to 8 MiB), the
// newest is kept, and the store logs what it dropped.
func TestQuarantineBytesBounded(t *testing.T) {
	defer func(old int) { quarantineMaxBytes = old }(quarantineMaxBytes)
	quarantineMaxBytes = 8 << 20
	var logs syncBuf
	s, err := Open(t.TempDir(), Options{LockTimeout: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), MaxQuarantinePayloadBytes)
	const n = 8<<20/MaxQuarantinePayloadBytes + 10
	for i := range n {
		if err := s.Quarantine(ctx, custody.QuarantineEntry{Topic: "shippers/X/telemetry", Received: t0, Reason: fmt.Sprint("bad ", i),
			Size: len(big), Payload: big}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.QuarantineList(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) == 0 || len(list) >= n || list[0].ID != n || list[len(list)-1].ID != uint64(n-len(list)+1) {
		t.Fatalf("%d entries kept of %d", len(list), n)
	}
	size := 0
	if err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQuarantine).ForEach(func(_, v []byte) error { size += len(v); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	if size > quarantineMaxBytes {
		t.Fatalf("quarantine holds %d bytes, more than %d", size, quarantineMaxBytes)
	}
	if !strings.Contains(logs.String(), "quarantine full") || !strings.Contains(logs.String(), fmt.Sprintf("last_id=%d", n-len(list))) {
		t.Fatalf("drops not logged: %s", logs.String())
	}
	t.Logf("kept %d of %d entries of 1 MiB, %d bytes", len(list), n, size)
}
