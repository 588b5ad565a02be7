package custody_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/phitext"
)

// guardPatient is the identity the guard tests look for.
var guardPatient = custody.PHI{Name: "Zelda Quixote-Marchetti", BirthDate: "1961-07-19", MRN: "MRN-7730419"}

// identifierForms are the patient's identifiers as people write them:
// the name in its orders, run together or not; the MRN with or without its
// prefix and punctuation; the birth date in the usual written forms.
func identifierForms() []string {
	return []string{
		"Zelda Quixote-Marchetti", "Zelda Quixote Marchetti", "ZeldaQuixoteMarchetti", "Quixote-Marchetti, Zelda",
		"MARCHETTI Quixote Zelda", "Zelda Marchetti", "Marchetti, Zelda", "zelda.quixote.marchetti",
		"MRN-7730419", "MRN 7730419", "mrn7730419", "7730419", "773-0419", "773 04 19", "07730419",
		"1961-07-19", "19/07/1961", "07/19/1961", "7/19/1961", "19.7.1961", "19610719", "19071961", "07191961",
		"19 July 1961", "July 19, 1961", "19th of July 1961", "Jul 19 1961", "19-JUL-1961", "19 Jul 61",
	}
}

// lookAlikes are characters outside ASCII that read as an ASCII one:
// Cyrillic and Greek letters (Unicode confusables).
var lookAlikes = map[rune][]rune{
	'a': {'\u0430'}, 'e': {'\u0435'}, 'o': {'\u043e', '\u03bf'}, 'c': {'\u0441'}, 'p': {'\u0440'}, 'x': {'\u0445'},
	'i': {'\u0456'}, 'Z': {'\u0396'}, 'M': {'\u041c', '\u039c'}, 'A': {'\u0410', '\u0391'},
	'T': {'\u0422'}, 'H': {'\u041d'}, 'O': {'\u041e'}, 'E': {'\u0415'}, 'K': {'\u041a'}, 'N': {'\u039d'},
	'J': {'\u0408'}, 'P': {'\u0420'}, 'y': {'\u0443'}, 'Q': {'\u051a'},
}

// diacritics are combining marks, and precomposed letters for some.
var (
	marks       = []rune{'\u0301', '\u0300', '\u0308', '\u0302', '\u0327', '\u030c'}
	precomposed = map[rune][]rune{'a': {'á', 'à', 'ä', 'â'}, 'e': {'é', 'è', 'ë'}, 'i': {'í', 'ï'}, 'o': {'ó', 'ö', 'ø'},
		'u': {'ü', 'ú'}, 'c': {'ç'}, 'n': {'ñ'}, 'Z': {'Ž'}, 'z': {'ž'}, 'E': {'É'}}
	separators = []string{"", " ", "-", ".", "_", "/", ", ", "\u00a0", "\u2010", "\u00ad", "\u200b", "\u3000"}
)

// variant rewrites s as r picks: case, diacritics, look-alike, fullwidth
// and mathematical characters, and separators changed.
// A date's separators are never dropped: "7/19/1961" without one is no
// date.
func variant(r *rand.Rand, s string) string {
	date := strings.ContainsAny(s, "1") && strings.Contains(s, "196")
	var b strings.Builder
	for _, c := range s {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && r.IntN(2) == 0 {
			sep := separators[r.IntN(len(separators))]
			if date && sep == "" {
				sep = " "
			}
			b.WriteString(sep)
			continue
		}
		if unicode.IsLetter(c) && r.IntN(2) == 0 {
			c = unicode.ToUpper(c)
		} else if unicode.IsLetter(c) {
			c = unicode.ToLower(c)
		}
		switch k := r.IntN(8); {
		case k == 0 && len(lookAlikes[c]) > 0:
			b.WriteRune(lookAlikes[c][r.IntN(len(lookAlikes[c]))])
		case k == 1 && len(precomposed[c]) > 0:
			b.WriteRune(precomposed[c][r.IntN(len(precomposed[c]))])
		case k == 2 && unicode.IsLetter(c):
			b.WriteRune(c)
			b.WriteRune(marks[r.IntN(len(marks))])
		case k == 3 && c < 128 && (unicode.IsLetter(c) || unicode.IsDigit(c)):
			b.WriteRune(c + 0xFEE0) // fullwidth
		case k == 4 && c >= 'A' && c <= 'Z':
			b.WriteRune('\U0001D400' + c - 'A') // mathematical bold
		case k == 4 && c >= 'a' && c <= 'z':
			b.WriteRune('\U0001D41A' + c - 'a')
		case k == 4 && c >= '0' && c <= '9':
			b.WriteRune('\U0001D7CE' + c - '0')
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// FuzzGuardVariants: a stored record never holds the patient's
// identifiers under any of the foldings the guard makes. Each written form
// of each identifier, rewritten with case, diacritics, look-alike
// characters and separators changed, put between any two texts as a
// value, a member name or deep inside the data, is refused.
func FuzzGuardVariants(f *testing.F) {
	f.Add("bag sealed", "at ward 3", uint64(1), uint8(0))
	f.Add("", "", uint64(7), uint8(1))
	f.Add("ÄÖ 12 /", "1970", uint64(42), uint8(2))
	f.Add("2nd", "of", uint64(3), uint8(5))
	var folder phitext.Folder
	forms := identifierForms()
	f.Fuzz(func(t *testing.T, before, after string, seed uint64, where uint8) {
		r := rand.New(rand.NewPCG(seed, uint64(where)))
		id := variant(r, forms[r.IntN(len(forms))])
		text := before + " " + id + " " + after
		var data any
		switch where % 4 {
		case 0:
			data = map[string]any{"text": text}
		case 1:
			data = map[string]any{"text": "n", text: 1}
		case 2:
			data = map[string]any{"text": "n", "x": []any{map[string]any{text: true}}}
		default:
			data = map[string]any{"text": "n", "x": map[string]any{"y": []any{1, text}}}
		}
		raw, err := json.Marshal(data)
		if err != nil {
			t.Skip()
		}
		p := guardPatient
		err = custody.CheckNoPHI(custody.StepNote, raw, &p, folder)
		if !errors.Is(err, custody.ErrInvalid) {
			t.Fatalf("%q (as %s) not refused: %v", id, raw, err)
		}
		for _, s := range []string{"Zelda", "Marchetti", "7730419", "1961"} {
			if strings.Contains(err.Error(), s) {
				t.Fatalf("the error repeats an identifier: %v", err)
			}
		}
	})
}

// TestGuardVariants runs the written forms, each as typed and in a few
// variants, through the guard, without a folder too where the variant
// needs none.
func TestGuardVariants(t *testing.T) {
	var folder phitext.Folder
	p := guardPatient
	for i, form := range identifierForms() {
		for seed := range uint64(20) {
			id := form
			if seed > 0 {
				id = variant(rand.New(rand.NewPCG(seed, uint64(i))), form)
			}
			raw, _ := json.Marshal(map[string]any{"text": "called " + id + " today"})
			if err := custody.CheckNoPHI(custody.StepNote, raw, &p, folder); !errors.Is(err, custody.ErrInvalid) {
				t.Errorf("%q: %v", id, err)
			}
			if seed == 0 {
				if err := custody.CheckNoPHI(custody.StepNote, raw, &p, nil); !errors.Is(err, custody.ErrInvalid) {
					t.Errorf("no folder: %q: %v", id, err)
				}
			}
		}
	}
}

// TestGuardNotOverreaching: ordinary text, parts of a name, other numbers
// and other dates are not refused.
func TestGuardNotOverreaching(t *testing.T) {
	var folder phitext.Folder
	janeP := custody.PHI{Name: "Jane Doe", BirthDate: "1970-01-02", MRN: "MRN-0012345"}
	for _, tc := range []struct {
		p    custody.PHI
		text string
	}{
		{janeP, "Janet took the bag"},
		{janeP, "Jane"},
		{janeP, "Doe"},
		{janeP, "John Doe"},
		{janeP, "Janedoesnt"},
		{janeP, "123456"},
		{janeP, "0123450"},
		{janeP, "bag 3 of 12345678"},
		{janeP, "1970"},
		{janeP, "2 January 1971"},
		{janeP, "02/01"},
		{janeP, "19700103"},
		{janeP, "collected 2026-11-23T06:00:00Z, 215 mL"},
		{guardPatient, "Zelda"},
		{guardPatient, "Marchetti"},
		{guardPatient, "7730418"},
		{guardPatient, "77304190"},
		{guardPatient, "A999926077304190"},
		{guardPatient, "19 July 1962"},
		{guardPatient, "temperature 7.7 at 30419"},
		{guardPatient, "shipper SHP-0042 cryogenic, seal intact"},
	} {
		raw, _ := json.Marshal(map[string]any{"text": tc.text, fmt.Sprintf("k%d", len(tc.text)): tc.text})
		p := tc.p
		for _, f := range []custody.TextFolder{nil, folder} {
			if err := custody.CheckNoPHI(custody.StepNote, raw, &p, f); err != nil {
				t.Errorf("%q (folder %v) refused: %v", tc.text, f != nil, err)
			}
		}
	}
}
