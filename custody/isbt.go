package custody

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ISBT 128 data identifiers of the data structures coid reads and writes.
// Data Structure 001 (the DIN) has the one-character identifier "=": its
// second character is the DIN's first.
const (
	// ISBTProductPrefix precedes the Product Code (Data Structure 003).
	ISBTProductPrefix = "=<"
	// ISBTExpiryPrefix precedes the Expiration Date and Time (Data
	// Structure 005).
	ISBTExpiryPrefix = "&>"
	// ISBTCompoundPrefix precedes a Compound Message (Data Structure 023).
	ISBTCompoundPrefix = "=+"
	// ISBTDivisionsPrefix precedes the Product Divisions (Data Structure
	// 032).
	ISBTDivisionsPrefix = "=,"
)

// ISBTData is what ISBT 128 data structures on a bag label carry. A field's
// zero value means its data structure is absent.
type ISBTData struct {
	// COI is the chain-of-identity identifier (Data Structure 040).
	COI COI
	// DIN and DINFlags are the Donation Identification Number (Data
	// Structure 001) and its two flag characters (DINFlagsNone when
	// unused).
	DIN      DIN
	DINFlags string
	// ProductCode is the Product Code (Data Structure 003, 8 characters).
	ProductCode string
	// Expires is the Expiration Date and Time (Data Structure 005), to
	// the minute. ISBT 128 carries the labelling site's wall-clock time
	// without a zone: Expires is written in its own location and read
	// back in UTC as that wall-clock time.
	Expires time.Time
	// Divisions is the Product Divisions code (Data Structure 032, 6
	// characters); coid writes one per bag (see BagDivisions).
	Divisions string
}

// Bag kinds in Product Divisions codes: coid numbers the divisions of a
// donation "1000nn" for apheresis bag nn and "2000nn" for final-product bag
// nn, a single level of divisions as digits.
const (
	divisionsAPH = "1000"
	divisionsFP  = "2000"
)

// BagDivisions returns the Product Divisions code (Data Structure 032) coid
// gives bag: "1000nn" for apheresis bag nn, "2000nn" for final-product bag
// nn.
func BagDivisions(b BagID) string {
	p := divisionsAPH
	if b.Kind == BagFinalProduct {
		p = divisionsFP
	}
	return fmt.Sprintf("%s%02d", p, b.N)
}

// bagFromDivisions is BagDivisions reversed for the chain coi.
func bagFromDivisions(coi COI, d string) (BagID, error) {
	var kind BagKind
	switch d[:4] {
	case divisionsAPH:
		kind = BagApheresis
	case divisionsFP:
		kind = BagFinalProduct
	default:
		return BagID{}, fmt.Errorf("product divisions %s: not a coid bag (1000nn apheresis, 2000nn final product): %w", d, ErrInvalid)
	}
	n, err := strconv.Atoi(d[4:])
	if err != nil || n < 1 {
		return BagID{}, fmt.Errorf("product divisions %s: bag number must be 01-99: %w", d, ErrInvalid)
	}
	return BagID{COI: coi, Kind: kind, N: n}, nil
}

// Structures returns d's data structures, each with its data identifier,
// in the order coid writes them: COI, DIN, product code, expiry, divisions.
// A field that is set but malformed is ErrInvalid.
func (d ISBTData) Structures() ([]string, error) {
	var out []string
	if d.COI != "" {
		if c, err := ParseCOI(string(d.COI)); err != nil || c != d.COI {
			return nil, fmt.Errorf("isbt 128: COI %q is not 15 characters of Data Structure 040: %w", d.COI, ErrInvalid)
		}
		out = append(out, ISBTCOIPrefix+string(d.COI))
	}
	if d.DIN != "" {
		flags := d.DINFlags
		if flags == "" {
			flags = DINFlagsNone
		}
		if len(d.DIN) != DINLen {
			return nil, fmt.Errorf("isbt 128: DIN %q is not 13 characters: %w", d.DIN, ErrInvalid)
		}
		if _, err := checkDIN(string(d.DIN), flags, ""); err != nil {
			return nil, fmt.Errorf("isbt 128: DIN %s with flags %q: %w", d.DIN, flags, err)
		}
		out = append(out, "="+string(d.DIN)+flags)
	}
	if d.ProductCode != "" {
		if err := ValidateISBTProductCode(d.ProductCode); err != nil {
			return nil, fmt.Errorf("isbt 128: %w", err)
		}
		out = append(out, ISBTProductPrefix+d.ProductCode)
	}
	if !d.Expires.IsZero() {
		t := d.Expires
		if y := t.Year(); y < 2000 || y > 2999 {
			return nil, fmt.Errorf("isbt 128: expiry year %d out of range: %w", y, ErrInvalid)
		}
		out = append(out, fmt.Sprintf("%s%03d%03d%02d%02d", ISBTExpiryPrefix, t.Year()%1000, t.YearDay(), t.Hour(), t.Minute()))
	}
	if d.Divisions != "" {
		if len(d.Divisions) != 6 || !isUpperAlnum(d.Divisions) {
			return nil, fmt.Errorf("isbt 128: product divisions %q: want 6 of A-Z, 0-9: %w", d.Divisions, ErrInvalid)
		}
		out = append(out, ISBTDivisionsPrefix+d.Divisions)
	}
	if err := d.checkDivisionsPair(); err != nil {
		return nil, err
	}
	return out, nil
}

// DivisionsProductCode reports whether an ISBT 128 product code may stand
// beside Product Divisions (Data Structure 032): ICCBBA ST-001 allows it
// for cellular therapy (S) and regenerated tissue (P) product codes only.
func DivisionsProductCode(code string) bool {
	return code != "" && (code[0] == 'S' || code[0] == 'P')
}

// checkDivisionsPair applies ST-001's rules for a product code (Data
// Structure 003) and Product Divisions (032) together: beside 032 the
// product code is a cellular therapy or regenerated tissue code whose
// divisions (its 7th and 8th characters) are "99", and such a code whose
// divisions are "99" needs 032 beside it, since the divisions code is then
// part of the product's identity.
func (d ISBTData) checkDivisionsPair() error {
	if d.ProductCode == "" || len(d.ProductCode) != 8 {
		return nil
	}
	ninetyNine := d.ProductCode[6:] == "99"
	switch {
	case d.Divisions != "" && !DivisionsProductCode(d.ProductCode):
		return fmt.Errorf("isbt 128: product code %s with product divisions: ST-001 allows product divisions (032) only beside cellular therapy (S) or regenerated tissue (P) product codes: %w", d.ProductCode, ErrInvalid)
	case d.Divisions != "" && !ninetyNine:
		return fmt.Errorf("isbt 128: product code %s with product divisions %s: beside product divisions its divisions must be 99: %w", d.ProductCode, d.Divisions, ErrInvalid)
	case d.Divisions == "" && ninetyNine && DivisionsProductCode(d.ProductCode):
		return fmt.Errorf("isbt 128: product code %s has divisions 99, so its product divisions (032, =,) must be scanned with it: %w", d.ProductCode, ErrInvalid)
	}
	return nil
}

// EncodeISBT returns d as one data string: its single data structure, or,
// when it has several, an ICCBBA Compound Message (Data Structure 023,
// "=+" then the count and 000 for an undefined sequence) followed by the
// structures with no intervening characters. No structure is ErrInvalid.
func EncodeISBT(d ISBTData) (string, error) {
	s, err := d.Structures()
	if err != nil {
		return "", err
	}
	switch len(s) {
	case 0:
		return "", fmt.Errorf("isbt 128: no data structure: %w", ErrInvalid)
	case 1:
		return s[0], nil
	}
	return fmt.Sprintf("%s%02d000%s", ISBTCompoundPrefix, len(s), strings.Join(s, "")), nil
}

// isISBT reports whether s starts with a data identifier ParseISBT reads.
func isISBT(s string) bool {
	if len(s) < 2 {
		return false
	}
	switch s[:2] {
	case ISBTCOIPrefix, ISBTProductPrefix, ISBTExpiryPrefix, ISBTCompoundPrefix, ISBTDivisionsPrefix:
		return true
	}
	return s[0] == '=' && (s[1] >= '1' && s[1] <= '9' || isFINLetter(s[1]))
}

// ParseISBT reads ISBT 128 data structures: a Compound Message (Data
// Structure 023) whose count must match the structures that follow, or one
// or more structures with their data identifiers one after the other (as a
// scanner sends codes read one by one). It reads Data Structures 001 (DIN
// and flags; type 3 flags must carry the DIN's check character), 003, 005,
// 032 and 040; any other data identifier, a structure given twice, a
// structure cut short or trailing characters is ErrInvalid, and nothing is
// returned. So is a product code and Product Divisions that break ST-001's
// rules for the pair: a cellular therapy or regenerated tissue product code
// whose divisions are "99" without Product Divisions, or Product Divisions
// beside any other product code.
func ParseISBT(s string) (ISBTData, error) {
	want := -1
	if rest, ok := strings.CutPrefix(s, ISBTCompoundPrefix); ok {
		if len(rest) < 5 || !isDigits(rest[:5]) {
			return ISBTData{}, fmt.Errorf("isbt 128 compound message: the header =+aabbb needs 5 digits: %w", ErrInvalid)
		}
		want, _ = strconv.Atoi(rest[:2])
		if want < 1 {
			return ISBTData{}, fmt.Errorf("isbt 128 compound message: count 00: %w", ErrInvalid)
		}
		s = rest[5:]
	}
	var d ISBTData
	seen := map[string]bool{}
	n := 0
	for pos := 0; s != ""; n++ {
		id, size, err := isbtStructure(s)
		if err != nil {
			return ISBTData{}, fmt.Errorf("isbt 128: structure %d (character %d): %w", n+1, pos+1, err)
		}
		if seen[id] {
			return ISBTData{}, fmt.Errorf("isbt 128: data structure %s appears twice: %w", id, ErrInvalid)
		}
		seen[id] = true
		if err := d.set(id, s[:size]); err != nil {
			return ISBTData{}, fmt.Errorf("isbt 128: data structure %s: %w", id, err)
		}
		s, pos = s[size:], pos+size
	}
	if n == 0 {
		return ISBTData{}, fmt.Errorf("isbt 128: no data structure: %w", ErrInvalid)
	}
	if want >= 0 && n != want {
		return ISBTData{}, fmt.Errorf("isbt 128 compound message: header says %d data structures, %d follow: %w", want, n, ErrInvalid)
	}
	if err := d.checkDivisionsPair(); err != nil {
		return ISBTData{}, err
	}
	return d, nil
}

// isbtStructure names the data structure at the start of s and its size
// with the data identifier.
func isbtStructure(s string) (id string, size int, err error) {
	if len(s) < 2 {
		return "", 0, fmt.Errorf("%q is not a data structure: %w", s, ErrInvalid)
	}
	switch s[:2] {
	case ISBTCOIPrefix:
		id, size = "040", 2+COILen
	case ISBTProductPrefix:
		id, size = "003", 2+8
	case ISBTExpiryPrefix:
		id, size = "005", 2+10
	case ISBTDivisionsPrefix:
		id, size = "032", 2+6
	case ISBTCompoundPrefix:
		return "", 0, fmt.Errorf("a compound message inside another: %w", ErrInvalid)
	default:
		if s[0] != '=' || !(s[1] >= '1' && s[1] <= '9' || isFINLetter(s[1])) {
			return "", 0, fmt.Errorf("data identifier %q is not one coid reads (001 =α, 003 =<, 005 &>, 032 =, and 040 &/): %w", s[:2], ErrInvalid)
		}
		id, size = "001", 1+DINLen+2
	}
	if len(s) < size {
		return "", 0, fmt.Errorf("data structure %s is %d characters with its data identifier, only %d remain: %w", id, size, len(s), ErrInvalid)
	}
	return id, size, nil
}

// set stores structure v (with its data identifier) of data structure id.
func (d *ISBTData) set(id, v string) error {
	switch id {
	case "040":
		c := v[2:]
		if _, err := ParseCOI(c); err != nil {
			return err
		}
		d.COI = COI(c)
	case "001":
		din, err := checkDIN(v[1:1+DINLen], v[1+DINLen:], "")
		if err != nil {
			return err
		}
		d.DIN, d.DINFlags = din, v[1+DINLen:]
	case "003":
		if err := ValidateISBTProductCode(v[2:]); err != nil {
			return err
		}
		d.ProductCode = v[2:]
	case "005":
		t, err := parseISBTTime(v[2:])
		if err != nil {
			return err
		}
		d.Expires = t
	case "032":
		if !isUpperAlnum(v[2:]) {
			return fmt.Errorf("product divisions %q: want 6 of A-Z, 0-9: %w", v[2:], ErrInvalid)
		}
		d.Divisions = v[2:]
	}
	return nil
}

// parseISBTTime reads cyyjjjhhmm: the century digit and year within it
// (year 2000 + 100c + yy), the day of the year, the hour and minute.
func parseISBTTime(s string) (time.Time, error) {
	if !isDigits(s) {
		return time.Time{}, fmt.Errorf("date and time %q: want 10 digits cyyjjjhhmm: %w", s, ErrInvalid)
	}
	n := func(a, b int) int { v, _ := strconv.Atoi(s[a:b]); return v }
	year, day, hh, mm := 2000+n(0, 3), n(3, 6), n(6, 8), n(8, 10)
	last := time.Date(year, 12, 31, 0, 0, 0, 0, time.UTC).YearDay()
	if day < 1 || day > last || hh > 23 || mm > 59 {
		return time.Time{}, fmt.Errorf("date and time %s: day 001-%03d, hour 00-23, minute 00-59: %w", s, last, ErrInvalid)
	}
	return time.Date(year, 1, day, hh, mm, 0, 0, time.UTC), nil
}
