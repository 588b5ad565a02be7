package custody_test

import (
	"errors"
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
		"12:" + strings.ToUpper(h) + "0", "12:" + strings.Repeat("0", 64), "12:" + h + ":1"} {
		if _, err := custody.ParseCheckpoint(bad); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
