package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestDuplicateMembersRefused: a JSON body with a member name twice, or
// twice in two cases, at any depth, is a 400 naming the member, and
// nothing is written. encoding/json alone would keep the last one, so
// enrollment took the second of two "mrn".
func TestDuplicateMembersRefused(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	const sites = `"sites":{"collection":"St. Elsewhere Apheresis","manufacturing":"CellWorks Plant 2","treatment":"St. Elsewhere Cell Therapy Ward"}`
	patient := func(members string) string {
		return `{"patient":{` + members + `},"product":"autologous anti-CD19 CAR-T",` + sites + `}`
	}
	const b = `"name":"Oswin Thackeray-Lund","birth_date":"1974-02-28"`
	signature := func(user, extra string) string {
		return fmt.Sprintf(`{"user":%q,"password":%q,"meaning":"authored"%s}`, user, password(user), extra)
	}
	tests := []struct {
		name, user, path, body, member string
	}{
		{"enrollment, mrn twice", coord, "/api/v1/chains", patient(b + `,"mrn":"MRN-5518862","mrn":"MRN-0000001"`), "$.patient.mrn"},
		{"enrollment, MRN after mrn", coord, "/api/v1/chains", patient(b + `,"mrn":"MRN-5518862","MRN":"MRN-0000001"`), "$.patient.MRN"},
		{"enrollment, mrn escaped", coord, "/api/v1/chains", patient(b + `,"mrn":"MRN-5518862","m\u0072n":"MRN-0000001"`), "$.patient.mrn"},
		{"enrollment, product twice", coord, "/api/v1/chains", `{"product":"a","patient":{` + b + `,"mrn":"MRN-5518862"},"product":"b",` + sites + `}`, "$.product"},
		{"enrollment, unknown member twice", coord, "/api/v1/chains", patient(b + `,"mrn":"MRN-5518862","x":1,"x":2`), "$.patient.x"},
		{"step, data member twice", nurse1, chainPath(coi, "/records"),
			`{"step":"note","data":{"text":"first","text":"second"},"signatures":[` + signature(nurse1, "") + `]}`, "$.data.text"},
		{"step, signature password twice", nurse1, chainPath(coi, "/records"),
			`{"step":"note","data":{"text":"t"},"signatures":[` + signature(nurse1, `,"Password":"x"`) + `]}`, "$.signatures[0].Password"},
		{"scan, Code after code", nurse1, "/api/v1/scan", `{"code":"` + string(coi) + `","Code":"x"}`, "$.Code"},
		{"add user, role twice", admin, "/api/v1/users",
			`{"id":"nurse.new","name":"New Nurse","role":"nurse","role":"admin","password":"Pw-nurse_new-Xq7!vault"}`, "$.role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid([]byte(tt.body)) {
				t.Fatalf("test body is not JSON: %s", tt.body)
			}
			before := e.ledgerRecords(t)
			r := e.do(t, http.MethodPost, tt.path, tt.user, tt.body)
			if r.Code != http.StatusBadRequest {
				t.Fatalf("got %s, want 400", r)
			}
			code, msg := r.errorBody(t)
			if code != "invalid" || !strings.Contains(msg, tt.member) {
				t.Errorf("error %s %q, want invalid naming %s", code, msg, tt.member)
			}
			for _, secret := range append(patientB.identifiers(), "MRN-0000001", password(nurse1), "Pw-nurse_new") {
				if strings.Contains(msg, secret) {
					t.Errorf("message %q repeats %q", msg, secret)
				}
			}
			if after := e.ledgerRecords(t); after != before {
				t.Errorf("a refused body wrote %d records", after-before)
			}
		})
	}
	r := e.do(t, http.MethodGet, "/api/v1/users", admin, nil)
	if strings.Contains(string(r.Body), "nurse.new") {
		t.Errorf("a refused body added a user: %s", r)
	}
}

// TestVerifyCheckpointRefusals: a malformed or impossible checkpoint is a
// 400 and writes no ERROR line (any caller could fill the log with
// integrity alarms); a well-formed checkpoint the ledger no longer holds
// is still an integrity failure, logged as an error.
func TestVerifyCheckpointRefusals(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	e.advance(t, coi, patientA.MRN, 2)
	head := e.chain(t, coi).Head
	other := strings.Repeat("ab", 32)
	n := e.ledgerRecords(t)
	many := make([]string, 33)
	for i := range many {
		many[i] = fmt.Sprintf("%d:%s", n, head)
	}
	tests := []struct {
		name string
		cps  []string
	}{
		{"huge count, garbage head", []string{"99999999999999999999999999:" + strings.Repeat("zz", 500)}},
		{"uint64 max", []string{"18446744073709551615:" + other}},
		{"2^53", []string{"9007199254740992:" + other}},
		{"zero", []string{"0:" + other}},
		{"no head", []string{"12"}},
		{"short head", []string{"1:" + other[:63]}},
		{"zero head", []string{"1:" + strings.Repeat("0", 64)}},
		{"good then bad", []string{fmt.Sprintf("%d:%s", n, head), "x:y"}},
		{"33 checkpoints", many},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logged := len(e.logs.String())
			r := e.do(t, http.MethodGet, "/api/v1/verify?"+url.Values{"checkpoint": tt.cps}.Encode(), qa, nil)
			if r.Code != http.StatusBadRequest {
				t.Fatalf("got %s, want 400", r)
			}
			if code, _ := r.errorBody(t); code != "invalid" {
				t.Errorf("code %q, want invalid", code)
			}
			logs := e.logs.String()[logged:]
			if strings.Contains(logs, "level=ERROR") {
				t.Errorf("a bad checkpoint logged an error:\n%s", logs)
			}
			if !strings.Contains(logs, "level=INFO msg=\"http request\"") || !strings.Contains(logs, "status=400") {
				t.Errorf("the refusal was not logged at info level:\n%s", logs)
			}
		})
	}

	// Well-formed checkpoints: held, not held (cut back, rewritten).
	for _, tt := range []struct {
		name string
		cp   string
		ok   bool
	}{
		{"held", fmt.Sprintf("%d:%s", n, head), true},
		{"largest count, cut back", fmt.Sprintf("%d:%s", uint64(custody.MaxCheckpointRecords), other), false},
		{"cut back", fmt.Sprintf("%d:%s", n+3, other), false},
		{"rewritten", fmt.Sprintf("%d:%s", n, other), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logged := len(e.logs.String())
			r := e.do(t, http.MethodGet, "/api/v1/verify?checkpoint="+tt.cp, qa, nil)
			var rep custody.Report
			if r.Code != http.StatusOK || json.Unmarshal(r.Body, &rep) != nil {
				t.Fatalf("got %s, want 200 and a report", r)
			}
			if rep.OK != tt.ok {
				t.Errorf("report ok %v, want %v: %+v", rep.OK, tt.ok, rep)
			}
			if got := strings.Contains(e.logs.String()[logged:], "level=ERROR"); got == tt.ok {
				t.Errorf("ERROR logged: %v, want %v", got, !tt.ok)
			}
		})
	}
}
