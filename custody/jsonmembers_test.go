package custody_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/coid-project/coid/custody"
)

func TestCheckMembers(t *testing.T) {
	deep := strings.Repeat("[", custody.MaxJSONDepth) + strings.Repeat("]", custody.MaxJSONDepth)
	tooDeep := `{"a":` + strings.Repeat("[", custody.MaxJSONDepth) + strings.Repeat("]", custody.MaxJSONDepth) + `}`
	tests := []struct {
		name, in string
		problem  custody.MemberProblem // 0: accepted
		path     string
		earlier  string
	}{
		{"flat", `{"mrn":"1","name":"x"}`, 0, "", ""},
		{"same name in sibling objects", `[{"a":1},{"a":2}]`, 0, "", ""},
		{"same name at two depths", `{"a":{"a":{"a":1}}}`, 0, "", ""},
		{"names inside string values", `{"a":"\"a\":1","b":["a","a"]}`, 0, "", ""},
		{"empty object and array", `{"a":{},"b":[],"c":[{}]}`, 0, "", ""},
		{"depth at the bound", deep, 0, "", ""},
		{"duplicate at top", `{"mrn":"1","name":"x","mrn":"2"}`, custody.MemberDuplicate, "$.mrn", "mrn"},
		{"duplicate nested", `{"a":[{"b":1},{"c":{"d":1,"d":2}}]}`, custody.MemberDuplicate, "$.a[1].c.d", "d"},
		{"duplicate after nested object", `{"a":{"x":1},"b":2,"a":3}`, custody.MemberDuplicate, "$.a", "a"},
		{"duplicate by escape", `{"mrn":"1","m\u0072n":"2"}`, custody.MemberDuplicate, "$.mrn", "mrn"},
		{"case variant", `{"mrn":"1","MRN":"2"}`, custody.MemberCaseVariant, "$.MRN", "mrn"},
		{"case variant, Kelvin sign", `{"k":1,"\u212a":2}`, custody.MemberCaseVariant, "$[\"\u212a\"]", "k"},
		{"case variant, long s", `{"S":1,"\u017f":2}`, custody.MemberCaseVariant, "$[\"\u017f\"]", "S"},
		{"odd name quoted in path", `{"a b":{"x":1,"x":2}}`, custody.MemberDuplicate, `$["a b"].x`, "x"},
		{"too deep", tooDeep, custody.MemberTooDeep, "$.a" + strings.Repeat("[0]", custody.MaxJSONDepth-1), ""},
		// Malformed text is the decoder's to refuse; no false alarm, no panic.
		{"unterminated", `{"a":1,"a`, 0, "", ""},
		{"unbalanced", `}}]{"a":1}`, 0, "", ""},
		{"bad escape", `{"a":1,"\x":2}`, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := custody.CheckMembers([]byte(tt.in))
			if tt.problem == 0 {
				if err != nil {
					t.Fatalf("CheckMembers(%s) = %v, want nil", tt.in, err)
				}
				return
			}
			var me *custody.MemberError
			if !errors.As(err, &me) {
				t.Fatalf("CheckMembers(%s) = %v, want a *MemberError", tt.in, err)
			}
			if !errors.Is(err, custody.ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if me.Problem != tt.problem || me.Path != tt.path || me.Earlier != tt.earlier {
				t.Errorf("got problem %d path %q earlier %q, want %d %q %q", me.Problem, me.Path, me.Earlier, tt.problem, tt.path, tt.earlier)
			}
			if tt.problem != custody.MemberTooDeep && !strings.Contains(err.Error(), tt.path) {
				t.Errorf("message %q does not name %s", err, tt.path)
			}
		})
	}
}

// refMembers decodes valid JSON with encoding/json's token reader and
// reports whether some object holds two names that strings.EqualFold finds
// equal, and the deepest nesting.
func refMembers(data []byte) (dup bool, depth int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // 1E700 is valid JSON, beyond a float64
	type frame struct {
		object   bool
		wantName bool
		names    []string
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return dup, depth, true
		}
		if err != nil {
			return false, 0, false
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			f := &stack[n-1]
			if name, isName := tok.(string); isName && f.wantName {
				for _, o := range f.names {
					if strings.EqualFold(o, name) {
						dup = true
					}
				}
				f.names = append(f.names, name)
				f.wantName = false
				continue
			}
			if !f.wantName {
				f.wantName = true // after this value
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, wantName: true})
			depth = max(depth, len(stack))
		case json.Delim('['):
			stack = append(stack, frame{})
			depth = max(depth, len(stack))
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if n := len(stack); n > 0 && stack[n-1].object {
				stack[n-1].wantName = true
			}
		}
	}
}

// FuzzCheckMembers checks that on every valid JSON text CheckMembers
// agrees with a plain decode: it refuses a duplicate or case variant
// exactly when some object holds one, and too deep exactly when the
// nesting passes the bound; and that it never panics on any input.
func FuzzCheckMembers(f *testing.F) {
	for _, s := range []string{
		`{"mrn":"1","mrn":"2"}`, `{"a":{"b":[1,{"c":2,"C":3}]}}`, `{"k":1,"\u212a":2}`,
		`[{"a":1},{"a":1}]`, `{"a\"b":1,"a\u0022b":2}`, `{"x":"\"x\"","y":["x"]}`, `"{\"a\":1,\"a\":2}"`,
		strings.Repeat("[", 70) + strings.Repeat("]", 70), "{\"\xff\":1,\"\xfe\":2}", `{}`, `[]`, `{"a":1,"a`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := custody.CheckMembers(data)
		var me *custody.MemberError
		if err != nil && !errors.As(err, &me) {
			t.Fatalf("CheckMembers = %v, not a *MemberError", err)
		}
		if !json.Valid(data) || !utf8.Valid(data) {
			return
		}
		dup, depth, ok := refMembers(data)
		if !ok {
			t.Fatalf("reference decode failed on valid JSON %q", data)
		}
		tooDeep := depth > custody.MaxJSONDepth
		switch {
		case err == nil && (dup || tooDeep):
			t.Fatalf("CheckMembers(%q) = nil; reference: duplicate %v, depth %d", data, dup, depth)
		case err != nil && !dup && !tooDeep:
			t.Fatalf("CheckMembers(%q) = %v; reference finds no duplicate, depth %d", data, err, depth)
		case me != nil && me.Problem == custody.MemberTooDeep && !tooDeep:
			t.Fatalf("CheckMembers(%q) = %v at depth %d", data, err, depth)
		case me != nil && me.Problem != custody.MemberTooDeep && (!dup || !strings.EqualFold(me.Name, me.Earlier)):
			t.Fatalf("CheckMembers(%q) = %v; reference duplicate %v", data, err, dup)
		}
	})
}

// BenchmarkCheckMembers measures the check on a body of about 340 kB:
// an enrollment-like object with a long array of small records.
func BenchmarkCheckMembers(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString(`{"product":"axi-cel","patient":{"mrn":"MRN-0001","name":"Doe^Jane","dob":"1970-01-01"},"items":[`)
	for i := 0; buf.Len() < 340_000; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"seq":12345,"kind":"bag","id":"BAG-000123","note":"stored at \u002d150 \u00b0C","tags":["a","b"],"site":{"code":"S1","room":"2.01"}}`)
	}
	buf.WriteString(`]}`)
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := custody.CheckMembers(data); err != nil {
			b.Fatal(err)
		}
	}
}
