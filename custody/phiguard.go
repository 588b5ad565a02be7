package custody

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
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

// phiMatcher finds one patient's identifiers in free text: the full name
// in either order, with or without middle names, the MRN, and the birth date in the usual written forms.
// Text is compared as sequences of lower-case words (runs of letters and
// digits), numbers by value, so "DOE, Jane", "mrn: 0778812" and
// "02/01/1970" are found and "Janet" or a longer number is not.
type phiMatcher struct {
	seqs []phiSeq
}

type phiSeq struct {
	what  string
	words []string
}

// phiWords splits s into lower-case words of letters and digits; numbers
// lose their leading zeros.
func phiWords(s string) []string {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for i, w := range f {
		if n, err := strconv.ParseUint(w, 10, 64); err == nil {
			f[i] = strconv.FormatUint(n, 10)
		}
	}
	return f
}

// newPHIMatcher returns a matcher for p. Parts too short to tell apart
// from ordinary words (a one-word name or MRN under four characters) are
// not looked for.
func newPHIMatcher(p PHI) *phiMatcher {
	m := &phiMatcher{}
	if name := phiWords(p.Name); len(name) >= 2 {
		m.seqs = append(m.seqs, phiSeq{"name", name})
		rev := make([]string, len(name))
		for i, w := range name {
			rev[len(name)-1-i] = w
		}
		m.seqs = append(m.seqs, phiSeq{"name", rev})
		if n := len(name); n > 2 { // without middle names
			m.seqs = append(m.seqs, phiSeq{"name", []string{name[0], name[n-1]}}, phiSeq{"name", []string{name[n-1], name[0]}})
		}
	}
	if mrn := phiWords(p.MRN); len(strings.Join(mrn, "")) >= 4 {
		m.seqs = append(m.seqs, phiSeq{"medical record number", mrn})
		// The number alone, without a prefix such as "MRN".
		if last := mrn[len(mrn)-1]; len(mrn) > 1 && len(last) >= 5 {
			m.seqs = append(m.seqs, phiSeq{"medical record number", []string{last}})
		}
	}
	if d := phiWords(p.BirthDate); len(d) == 3 {
		y, mo, dd := d[0], d[1], d[2]
		m.seqs = append(m.seqs, phiSeq{"birth date", []string{y, mo, dd}}, phiSeq{"birth date", []string{dd, mo, y}},
			phiSeq{"birth date", []string{mo, dd, y}})
	}
	return m
}

// find returns what identifier s holds, or "".
func (m *phiMatcher) find(s string) string {
	if len(m.seqs) == 0 {
		return ""
	}
	words := phiWords(s)
	for _, q := range m.seqs {
		for i := 0; i+len(q.words) <= len(words); i++ {
			match := true
			for j, w := range q.words {
				if words[i+j] != w {
					match = false
					break
				}
			}
			if match {
				return q.what
			}
		}
	}
	return ""
}

// checkNoPHI refuses step data that holds a patient identifier: a field
// named for one (phiKeys), or any string naming this chain's patient (p,
// when the identity is on file). skip names fields that are allowed to
// hold one because the service removes them before the record is stored
// (the wristband scanned at the bedside) or keeps them only when they are
// a coid code. The error names the field and the kind of identifier,
// never its value.
func checkNoPHI(step Step, data []byte, p *PHI, skip ...string) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("%s: data: %w", step, ErrInvalid)
	}
	var m *phiMatcher
	if p != nil {
		m = newPHIMatcher(*p)
	}
	skipped := map[string]bool{}
	for _, k := range skip {
		skipped[k] = true
	}
	var walk func(path string, v any) error
	walk = func(path string, v any) error {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) { // the same field named first, every time
				e := x[k]
				p := k
				if path != "" {
					p = path + "." + k
				}
				if path == "" && skipped[k] {
					continue
				}
				if phiKeys[strings.ToLower(k)] {
					return fmt.Errorf("%s: data.%s would put a patient identifier in the ledger, which can never be erased; "+
						"refer to the patient by the COI: %w", step, p, ErrInvalid)
				}
				if err := walk(p, e); err != nil {
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
					return fmt.Errorf("%s: data.%s holds the patient's %s; patient identifiers stay out of the ledger, "+
						"which can never be erased: refer to the patient by the COI: %w", step, path, what, ErrInvalid)
				}
			}
		}
		return nil
	}
	return walk("", v)
}
