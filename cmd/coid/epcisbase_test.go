package main

import (
	"strings"
	"testing"

	"github.com/coid-project/coid/custody/epcis"
)

// TestEPCISBaseFlag: serve and report refuse a base that is not an
// absolute http(s) URI ending in /, from the flag or the variable, before
// anything is opened.
func TestEPCISBaseFlag(t *testing.T) {
	dir := t.TempDir() + "/data"
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"serve", "--data", dir, "--http", "127.0.0.1:0", "--epcis-base", "urn:coid:"}},
		{[]string{"COID_EPCIS_BASE=https://coid.example.org/id"}, []string{"serve", "--data", dir, "--http", "127.0.0.1:0"}},
		{nil, []string{"report", "--data", dir, "--format", "epcis", "--epcis-base", "coid.example.org/id/", "CHA999926000001"}},
	} {
		_, _, exit, err := runCmd(t, tc.env, tc.args...)
		if exit != 2 || err == nil || !strings.Contains(err.Error(), "epcis-base") {
			t.Errorf("%v %v: exit %d %v, want a usage error naming --epcis-base", tc.env, tc.args, exit, err)
		}
	}
}

// TestReportEPCISBase: the command's export with --epcis-base is the
// API's (default base) with only the base changed.
func TestReportEPCISBase(t *testing.T) {
	f := newReportFixture(t)
	const base = "https://coid.example.org/id/"
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"--epcis-base", base}},
		{[]string{"COID_EPCIS_BASE=" + base}, nil},
	} {
		stdout, _, exit, err := runCmd(t, tc.env, append(append([]string{"report", "--data", f.dir, "--format", "epcis", "--tz", "Europe/Berlin",
			"--at", reportAt.Format("2006-01-02T15:04:05Z07:00")}, tc.args...), string(f.coi))...)
		if err != nil || exit != 0 {
			t.Fatalf("%v: exit %d %v", tc.args, exit, err)
		}
		if !strings.Contains(stdout, `"`+base+"coi/"+string(f.coi)+`"`) {
			t.Errorf("%v: export does not name the COI under %s", tc.args, base)
		}
		if want := strings.ReplaceAll(string(f.apiEPCIS), epcis.DefaultBase, base); stdout != want {
			t.Errorf("%v: export differs from the API's other than by its base", tc.args)
		}
	}
}
