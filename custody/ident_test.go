package custody

import (
	"errors"
	"testing"
)

func TestCheckCharPublishedExamples(t *testing.T) {
	tests := []struct {
		in   string
		want byte
	}{
		{"G123417654321", 'A'},
		{"A999921123456", '3'},
		{"A999818123456", 'N'},
		{"A999917345628", '*'},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CheckChar(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("CheckChar(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCheckCharRejects(t *testing.T) {
	for _, in := range []string{"", "a999921123456", "A9999-1123456", "A99992112345*"} {
		if _, err := CheckChar(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckChar(%q) err = %v, want ErrInvalid", in, err)
		}
	}
}

func TestParseCOI(t *testing.T) {
	const c = "CHA999926000001"
	k := string(COI(c).K())
	wrongK := "0"
	if k == "0" {
		wrongK = "1"
	}
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"content", c, true},
		{"with K", c + k, true},
		{"with space K", c + " " + k, true},
		{"ISBT data identifier", "&/" + c, true},
		{"data identifier and K", "&/" + c + k, true},
		{"alphanumeric sequence", "CHA999926A0B0C1", true},
		{"wrong K", c + wrongK, false},
		{"wrong K after space", c + " " + wrongK, false},
		{"lowercase", "cha999926000001", false},
		{"lowercase fin", "CHa999926000001", false},
		{"too short", c[:14], false},
		{"too long", c + k + "X", false},
		{"empty", "", false},
		{"not CH", "XXA999926000001", false},
		{"FIN starts with digit", "CH1999926000001", false},
		{"FIN letter O", "CHO999926000001", false},
		{"year not digits", "CHA9999AB000001", false},
		{"sequence punctuation", "CHA99992600000-", false},
		{"two chars after content", c + "  ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCOI(tt.in)
			if tt.ok {
				if err != nil {
					t.Fatalf("ParseCOI(%q): %v", tt.in, err)
				}
				if len(got) != COILen {
					t.Fatalf("ParseCOI(%q) = %q, want 15 chars", tt.in, got)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseCOI(%q) = %q, %v; want ErrInvalid", tt.in, got, err)
			}
		})
	}
}

func TestParseDIN(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"A999921123456", true},
		{"A9999211234563", true},
		{"A999921123456 3", true},
		{"A9999211234564", false},
		{"a999921123456", false},
		{"A99992112345", false},
		{"A99992112345X", false},
		{"G123417654321A", true},
		{"A999917345628*", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseDIN(tt.in)
			if tt.ok && err != nil {
				t.Fatalf("ParseDIN(%q): %v", tt.in, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseDIN(%q) err = %v, want ErrInvalid", tt.in, err)
			}
		})
	}
}

func TestNewCOI(t *testing.T) {
	c, err := NewCOI("A9999", 2026, 42)
	if err != nil {
		t.Fatal(err)
	}
	if c != "CHA999926000042" {
		t.Fatalf("NewCOI = %q", c)
	}
	if _, err := ParseCOI(c.Display()); err != nil {
		t.Fatalf("display %q does not parse: %v", c.Display(), err)
	}
	if _, err := NewCOI("A9999", 2026, 1000000); !errors.Is(err, ErrConflict) {
		t.Fatalf("exhausted sequence err = %v", err)
	}
	if _, err := NewCOI("a9999", 2026, 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad FIN err = %v", err)
	}
}

func TestParseBagID(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"CHA999926000001-APH-01", "CHA999926000001-APH-01", true},
		{"CHA999926000001-FP-12", "CHA999926000001-FP-12", true},
		{"CHA999926000001-FP-00", "", false},
		{"CHA999926000001-FP-1", "", false},
		{"CHA999926000001-XX-01", "", false},
		{"CHA999926000001", "", false},
		{"cha999926000001-FP-01", "", false},
		{"CHA999926000001-FP-01-", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			b, err := ParseBagID(tt.in)
			if !tt.ok {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Fatalf("got %q want %q", b, tt.want)
			}
		})
	}
}

func FuzzParseCOI(f *testing.F) {
	for _, s := range []string{"CHA999926000001", "&/CHA999926000001", "CHA9999260000017", "CHA999926000001 7", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCOI(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseCOI(%q) error not ErrInvalid: %v", s, err)
			}
			return
		}
		// Property: an accepted COI round-trips through its content and its
		// display form, and its K is a valid check character.
		if len(c) != COILen {
			t.Fatalf("accepted %q -> %q of length %d", s, c, len(c))
		}
		for _, form := range []string{string(c), c.Display(), string(c) + string(c.K()), ISBTCOIPrefix + string(c)} {
			c2, err := ParseCOI(form)
			if err != nil || c2 != c {
				t.Fatalf("round trip of %q via %q: %q, %v", s, form, c2, err)
			}
		}
	})
}
