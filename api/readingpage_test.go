package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestShipperReadingsPaged: GET /api/v1/shippers/{id}/readings pages by
// device time; following next lists every reading once, in order, a
// reading stored between pages after the cursor included; a client that
// sends no limit gets the first page of the default size (here all of
// them, and no next); CSV carries the cursor in Coid-Next-After; a bad
// limit or cursor is refused.
func TestShipperReadingsPaged(t *testing.T) {
	e := newEnv(t, withReadings())
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	add := func(seq int, at time.Time) {
		t.Helper()
		temp := -180.0
		r := custody.Reading{Shipper: "SHP-0007", Seq: uint64(seq), HasSeq: true, DeviceTime: at, ReceivedTime: t0.Add(time.Hour), TempC: &temp}
		if _, err := e.store.AddReadings(ctx, []custody.Reading{r}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 7 {
		add(i, t0.Add(time.Duration(i)*time.Minute))
	}
	type page struct {
		Count    int    `json:"count"`
		Next     string `json:"next"`
		Readings []struct {
			Seq uint64 `json:"seq"`
		} `json:"readings"`
	}
	get := func(query string) page {
		t.Helper()
		r := e.do(t, http.MethodGet, "/api/v1/shippers/SHP-0007/readings"+query, admin, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("GET readings%s: %s", query, r)
		}
		var p page
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var seqs []uint64
	q := "?limit=3"
	for n := 0; ; n++ {
		p := get(q)
		for _, r := range p.Readings {
			seqs = append(seqs, r.Seq)
		}
		if p.Next == "" {
			break
		}
		if n == 0 {
			add(100, t0.Add(30*time.Second))  // before the cursor: not listed
			add(101, t0.Add(270*time.Second)) // after it: listed
		}
		q = "?limit=3&after=" + url.QueryEscape(p.Next)
		if n > 10 {
			t.Fatalf("paging does not end: %v", seqs)
		}
	}
	if want := []uint64{0, 1, 2, 3, 4, 101, 5, 6}; !slices.Equal(seqs, want) {
		t.Fatalf("paged readings %v, want %v", seqs, want)
	}
	if p := get(""); p.Count != 9 || p.Next != "" {
		t.Fatalf("no limit: %d readings, next %q; want the first page of the default size, all 9, no next", p.Count, p.Next)
	}
	if p := get("?from=" + url.QueryEscape(t0.Add(2*time.Minute).Format(time.RFC3339)) + "&limit=2"); p.Count != 2 || p.Readings[0].Seq != 2 || p.Next == "" {
		t.Fatalf("from minute 2, limit 2: %+v", p)
	}
	req := "/api/v1/shippers/SHP-0007/readings?limit=2"
	hr := httptest.NewRequest(http.MethodGet, req, nil)
	hr.Header.Set("Authorization", "Bearer "+e.tokens[admin])
	hr.Header.Set("Accept", "text/csv")
	r := e.serve(t, hr)
	if r.Code != http.StatusOK || r.Header.Get("Coid-Next-After") == "" || strings.Count(string(r.Body), "\n") != 3 {
		t.Fatalf("CSV page: %s, next %q", r, r.Header.Get("Coid-Next-After"))
	}
	for _, bad := range []string{"?limit=0", "?limit=50001", "?limit=x", "?after=yesterday"} {
		if r := e.do(t, http.MethodGet, "/api/v1/shippers/SHP-0007/readings"+bad, admin, nil); r.Code != http.StatusBadRequest {
			t.Errorf("GET readings%s: %s, want 400", bad, r)
		}
	}
}
