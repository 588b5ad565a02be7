package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestServeHoldMargin: a --hold-margin (or COID_HOLD_MARGIN) that is not a
// positive duration is a usage error naming the flag; nothing is served.
func TestServeHoldMargin(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
	}{
		{[]string{"--hold-margin", "0s"}, ""},
		{[]string{"--hold-margin", "-3h"}, ""},
		{[]string{"--hold-margin", "twelve hours"}, ""},
		{nil, "COID_HOLD_MARGIN=soon"},
	} {
		err := run(context.Background(), append(serveArgs(t.TempDir()), tc.args...), []string{tc.env}, strings.NewReader(""), io.Discard, io.Discard)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), "--hold-margin") {
			t.Errorf("%v %s: %v, want a usage error naming --hold-margin", tc.args, tc.env, err)
		}
	}
}
