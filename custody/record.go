package custody

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// EncodingVersion is the version of the canonical record encoding and hash
// (field "v" of every record). Version 1 is the RFC 8785 canonical JSON of
// the record object without its "hash" member, hashed with SHA-256. Changing
// the encoding is a compatibility break: the test vectors in
// testdata/ledger pin it.
const EncodingVersion = 1

// HashSize is the size in bytes of a record hash.
const HashSize = sha256.Size

// Hash is the SHA-256 hash of a record's canonical encoding.
type Hash [HashSize]byte

// String returns the hash as lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the all-zero hash that stands for "no
// previous record".
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText encodes the hash as lower-case hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes a lower-case hex hash.
func (h *Hash) UnmarshalText(b []byte) error {
	x, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = x
	return nil
}

// ParseHash decodes a 64-character lower-case hex hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*HashSize {
		return h, fmt.Errorf("parse hash: want %d hex characters: %w", 2*HashSize, ErrInvalid)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("parse hash: %v: %w", err, ErrInvalid)
	}
	if hex.EncodeToString(h[:]) != s {
		return h, fmt.Errorf("parse hash: must be lower-case hex: %w", ErrInvalid)
	}
	return h, nil
}

// Signature is an electronic signature inside a record (21 CFR Part 11
// 11.50): who signed, their printed name and role, what the signature
// means, when, and how the signer authenticated. It is part of the hashed
// record, so it cannot be moved to another record.
type Signature struct {
	User    string  `json:"user"`
	Name    string  `json:"name"`
	Role    Role    `json:"role"`
	Meaning Meaning `json:"meaning"`
	Time    string  `json:"time"`
	// Method is "password" for a signature executed with the user's ID and
	// password, "token" for an attribution by the authenticated API
	// session, and "system" for records written by coid itself.
	Method string `json:"method"`
}

// Record is one entry of the append-only ledger. The store assigns Seq,
// Prev, ChainSeq, ChainPrev and Hash when it appends the record; the domain
// fills the rest. Records are never changed or deleted.
type Record struct {
	V           int             `json:"v"`
	Seq         uint64          `json:"seq"`
	Prev        Hash            `json:"-"`
	Chain       COI             `json:"chain"`
	ChainSeq    uint64          `json:"chain_seq"`
	ChainPrev   Hash            `json:"-"`
	Step        Step            `json:"step"`
	Time        time.Time       `json:"-"`
	Site        string          `json:"site,omitempty"`
	SubmittedBy string          `json:"submitted_by"`
	Data        json.RawMessage `json:"data"`
	Signatures  []Signature     `json:"signatures"`
	Hash        Hash            `json:"-"`

	// parsed caches Data parsed (Parsed, Members); Fold sets it for a
	// chain's records.
	parsed *parsedData
}

// recordJSON is the wire form of a Record, with hashes as hex and the time
// in RFC 3339 UTC.
type recordJSON struct {
	V           int             `json:"v"`
	Seq         uint64          `json:"seq"`
	Prev        string          `json:"prev"`
	Chain       COI             `json:"chain"`
	ChainSeq    uint64          `json:"chain_seq"`
	ChainPrev   string          `json:"chain_prev"`
	Step        Step            `json:"step"`
	Time        string          `json:"time"`
	Site        string          `json:"site,omitempty"`
	SubmittedBy string          `json:"submitted_by"`
	Data        json.RawMessage `json:"data"`
	Signatures  []Signature     `json:"signatures"`
	Hash        string          `json:"hash,omitempty"`
}

// TimeFormat is the layout of every time stored in a record: RFC 3339 in
// UTC with nanoseconds trimmed of trailing zeros.
const TimeFormat = time.RFC3339Nano

// FormatTime formats t for a record: UTC, RFC 3339 with fractional seconds.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// MarshalJSON encodes the record with its hashes in hex and its hash.
func (r Record) MarshalJSON() ([]byte, error) {
	j := recordJSON{
		V: r.V, Seq: r.Seq, Prev: r.Prev.String(), Chain: r.Chain, ChainSeq: r.ChainSeq,
		ChainPrev: r.ChainPrev.String(), Step: r.Step, Time: FormatTime(r.Time), Site: r.Site,
		SubmittedBy: r.SubmittedBy, Data: r.Data, Signatures: r.Signatures,
	}
	if !r.Hash.IsZero() {
		j.Hash = r.Hash.String()
	}
	if j.Signatures == nil {
		j.Signatures = []Signature{}
	}
	if j.Data == nil {
		j.Data = json.RawMessage("{}")
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the wire form written by MarshalJSON or by
// Canonical.
func (r *Record) UnmarshalJSON(b []byte) error { return r.decode(b) }

func (r *Record) decode(b []byte) error {
	var j recordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return fmt.Errorf("record time: %w", err)
	}
	var prev, cprev, h Hash
	if prev, err = ParseHash(j.Prev); err != nil {
		return fmt.Errorf("record prev: %w", err)
	}
	if cprev, err = ParseHash(j.ChainPrev); err != nil {
		return fmt.Errorf("record chain_prev: %w", err)
	}
	if j.Hash != "" {
		if h, err = ParseHash(j.Hash); err != nil {
			return fmt.Errorf("record hash: %w", err)
		}
	}
	*r = Record{
		V: j.V, Seq: j.Seq, Prev: prev, Chain: j.Chain, ChainSeq: j.ChainSeq, ChainPrev: cprev,
		Step: j.Step, Time: t.UTC(), Site: j.Site, SubmittedBy: j.SubmittedBy, Data: j.Data,
		Signatures: j.Signatures, Hash: h,
	}
	return nil
}

// Canonical returns the record's canonical encoding (version 1): the RFC
// 8785 canonical JSON of the record without its "hash" member. Data must
// already be canonical JSON (the domain canonicalizes it when it builds a
// record). The members are written in RFC 8785 order directly, so the
// store can link and hash records cheaply inside its single writer.
func (r *Record) Canonical(dst []byte) []byte {
	p := r.Preseal()
	return p.appendLinked(dst, r)
}

// Presealed is a record's canonical encoding with its four link members
// (seq, prev, chain_seq, chain_prev) left out, to be filled in by Seal. A
// store prepares it in the caller's goroutine, before the record reaches
// its single writer, so that linking and hashing there is a few copies
// and a SHA-256. It holds the members before chain_prev, the members
// between chain_seq and prev, and the members after seq.
type Presealed struct {
	enc        []byte
	head, body int // enc[:head] precedes chain_prev, enc[head:body] precedes prev
}

// Preseal encodes everything of the record except its links.
func (r *Record) Preseal() Presealed {
	dst := make([]byte, 0, 256+len(r.Data))
	dst = append(dst, `{"chain":`...)
	dst = appendCanonString(dst, string(r.Chain))
	head := len(dst)
	dst = append(dst, `,"data":`...)
	if len(r.Data) == 0 {
		dst = append(dst, "{}"...)
	} else {
		dst = append(dst, r.Data...)
	}
	body := len(dst)
	dst = append(dst, `,"signatures":[`...)
	for i, s := range r.Signatures {
		if i > 0 {
			dst = append(dst, ',')
		}
		// Members in RFC 8785 order: meaning, method, name, role, time, user.
		dst = append(dst, `{"meaning":`...)
		dst = appendCanonString(dst, string(s.Meaning))
		dst = append(dst, `,"method":`...)
		dst = appendCanonString(dst, s.Method)
		dst = append(dst, `,"name":`...)
		dst = appendCanonString(dst, s.Name)
		dst = append(dst, `,"role":`...)
		dst = appendCanonString(dst, string(s.Role))
		dst = append(dst, `,"time":`...)
		dst = appendCanonString(dst, s.Time)
		dst = append(dst, `,"user":`...)
		dst = appendCanonString(dst, s.User)
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if r.Site != "" {
		dst = append(dst, `,"site":`...)
		dst = appendCanonString(dst, r.Site)
	}
	dst = append(dst, `,"step":`...)
	dst = appendCanonString(dst, string(r.Step))
	dst = append(dst, `,"submitted_by":`...)
	dst = appendCanonString(dst, r.SubmittedBy)
	dst = append(dst, `,"time":`...)
	dst = appendCanonString(dst, FormatTime(r.Time))
	dst = append(dst, `,"v":`...)
	dst = strconv.AppendInt(dst, int64(r.V), 10)
	dst = append(dst, '}')
	return Presealed{enc: dst, head: head, body: body}
}

// Len returns the length of the canonical encoding once linked.
func (p Presealed) Len() int {
	// chain_prev and prev: 64 hex digits each; seqs: at most 20 digits.
	return len(p.enc) + len(`,"chain_prev":"","chain_seq":,"prev":"","seq":`) + 2*2*HashSize + 2*20
}

func (p Presealed) appendLinked(dst []byte, r *Record) []byte {
	dst = append(dst, p.enc[:p.head]...)
	dst = append(dst, `,"chain_prev":"`...)
	dst = hex.AppendEncode(dst, r.ChainPrev[:])
	dst = append(dst, `","chain_seq":`...)
	dst = strconv.AppendUint(dst, r.ChainSeq, 10)
	dst = append(dst, p.enc[p.head:p.body]...)
	dst = append(dst, `,"prev":"`...)
	dst = hex.AppendEncode(dst, r.Prev[:])
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	return append(dst, p.enc[p.body:]...)
}

// Seal appends the canonical encoding of r, which must be the record p
// was prepared from with its links now set, to dst and sets r's hash from
// it, as Record.Seal does.
func (p Presealed) Seal(r *Record, dst []byte) []byte {
	start := len(dst)
	dst = p.appendLinked(dst, r)
	r.Hash = sha256.Sum256(dst[start:])
	return dst
}

// ComputeHash returns the SHA-256 of the record's canonical encoding.
func (r *Record) ComputeHash() Hash {
	var buf [1024]byte
	return sha256.Sum256(r.Canonical(buf[:0]))
}

// Seal appends the record's canonical encoding to dst, which is what a
// store keeps, and sets the record's hash from it. The record's links must
// already be set.
func (r *Record) Seal(dst []byte) []byte {
	start := len(dst)
	dst = r.Canonical(dst)
	r.Hash = sha256.Sum256(dst[start:])
	return dst
}

// DecodeRecord decodes a stored canonical record and checks that its bytes
// hash to want; it returns ErrChainBroken when they do not or the bytes are
// not a record.
func DecodeRecord(stored []byte, want Hash) (Record, error) {
	if sha256.Sum256(stored) != want {
		return Record{}, fmt.Errorf("decode record: content does not match its hash: %w", ErrChainBroken)
	}
	var r Record
	if err := r.decode(stored); err != nil {
		return Record{}, fmt.Errorf("decode record: %v: %w", err, ErrChainBroken)
	}
	r.Hash = want
	return r, nil
}

// appendCanonString appends s as an RFC 8785 JSON string: only '"', '\\'
// and control characters are escaped; invalid UTF-8 becomes U+FFFD, as in
// encoding/json.
func appendCanonString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c >= 0x20:
				dst = append(dst, c)
			case c == '\b':
				dst = append(dst, '\\', 'b')
			case c == '\f':
				dst = append(dst, '\\', 'f')
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\ufffd"...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// Links are the fields of a stored record that verification needs to
// check the hash chains, read without decoding the whole record.
type Links struct {
	Seq       uint64
	Prev      Hash
	Chain     COI
	ChainSeq  uint64
	ChainPrev Hash
	Hash      Hash
}

// ReadLinks checks that stored hashes to want and extracts its links. It
// scans only the top level of the canonical JSON, so it is cheap enough to
// verify millions of records a second. Any failure wraps ErrChainBroken.
func ReadLinks(stored []byte, want Hash) (Links, error) {
	if sha256.Sum256(stored) != want {
		return Links{}, fmt.Errorf("content does not match its hash: %w", ErrChainBroken)
	}
	l := Links{Hash: want}
	var seen int
	err := scanTopLevel(stored, func(key, val []byte) error {
		var err error
		switch string(key) {
		case "seq":
			l.Seq, err = strconv.ParseUint(string(val), 10, 64)
			seen |= 1
		case "prev":
			l.Prev, err = hashValue(val)
			seen |= 2
		case "chain":
			if len(val) < 2 {
				return fmt.Errorf("chain is not a string")
			}
			l.Chain = COI(val[1 : len(val)-1])
			seen |= 4
		case "chain_seq":
			l.ChainSeq, err = strconv.ParseUint(string(val), 10, 64)
			seen |= 8
		case "chain_prev":
			l.ChainPrev, err = hashValue(val)
			seen |= 16
		}
		if err == nil && seen == 31 {
			return errLinksFound // the rest of the record is covered by the hash
		}
		return err
	})
	if err == errLinksFound {
		err = nil
	}
	if err == nil && seen != 31 {
		err = fmt.Errorf("missing link fields")
	}
	if err != nil {
		return Links{}, fmt.Errorf("malformed record: %v: %w", err, ErrChainBroken)
	}
	return l, nil
}

var errLinksFound = errors.New("links found")

// The members a canonical (version 1) record ends with, in RFC 8785
// order: its step, then only scalars.
var (
	keyV           = []byte(`,"v":`)
	keyTime        = []byte(`,"time":`)
	keySubmittedBy = []byte(`,"submitted_by":`)
	keyStep        = []byte(`,"step":`)
)

// readStep returns the raw value, without its quotes, of the top-level
// "step" member of a stored record whose links ReadLinks has accepted. A
// canonical record ends with its step, submitted_by, time and v, so it
// reads them backwards from the end, a few dozen bytes whatever the size
// of the data and signatures before them; any other layout is scanned
// from the start. It returns nil when the record has no string step.
func readStep(stored []byte) []byte {
	e := len(stored) - 1
	if e < 0 || stored[e] != '}' {
		return nil
	}
	k := e
	for k > 0 && stored[k-1] >= '0' && stored[k-1] <= '9' {
		k--
	}
	if k < e && bytes.HasSuffix(stored[:k], keyV) {
		e = k - len(keyV)
		for i, key := range [...][]byte{keyTime, keySubmittedBy, keyStep} {
			o := openingQuote(stored, e-1)
			if o < 0 || !bytes.HasSuffix(stored[:o], key) {
				break
			}
			if i == 2 {
				return stored[o+1 : e-1]
			}
			e = o - len(key)
		}
	}
	var step []byte
	_ = scanTopLevel(stored, func(key, val []byte) error {
		// encoding/json keeps the last of duplicate members; so does this.
		if string(key) == "step" {
			step = nil
			if len(val) >= 2 && val[0] == '"' {
				step = val[1 : len(val)-1]
			}
		}
		return nil
	})
	return step
}

// openingQuote returns the index of the quote that opens the JSON string
// whose closing quote is at b[end], or -1 if b[end] closes no string. A
// quote inside a string is escaped, so it follows an odd number of
// backslashes; the opening quote follows an even number (none).
func openingQuote(b []byte, end int) int {
	if end < 1 || b[end] != '"' {
		return -1
	}
	for j := end; ; {
		j = bytes.LastIndexByte(b[:j], '"')
		if j < 0 {
			return -1
		}
		n := 0
		for k := j - 1; k >= 0 && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return j
		}
	}
}

func hashValue(val []byte) (Hash, error) {
	if len(val) != 2*HashSize+2 || val[0] != '"' || val[len(val)-1] != '"' {
		return Hash{}, fmt.Errorf("hash is not a 64-character string")
	}
	var h Hash
	_, err := hex.Decode(h[:], val[1:len(val)-1])
	return h, err
}

// scanTopLevel calls fn for each member of the top-level JSON object in b
// with the raw key (unquoted, unescaped keys only) and the raw value. It
// assumes compact JSON (no white space), which canonical JSON is.
func scanTopLevel(b []byte, fn func(key, val []byte) error) error {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return fmt.Errorf("not a JSON object")
	}
	i := 1
	for i < len(b)-1 {
		if b[i] != '"' {
			return fmt.Errorf("expected key at %d", i)
		}
		end := bytes.IndexByte(b[i+1:], '"')
		if end < 0 {
			return fmt.Errorf("unterminated key")
		}
		key := b[i+1 : i+1+end]
		i += end + 2
		if i >= len(b) || b[i] != ':' {
			return fmt.Errorf("expected colon at %d", i)
		}
		i++
		j, err := skipValue(b, i)
		if err != nil {
			return err
		}
		if err := fn(key, b[i:j]); err != nil {
			return err
		}
		i = j
		if i < len(b)-1 {
			if b[i] != ',' {
				return fmt.Errorf("expected comma at %d", i)
			}
			i++
		}
	}
	return nil
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("missing value")
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				j, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = j
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, fmt.Errorf("unterminated container")
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
			j++
		}
		if j == i {
			return 0, fmt.Errorf("empty value at %d", i)
		}
		return j, nil
	}
}

func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); {
		// The next quote, found with the vectorised search; it ends the
		// string unless an odd number of backslashes precede it.
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			break
		}
		j += q
		n := 0
		for k := j - 1; k > i && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return j + 1, nil
		}
		j++
	}
	return 0, fmt.Errorf("unterminated string")
}
