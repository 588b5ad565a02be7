package custody

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// phiKeys are data field names that can only hold patient identifiers. A
// record carrying one is refused whatever its value: the ledger can never
// be erased, so a patient's identity must not reach it.
var phiKeys = map[string]bool{
	"patient": true, "patient_name": true, "patient_id": true, "name": true, "first_name": true, "last_name": true,
	"surname": true, "given_name": true, "family_name": true, "mrn": true, "medical_record_number": true,
	"birth_date": true, "birthdate": true, "date_of_birth": true, "dob": true, "ssn": true, "nhs_number": true,
	"wristband": true, "wristband_code": true,
}

// TextFolder folds text before it is compared with a patient's
// identifiers, so that text that reads the same compares the same. custody
// needs one only for what the standard library cannot do; package
// custody/phitext implements it.
type TextFolder interface {
	// Fold returns s in Unicode compatibility form (NFKC), without
	// diacritics, with every character that looks like another replaced by
	// that one's prototype (the Unicode confusable skeleton), in lower case.
	Fold(s string) string
}

// latinBase maps precomposed Latin letters to their base letter, for the
// diacritic folding done without a TextFolder.
var latinBase = func() map[rune]string {
	m := map[rune]string{}
	for _, row := range []struct{ base, from string }{
		{"a", "àáâãäåāăąǎȁȃȧạảấầẩẫậắằẳẵặ"}, {"c", "çćĉċč"}, {"d", "ďđ"}, {"e", "èéêëēĕėęěȅȇẹẻẽếềểễệ"},
		{"g", "ĝğġģǧ"}, {"h", "ĥħ"}, {"i", "ìíîïĩīĭįıǐȉȋịỉ"}, {"j", "ĵ"}, {"k", "ķǩ"}, {"l", "ĺļľŀł"},
		{"n", "ñńņňǹ"}, {"o", "òóôõöøōŏőǒȍȏọỏốồổỗộớờởỡợơ"}, {"r", "ŕŗřȑȓ"}, {"s", "śŝşšș"}, {"ss", "ß"},
		{"t", "ţťŧț"}, {"u", "ùúûüũūŭůűųǔȕȗụủứừửữựư"}, {"w", "ŵẁẃẅ"}, {"y", "ýÿŷỳỹỵ"}, {"z", "źżž"},
		{"ae", "æ"}, {"oe", "œ"}, {"th", "þ"},
	} {
		for _, r := range row.from {
			m[r] = row.base
		}
	}
	return m
}()

// basicFold lower-cases s and takes the diacritics off the letters the
// standard library lets it: combining marks and precomposed Latin letters.
func basicFold(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case latinBase[r] != "":
			b.WriteString(latinBase[r])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// phiTokens folds s (with f, when set) and splits it into words: runs of
// letters, or of digits. Separators of any kind split words, and so does a
// change between letters and digits, so "MRN0012345" is "mrn", "0012345".
func phiTokens(f TextFolder, s string) []string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, " ")
	}
	if f != nil {
		s = f.Fold(s)
	}
	s = basicFold(s)
	var out []string
	start, kind := -1, 0
	for i, r := range s {
		k := 0
		switch {
		case unicode.IsDigit(r):
			k = 1
		case unicode.IsLetter(r) || unicode.Is(unicode.Mc, r):
			k = 2
		}
		if k != kind && start >= 0 {
			out = append(out, s[start:i])
			start = -1
		}
		if k != 0 && start < 0 {
			start = i
		}
		kind = k
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// noZeros returns w without leading zeros when it is a number.
func noZeros(w string) string {
	if !isDigits(w) {
		return w
	}
	if t := strings.TrimLeft(w, "0"); t != "" {
		return t
	}
	return "0"
}

// months maps English month names and their usual abbreviations to the
// month's number.
var months = map[string]int{
	"january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
	"june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9,
	"october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}

// phiMatcher finds one patient's identifiers in text. Text and
// identifiers are folded alike (case, diacritics and, with a TextFolder,
// compatibility forms and look-alike characters) and split into words
// (phiTokens). An identifier is found when it makes up whole words of the
// text, with or without the separators between them:
//   - the full name in any order that keeps its words' cycle (given names
//     first or family names first) or reversed, with or without middle
//     names, also run together ("JaneDoe", "J.A.N.E D.O.E"), and a name of
//     at least minRunTogether letters run together anywhere inside a word;
//   - the MRN with or without its letter prefix and punctuation, leading
//     zeros aside ("MRN-001-2345", "12345");
//   - the birth date as year, month, day in the orders Y M D, D M Y and
//     M D Y, the month as a number or an English name, with any separators
//     or none ("02/01/1970", "2nd January 1970", "Jan 2, 1970", "19700102").
//
// "Janet", a name's single word, a number inside a longer one or a date
// without the year are not found.
type phiMatcher struct {
	f     TextFolder
	names []string // the name's words run together, in each order looked for
	mrns  []string // the MRN run together, with and without its prefix, leading zeros off
	date  [3]int   // year, month, day; zero when there is none
}

// minRunTogether is the length from which a name run together is found
// inside a longer word too.
const minRunTogether = 8

// newPHIMatcher returns a matcher for p that folds with f (nil: case and
// diacritics only). Parts too short to tell apart from ordinary words (a
// one-word name, an MRN under four characters) are not looked for.
func newPHIMatcher(p PHI, f TextFolder) *phiMatcher {
	m := &phiMatcher{f: f}
	if name := phiTokens(f, p.Name); len(name) >= 2 {
		n := len(name)
		// Each rotation ("Quixote-Marchetti, Zelda" for "Zelda
		// Quixote-Marchetti"), and the words reversed.
		for k := range n {
			m.names = append(m.names, strings.Join(name[k:], "")+strings.Join(name[:k], ""))
		}
		rev := slices.Clone(name)
		slices.Reverse(rev)
		m.names = append(m.names, strings.Join(rev, ""))
		if n > 2 { // without middle names
			m.names = append(m.names, name[0]+name[n-1], name[n-1]+name[0])
		}
	}
	if mrn := phiTokens(f, p.MRN); len(strings.Join(mrn, "")) >= 4 {
		m.mrns = append(m.mrns, noZeros(mrn[0])+strings.Join(mrn[1:], ""))
		// The number alone, without a prefix such as "MRN".
		i := 0
		for i < len(mrn)-1 && !isDigits(mrn[i]) {
			i++
		}
		if rest := noZeros(mrn[i]) + strings.Join(mrn[i+1:], ""); i > 0 && len(rest) >= 5 {
			m.mrns = append(m.mrns, rest)
		}
	}
	if d := phiTokens(nil, p.BirthDate); len(d) == 3 {
		for i, w := range d {
			m.date[i], _ = strconv.Atoi(w)
		}
	}
	return m
}

// runsTogether reports whether words[i:], run together, begin with want
// ending at a word's end. The first word's leading zeros do not count
// when want begins with a digit.
func runsTogether(words []string, i int, want string) bool {
	cur := words[i]
	if want != "" && want[0] >= '0' && want[0] <= '9' {
		cur = noZeros(cur)
	}
	for {
		if cur == want {
			return true
		}
		if len(cur) >= len(want) || !strings.HasPrefix(want, cur) || i+1 >= len(words) {
			return false
		}
		i++
		cur += words[i]
	}
}

// find returns what identifier s holds, or "".
func (m *phiMatcher) find(s string) string {
	if len(m.names) == 0 && len(m.mrns) == 0 && m.date[0] == 0 {
		return ""
	}
	words := phiTokens(m.f, s)
	for i := range words {
		for _, n := range m.names {
			if runsTogether(words, i, n) || (len(n) >= minRunTogether && strings.Contains(words[i], n)) {
				return "name"
			}
		}
		for _, n := range m.mrns {
			if runsTogether(words, i, n) {
				return "medical record number"
			}
		}
	}
	if m.date[0] != 0 && m.hasDate(words) {
		return "birth date"
	}
	return ""
}

// dateWord is a word read as part of a date: a number, or a month name.
type dateWord struct {
	n     int
	month bool // a month name
	raw   string
}

// hasDate reports whether words hold the birth date.
func (m *phiMatcher) hasDate(words []string) bool {
	var ws []dateWord
	for _, w := range words {
		switch {
		case isDigits(w):
			if len(w) > 9 {
				ws = append(ws, dateWord{n: -1, raw: w})
				continue
			}
			n, _ := strconv.Atoi(w)
			ws = append(ws, dateWord{n: n, raw: w})
		case months[w] != 0:
			ws = append(ws, dateWord{n: months[w], month: true, raw: w})
		case (w == "st" || w == "nd" || w == "rd" || w == "th" || w == "of") && len(ws) > 0 && !ws[len(ws)-1].month:
			// "2nd of January": the suffix and "of" are not words of the date.
		default:
			ws = append(ws, dateWord{n: -1, raw: w})
		}
	}
	y, mo, d := m.date[0], m.date[1], m.date[2]
	// Each order as the positions of year, month and day.
	type order struct{ y, m, d int }
	orders := []order{{0, 1, 2}, {2, 1, 0}, {2, 0, 1}}
	digitForms := []string{fmt.Sprintf("%04d%02d%02d", y, mo, d), fmt.Sprintf("%02d%02d%04d", d, mo, y),
		fmt.Sprintf("%02d%02d%04d", mo, d, y)}
	for i := range ws {
		for _, o := range orders {
			if i+3 > len(ws) {
				break
			}
			wy, wm, wd := ws[i+o.y], ws[i+o.m], ws[i+o.d]
			if wy.month || wd.month || wm.n != mo || wd.n != d {
				continue
			}
			// A two-digit year only with the month by name: "2 Jan 70".
			if wy.n == y || (wm.month && len(wy.raw) == 2 && wy.n == y%100) {
				return true
			}
		}
		// Digits only, run together: 19700102, 02011970, 01021970.
		if isDigits(ws[i].raw) {
			for _, want := range digitForms {
				if runsTogetherRaw(ws, i, want) {
					return true
				}
			}
		}
	}
	return false
}

// runsTogetherRaw is runsTogether on date words, zeros kept.
func runsTogetherRaw(ws []dateWord, i int, want string) bool {
	cur := ""
	for ; i < len(ws) && isDigits(ws[i].raw); i++ {
		cur += ws[i].raw
		if cur == want {
			return true
		}
		if len(cur) >= len(want) || !strings.HasPrefix(want, cur) {
			return false
		}
	}
	return false
}

// checkNoPHI refuses step data that holds a patient identifier: a member
// named for one (phiKeys), or any member name or value, at any depth,
// naming this chain's patient (p, when the identity is on file; compared
// after folding with f, see phiMatcher). skip names top-level members that
// are allowed to hold one because the service removes them before the
// record is stored (the wristband scanned at the bedside) or keeps them
// only when they are a coid code. Text that names the patient is refused,
// never cleaned. The error names the member and the kind of identifier,
// never its value; a member whose name holds the identifier is named by
// the object it is in ("data.x has a member whose name holds ...").
func checkNoPHI(step Step, data []byte, p *PHI, f TextFolder, skip ...string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("%s: data: %w", step, ErrInvalid)
	}
	var m *phiMatcher
	if p != nil {
		m = newPHIMatcher(*p, f)
	}
	skipped := map[string]bool{}
	for _, k := range skip {
		skipped[k] = true
	}
	holds := func(whose, path, what string) error {
		return fmt.Errorf("%s: data%s%s holds the patient's %s; patient identifiers stay out of the ledger, "+
			"which can never be erased: refer to the patient by the COI: %w", step, path, whose, what, ErrInvalid)
	}
	var walk func(path string, v any) error
	walk = func(path string, v any) error {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) { // the same member named first, every time
				if path == "" && skipped[k] {
					continue
				}
				if m != nil {
					if what := m.find(k); what != "" {
						return holds(" has a member whose name", path, what)
					}
				}
				p := path + "." + k
				if phiKeys[strings.Join(phiTokens(f, k), "_")] { // "Patient-Name", "DOB", "mrn"
					return fmt.Errorf("%s: data%s would put a patient identifier in the ledger, which can never be erased; "+
						"refer to the patient by the COI: %w", step, p, ErrInvalid)
				}
				if err := walk(p, x[k]); err != nil {
					return err
				}
			}
		case []any:
			for i, e := range x {
				if err := walk(fmt.Sprintf("%s[%d]", path, i), e); err != nil {
					return err
				}
			}
		case string:
			if m != nil {
				if what := m.find(x); what != "" {
					return holds("", path, what)
				}
			}
		case json.Number:
			if m != nil {
				if what := m.find(x.String()); what != "" {
					return holds("", path, what)
				}
			}
		}
		return nil
	}
	return walk("", v)
}
