package phitext_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/phitext"
)

var _ custody.TextFolder = phitext.Folder{}

func TestFold(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Jane Doe", "jane doe"},
		{"J\u0430ne D\u043e\u0435", "jane doe"}, // Cyrillic a, o, e
		{"ＪＡＮＥ　ＤＯＥ", "jane doe"},                // fullwidth
		{"𝐉𝐚𝐧𝐞", "jane"},                        // mathematical bold
		{"Zoë Éloïse", "zoe eloise"},
		{"Ｏ778812", "o778812"},
		{"0778812", "0778812"}, // ASCII stays as typed: 0 is not O
		{"Ⅻ", "xii"},
		{"", ""},
	} {
		if got := (phitext.Folder{}).Fold(tc.in); got != tc.want {
			t.Errorf("Fold(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzFold: folding any text gives valid UTF-8 without diacritics or
// capitals, folding it again changes nothing, and ASCII letters and digits
// are only lower-cased.
func FuzzFold(f *testing.F) {
	for _, s := range []string{"Jane Doe", "J\u0430ne", "ＪＡＮＥ", "Zoë", "\xff", "MRN-0012345", "ǅ", "İ"} {
		f.Add(s)
	}
	var fo phitext.Folder
	f.Fuzz(func(t *testing.T, s string) {
		got := fo.Fold(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Fold(%q) = %q: not UTF-8", s, got)
		}
		for _, r := range got {
			if unicode.Is(unicode.Mn, r) || unicode.IsUpper(r) && unicode.ToLower(r) != r {
				t.Fatalf("Fold(%q) = %q keeps %q", s, got, r)
			}
		}
		if again := fo.Fold(got); again != got {
			t.Fatalf("Fold(%q) = %q, folded again %q", s, got, again)
		}
		ascii := strings.Map(func(r rune) rune {
			if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
				return unicode.ToLower(r)
			}
			return -1
		}, s)
		if ascii != "" && fo.Fold(ascii) != ascii {
			t.Fatalf("Fold(%q) = %q: ASCII changed", ascii, fo.Fold(ascii))
		}
	})
}
