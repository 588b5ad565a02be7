package boltstore

import (
	"bytes"
	"encoding/json"
	"testing"
)

// scanSeeds are stored records as the canonical encoding writes them, and
// variants that the scan must leave to json.Unmarshal or decode alike.
var scanSeeds = []string{
	`{"chain":"C-1","chain_prev":"00","chain_seq":3,"data":{"day":7,"note":"a \"}\" brace","x":[1,{"y":"]"}]},"prev":"ab","seq":12,"signatures":[{"by":"n1","meaning":"performed"}],"site":"S","step":"follow-up","submitted_by":"n1","time":"2026-11-23T08:00:00Z","v":1}`,
	`{"chain":"C-1","data":{},"seq":3,"step":"infuse","time":"2026-11-23T08:00:00.5Z","v":1}`,
	` { "seq" : 4 , "step" : "infuse" , "time" : "2026-11-23T08:00:00Z" } `,
	`{"seq":4,"step":"inf\u0075se","time":"2026-11-23T08:00:00Z"}`,
	`{"Seq":4,"STEP":"infuse"}`,
	`{"seq":4,"seq":5,"step":"collect","step":"infuse"}`,
	`{"seq":-1,"step":"infuse"}`,
	`{"seq":1e3}`,
	`{"seq":4,"data":{"day":1}`,
	`{"seq":4}x`,
	`{}`,
	`[]`,
	``,
}

// FuzzFollowUpFoldScan checks that the follow-up check's scan of a stored
// record reads what json.Unmarshal reads from it, whenever it reads one
// and the record is JSON.
func FuzzFollowUpFoldScan(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, want followUpFoldJSON
		if !got.scan(b) || !json.Valid(b) {
			return
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("scan read %+v, json.Unmarshal refuses %q: %v", got, b, err)
		}
		if got.Seq != want.Seq || got.Step != want.Step || got.Time != want.Time || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("scan read %+v, json.Unmarshal %+v, of %q", got, want, b)
		}
	})
}

// TestFollowUpFoldScan checks which records the scan reads itself: the
// canonical ones, not those with escapes or names in another case.
func TestFollowUpFoldScan(t *testing.T) {
	for i, wantOK := range []bool{true, true, true, false, false, true, false, false, false, false, true, false, false} {
		var j followUpFoldJSON
		if ok := j.scan([]byte(scanSeeds[i])); ok != wantOK {
			t.Errorf("scan(%s) = %v, want %v", scanSeeds[i], ok, wantOK)
		}
	}
	var j followUpFoldJSON
	if !j.scan([]byte(scanSeeds[0])) || j.Seq != 12 || j.Step != "follow-up" || j.Time != "2026-11-23T08:00:00Z" ||
		string(j.Data) != `{"day":7,"note":"a \"}\" brace","x":[1,{"y":"]"}]}` {
		t.Fatalf("scan of a canonical record = %+v", j)
	}
}

// stringEndByByte is stringEnd as it was written first, a byte at a time.
func stringEndByByte(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// FuzzStringEnd: stringEnd ends a string where the byte-by-byte reading
// ends it, escapes or not.
func FuzzStringEnd(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b"x"`, `"a\\"b"`, `"abc`, `"\`, `"`, `"\\\""`, `"é\u0022"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for i := range b {
			if got, want := stringEnd(b, i), stringEndByByte(b, i); got != want {
				t.Fatalf("stringEnd(%q, %d) = %d, want %d", b, i, got, want)
			}
		}
	})
}
