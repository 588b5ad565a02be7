package custody

import (
	"fmt"
	"strconv"
	"strings"
)

// checkAlphabet is the ISO/IEC 7064 Mod 37-2 alphabet used by ISBT 128 for
// keyboard entry check characters; a character's value is its index.
const checkAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"

// COILen is the length of a COI identifier's data content (Data Structure 040).
const COILen = 15

// DINLen is the length of a Donation Identification Number without flags.
const DINLen = 13

// ISBTCOIPrefix is the ISBT 128 data identifier that precedes Data Structure
// 040 (the chain-of-identity identifier) in bar codes.
const ISBTCOIPrefix = "&/"

func checkValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	case c == '*':
		return 36
	}
	return -1
}

// CheckChar returns the ISO/IEC 7064 Mod 37-2 keyboard entry check character
// K for data content s (digits and upper-case letters only). It returns
// ErrInvalid for any other character or an empty string.
func CheckChar(s string) (byte, error) {
	if s == "" {
		return 0, fmt.Errorf("check character: empty content: %w", ErrInvalid)
	}
	sum := 0
	for i := 0; i < len(s); i++ {
		v := checkValue(s[i])
		if v < 0 || v == 36 {
			return 0, fmt.Errorf("check character: character %q at %d is not 0-9 or A-Z: %w", s[i], i+1, ErrInvalid)
		}
		sum = ((sum + v) * 2) % 37
	}
	return checkAlphabet[(38-sum)%37], nil
}

// COI is the content of an ISBT 128 chain-of-identity identifier (Data
// Structure 040): "CH", the 5-character facility identification number, a
// 2-digit year and a 6-character sequence, 15 characters in all. The zero
// value is not a valid COI; obtain one from ParseCOI or NewCOI.
type COI string

// DIN is an ISBT 128 Donation Identification Number without flags: a
// 5-character FIN, a 2-digit year and a 6-digit sequence (13 characters).
type DIN string

// isFIN reports whether s is a facility identification number as ISBT 128
// defines it (αpppp): the first character A-N, P-Z or 1-9; the next two
// A-N, P-Z or 0-9; the last two digits. The letter O is never used, so it
// cannot be read as zero.
func isFIN(s string) bool {
	if len(s) != 5 {
		return false
	}
	if c := s[0]; !(c >= '1' && c <= '9' || isFINLetter(c)) {
		return false
	}
	for _, c := range []byte(s[1:3]) {
		if !(c >= '0' && c <= '9' || isFINLetter(c)) {
			return false
		}
	}
	return isDigits(s[3:])
}

// isFINLetter reports whether c is an upper-case letter other than O.
func isFINLetter(c byte) bool { return c >= 'A' && c <= 'Z' && c != 'O' }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isUpperAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return s != ""
}

// ValidFIN reports whether fin is a well-formed ISBT 128 facility
// identification number: A-N, P-Z or 1-9; then two characters that are
// A-N, P-Z or 0-9; then 2 digits ("A9999", "1AB23").
func ValidFIN(fin string) bool { return isFIN(fin) }

// NewCOI builds the COI for facility fin, year (4 digits; its last two are
// used) and sequence number seq (1 to 999999).
func NewCOI(fin string, year int, seq uint64) (COI, error) {
	if !isFIN(fin) {
		return "", fmt.Errorf("new coi: facility %q is not a FIN (A-N, P-Z or 1-9; two of A-N, P-Z, 0-9; two digits): %w", fin, ErrInvalid)
	}
	if year < 2000 || year > 2099 {
		return "", fmt.Errorf("new coi: year %d out of range: %w", year, ErrInvalid)
	}
	if seq < 1 || seq > 999999 {
		return "", fmt.Errorf("new coi: sequence %d exhausted or out of range for %s/%d: %w", seq, fin, year, ErrConflict)
	}
	return COI(fmt.Sprintf("CH%s%02d%06d", fin, year%100, seq)), nil
}

// ParseCOI parses what a person or scanner may give for a COI: the 15
// character content, optionally preceded by the ISBT data identifier "&/",
// optionally followed by its check character K (directly or after one
// space). A K that does not match is an ErrInvalid that says so. Lower-case
// input is rejected: ISBT 128 identifiers are upper case.
func ParseCOI(s string) (COI, error) {
	s = strings.TrimPrefix(s, ISBTCOIPrefix)
	var k string
	switch len(s) {
	case COILen:
	case COILen + 1:
		k = s[COILen:]
	case COILen + 2:
		if s[COILen] != ' ' {
			return "", fmt.Errorf("parse coi: %d characters, want %d (or %d with check character): %w", len(s), COILen, COILen+1, ErrInvalid)
		}
		k = s[COILen+1:]
	default:
		return "", fmt.Errorf("parse coi: %d characters, want %d (or %d with check character): %w", len(s), COILen, COILen+1, ErrInvalid)
	}
	c := s[:COILen]
	if !strings.HasPrefix(c, "CH") {
		return "", fmt.Errorf("parse coi: must start with CH: %w", ErrInvalid)
	}
	if !isFIN(c[2:7]) {
		return "", fmt.Errorf("parse coi: characters 3-7 are not a facility identification number: %w", ErrInvalid)
	}
	if !isDigits(c[7:9]) {
		return "", fmt.Errorf("parse coi: characters 8-9 are not a 2-digit year: %w", ErrInvalid)
	}
	if !isUpperAlnum(c[9:]) {
		return "", fmt.Errorf("parse coi: characters 10-15 must be digits or upper-case letters: %w", ErrInvalid)
	}
	if k != "" {
		want, _ := CheckChar(c)
		if k[0] != want {
			return "", fmt.Errorf("parse coi: check character %q does not match %s (mistyped identifier?): %w", k, c, ErrInvalid)
		}
	}
	return COI(c), nil
}

// K returns the COI's keyboard entry check character.
func (c COI) K() byte {
	k, err := CheckChar(string(c))
	if err != nil {
		return '?'
	}
	return k
}

// Display returns the COI for people: its content, a space and its check
// character K, for example "CHA999926000001 *".
func (c COI) Display() string { return string(c) + " " + string(c.K()) }

// FIN returns the issuing facility's identification number.
func (c COI) FIN() string { return string(c)[2:7] }

// String returns the 15-character content.
func (c COI) String() string { return string(c) }

// ParseDIN parses a DIN as it is typed: the 13 characters, optionally
// followed by its check character K (directly or after a space), or its
// display form, the FIN, year and sequence apart ("A9999 21 123456"),
// optionally followed by the two flag characters and then K, each after a
// space ("A9999 21 123456 00 3"); or Data Structure 001 as a scanner reads
// it ("=A99992112345600"). A K that does not match, or flags that
// carry a check character (60-96) that does not, is ErrInvalid.
func ParseDIN(s string) (DIN, error) {
	if len(s) == 1+DINLen+2 && s[0] == '=' {
		// Data Structure 001 scanned from a bar code: "=", DIN, flags.
		return checkDIN(s[1:1+DINLen], s[1+DINLen:], "")
	}
	if parts := strings.Split(s, " "); len(parts) >= 3 && len(parts[0]) == 5 {
		return parseDINDisplay(parts)
	}
	var k string
	switch len(s) {
	case DINLen:
	case DINLen + 1:
		k = s[DINLen:]
	case DINLen + 2:
		if s[DINLen] != ' ' {
			return "", fmt.Errorf("parse din: %d characters, want %d: %w", len(s), DINLen, ErrInvalid)
		}
		k = s[DINLen+1:]
	default:
		return "", fmt.Errorf("parse din: %d characters, want %d (or %d with check character): %w", len(s), DINLen, DINLen+1, ErrInvalid)
	}
	return checkDIN(s[:DINLen], "", k)
}

// parseDINDisplay parses the display form split at its spaces: FIN, year,
// sequence, then optionally flags (2 characters) and K (1 character).
func parseDINDisplay(parts []string) (DIN, error) {
	if len(parts[1]) != 2 || len(parts[2]) != 6 {
		return "", fmt.Errorf("parse din: display form is the FIN, 2-digit year and 6-digit sequence apart (A9999 21 123456): %w", ErrInvalid)
	}
	var flags, k string
	rest := parts[3:]
	if len(rest) > 0 && len(rest[0]) == 2 {
		flags, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 && len(rest[0]) == 1 {
		k, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("parse din: after the sequence only the flags (2 characters) and the check character (1) may follow: %w", ErrInvalid)
	}
	return checkDIN(parts[0]+parts[1]+parts[2], flags, k)
}

// checkDIN validates the 13-character DIN d, its flag characters when
// given, and its check character k when given.
func checkDIN(d, flags, k string) (DIN, error) {
	if !isFIN(d[:5]) {
		return "", fmt.Errorf("parse din: characters 1-5 are not a facility identification number: %w", ErrInvalid)
	}
	if !isDigits(d[5:]) {
		return "", fmt.Errorf("parse din: characters 6-13 must be digits: %w", ErrInvalid)
	}
	if flags != "" {
		if err := checkDINFlags(DIN(d), flags); err != nil {
			return "", fmt.Errorf("parse din: %w", err)
		}
	}
	if k != "" {
		want, _ := CheckChar(d)
		if k[0] != want {
			return "", fmt.Errorf("parse din: check character %q does not match %s: %w", k, d, ErrInvalid)
		}
	}
	return DIN(d), nil
}

// DINFlagsNone are the flag characters of a DIN that uses none.
const DINFlagsNone = "00"

// DINCheckFlags returns the type 3 flag characters of d: 60 plus the value
// of its Mod 37-2 check character, so a reader can verify the DIN without
// the eye-readable K.
func DINCheckFlags(d DIN) string {
	return strconv.Itoa(60 + checkValue(d.K()))
}

// checkDINFlags checks flag characters: two characters from 0-9, A-H, J-N,
// P, R-Y; numeric flags 60-96 (type 3) must carry d's check character.
func checkDINFlags(d DIN, flags string) error {
	if len(flags) != 2 {
		return fmt.Errorf("flag characters %q: want 2: %w", flags, ErrInvalid)
	}
	for i := 0; i < 2; i++ {
		c := flags[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Y' && c != 'I' && c != 'O' && c != 'Q') {
			return fmt.Errorf("flag characters %q: %q is not 0-9, A-H, J-N, P or R-Y: %w", flags, c, ErrInvalid)
		}
	}
	if n, err := strconv.Atoi(flags); err == nil && n >= 60 && n <= 96 && flags != DINCheckFlags(d) {
		return fmt.Errorf("flag characters %s carry a check character that does not match %s (mistyped or misread DIN?): %w", flags, d, ErrInvalid)
	}
	return nil
}

// K returns the DIN's keyboard entry check character.
func (d DIN) K() byte {
	k, err := CheckChar(string(d))
	if err != nil {
		return '?'
	}
	return k
}

// Display returns the DIN, a space and its check character K.
func (d DIN) Display() string { return string(d) + " " + string(d.K()) }

// EyeReadable returns the DIN as ICCBBA ST-001 prints it beside its bar
// code: the FIN, the year and the sequence number apart, then the flag
// characters (omitted when flags is empty) and the check character K, each
// apart: "A9999 21 123456 00 3". ParseDIN reads this form back. A DIN that
// is not 13 characters is returned with Display.
func (d DIN) EyeReadable(flags string) string {
	if len(d) != DINLen {
		return d.Display()
	}
	s := string(d[:5]) + " " + string(d[5:7]) + " " + string(d[7:])
	if flags != "" {
		s += " " + flags
	}
	return s + " " + string(d.K())
}

// BagKind says whether a bag holds the apheresis collection or final product.
type BagKind string

// Bag kinds, as they appear in bag IDs.
const (
	BagApheresis    BagKind = "APH"
	BagFinalProduct BagKind = "FP"
)

// BagID names one bag of a chain: "<COI>-APH-01" or "<COI>-FP-01".
type BagID struct {
	COI  COI
	Kind BagKind
	N    int // 1..99
}

// String formats the bag ID, for example "CHA999926000001-FP-01".
func (b BagID) String() string { return fmt.Sprintf("%s-%s-%02d", b.COI, b.Kind, b.N) }

// ParseBagID parses a bag ID "<COI>-APH-NN" or "<COI>-FP-NN". The COI part
// may carry its check character after the content ("<COI><K>-FP-01"),
// which is then verified.
func ParseBagID(s string) (BagID, error) {
	i := strings.IndexByte(s, '-')
	if i < 0 {
		return BagID{}, fmt.Errorf("parse bag id: want <COI>-APH-NN or <COI>-FP-NN: %w", ErrInvalid)
	}
	coi, err := ParseCOI(s[:i])
	if err != nil {
		return BagID{}, fmt.Errorf("parse bag id: %w", err)
	}
	rest := s[i+1:]
	var kind BagKind
	switch {
	case strings.HasPrefix(rest, "APH-"):
		kind = BagApheresis
	case strings.HasPrefix(rest, "FP-"):
		kind = BagFinalProduct
	default:
		return BagID{}, fmt.Errorf("parse bag id: kind must be APH or FP: %w", ErrInvalid)
	}
	num := rest[len(kind)+1:]
	if len(num) != 2 || !isDigits(num) {
		return BagID{}, fmt.Errorf("parse bag id: bag number must be 2 digits: %w", ErrInvalid)
	}
	n, _ := strconv.Atoi(num)
	if n < 1 {
		return BagID{}, fmt.Errorf("parse bag id: bag number must be 01-99: %w", ErrInvalid)
	}
	return BagID{COI: coi, Kind: kind, N: n}, nil
}
