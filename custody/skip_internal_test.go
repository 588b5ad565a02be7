package custody

import "testing"

// skipStringRef is the plain byte loop skipString must agree with.
func skipStringRef(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// FuzzSkipString checks the vectorised string skipper, which ReadLinks
// uses to find a record's links, against the plain loop on any input.
func FuzzSkipString(f *testing.F) {
	for _, s := range []string{`"abc"`, `"a\"b"`, `"a\\"b`, `"a\\\"b"`, `"\\\\"`, `"unterminated`, `"\`, `""`, `"x\\\\\"y"z`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || b[0] != '"' {
			return
		}
		want, ok := skipStringRef(b, 0)
		got, err := skipString(b, 0)
		if ok != (err == nil) || ok && got != want {
			t.Fatalf("%q: skipString %d, %v; want %d, %v", b, got, err, want, ok)
		}
	})
}
