package custody

import (
	"fmt"
	"strings"
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
// Kind and N give the chain-level payload (COI only).
func LabelPayload(b BagID) string {
	p := PayloadPrefix + string(b.COI) + string(b.COI.K())
	if b.Kind != "" {
		p += fmt.Sprintf(":%s-%02d", b.Kind, b.N)
	}
	return p
}

// Code is what a scanned or typed code resolved to: always a chain, and a bag
// when the code named one.
type Code struct {
	COI COI
	Bag *BagID
	// Form names which accepted form was recognised: "payload", "bag",
	// "coi" or "isbt".
	Form string
}

// ParseCode resolves what a scanner or a person may enter: a label payload
// ("C1:..."), a bag ID ("<COI>-FP-01"), a COI with or without its check
// character, or the ISBT 128 Data Structure 040 string ("&/CH..."). Leading
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
	case strings.HasPrefix(s, ISBTCOIPrefix):
		coi, err := ParseCOI(s)
		if err != nil {
			return Code{}, fmt.Errorf("parse code: ISBT 128 data structure 040: %w", err)
		}
		return Code{COI: coi, Form: "isbt"}, nil
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
