package custody

import (
	"errors"
	"strings"
	"testing"
)

func TestPHIMatcher(t *testing.T) {
	m := newPHIMatcher(PHI{Name: "Jane Q Doe", BirthDate: "1970-01-02", MRN: "MRN-0012345"}, nil)
	for _, tc := range []struct {
		text, want string
	}{
		{"bag checked for Jane Q Doe", "name"},
		{"DOE, Jane called", "name"},
		{"jane doe", "name"},
		{"Doe Q Jane", "name"},
		{"Janet Doe", ""},
		{"Jane", ""},
		{"Doe", ""},
		{"mrn: 0012345", "medical record number"},
		{"MRN 12345", "medical record number"},
		{"record 12345 on the wristband", "medical record number"},
		{"123456", ""},
		{"MRN-00123456", ""},
		{"born 1970-01-02", "birth date"},
		{"dob 02/01/1970", "birth date"},
		{"dob 1/2/1970", "birth date"},
		{"1970", ""},
		{"collected 2026-11-23T06:00:00Z", ""},
		{"seal intact, cap replaced at 01:02", ""},
		{"", ""},
		// Without a TextFolder: case and Latin diacritics still fold,
		// separators may be left out.
		{"JÄNE DÔE", "name"},
		{"Jàne-Q-Dœ", "name"},
		{"JaneDoe", "name"},
		{"doe,jane", "name"},
		{"0012-345", "medical record number"},
		{"2 January 1970", "birth date"},
		{"Jan 2nd, 1970", "birth date"},
		{"02011970", "birth date"},
		{"2 January 1971", ""},
		{"Janedoesnt", ""},
	} {
		if got := m.find(tc.text); got != tc.want {
			t.Errorf("find(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
	// Too short to tell from ordinary words: not looked for.
	short := newPHIMatcher(PHI{Name: "Cher", BirthDate: "2001-05-06", MRN: "A1"}, nil)
	for _, text := range []string{"Cher", "A1", "a1 bag"} {
		if got := short.find(text); got != "" {
			t.Errorf("short identity: find(%q) = %q", text, got)
		}
	}
}

func TestCheckNoPHI(t *testing.T) {
	p := &PHI{Name: "Jane Q Doe", BirthDate: "1970-01-02", MRN: "MRN-0012345"}
	for _, tc := range []struct {
		data string
		skip []string
		bad  string // what the error must name; "" when accepted
	}{
		{`{"text":"label reprinted"}`, nil, ""},
		{`{"text":"label reprinted for Jane Doe"}`, nil, "data.text holds the patient's name"},
		{`{"text":"ok","extra":{"list":["x","MRN-0012345"]}}`, nil, "data.extra.list[1] holds the patient's medical record number"},
		{`{"text":"ok","patient_name":"someone"}`, nil, "data.patient_name would put a patient identifier"},
		{`{"text":"ok","meta":{"DOB":"x"}}`, nil, "data.meta.DOB would put a patient identifier"},
		{`{"text":"ok","Patient-Name":"x"}`, nil, "data.Patient-Name would put a patient identifier"},
		{`{"text":"ok","Jane Doe":1}`, nil, "data has a member whose name holds the patient's name"},
		{`{"text":"ok","x":[{"y":12345}]}`, nil, "data.x[0].y holds the patient's medical record number"},
		{`{"bag_code":"MRN-0012345","wristband_code":"MRN-0012345"}`, []string{"wristband_code", "bag_code"}, ""},
		{`{"bag_code":"x","wristband_code":"MRN-0012345","note":"MRN-0012345"}`, []string{"wristband_code", "bag_code"}, "data.note holds"},
	} {
		err := checkNoPHI(StepNote, []byte(tc.data), p, nil, tc.skip...)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.data, err)
		case tc.bad != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("%s: %v, want %q", tc.data, err, tc.bad)
		case err != nil && (strings.Contains(err.Error(), "0012345") || strings.Contains(err.Error(), "Jane")):
			t.Errorf("%s: the error repeats the identifier: %v", tc.data, err)
		}
	}
	// With the identity erased the field names are still checked.
	if err := checkNoPHI(StepNote, []byte(`{"mrn":"x"}`), nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("erased identity, mrn field: %v", err)
	}
	if err := checkNoPHI(StepNote, []byte(`{"text":"Jane Q Doe"}`), nil, nil); err != nil {
		t.Errorf("erased identity, nothing to compare with: %v", err)
	}
}

// FuzzPHIMatcher: the patient's name or MRN put anywhere between the words
// of any text is found, and the matcher never fails on any input.
func FuzzPHIMatcher(f *testing.F) {
	f.Add("bag checked and sealed", 2)
	f.Add("", 0)
	f.Add("ÄÖ 12 / 1970", 1)
	m := newPHIMatcher(PHI{Name: "Jane Q Doe", BirthDate: "1970-01-02", MRN: "MRN-0012345"}, nil)
	f.Fuzz(func(t *testing.T, text string, at int) {
		_ = m.find(text)
		words := strings.Fields(text)
		if at < 0 {
			at = -at
		}
		if at < 0 {
			at = 0
		}
		at %= len(words) + 1
		for _, id := range []string{"Jane Q Doe", "MRN-0012345"} {
			w := append(append(append([]string{}, words[:at]...), id), words[at:]...)
			s := strings.Join(w, " ")
			if m.find(s) == "" {
				t.Fatalf("%q not found in %q", id, s)
			}
		}
	})
}
