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
		{"FIN starts with a digit (ST-001: 1-9)", "CH1999926000001", true},
		{"FIN with letters in places 2-3", "CHAB12326000001", true},
		{"FIN starts with zero", "CH0999926000001", false},
		{"FIN letter O", "CHO999926000001", false},
		{"FIN letter O in place 2", "CHAO99926000001", false},
		{"FIN letter in place 4", "CHA99A926000001", false},
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
		in   string
		want DIN // "" when refused
	}{
		// ST-001's examples of DINs and their check characters.
		{"A999921123456", "A999921123456"},
		{"A9999211234563", "A999921123456"},
		{"A999921123456 3", "A999921123456"},
		{"G123417654321A", "G123417654321"},
		{"A999917345628*", "A999917345628"},
		{"A999818123456N", "A999818123456"},
		// The display form: FIN, year and sequence apart; flags apart.
		{"A9999 21 123456", "A999921123456"},
		{"A9999 21 123456 3", "A999921123456"},
		{"A9999 21 123456 00 3", "A999921123456"},
		{"A9999 21 123456 01", "A999921123456"},
		{"A9999 21 123456 63 3", "A999921123456"}, // type 3 flags: 60 + value of K
		// Data Structure 001 scanned into the DIN field.
		{"=A99992112345600", "A999921123456"},
		{"=A99992112345663", "A999921123456"},
		{"=A99992112345664", ""},
		// FINs as ST-001 defines them.
		{"1AB2321123456", "1AB2321123456"},
		{"ZZ99921123456", "ZZ99921123456"},
		// Invalid neighbours.
		{"A9999211234564", ""},
		{"A9999 21 123456 4", ""},
		{"A9999 21 123456 64 3", ""}, // type 3 flags of another check character
		{"A9999 21 123456 0I 3", ""}, // I is not a flag character
		{"A9999 21 12345 3", ""},
		{"A9999  21 123456", ""},
		{"A9999 2 1123456", ""},
		{"A9999 21 123456 3 00", ""},
		{"a999921123456", ""},
		{"A99992112345", ""},
		{"A99992112345X", ""},
		{"0999921123456", ""}, // FIN never starts with 0
		{"O999921123456", ""}, // nor with O
		{"AO99921123456", ""},
		{"A99A921123456", ""}, // places 4-5 are digits
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDIN(tt.in)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("ParseDIN(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseDIN(%q) = %q, %v; want ErrInvalid", tt.in, got, err)
			}
		})
	}
}

func TestValidFIN(t *testing.T) {
	for fin, ok := range map[string]bool{
		"A9999": true, "G1234": true, "1AB23": true, "9ZZ00": true, "N0000": true, "P1234": true,
		"O1234": false, "01234": false, "AO123": false, "A1O23": false, "A12B3": false, "A123B": false,
		"a9999": false, "A999": false, "A99999": false, "": false, "A-999": false,
	} {
		if got := ValidFIN(fin); got != ok {
			t.Errorf("ValidFIN(%q) = %v, want %v", fin, got, ok)
		}
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

// TestDINEyeReadable: the eye-readable DIN is printed as ST-001 prints it
// (FIN, year and sequence apart, flags, K), for ST-001's own examples, and
// reads back to the same DIN.
func TestDINEyeReadable(t *testing.T) {
	for _, tt := range []struct {
		din   DIN
		flags string
		want  string
	}{
		{"A999921123456", "00", "A9999 21 123456 00 3"},
		{"G123417654321", "01", "G1234 17 654321 01 A"},
		{"A999818123456", "", "A9998 18 123456 N"},
		{"A999917345628", "00", "A9999 17 345628 00 *"},
	} {
		got := tt.din.EyeReadable(tt.flags)
		if got != tt.want {
			t.Errorf("%s.EyeReadable(%q) = %q, want %q", tt.din, tt.flags, got, tt.want)
		}
		if d, err := ParseDIN(got); err != nil || d != tt.din {
			t.Errorf("ParseDIN(%q) = %q, %v; want %s", got, d, err, tt.din)
		}
	}
}
