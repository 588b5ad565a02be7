package labels

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// zplField is one ^FD field of a ZPL format: the commands since the last
// field, its data as written, and its data with ^FH escapes decoded.
type zplField struct {
	cmds, raw, text string
}

// zplFields splits a format into fields and checks that each ^FD ends at
// its own ^FS: data that held a raw ^ or ~ would end the field early or
// start a command.
func zplFields(t *testing.T, zpl string) []zplField {
	t.Helper()
	var out []zplField
	last := 0
	for {
		i := strings.Index(zpl[last:], "^FD")
		if i < 0 {
			return out
		}
		i += last
		data := i + len("^FD")
		end := strings.IndexAny(zpl[data:], "^~")
		if end < 0 || !strings.HasPrefix(zpl[data+end:], "^FS") {
			t.Fatalf("field at %d does not end with ^FS: %q", i, zpl[i:min(len(zpl), data+40)])
		}
		f := zplField{cmds: zpl[last:i], raw: zpl[data : data+end]}
		f.text = f.raw
		if strings.HasSuffix(f.cmds, "^FH_") {
			f.text = zplUnescape(t, f.raw)
		}
		out = append(out, f)
		last = data + end + len("^FS")
	}
}

func zplUnescape(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			b.WriteByte(s[i])
			continue
		}
		if i+3 > len(s) {
			t.Fatalf("truncated escape in %q", s)
		}
		c, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil {
			t.Fatalf("bad escape in %q: %v", s, err)
		}
		b.Write(c)
		i += 2
	}
	return b.String()
}

func TestZPLEscaping(t *testing.T) {
	for _, tc := range []struct {
		name, product, want string
	}{
		{"caret", "CAR^T", "CAR_5ET"},
		{"tilde", "CAR~T", "CAR_7ET"},
		{"backslash", `CAR\T`, "CAR_5CT"},
		{"underscore", "CAR_T", "CAR_5FT"},
		{"commands", "^XZ~JA^FS\\&_", "_5EXZ_7EJA_5EFS_5C&_5F"},
		{"accents", "Zellen für Ärzte", "Zellen f_C3_BCr _C3_84rzte"},
		{"plain", "Autologous CAR-T cells (1)", "Autologous CAR-T cells (1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := aphLabel(t)
			l.Product = tc.product
			var buf bytes.Buffer
			if err := WriteZPL(&buf, l, DefaultStock); err != nil {
				t.Fatal(err)
			}
			zpl := buf.String()
			if strings.Count(zpl, "^XA") != 1 || strings.Count(zpl, "^XZ") != 1 {
				t.Fatal("product text added or removed a format boundary")
			}
			found := false
			for _, f := range zplFields(t, zpl) {
				if f.text == tc.product {
					found = true
					if f.raw != tc.want {
						t.Errorf("field data %q, want %q", f.raw, tc.want)
					}
					if !strings.HasSuffix(f.cmds, "^FH_") {
						t.Errorf("field %q is not introduced by ^FH_", f.raw)
					}
				}
			}
			if !found {
				t.Errorf("no field decodes to %q", tc.product)
			}
		})
	}
}

var zplPos = regexp.MustCompile(`\^F[OT](\d+),(\d+)`)

// TestZPLContent checks the fixtures' formats field by field.
func TestZPLContent(t *testing.T) {
	for _, l := range []Label{aphLabel(t), fpLabel(t)} {
		t.Run(l.Bag.String(), func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteZPL(&buf, l, DefaultStock); err != nil {
				t.Fatal(err)
			}
			zpl := buf.String()
			if !strings.HasPrefix(zpl, "^XA\n^CI28\n^PW900\n^LL600\n") || !strings.HasSuffix(zpl, "^XZ\n") {
				t.Errorf("format head or tail wrong:\n%s", zpl)
			}
			for _, m := range zplPos.FindAllStringSubmatch(zpl, -1) {
				x, _ := strconv.Atoi(m[1])
				y, _ := strconv.Atoi(m[2])
				if x >= 900 || y >= 600 {
					t.Errorf("%s is off the 900x600 label", m[0])
				}
			}
			fields := zplFields(t, zpl)
			texts := map[string]bool{}
			var mono strings.Builder
			for _, f := range fields {
				texts[f.text] = true
				if strings.Contains(f.cmds, "^FB") && len(f.text) == 1 {
					mono.WriteString(f.text) // identifier characters, in order
				}
			}
			for _, s := range []string{
				l.Product, autologous, l.PatientName, l.BirthDate, l.localTime(), l.utcTime(),
				l.Storage, l.Facility, "COI", "BAG", "DOB", "PATIENT", "STORAGE", "ISSUED BY",
			} {
				if !texts[s] {
					t.Errorf("no field %q", s)
				}
			}
			ids := string(l.Bag.COI) + string(l.Bag.COI.K()) + l.Bag.String()
			if l.DIN != "" {
				ids += string(l.DIN) + string(l.DIN.K())
			}
			if mono.String() != ids {
				t.Errorf("identifier cells spell %q, want %q", mono.String(), ids)
			}
			if n, want := strings.Count(zpl, "^GD"), strings.Count(ids, "0"); n != want {
				t.Errorf("%d slashes for %d zeros", n, want)
			}
			lay, err := layoutLabel(l, DefaultStock)
			if err != nil {
				t.Fatal(err)
			}
			var code string
			switch l.Symbology {
			case QR:
				code = fmt.Sprintf("^BQN,2,%d,H^FDHA,%s^FS", lay.code.module, l.Payload())
			case DataMatrix:
				// No columns or rows: the printer's encoder sizes the symbol.
				code = fmt.Sprintf("^BXN,%d,200^FD%s^FS", lay.code.module, l.Payload())
			}
			if !strings.Contains(zpl, code) {
				t.Errorf("no %s", code)
			}
		})
	}
}

func FuzzZPLEscape(f *testing.F) {
	for _, s := range []string{"", "plain", "^XZ", "~JA", `\&`, "_5E", "ÄÖÜ €", "\x00\x1f\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := zplEscape(s)
		if strings.ContainsAny(e, "^~\\") {
			t.Fatalf("escaped %q to %q, which holds a ZPL prefix or backslash", s, e)
		}
		for i := 0; i < len(e); i++ {
			if e[i] < 0x20 || e[i] >= 0x7f {
				t.Fatalf("escaped %q to %q, which holds byte %#x", s, e, e[i])
			}
		}
		if got := zplUnescape(t, e); got != s {
			t.Fatalf("unescape(escape(%q)) = %q", s, got)
		}
	})
}

// FuzzWriteZPL checks that any label text Validate accepts either gives a
// well-formed format whose fields decode back to the text, or is refused
// with custody.ErrInvalid (too wide to print), and that nothing panics.
func FuzzWriteZPL(f *testing.F) {
	f.Add("Autologous CAR-T cells", "DOE, JANE", "Store at or below -150 °C")
	f.Add("^XZ~JA", `O\'NEILL_`, "€…™")
	f.Fuzz(func(t *testing.T, product, patient, storage string) {
		l := aphLabel(t)
		l.Product, l.PatientName, l.Storage = product, patient, storage
		if l.Validate() != nil {
			return
		}
		var buf bytes.Buffer
		err := WriteZPL(&buf, l, DefaultStock)
		if err != nil {
			if !errors.Is(err, custody.ErrInvalid) {
				t.Fatalf("WriteZPL: %v, want nil or ErrInvalid", err)
			}
			return
		}
		texts := map[string]bool{}
		for _, fd := range zplFields(t, buf.String()) {
			texts[fd.text] = true
		}
		for _, s := range []string{product, patient, storage} {
			if !texts[s] {
				t.Fatalf("no field decodes to %q", s)
			}
		}
	})
}
