package custody

import (
	"fmt"
	"strings"
	"time"
)

// PayloadPrefix starts every version-1 label payload. The payload is
// "C1:" + COI content + K, then optionally ":" + bag kind "-" bag number:
//
//	C1:CHA999926000001*:FP-01
//
// Every character is in the QR alphanumeric set (0-9, A-Z, space, $%*+-./:),
// so the code stays small enough for a cryobag label. The version number
// after "C" changes if the format ever does.
const PayloadPrefix = "C1:"

// MaxCodeLen bounds what ParseCode accepts; scanners send far less.
const MaxCodeLen = 256

// LabelPayload returns the version-1 2-D code payload for a bag. A zero
// Kind and N give the chain-level payload (COI only). Bag labels now carry
// ISBT 128 data structures (ISBTLabelPayload); ParseCode still reads this
// form, printed on labels before them.
func LabelPayload(b BagID) string {
	p := PayloadPrefix + string(b.COI) + string(b.COI.K())
	if b.Kind != "" {
		p += fmt.Sprintf(":%s-%02d", b.Kind, b.N)
	}
	return p
}

// ISBTLabelPayload returns the ISBT 128 data string of a bag label's 2-D
// code: a Compound Message with the COI (Data Structure 040), the DIN with
// flags 00 when the bag has one (001), the product code when the product is
// registered (003, its divisions "99" since Product Divisions follow), the
// expiry in the site's local time when there is one (005; zero expires is
// none) and the bag as Product Divisions (032, see BagDivisions).
func ISBTLabelPayload(b BagID, din DIN, productCode string, expires time.Time) (string, error) {
	d := ISBTData{COI: b.COI, DIN: din, Expires: expires, Divisions: BagDivisions(b)}
	if din != "" {
		d.DINFlags = DINFlagsNone
	}
	if productCode != "" {
		if err := ValidateISBTProductCode(productCode); err != nil {
			return "", fmt.Errorf("label payload: %w", err)
		}
		if !DivisionsProductCode(productCode) {
			return "", fmt.Errorf("label payload: product code %s: a bag is named by product divisions, which ST-001 allows only beside cellular therapy (S) or regenerated tissue (P) codes: %w", productCode, ErrInvalid)
		}
		d.ProductCode = productCode[:6] + "99"
	}
	if b.Kind != BagApheresis && b.Kind != BagFinalProduct || b.N < 1 || b.N > 99 {
		return "", fmt.Errorf("label payload: bag %s: %w", b, ErrInvalid)
	}
	return EncodeISBT(d)
}

// Code is what a scanned or typed code resolved to: always a chain, and a bag
// when the code named one.
type Code struct {
	COI COI
	Bag *BagID
	// Form names which accepted form was recognised: "payload", "bag",
	// "coi" or "isbt".
	Form string
	// ISBT is what ISBT 128 data structures carried, for Form "isbt".
	ISBT *ISBTData
}

// ParseCode resolves what a scanner or a person may enter: ISBT 128 data
// structures (a bag label's Compound Message, or structures scanned one
// after the other; see ParseISBT) that include the COI (Data Structure
// 040), and the bag when Product Divisions (032) name one; a version-1
// label payload ("C1:..."); a bag ID ("<COI>-FP-01"); or a COI with or
// without its check character. ISBT 128 data without a COI names no chain
// and is refused. Leading
// and trailing white space (scanners append CR or LF) is ignored. A code
// with lower-case letters is refused with a message that names the usual
// cause (a scanner's Caps Lock); a wrong check character is an ErrInvalid
// that says so.
func ParseCode(s string) (Code, error) {
	if len(s) > MaxCodeLen {
		return Code{}, fmt.Errorf("parse code: %d characters is longer than any coid code (max %d): %w", len(s), MaxCodeLen, ErrInvalid)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return Code{}, fmt.Errorf("parse code: empty code: %w", ErrInvalid)
	}
	if n := len(s); strings.HasPrefix(s, ISBTCOIPrefix) && (n == len(ISBTCOIPrefix)+COILen+1 || n == len(ISBTCOIPrefix)+COILen+2) {
		// A COI typed after its data identifier, with its check character.
		coi, err := ParseCOI(s)
		if err != nil {
			return Code{}, fmt.Errorf("parse code: ISBT 128 data structure 040: %w", err)
		}
		return Code{COI: coi, Form: "isbt", ISBT: &ISBTData{COI: coi}}, nil
	}
	if isISBT(s) {
		return parseISBTCode(s)
	}
	if strings.ToUpper(s) != s {
		return Code{}, fmt.Errorf("parse code: the code has lower-case letters, and coid codes are all upper case "+
			"(a scanner with Caps Lock on sends them inverted; check the scanner): %w", ErrInvalid)
	}
	switch {
	case strings.HasPrefix(s, PayloadPrefix):
		rest := s[len(PayloadPrefix):]
		coiPart, bagPart, hasBag := strings.Cut(rest, ":")
		if len(coiPart) != COILen+1 {
			return Code{}, fmt.Errorf("parse code: label payload must carry the COI with its check character: %w", ErrInvalid)
		}
		coi, err := ParseCOI(coiPart)
		if err != nil {
			return Code{}, fmt.Errorf("parse code: label payload: %w", err)
		}
		if !hasBag {
			return Code{COI: coi, Form: "payload"}, nil
		}
		b, err := ParseBagID(string(coi) + "-" + bagPart)
		if err != nil {
			return Code{}, fmt.Errorf("parse code: label payload: %w", err)
		}
		return Code{COI: coi, Bag: &b, Form: "payload"}, nil
	case strings.Contains(s, "-"):
		b, err := ParseBagID(s)
		if err != nil {
			return Code{}, fmt.Errorf("parse code: %w", err)
		}
		return Code{COI: b.COI, Bag: &b, Form: "bag"}, nil
	}
	coi, err := ParseCOI(s)
	if err != nil {
		return Code{}, fmt.Errorf("parse code: %w", err)
	}
	return Code{COI: coi, Form: "coi"}, nil
}

// parseISBTCode resolves ISBT 128 data structures to a chain and bag.
func parseISBTCode(s string) (Code, error) {
	d, err := ParseISBT(s)
	if err != nil {
		if strings.ToUpper(s) != s {
			// Product codes may hold lower-case letters; only a code
			// that fails is likely a scanner's Caps Lock.
			return Code{}, fmt.Errorf("parse code: %w (the code has lower-case letters: a scanner with Caps Lock on sends them inverted; check the scanner)", err)
		}
		return Code{}, fmt.Errorf("parse code: %w", err)
	}
	if d.COI == "" {
		return Code{}, fmt.Errorf("parse code: these ISBT 128 data structures carry no COI (Data Structure 040, &/), so they name no chain: scan the label's 2-D code or its COI: %w", ErrInvalid)
	}
	c := Code{COI: d.COI, Form: "isbt", ISBT: &d}
	if d.Divisions != "" {
		b, err := bagFromDivisions(d.COI, d.Divisions)
		if err != nil {
			return Code{}, fmt.Errorf("parse code: %w", err)
		}
		c.Bag = &b
	}
	return c, nil
}
