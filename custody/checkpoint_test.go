package custody_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

func TestParseCheckpoint(t *testing.T) {
	h := strings.Repeat("ab", 32)
	cp, err := custody.ParseCheckpoint("1234:" + h)
	if err != nil || cp.Records != 1234 || cp.Head.String() != h || cp.String() != "1234:"+h {
		t.Fatalf("%+v %v", cp, err)
	}
	for _, bad := range []string{"", "1234", "1234:", ":" + h, "0:" + h, "-1:" + h, "x:" + h, "12:" + h[:63],
		"12:" + strings.ToUpper(h) + "0", "12:" + strings.Repeat("0", 64), "12:" + h + ":1",
		"9007199254740992:" + h, "18446744073709551615:" + h, "99999999999999999999999:" + h, strings.Repeat("9", 5000) + ":zz"} {
		if _, err := custody.ParseCheckpoint(bad); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
		if _, err := custody.ParseCheckpoint(bad); err != nil && len(err.Error()) > 300 {
			t.Errorf("error message of %d bytes repeats the input", len(err.Error()))
		}
	}
	max := fmt.Sprintf("%d:%s", uint64(custody.MaxCheckpointRecords), h)
	if cp, err := custody.ParseCheckpoint(max); err != nil || cp.String() != max {
		t.Errorf("%q: %+v %v; 2^53-1 records is the largest checkpoint", max, cp, err)
	}
}
