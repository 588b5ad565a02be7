package custody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// canonVectors are valid inputs and their RFC 8785 canonical form. The
// first ones come from RFC 8785 sections 3.2.2 and 3.2.3 and the test data
// of github.com/cyberphone/json-canonicalization (testdata/input and
// testdata/output).
var canonVectors = []struct {
	name, in, want string
}{
	{
		name: "rfc8785 3.2.2 example",
		in: `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
		want: `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
	},
	{
		name: "rfc8785 3.2.3 sorting",
		in: `{
   "\u20ac": "Euro Sign",
   "\r": "Carriage Return",
   "\ufb33": "Hebrew Letter Dalet With Dagesh",
   "1": "One",
   "\ud83d\ude00": "Emoji: Grinning Face",
   "\u0080": "Control",
   "\u00f6": "Latin Small Letter O With Diaeresis"
}`,
		want: "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\"," +
			"\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\"," +
			"\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
	},
	{
		name: "cyberphone arrays",
		in: `[
  56,
  {
    "d": true,
    "10": null,
    "1": [ ]
  }
]`,
		want: `[56,{"1":[],"10":null,"d":true}]`,
	},
	{
		name: "cyberphone french",
		in: `{
  "peach": "This sorting order",
  "péché": "is wrong according to French",
  "pêche": "but canonicalization MUST",
  "sin":   "ingnore locale"
}`,
		want: `{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ingnore locale"}`,
	},
	{
		name: "cyberphone structures",
		in: `{
  "1": {"f": {"f": "hi","F": 5} ,"\n": 56.0},
  "10": { },
  "": "empty",
  "a": { },
  "111": [ { } ],
  "A": { }
}`,
		want: `{"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}`,
	},
	{
		name: "cyberphone unicode not normalized",
		in:   `{"Unnormalized Unicode":"\u1e0d\u0307"}`,
		want: "{\"Unnormalized Unicode\":\"\u1e0d\u0307\"}",
	},
	{
		name: "cyberphone values",
		in: `{
  "numbers": [1E30, 4.50, 333333333.33333329, 2e-3, 0.000000000000000000000000001],
  "escaping": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
		want: `{"escaping":"€$\u000f\nA'B\"\\\\\"/","literals":[null,true,false],"numbers":[1e+30,4.5,333333333.3333333,0.002,1e-27]}`,
	},
	{
		name: "cyberphone weird",
		in: `{
  "\u20ac": "Euro Sign",
  "1": "One",
  "\u0080": "Control\u007f",
  "\ud83d\ude02": "Smiley",
  "\u00f6": "Latin Small Letter O With Diaeresis",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "</script>": "Browser Challenge"
}`,
		want: "{\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\u0080\":\"Control\u007f\"," +
			"\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😂\":\"Smiley\"," +
			"\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
	},
	{name: "true", in: "true", want: "true"},
	{name: "false", in: " false ", want: "false"},
	{name: "null", in: "\t\r\nnull\n", want: "null"},
	{name: "empty object", in: "{ }", want: "{}"},
	{name: "empty array", in: "[\n]", want: "[]"},
	{name: "empty string", in: `""`, want: `""`},
	{name: "nested empties", in: `[[],{},[{}],{"a":[]}]`, want: `[[],{},[{}],{"a":[]}]`},
	{
		name: "short escapes",
		in:   `"\b\f\n\r\t\"\\\/"`,
		want: `"\b\f\n\r\t\"\\/"`,
	},
	{
		name: "other control characters lowercase hex",
		in:   `"\u0000\u0001\u001F\u000B\u001e"`,
		want: `"\u0000\u0001\u001f\u000b\u001e"`,
	},
	{
		name: "html characters and DEL literal",
		in:   `"<a href=\u0022x\u0022>&amp;\u003c\u003E\u0026\u007f</a>"`,
		want: "\"<a href=\\\"x\\\">&amp;<>&\u007f</a>\"",
	},
	{
		name: "line and paragraph separators literal",
		in:   `"\u2028\u2029` + "\u2028\u2029\"",
		want: "\"\u2028\u2029\u2028\u2029\"",
	},
	{
		name: "raw non-ASCII kept",
		in:   "\"héllo wörld € 😀 \uFFFD\"",
		want: "\"héllo wörld € 😀 \uFFFD\"",
	},
	{
		name: "surrogate pair escape, any hex case",
		in:   `"\uD83D\uDE00\ud83d\ude00"`,
		want: `"😀😀"`,
	},
	{
		name: "nested objects sorted at every level",
		in:   `{"b":{"z":1,"y":[{"d":1,"c":2}]},"a":0}`,
		want: `{"a":0,"b":{"y":[{"c":2,"d":1}],"z":1}}`,
	},
	{
		name: "already sorted",
		in:   `{"a":1,"b":2,"c":3}`,
		want: `{"a":1,"b":2,"c":3}`,
	},
	{
		name: "reverse order",
		in:   `{"e":5,"d":4,"c":3,"b":2,"a":1}`,
		want: `{"a":1,"b":2,"c":3,"d":4,"e":5}`,
	},
	{
		name: "prefix sorts first",
		in:   `{"ab":1,"a":2,"abc":3,"":4}`,
		want: `{"":4,"a":2,"ab":1,"abc":3}`,
	},
	{
		name: "escaped names sort by decoded value",
		in:   `{"A":1,"\n":2,"\u0041B":3,"\"":4,"\\":5}`,
		want: `{"\n":2,"\"":4,"A":1,"AB":3,"\\":5}`,
	},
	{
		name: "supplementary sorts before U+E000-U+FFFF",
		in:   `{"\uffff":1,"\ue000":2,"\ud800\udc00":3,"\ud7ff":4,"\udbff\udfff":5}`,
		want: "{\"\ud7ff\":4,\"\U00010000\":3,\"\U0010ffff\":5,\"\ue000\":2,\"\uffff\":1}",
	},
	{
		name: "raw UTF-8 names sort as UTF-16",
		in:   "{\"\uffff\":1,\"\U0001F600\":2,\"\u00e9\":3}",
		want: "{\"\u00e9\":3,\"\U0001F600\":2,\"\uffff\":1}",
	},
	{
		name: "names differing only in escaping are distinct from similar",
		in:   `{"a\u0000":1,"a":2}`,
		want: `{"a":2,"a\u0000":1}`,
	},
	{
		name: "numbers",
		in:   `[0,-0,-0.0,0e10,1.0,100e-2,10,-10,1E2,1e+2,123456789012345,1234567890123456,9007199254740993,123456789012345678901234567890,1e-400,1.5e-7,0.1e1]`,
		want: `[0,0,0,0,1,1,10,-10,100,100,123456789012345,1234567890123456,9007199254740992,1.2345678901234568e+29,0,1.5e-7,1]`,
	},
	{
		name: "number exponent thresholds",
		in:   `[1e20,1e21,0.000001,1e-7,-1e21,-1e-7,999999999999999999999]`,
		want: `[100000000000000000000,1e+21,0.000001,1e-7,-1e+21,-1e-7,1e+21]`,
	},
	{
		name: "large object",
		in:   largeObject(40, true),
		want: largeObject(40, false),
	},
	{
		name: "deep but allowed nesting",
		in:   strings.Repeat("[", maxCanonDepth) + strings.Repeat("]", maxCanonDepth),
		want: strings.Repeat("[", maxCanonDepth) + strings.Repeat("]", maxCanonDepth),
	},
	{
		name: "record",
		in:   benchRecord,
		want: `{"at":"2026-03-14T09:21:07.123Z","bag":{"din":"W1234 26 123456","kind":"FP","n":1},` +
			`"chain":"CHA9999260000017","chain_prev":"sha256:0b5d2c7ad7e0f6b1c7c2b3b0f2e1a9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2",` +
			`"data":{"note":"bag intact, label legible","temp_c":-3.5,"volume_ml":250.5},` +
			`"prev":"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","seq":1042,` +
			`"signatures":[{"at":"2026-03-14T09:21:05Z","meaning":"performed","name":"A. Nurse","role":"nurse","user":"u-104"},` +
			`{"at":"2026-03-14T09:21:06Z","meaning":"verified","name":"B. Pharmacist","role":"pharmacist","user":"u-233"}],` +
			`"step":"collection","v":1}`,
	},
}

// largeObject returns an object with n members named k00, k01, ...,
// listed in reverse order (with white space) if reversed, else canonical.
func largeObject(n int, reversed bool) string {
	var members []string
	for i := range n {
		members = append(members, fmt.Sprintf(`"k%02d":%d`, i, i))
	}
	if !reversed {
		return "{" + strings.Join(members, ",") + "}"
	}
	slices.Reverse(members)
	return "{ " + strings.Join(members, ", ") + " }"
}

// benchRecord is a ledger-record-like object of about 500 bytes.
const benchRecord = `{
  "v": 1,
  "seq": 1042,
  "chain": "CHA9999260000017",
  "prev": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  "chain_prev": "sha256:0b5d2c7ad7e0f6b1c7c2b3b0f2e1a9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2",
  "step": "collection",
  "at": "2026-03-14T09:21:07.123Z",
  "bag": {"kind": "FP", "n": 1, "din": "W1234 26 123456"},
  "data": {"volume_ml": 250.5, "temp_c": -3.5, "note": "bag intact, label legible"},
  "signatures": [
    {"user": "u-104", "name": "A. Nurse", "role": "nurse", "meaning": "performed", "at": "2026-03-14T09:21:05Z"},
    {"user": "u-233", "name": "B. Pharmacist", "role": "pharmacist", "meaning": "verified", "at": "2026-03-14T09:21:06Z"}
  ]
}`

func TestCanonicalizeVectors(t *testing.T) {
	for _, tc := range canonVectors {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonicalize([]byte(tc.in))
			if err != nil {
				t.Fatalf("Canonicalize: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("Canonicalize(%q)\n got %s\nwant %s", tc.in, got, tc.want)
			}
		})
	}
}

// canonNumberVectors map IEEE 754 bit patterns to their ECMAScript string.
// Those marked "rfc" are RFC 8785 Appendix B (its NaN and Infinity rows
// cannot occur in JSON text and are covered by the rejection tests).
var canonNumberVectors = []struct {
	bits uint64
	want string
	note string
}{
	{0x0000000000000000, "0", "rfc: zero"},
	{0x8000000000000000, "0", "rfc: minus zero"},
	{0x0000000000000001, "5e-324", "rfc: min pos number"},
	{0x8000000000000001, "-5e-324", "rfc: min neg number"},
	{0x7fefffffffffffff, "1.7976931348623157e+308", "rfc: max pos number"},
	{0xffefffffffffffff, "-1.7976931348623157e+308", "rfc: max neg number"},
	{0x4340000000000000, "9007199254740992", "rfc: max pos int"},
	{0xc340000000000000, "-9007199254740992", "rfc: max neg int"},
	{0x4430000000000000, "295147905179352830000", "rfc: ~2**68"},
	{0x44b52d02c7e14af5, "9.999999999999997e+22", "rfc"},
	{0x44b52d02c7e14af6, "1e+23", "rfc"},
	{0x44b52d02c7e14af7, "1.0000000000000001e+23", "rfc"},
	{0x444b1ae4d6e2ef4e, "999999999999999700000", "rfc"},
	{0x444b1ae4d6e2ef4f, "999999999999999900000", "rfc"},
	{0x444b1ae4d6e2ef50, "1e+21", "rfc"},
	{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7", "rfc"},
	{0x3eb0c6f7a0b5ed8d, "0.000001", "rfc"},
	{0x41b3de4355555553, "333333333.3333332", "rfc"},
	{0x41b3de4355555554, "333333333.33333325", "rfc"},
	{0x41b3de4355555555, "333333333.3333333", "rfc"},
	{0x41b3de4355555556, "333333333.3333334", "rfc"},
	{0x41b3de4355555557, "333333333.33333343", "rfc"},
	{0xbecbf647612f3696, "-0.0000033333333333333333", "rfc"},
	{0x43143ff3c1cb0959, "1424953923781206.2", "rfc: round to even"},
	{0x4415af1d78b58c40, "100000000000000000000", "1e20, largest power of ten without exponent"},
	{0x3e7ad7f29abcaf48, "1e-7", "first small value with exponent"},
	{0x3e8421f5f40d8376, "1.5e-7", "small value with fraction"},
	{0x3efa36e2eb1c432d, "0.000025", "small value without exponent"},
	{0x4012000000000000, "4.5", ""},
	{0x3f60624dd2f1a9fc, "0.002", ""},
	{0x3ff0000000000000, "1", ""},
	{0xbff0000000000000, "-1", ""},
	{0x4059000000000000, "100", ""},
	{0x3fb999999999999a, "0.1", ""},
	{0x3fd3333333333334, "0.30000000000000004", "0.1+0.2"},
	{0x3ff0000000000001, "1.0000000000000002", "1 + ulp"},
	{0x441ac53a7e04bcda, "123456789012345680000", ""},
	{0x43e56a95319d63e1, "12345678901234567000", ""},
	{0x43e0000000000000, "9223372036854776000", "2**63"},
	{0x430c6bf52633fff8, "999999999999999", ""},
	{0x430c6bf526340000, "1000000000000000", ""},
	{0x4341c37937e08000, "10000000000000000", ""},
	{0x7e37e43c8800759c, "1e+300", ""},
	{0x3c36b082c2148b8e, "1.23e-18", ""},
	{0x46293e5939a08cea, "1e+30", ""},
	{0x3a53ce9a36f23c10, "1e-27", ""},
}

func TestCanonNumberVectors(t *testing.T) {
	for _, tc := range canonNumberVectors {
		t.Run(tc.want, func(t *testing.T) {
			f := math.Float64frombits(tc.bits)
			if got := string(appendES6Number(nil, f)); got != tc.want {
				t.Errorf("appendES6Number(%016x) = %s, want %s (%s)", tc.bits, got, tc.want, tc.note)
			}
			// The same value spelled in several JSON ways canonicalizes
			// to the same text.
			for _, text := range []string{
				strconv.FormatFloat(f, 'g', -1, 64),
				strconv.FormatFloat(f, 'E', -1, 64),
				strconv.FormatFloat(f, 'f', -1, 64),
				tc.want,
			} {
				got, err := Canonicalize([]byte(text))
				if err != nil {
					t.Fatalf("Canonicalize(%s): %v", text, err)
				}
				if string(got) != tc.want {
					t.Errorf("Canonicalize(%s) = %s, want %s", text, got, tc.want)
				}
			}
		})
	}
}

// TestCanonNumberProperties checks the ECMAScript rules on random doubles:
// the text reads back as the same double, has no more digits than the
// shortest round-trip form, and uses an exponent exactly when the
// magnitude is below 1e-6 or at least 1e21.
func TestCanonNumberProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(8785, 1))
	for i := 0; i < 200000; i++ {
		var f float64
		switch i % 3 {
		case 0:
			f = math.Float64frombits(rng.Uint64())
		case 1:
			f = (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(60)-30))
		default:
			f = float64(rng.Int64N(1<<62)) * math.Pow(10, float64(rng.IntN(12)))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		s := string(appendES6Number(nil, f))
		back, err := strconv.ParseFloat(s, 64)
		if err != nil || back != f {
			t.Fatalf("%016x: %s reads back as %v, %v", math.Float64bits(f), s, back, err)
		}
		if f == 0 {
			if s != "0" {
				t.Fatalf("zero as %s", s)
			}
			continue
		}
		abs := math.Abs(f)
		wantExp := abs < 1e-6 || abs >= 1e21
		if gotExp := strings.Contains(s, "e"); gotExp != wantExp {
			t.Fatalf("%016x (%g): %s, exponent %v, want %v", math.Float64bits(f), f, s, gotExp, wantExp)
		}
		short := strconv.FormatFloat(abs, 'e', -1, 64)
		mant, _, _ := strings.Cut(short, "e")
		wantDigits := strings.Replace(mant, ".", "", 1)
		mant, _, _ = strings.Cut(strings.TrimPrefix(s, "-"), "e")
		gotDigits := strings.Trim(strings.Replace(mant, ".", "", 1), "0")
		if gotDigits != strings.Trim(wantDigits, "0") {
			t.Fatalf("%016x: %s has digits %s, want %s", math.Float64bits(f), s, gotDigits, wantDigits)
		}
	}
}

func TestCanonicalizeIdempotent(t *testing.T) {
	for _, tc := range canonVectors {
		t.Run(tc.name, func(t *testing.T) {
			once, err := Canonicalize([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			twice, err := Canonicalize(once)
			if err != nil {
				t.Fatalf("Canonicalize of canonical %s: %v", once, err)
			}
			if !bytes.Equal(once, twice) {
				t.Errorf("not idempotent:\n once %s\ntwice %s", once, twice)
			}
		})
	}
}

func TestCanonicalizeMatchesEncodingJSON(t *testing.T) {
	for _, tc := range canonVectors {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Canonicalize([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			assertSameJSON(t, []byte(tc.in), out)
		})
	}
}

func assertSameJSON(t *testing.T, in, out []byte) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(in, &a); err != nil {
		t.Fatalf("encoding/json rejects input %q: %v", in, err)
	}
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatalf("encoding/json rejects output %q: %v", out, err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("input and output decode differently:\n in %q -> %#v\nout %q -> %#v", in, a, out, b)
	}
}

func TestCanonAppend(t *testing.T) {
	dst := []byte("prefix:")
	out, err := AppendCanonical(dst, []byte(`{"b":1,"a":[true]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), `prefix:{"a":[true],"b":1}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}

	// Reusing the buffer gives the same bytes.
	buf := out[:0]
	for range 3 {
		buf, err = AppendCanonical(buf[:0], []byte(benchRecord))
		if err != nil {
			t.Fatal(err)
		}
	}
	want, _ := Canonicalize([]byte(benchRecord))
	if !bytes.Equal(buf, want) {
		t.Fatalf("reused buffer: got %s, want %s", buf, want)
	}

	// On error dst comes back with its length unchanged.
	dst = append(make([]byte, 0, 64), "keep"...)
	out, err = AppendCanonical(dst, []byte(`{"z":1,"a":2,"a":3}`))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if string(out) != "keep" {
		t.Fatalf("on error got %q, want %q", out, "keep")
	}
}

// TestCanonicalizeConcurrent runs Canonicalize from many goroutines, so
// that the race detector can check the pooled parser state.
func TestCanonicalizeConcurrent(t *testing.T) {
	want, err := Canonicalize([]byte(benchRecord))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				in := canonVectors[(g+i)%len(canonVectors)].in
				if _, err := Canonicalize([]byte(in)); err != nil {
					t.Error(err)
					return
				}
				got, err := Canonicalize([]byte(benchRecord))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("got %s, %v; want %s", got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

var canonRejects = []struct {
	name, in, reason string
}{
	{"empty", "", "no JSON value"},
	{"only space", " \n\t", "no JSON value"},
	{"BOM", "\ufeff{}", "unexpected character"},
	{"bare word", "hello", "unexpected character"},
	{"NaN", "NaN", "unexpected character"},
	{"Infinity", "Infinity", "unexpected character"},
	{"minus Infinity", "-Infinity", "invalid number"},
	{"single quotes", "'a'", "unexpected character"},
	{"comment", "[1 /* c */]", "expected ',' or ']'"},
	{"truncated literal", "tru", "invalid literal"},
	{"misspelt literal", "nul1", "invalid literal"},
	{"capital literal", "True", "unexpected character"},
	{"unclosed object", `{"a":1`, "unexpected end of input"},
	{"unclosed array", "[1,2", "unexpected end of input"},
	{"trailing comma array", "[1,]", "unexpected character"},
	{"trailing comma object", `{"a":1,}`, "expected string for object member name"},
	{"missing colon", `{"a" 1}`, "expected ':'"},
	{"missing value", `{"a":}`, "unexpected character"},
	{"unquoted name", `{a:1}`, "expected string for object member name"},
	{"number name", `{1:1}`, "expected string for object member name"},
	{"missing comma", `[1 2]`, "expected ',' or ']'"},
	{"object missing comma", `{"a":1 "b":2}`, "expected ',' or '}'"},
	{"mismatched close", `[1}`, "expected ',' or ']'"},
	{"leading zero", "01", "trailing data"},
	{"leading plus", "+1", "unexpected character"},
	{"bare minus", "-", "invalid number"},
	{"double minus", "--1", "invalid number"},
	{"dot without digits", "1.", "expected digit after '.'"},
	{"leading dot", ".5", "unexpected character"},
	{"empty exponent", "1e", "expected digit in exponent"},
	{"exponent sign only", "1e+", "expected digit in exponent"},
	{"hex number", "0x10", "trailing data"},
	{"trailing data", "1 2", "trailing data"},
	{"trailing object", "{}{}", "trailing data"},
	{"trailing close", "[]]", "trailing data"},
	{"trailing garbage", `{"a":1} x`, "trailing data"},
	{"duplicate name", `{"a":1,"a":2}`, "duplicate object member name"},
	{"duplicate name unsorted", `{"b":1,"a":2,"c":3,"a":4}`, "duplicate object member name"},
	{"duplicate name by escape", `{"a":1,"\u0061":2}`, "duplicate object member name"},
	{"duplicate name both escaped", `{"\n":1,"\u000a":2}`, "duplicate object member name"},
	{"duplicate name in large object", strings.Replace(largeObject(40, true), `"k07"`, `"k31"`, 1), "duplicate object member name"},
	{"duplicate name nested", `[{"x":{"k":1,"k":1}}]`, "duplicate object member name"},
	{"unterminated string", `"abc`, "unterminated string"},
	{"unterminated escape", `"abc\`, "unterminated string"},
	{"raw control character", "\"a\x01b\"", "unescaped control character"},
	{"raw newline", "\"a\nb\"", "unescaped control character"},
	{"raw NUL", "\"\x00\"", "unescaped control character"},
	{"bad escape", `"\x41"`, "invalid escape character"},
	{"short unicode escape", `"\u12"`, "invalid \\u escape"},
	{"non-hex unicode escape", `"\u12g4"`, "invalid \\u escape"},
	{"invalid UTF-8 byte", "\"\xff\"", "invalid UTF-8"},
	{"truncated UTF-8", "\"\xe2\x82\"", "invalid UTF-8"},
	{"overlong UTF-8", "\"\xc0\xaf\"", "invalid UTF-8"},
	{"UTF-8 encoded surrogate", "\"\xed\xa0\x80\"", "invalid UTF-8"},
	{"invalid UTF-8 in name", "{\"\xfe\":1}", "invalid UTF-8"},
	{"invalid UTF-8 outside string", "[\xc3\xa9]", "unexpected character"},
	{"lone high surrogate", `"\ud800"`, "lone high surrogate"},
	{"lone high surrogate then char", `"\ud83dx"`, "lone high surrogate"},
	{"high surrogate then BMP escape", `"\ud83d\u0041"`, "lone high surrogate"},
	{"two high surrogates", `"\ud83d\ud83d\ude00"`, "lone high surrogate"},
	{"high surrogate then bad escape", `"\ud83d\uzzzz"`, "invalid \\u escape"},
	{"lone low surrogate", `"\ude00"`, "lone low surrogate"},
	{"reversed pair", `"\ude00\ud83d"`, "lone low surrogate"},
	{"lone surrogate in name", `{"\udfff":1}`, "lone low surrogate"},
	{"overflow", "1e400", "overflows a double"},
	{"negative overflow", "-1e400", "overflows a double"},
	{"overflow mantissa", "[" + strings.Repeat("9", 400) + "]", "overflows a double"},
	{"overflow just above max", "1.7976931348623159e308", "overflows a double"},
	{"too deep arrays", strings.Repeat("[", maxCanonDepth+1) + strings.Repeat("]", maxCanonDepth+1), "nesting deeper than 100"},
	{"too deep objects", strings.Repeat(`{"a":`, maxCanonDepth+1) + "1" + strings.Repeat("}", maxCanonDepth+1), "nesting deeper than 100"},
	{"too deep unclosed", strings.Repeat("[", 100000), "nesting deeper than 100"},
}

func TestCanonicalizeRejects(t *testing.T) {
	for _, tc := range canonRejects {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Canonicalize([]byte(tc.in))
			if err == nil {
				t.Fatalf("Canonicalize(%q) = %s, want error", tc.in, out)
			}
			if out != nil {
				t.Errorf("Canonicalize(%q) returned %q with error", tc.in, out)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "canonicalize: ") || !strings.Contains(msg, tc.reason) {
				t.Errorf("error %q, want prefix %q and reason %q", msg, "canonicalize: ", tc.reason)
			}
		})
	}
}

// jsonFacts describes a valid JSON text as encoding/json reads it.
type jsonFacts struct {
	duplicate bool // some object has two members with the same name
	depth     int  // deepest nesting of arrays and objects
	overflow  bool // some number is beyond the range of a double
	ordered   bool // every object's names are in strictly increasing UTF-16 order
}

// inspectJSON reads in, which must be valid JSON, with encoding/json's
// tokenizer, independently of the code under test.
func inspectJSON(in []byte) (jsonFacts, error) {
	facts := jsonFacts{ordered: true}
	type frame struct {
		object  bool
		wantKey bool
		names   [][]uint16
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	valueDone := func() {
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return facts, nil
		}
		if err != nil {
			return facts, err
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			top := stack[n-1]
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			name := utf16.Encode([]rune(tok.(string)))
			for _, seen := range top.names {
				if slices.Equal(seen, name) {
					facts.duplicate = true
				}
			}
			if k := len(top.names); k > 0 && slices.Compare(top.names[k-1], name) >= 0 {
				facts.ordered = false
			}
			top.names = append(top.names, name)
			top.wantKey = false
			continue
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{', '[':
				stack = append(stack, &frame{object: tok == '{', wantKey: tok == '{'})
				facts.depth = max(facts.depth, len(stack))
			case ']':
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case json.Number:
			if _, err := strconv.ParseFloat(string(tok), 64); err != nil {
				facts.overflow = true
			}
			valueDone()
		default:
			valueDone()
		}
	}
}

// hasLoneSurrogate reports whether the valid JSON text in has a \u escape
// of a surrogate that is not part of a high-low pair.
func hasLoneSurrogate(in []byte) bool {
	unit := func(i int) uint64 {
		u, err := strconv.ParseUint(string(in[i:i+4]), 16, 16)
		if err != nil {
			panic(err) // in is valid JSON
		}
		return u
	}
	inString := false
	for i := 0; i < len(in); i++ {
		c := in[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if in[i+1] != 'u' {
				i++
				continue
			}
			u := unit(i + 2)
			i += 5
			if u < 0xD800 || u > 0xDFFF {
				continue
			}
			if u >= 0xDC00 {
				return true
			}
			if i+6 < len(in) && in[i+1] == '\\' && in[i+2] == 'u' {
				if lo := unit(i + 3); lo >= 0xDC00 && lo <= 0xDFFF {
					i += 6
					continue
				}
			}
			return true
		}
	}
	return false
}

func TestCanonFuzzHelpers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		lone bool
		f    jsonFacts
	}{
		{`{"b":{"y":1,"x":[{}]},"a":2}`, false, jsonFacts{depth: 4, ordered: false}},
		{`{"a":{"a":1},"b":[1e400]}`, false, jsonFacts{depth: 2, overflow: true, ordered: true}},
		{`[{"a":1,"b":2,"a":3}]`, false, jsonFacts{depth: 2, duplicate: true, ordered: false}},
		{`"\ud800"`, true, jsonFacts{ordered: true}},
		{`"\\ud800"`, false, jsonFacts{ordered: true}},
		{`["\ud83d\ude00\udc00"]`, true, jsonFacts{depth: 1, ordered: true}},
		{`{"\ud83d\ude00":1,"\uffff":2}`, false, jsonFacts{depth: 1, ordered: true}},
	} {
		f, err := inspectJSON([]byte(tc.in))
		if err != nil || f != tc.f {
			t.Errorf("inspectJSON(%s) = %+v, %v, want %+v", tc.in, f, err, tc.f)
		}
		if got := hasLoneSurrogate([]byte(tc.in)); got != tc.lone {
			t.Errorf("hasLoneSurrogate(%s) = %v, want %v", tc.in, got, tc.lone)
		}
	}
}

// FuzzCanonicalize checks that Canonicalize accepts exactly the I-JSON
// texts encoding/json accepts (less those it must reject), and that its
// output is compact, ordered, idempotent and means the same as its input.
func FuzzCanonicalize(f *testing.F) {
	for _, tc := range canonVectors {
		f.Add([]byte(tc.in))
	}
	for _, tc := range canonRejects {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonicalize(in)
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v does not wrap ErrInvalid", err)
		}
		wantOK := json.Valid(in) && utf8.Valid(in)
		var facts jsonFacts
		if wantOK {
			var ferr error
			if facts, ferr = inspectJSON(in); ferr != nil {
				t.Fatalf("encoding/json: Valid but Token fails: %v", ferr)
			}
			wantOK = !facts.duplicate && !facts.overflow && facts.depth <= maxCanonDepth && !hasLoneSurrogate(in)
		}
		if (err == nil) != wantOK {
			t.Fatalf("Canonicalize(%q): err = %v, want success %v (facts %+v)", in, err, wantOK, facts)
		}
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output %q of %q is not valid JSON", out, in)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, out); err != nil || !bytes.Equal(compact.Bytes(), out) {
			t.Fatalf("output %q is not compact", out)
		}
		if of, err := inspectJSON(out); err != nil || !of.ordered || of.duplicate {
			t.Fatalf("output %q: names not in UTF-16 order (%+v, %v)", out, of, err)
		}
		again, err := Canonicalize(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
		assertSameJSON(t, in, out)
	})
}

func BenchmarkCanonicalize(b *testing.B) {
	in := []byte(benchRecord)
	b.Run("Canonicalize", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Canonicalize(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendCanonical", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			var err error
			if buf, err = AppendCanonical(buf[:0], in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
