package custody

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestISBTLabelPayloadRoundTrip(t *testing.T) {
	coi := COI("CHA999926000001")
	exp := time.Date(2026, 3, 14, 9, 30, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name    string
		bag     BagID
		din     DIN
		product string
		expires time.Time
		want    string
	}{
		{"apheresis bag with DIN", BagID{COI: coi, Kind: BagApheresis, N: 1}, "A999926123456", "", time.Time{},
			"=+03000&/CHA999926000001=A99992612345600=,100001"},
		{"final product with code and expiry", BagID{COI: coi, Kind: BagFinalProduct, N: 2}, "A999926123456", "S1234V00", exp,
			"=+05000&/CHA999926000001=A99992612345600=<S1234V99&>0260730930=,200002"},
		{"final product, free-text product, no expiry", BagID{COI: coi, Kind: BagFinalProduct, N: 12}, "", "", time.Time{},
			"=+02000&/CHA999926000001=,200012"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ISBTLabelPayload(tt.bag, tt.din, tt.product, tt.expires)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("payload = %q, want %q", got, tt.want)
			}
			c, err := ParseCode(got)
			if err != nil {
				t.Fatalf("ParseCode(%q): %v", got, err)
			}
			if c.COI != coi || c.Bag == nil || *c.Bag != tt.bag || c.Form != "isbt" {
				t.Fatalf("ParseCode = %+v (bag %v), want bag %v", c, c.Bag, tt.bag)
			}
			if c.ISBT.DIN != tt.din {
				t.Errorf("DIN = %q, want %q", c.ISBT.DIN, tt.din)
			}
			if tt.product != "" && c.ISBT.ProductCode != tt.product[:6]+"99" {
				t.Errorf("product code = %q", c.ISBT.ProductCode)
			}
			wall := time.Time{}
			if !tt.expires.IsZero() {
				wall = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC) // the site's wall clock
			}
			if !c.ISBT.Expires.Equal(wall) {
				t.Errorf("expires = %v, want %v", c.ISBT.Expires, wall)
			}
		})
	}
}

// TestISBTLabelPayloadRefusesOtherProducts: a bag is named by Product
// Divisions, which ST-001 allows only beside S and P product codes, so a
// label of any other product code is refused rather than printed against
// the standard.
func TestISBTLabelPayloadRefusesOtherProducts(t *testing.T) {
	bag := BagID{COI: "CHA999926000001", Kind: BagFinalProduct, N: 1}
	for _, code := range []string{"E0001V00", "T1295000", "YA000100"} {
		if p, err := ISBTLabelPayload(bag, "", code, time.Time{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("ISBTLabelPayload with product %s = %q, %v; want ErrInvalid", code, p, err)
		}
	}
	if _, err := ISBTLabelPayload(bag, "", "P0001100", time.Time{}); err != nil {
		t.Errorf("regenerated tissue product: %v", err)
	}
}

func TestParseISBT(t *testing.T) {
	const coi = "&/CHA999926000001"
	tests := []struct {
		name string
		in   string
		want ISBTData // zero: refused with ErrInvalid
	}{
		{"COI alone (040)", coi, ISBTData{COI: "CHA999926000001"}},
		{"COI with a digit-first FIN", "&/CH1AB2326000001", ISBTData{COI: "CH1AB2326000001"}},
		{"DIN alone (001) with ST-001's example", "=A99992112345600", ISBTData{DIN: "A999921123456", DINFlags: "00"}},
		{"DIN with type 3 flags carrying K", "=A99992112345663", ISBTData{DIN: "A999921123456", DINFlags: "63"}},
		{"DIN with type 2 flags", "=G12341765432101", ISBTData{DIN: "G123417654321", DINFlags: "01"}},
		{"product code (003)", "=<S1234V00", ISBTData{ProductCode: "S1234V00"}},
		{"product code with a lower-case collection type", "=<E0001r00", ISBTData{ProductCode: "E0001r00"}},
		{"expiry (005) 2018 day 322 13:30", "&>0183221330", ISBTData{Expires: time.Date(2018, 11, 18, 13, 30, 0, 0, time.UTC)}},
		{"expiry on 29 February", "&>0280602359", ISBTData{Expires: time.Date(2028, 2, 29, 23, 59, 0, 0, time.UTC)}},
		{"divisions (032)", "=,200001", ISBTData{Divisions: "200001"}},
		{"structures scanned one after the other", coi + "=A99992112345600",
			ISBTData{COI: "CHA999926000001", DIN: "A999921123456", DINFlags: "00"}},
		{"compound message, undefined sequence", "=+02000" + coi + "=,100001",
			ISBTData{COI: "CHA999926000001", Divisions: "100001"}},
		{"compound message, ICCBBA-specified sequence number", "=+02001=A99992112345600" + coi,
			ISBTData{COI: "CHA999926000001", DIN: "A999921123456", DINFlags: "00"}},
		{"compound message of every structure", "=+05000" + coi + "=A99992112345600=<S1234V99&>0260730930=,200002",
			ISBTData{COI: "CHA999926000001", DIN: "A999921123456", DINFlags: "00", ProductCode: "S1234V99",
				Expires: time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC), Divisions: "200002"}},

		{"product code and divisions scanned one after the other", "=<S1234V99=,200002", ISBTData{ProductCode: "S1234V99", Divisions: "200002"}},
		{"regenerated tissue code with divisions", "=<P0001199=,100001", ISBTData{ProductCode: "P0001199", Divisions: "100001"}},
		{"tissue code whose 3-digit division is 099 needs no 032", "=<T1295099", ISBTData{ProductCode: "T1295099"}},

		{"product code with divisions 99 and no product divisions", "=<S1234V99", ISBTData{}},
		{"compound message: divisions 99, no product divisions", "=+03000" + coi + "=A99992112345600=<S1234V99", ISBTData{}},
		{"product divisions beside a product code not ending 99", "=<S1234V00=,200002", ISBTData{}},
		{"product divisions beside a tissue product code", "=<T1295099=,200002", ISBTData{}},
		{"product divisions beside a blood component code", "=<E0001V99=,100001", ISBTData{}},
		{"compound count too high", "=+03000" + coi + "=,100001", ISBTData{}},
		{"compound count too low", "=+01000" + coi + "=,100001", ISBTData{}},
		{"compound count zero", "=+00000", ISBTData{}},
		{"compound header cut short", "=+02", ISBTData{}},
		{"compound inside compound", "=+02000=+01000" + coi, ISBTData{}},
		{"structure twice", coi + coi, ISBTData{}},
		{"unknown data identifier (002 blood groups)", coi + "=%5100", ISBTData{}},
		{"nationally defined structure", coi + "&a123", ISBTData{}},
		{"COI cut short", coi[:16], ISBTData{}},
		{"COI with K (not in bar codes)", coi + "*", ISBTData{}},
		{"COI with FIN O", "&/CHO999926000001", ISBTData{}},
		{"DIN wrong type 3 flags", "=A99992112345664", ISBTData{}},
		{"DIN bad flag character", "=A9999211234560I", ISBTData{}},
		{"DIN FIN starting with 0", "=099992112345600", ISBTData{}},
		{"DIN sequence not digits", "=A9999211234X600", ISBTData{}},
		{"product code malformed", "=<S12x4V00", ISBTData{}},
		{"product code short", "=<S1234V0", ISBTData{}},
		{"expiry day 366 of 2026", "&>0263661200", ISBTData{}},
		{"expiry hour 24", "&>0260012400", ISBTData{}},
		{"expiry minute 60", "&>0260011260", ISBTData{}},
		{"expiry not digits", "&>02600112A0", ISBTData{}},
		{"divisions lower case", "=,20000a", ISBTData{}},
		{"trailing character", coi + "X", ISBTData{}},
		{"empty", "", ISBTData{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseISBT(tt.in)
			if tt.want == (ISBTData{}) {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("ParseISBT(%q) = %+v, %v; want ErrInvalid", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseISBT(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseISBT(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			// What was read encodes again to structures that read the same.
			enc, err := EncodeISBT(got)
			if err != nil {
				t.Fatalf("EncodeISBT(%+v): %v", got, err)
			}
			back, err := ParseISBT(enc)
			if err != nil || back != got {
				t.Fatalf("ParseISBT(EncodeISBT) = %+v, %v; want %+v", back, err, got)
			}
		})
	}
}

func TestParseCodeForms(t *testing.T) {
	coi := COI("CHA999926000001")
	fp1 := BagID{COI: coi, Kind: BagFinalProduct, N: 1}
	tests := []struct {
		name string
		in   string
		form string
		bag  *BagID
		msg  string // part of the error, "" when accepted
	}{
		{"old C1 label payload", LabelPayload(fp1), "payload", &fp1, ""},
		{"old C1 chain payload", LabelPayload(BagID{COI: coi}), "payload", nil, ""},
		{"ISBT COI alone", "&/" + string(coi), "isbt", nil, ""},
		{"ISBT compound with divisions", "=+02000&/" + string(coi) + "=,200001\r\n", "isbt", &fp1, ""},
		{"ISBT COI then DIN scanned separately", "&/" + string(coi) + "=A99992112345600", "isbt", nil, ""},
		{"bag ID", fp1.String(), "bag", &fp1, ""},
		{"COI display", coi.Display(), "coi", nil, ""},
		{"DIN alone names no chain", "=A99992112345600", "", nil, "no COI"},
		{"divisions not a coid bag", "=+02000&/" + string(coi) + "=,300001", "", nil, "not a coid bag"},
		{"divisions bag 00", "=+02000&/" + string(coi) + "=,200000", "", nil, "01-99"},
		{"ISBT with Caps Lock", "&/cha999926000001", "", nil, "Caps Lock"},
		{"garbage", "=+", "", nil, "compound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCode(tt.in)
			if tt.msg != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("ParseCode(%q) = %+v, %v; want ErrInvalid saying %q", tt.in, c, err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCode(%q): %v", tt.in, err)
			}
			if c.COI != coi || c.Form != tt.form || (c.Bag == nil) != (tt.bag == nil) || c.Bag != nil && *c.Bag != *tt.bag {
				t.Fatalf("ParseCode(%q) = %+v (bag %v), want form %s bag %v", tt.in, c, c.Bag, tt.form, tt.bag)
			}
		})
	}
}

func TestEncodeISBTRefuses(t *testing.T) {
	for name, d := range map[string]ISBTData{
		"nothing":              {},
		"short DIN":            {DIN: "A9"},
		"DIN with bad FIN":     {DIN: "O999921123456"},
		"DIN wrong check flag": {DIN: "A999921123456", DINFlags: "64"},
		"COI with prefix":      {COI: "&/CHA999926000001"},
		"COI malformed":        {COI: "CHO999926000001"},
		"product code":         {ProductCode: "S1234"},
		"expiry before 2000":   {Expires: time.Date(1999, 12, 31, 23, 59, 0, 0, time.UTC)},
		"divisions":            {Divisions: "12345"},
	} {
		if s, err := EncodeISBT(d); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: EncodeISBT(%+v) = %q, %v; want ErrInvalid", name, d, s, err)
		}
	}
	if _, err := ISBTLabelPayload(BagID{COI: "CHA999926000001", Kind: BagFinalProduct, N: 100}, "", "", time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bag 100: err = %v, want ErrInvalid", err)
	}
}

// FuzzParseISBT: any input is read or refused without panic, and what is
// read encodes to structures that read back the same.
func FuzzParseISBT(f *testing.F) {
	for _, s := range []string{"", "=+", "=+05000&/CHA999926000001=A99992612345600=<S1234V99&>0260730930=,200002",
		"&/CHA999926000001", "=A99992112345663", "&>0183221330", "=,100001", "=<E0001r00", "=+01000=", "&/CH", "=A9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseISBT(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseISBT(%q): %v, not ErrInvalid", s, err)
			}
			return
		}
		enc, err := EncodeISBT(d)
		if err != nil {
			t.Fatalf("EncodeISBT(ParseISBT(%q)): %v", s, err)
		}
		if back, err := ParseISBT(enc); err != nil || back != d {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", s, back, err, d)
		}
		_, _ = ParseCode(s)
	})
}
