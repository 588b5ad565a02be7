package custody

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxJSONDepth is the deepest nesting of arrays and objects that
// CheckMembers accepts in a request body. Requests nest a few levels; the
// bound keeps a hostile body from costing more than its length.
const MaxJSONDepth = 64

// MemberProblem says what is wrong with a member that CheckMembers refuses.
type MemberProblem int

const (
	// MemberDuplicate is a member name that appears twice in one object.
	// encoding/json keeps the last and drops the first without a word, so
	// a client and the server could read two different requests.
	MemberDuplicate MemberProblem = iota + 1
	// MemberCaseVariant is a member name that differs from an earlier one
	// of the same object only in case ("MRN" after "mrn"). encoding/json
	// matches struct fields case-insensitively, so it is a duplicate too.
	MemberCaseVariant
	// MemberTooDeep is a value nested deeper than MaxJSONDepth.
	MemberTooDeep
)

// MemberError is the error CheckMembers returns. It wraps ErrInvalid.
type MemberError struct {
	// Problem says what is wrong.
	Problem MemberProblem
	// Path locates the member, as $.a.b[2].c; for MemberTooDeep, the
	// value that opens one level too many.
	Path string
	// Name is the refused member name (empty for MemberTooDeep).
	Name string
	// Earlier is the name it repeats: equal to Name for MemberDuplicate,
	// differing in case for MemberCaseVariant.
	Earlier string
}

// Error says which member is refused and why.
func (e *MemberError) Error() string {
	switch e.Problem {
	case MemberDuplicate:
		return fmt.Sprintf("member %s appears twice in one object", e.Path)
	case MemberCaseVariant:
		return fmt.Sprintf("member %s repeats member %q in another case; member names are case-sensitive and appear once", e.Path, e.Earlier)
	case MemberTooDeep:
		return fmt.Sprintf("JSON nested deeper than %d levels at %s", MaxJSONDepth, e.Path)
	}
	return fmt.Sprintf("member %s refused", e.Path)
}

// Unwrap returns ErrInvalid: a refused member is bad input.
func (e *MemberError) Unwrap() error { return ErrInvalid }

// CheckMembers refuses JSON text in which an object, at any depth, holds a
// member name twice or in two cases, and JSON nested deeper than
// MaxJSONDepth, with a *MemberError naming the member. It judges member
// names only, not syntax: on malformed text it may stop early and return
// nil, so the caller decodes data as well. Names are compared after their
// escapes are decoded, so "m\u0072n" repeats "mrn"; two cases are two
// names that strings.EqualFold finds equal, the rule encoding/json uses to
// match struct fields.
func CheckMembers(data []byte) error {
	var c memberChecker
	return c.check(data)
}

// memberFrame is one open array or object.
type memberFrame struct {
	object   bool
	wantName bool // object: the next string is a member name
	index    int  // array: index of the current element
	name     span // object: the current member's name, quoted, in data
	keys     []memberKey
	names    map[string]int // index into keys, once an object has many members
	arena    int            // length of the checker's arena when opened
}

// span is a range of bytes [start, end).
type span struct{ start, end int }

// memberKey is one member name of an object: its folded key in the
// checker's arena and its quoted text in data.
type memberKey struct {
	key, name span
}

// linearMembers is how many members an object may have before its names
// go into a map; below it, comparing folded keys is cheaper than hashing
// and allocates nothing.
const linearMembers = 16

type memberChecker struct {
	data  []byte
	stack []memberFrame
	arena []byte // the folded keys of the open objects
}

func (c *memberChecker) check(data []byte) error {
	c.data = data
	for i := 0; i < len(data); {
		switch data[i] {
		case '{', '[':
			if len(c.stack) == MaxJSONDepth {
				return &MemberError{Problem: MemberTooDeep, Path: c.path(len(c.stack))}
			}
			c.push(data[i] == '{')
			i++
		case '}', ']':
			n := len(c.stack)
			if n == 0 {
				return nil // unbalanced: a syntax error
			}
			c.arena = c.arena[:c.stack[n-1].arena]
			c.stack = c.stack[:n-1]
			i++
		case ',':
			if n := len(c.stack); n > 0 {
				if f := &c.stack[n-1]; f.object {
					f.wantName = true
				} else {
					f.index++
				}
			}
			i++
		case '"':
			end, escaped := ScanJSONString(data, i)
			if end < 0 {
				return nil // unterminated: a syntax error
			}
			n := len(c.stack)
			if n == 0 || !c.stack[n-1].object || !c.stack[n-1].wantName {
				i = end
				continue
			}
			f := &c.stack[n-1]
			f.wantName = false
			f.name = span{i, end}
			raw := data[i+1 : end-1]
			if escaped || !utf8.Valid(raw) {
				var name string
				if json.Unmarshal(data[i:end], &name) != nil {
					return nil // a bad escape: a syntax error
				}
				raw = []byte(name)
			}
			k := memberKey{name: f.name, key: span{start: len(c.arena)}}
			c.arena = appendFoldKey(c.arena, raw)
			k.key.end = len(c.arena)
			if j := f.find(c.arena, k.key); j >= 0 {
				return c.repeated(n, f.keys[j].name)
			}
			f.keys = append(f.keys, k)
			if f.names != nil || len(f.keys) > linearMembers {
				if f.names == nil {
					f.names = make(map[string]int, 2*linearMembers)
					for j, o := range f.keys {
						f.names[string(c.arena[o.key.start:o.key.end])] = j
					}
				} else {
					f.names[string(c.arena[k.key.start:k.key.end])] = len(f.keys) - 1
				}
			}
			i = end
		default:
			i++
		}
	}
	return nil
}

// find returns the index of the earlier member whose folded key equals
// the one at key in arena, or -1.
func (f *memberFrame) find(arena []byte, key span) int {
	k := arena[key.start:key.end]
	if f.names != nil {
		if j, ok := f.names[string(k)]; ok {
			return j
		}
		return -1
	}
	for j, o := range f.keys {
		if bytes.Equal(arena[o.key.start:o.key.end], k) {
			return j
		}
	}
	return -1
}

// repeated builds the error for the current member of the object open at
// depth n, which repeats the member quoted at earlier.
func (c *memberChecker) repeated(n int, earlier span) error {
	e := &MemberError{Problem: MemberDuplicate, Path: c.path(n),
		Name: c.decodeName(c.stack[n-1].name), Earlier: c.decodeName(earlier)}
	if e.Earlier != e.Name {
		e.Problem = MemberCaseVariant
	}
	return e
}

// decodeName returns the member name quoted at s in data ("" if none:
// malformed text can open an object inside an object).
func (c *memberChecker) decodeName(s span) string {
	if s.end-s.start < 2 {
		return ""
	}
	var name string
	if json.Unmarshal(c.data[s.start:s.end], &name) != nil {
		return string(c.data[s.start+1 : s.end-1])
	}
	return name
}

// push opens an array or object, reusing the slices of a closed one.
func (c *memberChecker) push(object bool) {
	n := len(c.stack)
	if n < cap(c.stack) {
		c.stack = c.stack[:n+1]
	} else {
		c.stack = append(c.stack, memberFrame{})
	}
	f := &c.stack[n]
	*f = memberFrame{object: object, wantName: object, keys: f.keys[:0], arena: len(c.arena)}
}

// path names the member or element open at depth n (1 is the outermost
// value's member), as $.a.b[2].c.
func (c *memberChecker) path(n int) string {
	var b strings.Builder
	b.WriteByte('$')
	for _, f := range c.stack[:n] {
		if !f.object {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(f.index))
			b.WriteByte(']')
			continue
		}
		name := c.decodeName(f.name)
		if isPlainName(name) {
			b.WriteByte('.')
			b.WriteString(name)
		} else {
			b.WriteByte('[')
			b.WriteString(strconv.Quote(name))
			b.WriteByte(']')
		}
	}
	return b.String()
}

// isPlainName reports whether a member name can be written after a dot.
func isPlainName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' && i > 0) {
			return false
		}
	}
	return true
}

// appendFoldKey appends to dst a key for the valid UTF-8 name such that
// two names have equal keys exactly when strings.EqualFold finds them
// equal: each rune replaced by the smallest rune of its case-folding orbit.
func appendFoldKey(dst, name []byte) []byte {
	for i := 0; i < len(name); {
		b := name[i]
		if b < utf8.RuneSelf {
			if b >= 'a' && b <= 'z' {
				b -= 'a' - 'A'
			}
			dst = append(dst, b)
			i++
			continue
		}
		r, size := utf8.DecodeRune(name[i:])
		i += size
		low := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			low = min(low, f)
		}
		dst = utf8.AppendRune(dst, low)
	}
	return dst
}

// ScanJSONString returns the index just past the JSON string starting at
// data[i] (a '"'), or -1 if it is not terminated, and whether it holds an
// escape. It is the one string scanner of the member checks here and of
// the telemetry decoder.
func ScanJSONString(data []byte, i int) (end int, escaped bool) {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '"':
			return j + 1, escaped
		case '\\':
			escaped = true
			j++
		}
	}
	return -1, escaped
}
