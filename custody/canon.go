package custody

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// maxCanonDepth is the deepest nesting of arrays and objects that
// Canonicalize accepts. Ledger records nest a few levels; the bound keeps a
// hostile input from exhausting the stack.
const maxCanonDepth = 100

// Canonicalize returns the RFC 8785 JSON Canonicalization Scheme (JCS) form
// of the JSON text in: object members sorted by their names compared as
// UTF-16 code units, no insignificant whitespace, strings with the minimal
// escaping of RFC 8785 section 3.2.2.2, and numbers written as ECMAScript's
// Number.prototype.toString writes the nearest IEEE 754 double.
//
// The input must be a single I-JSON (RFC 7493) value: malformed JSON,
// trailing data, duplicate member names, invalid UTF-8, lone surrogate
// escapes, numbers beyond the range of a double and nesting deeper than 100
// are rejected with an error wrapping ErrInvalid.
func Canonicalize(in []byte) ([]byte, error) {
	out, err := AppendCanonical(make([]byte, 0, len(in)+16), in)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendCanonical appends the canonical form of in to dst, by the same rules
// as Canonicalize, and returns the extended slice, so callers can reuse
// buffers. On error it returns dst with its length and contents unchanged
// and an error wrapping ErrInvalid. dst must not overlap in.
func AppendCanonical(dst, in []byte) ([]byte, error) {
	p := parserPool.Get().(*canonParser)
	p.in, p.pos, p.depth, p.out = in, 0, 0, dst
	err := p.document()
	out := p.out
	p.release()
	if err != nil {
		return dst, err
	}
	return out, nil
}

// canonParser is a recursive-descent JSON parser that writes the canonical
// form as it goes. Its buffers are reused across calls through parserPool.
type canonParser struct {
	in    []byte
	pos   int
	depth int
	out   []byte

	// members holds the members of every object being parsed, innermost
	// last; each object uses the tail it appended and truncates on return.
	members []canonMember
	// keys holds the decoded names of members whose names had escapes;
	// names without escapes are read from in directly.
	keys []byte
	// scratch is used to reorder an object's members.
	scratch []byte
}

// canonMember locates one object member: its decoded name and its
// canonical "name":value text in out. The name is a slice of in when it had
// no escapes, else of keys; the bytes of keys it refers to are not
// overwritten while its object is being parsed (nested objects only append
// beyond them and truncate back), and an older backing array left behind by
// append is never written again.
type canonMember struct {
	key              []byte
	outStart, outEnd int
}

var parserPool = sync.Pool{New: func() any { return new(canonParser) }}

// maxPooledBuf bounds the buffers a pooled parser keeps, so one huge input
// does not pin memory for ever.
const maxPooledBuf = 64 << 10

func (p *canonParser) release() {
	p.in, p.out = nil, nil
	if cap(p.keys) > maxPooledBuf {
		p.keys = nil
	}
	if cap(p.scratch) > maxPooledBuf {
		p.scratch = nil
	}
	if cap(p.members) > maxPooledBuf/32 {
		p.members = nil
	}
	p.members, p.keys, p.scratch = p.members[:0], p.keys[:0], p.scratch[:0]
	parserPool.Put(p)
}

func (p *canonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("canonicalize: %s at offset %d: %w", fmt.Sprintf(format, args...), p.pos, ErrInvalid)
}

func (p *canonParser) document() error {
	p.skipSpace()
	if p.pos >= len(p.in) {
		return p.errorf("no JSON value")
	}
	if err := p.value(); err != nil {
		return err
	}
	p.skipSpace()
	if p.pos < len(p.in) {
		return p.errorf("trailing data after JSON value")
	}
	return nil
}

func (p *canonParser) skipSpace() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// value parses one value at p.pos, which the caller has positioned past any
// white space.
func (p *canonParser) value() error {
	if p.pos >= len(p.in) {
		return p.errorf("unexpected end of input")
	}
	switch c := p.in[p.pos]; c {
	case '{':
		return p.object()
	case '[':
		return p.array()
	case '"':
		_, err := p.str(false)
		return err
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return p.number()
		}
		return p.errorf("unexpected character %q", c)
	}
}

func (p *canonParser) literal(lit string) error {
	if len(p.in)-p.pos < len(lit) || string(p.in[p.pos:p.pos+len(lit)]) != lit {
		return p.errorf("invalid literal, expected %s", lit)
	}
	p.pos += len(lit)
	p.out = append(p.out, lit...)
	return nil
}

func (p *canonParser) enter() error {
	p.depth++
	if p.depth > maxCanonDepth {
		return p.errorf("nesting deeper than %d", maxCanonDepth)
	}
	return nil
}

func (p *canonParser) array() error {
	if err := p.enter(); err != nil {
		return err
	}
	p.pos++ // '['
	p.out = append(p.out, '[')
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		p.out = append(p.out, ']')
		p.depth--
		return nil
	}
	for {
		if err := p.value(); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.in) {
			return p.errorf("unexpected end of input in array")
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
			p.out = append(p.out, ',')
			p.skipSpace()
		case ']':
			p.pos++
			p.out = append(p.out, ']')
			p.depth--
			return nil
		default:
			return p.errorf("expected ',' or ']' in array, found %q", p.in[p.pos])
		}
	}
}

func (p *canonParser) object() error {
	if err := p.enter(); err != nil {
		return err
	}
	p.pos++ // '{'
	start := len(p.out)
	p.out = append(p.out, '{')
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		p.out = append(p.out, '}')
		p.depth--
		return nil
	}
	base, keysBase := len(p.members), len(p.keys)
	for {
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			return p.errorf("expected string for object member name")
		}
		m := canonMember{outStart: len(p.out)}
		var err error
		if m.key, err = p.str(true); err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return p.errorf("expected ':' after object member name")
		}
		p.pos++
		p.out = append(p.out, ':')
		p.skipSpace()
		if err := p.value(); err != nil {
			return err
		}
		m.outEnd = len(p.out)
		p.members = append(p.members, m)
		p.skipSpace()
		if p.pos >= len(p.in) {
			return p.errorf("unexpected end of input in object")
		}
		c := p.in[p.pos]
		p.pos++
		if c == '}' {
			break
		}
		if c != ',' {
			p.pos--
			return p.errorf("expected ',' or '}' in object, found %q", c)
		}
		p.out = append(p.out, ',')
		p.skipSpace()
	}
	if err := p.sortMembers(start, p.members[base:]); err != nil {
		return err
	}
	p.out = append(p.out, '}')
	p.members, p.keys = p.members[:base], p.keys[:keysBase]
	p.depth--
	return nil
}

// sortMembers puts the members of the object whose '{' is at out[start] in
// canonical order, rejecting duplicate names. out holds '{' followed by the
// members separated by commas; the closing '}' is not yet written.
func (p *canonParser) sortMembers(start int, ms []canonMember) error {
	sorted := true
	for i := 1; i < len(ms); i++ {
		c := compareUTF16(ms[i-1].key, ms[i].key)
		if c == 0 {
			return p.errorf("duplicate object member name %q", ms[i].key)
		}
		if c > 0 {
			sorted = false
		}
	}
	if sorted {
		return nil
	}
	sortByName(ms)
	for i := 1; i < len(ms); i++ {
		if compareUTF16(ms[i-1].key, ms[i].key) == 0 {
			return p.errorf("duplicate object member name %q", ms[i].key)
		}
	}
	p.scratch = append(p.scratch[:0], p.out[start:]...)
	p.out = p.out[:start+1]
	for i, m := range ms {
		if i > 0 {
			p.out = append(p.out, ',')
		}
		p.out = append(p.out, p.scratch[m.outStart-start:m.outEnd-start]...)
	}
	return nil
}

// sortByName sorts ms by name. Objects are small, so an insertion sort
// that shifts members, with the comparison inlined, beats slices.SortFunc;
// large objects still get an O(n log n) sort.
func sortByName(ms []canonMember) {
	if len(ms) > 24 {
		slices.SortFunc(ms, func(a, b canonMember) int { return compareUTF16(a.key, b.key) })
		return
	}
	for i := 1; i < len(ms); i++ {
		m := ms[i]
		j := i
		for ; j > 0 && compareUTF16(ms[j-1].key, m.key) > 0; j-- {
			ms[j] = ms[j-1]
		}
		ms[j] = m
	}
}

// compareUTF16 compares two valid UTF-8 strings as sequences of UTF-16 code
// units, as RFC 8785 section 3.2.3 orders member names. Byte order of UTF-8
// is code point order, which agrees with UTF-16 order except that
// supplementary characters (surrogate pairs, 0xD800-0xDFFF) sort before
// U+E000-U+FFFF.
func compareUTF16(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		// The strings agree up to i, so a[i] and b[i] sit at the same
		// offset within characters that start at the same place. Only
		// when both are lead bytes of 3- or 4-byte sequences at or above
		// U+E000 can the orders disagree.
		if ca >= 0xEE && cb >= 0xEE && (ca >= 0xF0) != (cb >= 0xF0) {
			if ca >= 0xF0 {
				return -1
			}
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// str parses the string at p.pos and appends its canonical form to out.
// With key set, it also returns the decoded string: a slice of in when the
// string had no escapes, else of keys.
func (p *canonParser) str(key bool) (decoded []byte, err error) {
	inKeys := false
	p.pos++ // opening quote
	p.out = append(p.out, '"')
	start := p.pos
	keysStart := len(p.keys)
	runStart := p.pos
	for {
		// Copy the longest run of bytes that need no escaping.
		for p.pos < len(p.in) {
			c := p.in[p.pos]
			if c < utf8.RuneSelf {
				if c >= 0x20 && c != '"' && c != '\\' {
					p.pos++
					continue
				}
				break
			}
			r, size := utf8.DecodeRune(p.in[p.pos:])
			if r == utf8.RuneError && size == 1 {
				return nil, p.errorf("invalid UTF-8 in string")
			}
			p.pos += size
		}
		p.out = append(p.out, p.in[runStart:p.pos]...)
		if inKeys {
			p.keys = append(p.keys, p.in[runStart:p.pos]...)
		}
		if p.pos >= len(p.in) {
			return nil, p.errorf("unterminated string")
		}
		c := p.in[p.pos]
		if c == '"' {
			p.pos++
			p.out = append(p.out, '"')
			if inKeys {
				return p.keys[keysStart:len(p.keys):len(p.keys)], nil
			}
			return p.in[start : p.pos-1 : p.pos-1], nil
		}
		if c != '\\' {
			return nil, p.errorf("unescaped control character %#02x in string", c)
		}
		if key && !inKeys {
			// First escape in a name: everything before it was literal.
			inKeys = true
			p.keys = append(p.keys, p.in[start:p.pos]...)
		}
		if err := p.escape(inKeys); err != nil {
			return nil, err
		}
		runStart = p.pos
	}
}

// escape parses the escape sequence at p.pos, appends the canonical form of
// the character it stands for to out, and its UTF-8 to keys if toKeys.
func (p *canonParser) escape(toKeys bool) error {
	in := p.in
	if p.pos+1 >= len(in) {
		return p.errorf("unterminated string")
	}
	var r rune
	width := 2
	switch c := in[p.pos+1]; c {
	case '"', '\\', '/':
		r = rune(c)
	case 'b':
		r = '\b'
	case 'f':
		r = '\f'
	case 'n':
		r = '\n'
	case 'r':
		r = '\r'
	case 't':
		r = '\t'
	case 'u':
		hi, ok := hex4(in, p.pos+2)
		if !ok {
			return p.errorf("invalid \\u escape")
		}
		width = 6
		if hi < 0xD800 || hi > 0xDFFF {
			r = hi
			break
		}
		if hi >= 0xDC00 {
			return p.errorf("lone low surrogate escape \\u%04x", hi)
		}
		q := p.pos + 6
		if q+1 >= len(in) || in[q] != '\\' || in[q+1] != 'u' {
			return p.errorf("lone high surrogate escape \\u%04x", hi)
		}
		lo, ok := hex4(in, q+2)
		if !ok {
			p.pos = q
			return p.errorf("invalid \\u escape")
		}
		if lo < 0xDC00 || lo > 0xDFFF {
			return p.errorf("lone high surrogate escape \\u%04x", hi)
		}
		r = 0x10000 + (hi-0xD800)<<10 + (lo - 0xDC00)
		width = 12
	default:
		return p.errorf("invalid escape character %q", c)
	}
	p.pos += width
	p.out = appendCanonRune(p.out, r)
	if toKeys {
		p.keys = utf8.AppendRune(p.keys, r)
	}
	return nil
}

// hex4 decodes the four hex digits at in[i:i+4].
func hex4(in []byte, i int) (rune, bool) {
	if i+4 > len(in) {
		return 0, false
	}
	var r rune
	for _, c := range in[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// appendCanonRune appends r with the escaping of RFC 8785 section 3.2.2.2:
// quotation mark and reverse solidus escaped with a backslash, backspace,
// form feed, line feed, carriage return and tab as \b \f \n \r \t, the
// other control characters as lowercase \u00xx, and everything else,
// solidus and U+2028/U+2029 included, as literal UTF-8.
func appendCanonRune(dst []byte, r rune) []byte {
	switch r {
	case '"':
		return append(dst, '\\', '"')
	case '\\':
		return append(dst, '\\', '\\')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	if r < 0x20 {
		const hexDigits = "0123456789abcdef"
		return append(dst, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xF])
	}
	return utf8.AppendRune(dst, r)
}

// number parses the number at p.pos and appends its ECMAScript form to out.
func (p *canonParser) number() error {
	start := p.pos
	in := p.in
	i := p.pos
	if in[i] == '-' {
		i++
	}
	intStart := i
	if i >= len(in) || in[i] < '0' || in[i] > '9' {
		p.pos = i
		return p.errorf("invalid number: expected digit")
	}
	if in[i] == '0' {
		i++
	} else {
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
	}
	plainInt := true
	if i < len(in) && in[i] == '.' {
		plainInt = false
		i++
		d := i
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
		if i == d {
			p.pos = i
			return p.errorf("invalid number: expected digit after '.'")
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		plainInt = false
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		d := i
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
		if i == d {
			p.pos = i
			return p.errorf("invalid number: expected digit in exponent")
		}
	}
	p.pos = i
	lit := in[start:i]
	// Integers of up to 15 digits are exact doubles and ECMAScript writes
	// them as they are (the grammar already forbids leading zeros); only
	// negative zero changes.
	if plainInt && i-intStart <= 15 {
		if lit[0] == '-' && lit[1] == '0' {
			lit = lit[1:]
		}
		p.out = append(p.out, lit...)
		return nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil || math.IsInf(f, 0) {
		p.pos = start
		return p.errorf("number %.32s overflows a double", lit)
	}
	p.out = appendES6Number(p.out, f)
	return nil
}

// appendES6Number appends f formatted as ECMAScript's
// Number.prototype.toString does (ECMA-262 Number::toString, as RFC 8785
// section 3.2.2.3 requires). f must be finite.
func appendES6Number(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0') // also negative zero
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// Shortest round-trip digits in the form d[.ddd]e±xx.
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	var digits [17]byte
	k := 0
	i := 0
	for ; e[i] != 'e'; i++ {
		if e[i] != '.' {
			digits[k] = e[i]
			k++
		}
	}
	i++ // 'e'
	neg := e[i] == '-'
	i++
	x := 0
	for ; i < len(e); i++ {
		x = x*10 + int(e[i]-'0')
	}
	if neg {
		x = -x
	}
	// The value is 0.digits × 10^n, digits having k digits.
	n := x + 1
	d := digits[:k]
	switch {
	case k <= n && n <= 21:
		dst = append(dst, d...)
		for j := k; j < n; j++ {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, d[:n]...)
		dst = append(dst, '.')
		dst = append(dst, d[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for j := n; j < 0; j++ {
			dst = append(dst, '0')
		}
		dst = append(dst, d...)
	default:
		dst = append(dst, d[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}
