// Package phitext folds text for comparing it with a patient's
// identifiers (custody.TextFolder): Unicode compatibility forms,
// diacritics, look-alike characters and case. It keeps the Unicode tables
// out of the domain core.
package phitext

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"golang.org/x/text/unicode/norm"
)

// Folder is a custody.TextFolder backed by the Unicode normalisation
// tables and the Unicode confusables table (UTS #39). Its zero value is
// ready to use.
type Folder struct{}

// Fold returns s in compatibility form (NFKC), without diacritics, with
// every character outside ASCII that looks like another replaced by that
// one's prototype (the confusable skeleton), in lower case. ASCII is left
// as typed: its look-alikes (0 and O, 1 and l, rn and m) are ordinary
// typing, and folding them together would make numbers and words alike.
func (Folder) Fold(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, " ")
	}
	// A prototype can itself fold further (a capital's prototype once
	// lower-cased, a prototype with a mark): fold until nothing changes.
	for range 4 {
		next := foldOnce(s)
		if next == s {
			break
		}
		s = next
	}
	return s
}

// foldOnce maps look-alikes before it lower-cases: a capital's prototype
// is the ASCII capital (Cyrillic "Т" is "T"), a small letter's may be a
// small capital (Cyrillic "т" is "ᴛ").
func foldOnce(s string) string {
	s = stripMarks(norm.NFKD.String(s))
	var b strings.Builder
	for _, r := range s {
		if r < utf8.RuneSelf {
			b.WriteRune(r)
			continue
		}
		b.WriteString(confusables.Skeleton(string(r)))
	}
	return strings.ToLower(norm.NFKC.String(stripMarks(norm.NFKD.String(b.String()))))
}

// stripMarks drops the nonspacing marks of decomposed text: the
// diacritics.
func stripMarks(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1
		}
		return r
	}, s)
}
