package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/coid-project/coid/custody"
)

// testQuotasPaged: QuotasAfter pages the quotas in key order with their
// stored values; quotas set between pages after the cursor are listed by
// the later pages, those before it are not, and none is listed twice.
func testQuotasPaged(t *testing.T, s Store) {
	ctx := context.Background()
	put := func(plant, centre string) {
		t.Helper()
		putQuota(t, s, custody.Quota{Plant: plant, Centre: centre, Slots: 2})
	}
	for _, c := range []string{"C02", "C04", "C06", "C08", "C10"} {
		put("MFG-1", c)
	}
	var keys []string
	after := ""
	for page := 0; ; page++ {
		got, err := s.QuotasAfter(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			var q custody.Quota
			if err := json.Unmarshal(e.Value, &q); err != nil || q.Key() != e.Key {
				t.Fatalf("QuotasAfter lists %s with value %s (%v)", e.Key, e.Value, err)
			}
			keys = append(keys, e.Key)
		}
		if len(got) < 2 {
			break
		}
		after = got[len(got)-1].Key
		if page == 0 {
			put("MFG-1", "C01") // before the cursor: not listed
			put("MFG-1", "C05") // after it: listed
		}
		if page > 10 {
			t.Fatalf("paging does not end: %v", keys)
		}
	}
	want := []string{"MFG-1/C02", "MFG-1/C04", "MFG-1/C05", "MFG-1/C06", "MFG-1/C08", "MFG-1/C10"}
	if !slices.Equal(keys, want) {
		t.Fatalf("paged quotas %v, want %v", keys, want)
	}
	if got, err := s.QuotasAfter(ctx, "MFG-1/C03", 1); err != nil || len(got) != 1 || got[0].Key != "MFG-1/C04" {
		t.Fatalf("QuotasAfter(a key not stored) = %v, %v; want MFG-1/C04", got, err)
	}
	if _, err := s.QuotasAfter(ctx, "", 0); err == nil {
		t.Fatal("QuotasAfter with limit 0: no error")
	}
}
