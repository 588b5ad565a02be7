package custody_test

import (
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestRolePolicy pins who may do what, for every role (and coid's own
// system role, which may do none of it).
func TestRolePolicy(t *testing.T) {
	const (
		co, nu, mf, qa, ad = custody.RoleCoordinator, custody.RoleNurse, custody.RoleManufacturing, custody.RoleQA, custody.RoleAdmin
	)
	j := custody.DefaultJourney()
	cases := []struct {
		name string
		may  func(custody.Role) bool
		want []custody.Role
	}{
		{"enroll", custody.MayEnroll, []custody.Role{co}},
		{"use the QA console", custody.MayUseConsole, []custody.Role{co, mf, qa, ad}},
		{"start at the console", custody.StartsAtConsole, []custody.Role{co, qa, ad}},
		{"print labels", custody.MayPrintLabels, []custody.Role{co, nu, mf, qa}},
		{"generate reports", custody.MayGenerateReports, []custody.Role{qa, ad}},
		{"view the telemetry quarantine", custody.MayViewQuarantine, []custody.Role{qa, ad}},
		{"acknowledge a mismatch", custody.MayAcknowledgeMismatch, []custody.Role{co, nu, qa}},
		{"record a disposition", func(r custody.Role) bool { // the rule the web UI asks, as for every step
			for _, e := range j.Exceptions {
				if e.Step == custody.StepDisposition {
					return e.MaySign(r)
				}
			}
			return false
		}, []custody.Role{qa}},
	}
	all := append([]custody.Role{custody.RoleSystem, ""}, custody.UserRoles...)
	for _, tc := range cases {
		for _, r := range all {
			want := false
			for _, w := range tc.want {
				want = want || w == r
			}
			if got := tc.may(r); got != want {
				t.Errorf("%s: role %q: %v, want %v", tc.name, r, got, want)
			}
		}
	}
}

// TestTransitionMaySign: a role may take a step when it signs any of the
// step's signatures.
func TestTransitionMaySign(t *testing.T) {
	j := custody.DefaultJourney()
	for _, tc := range []struct {
		state custody.State
		step  custody.Step
		role  custody.Role
		want  bool
	}{
		{custody.StateAtTreatment, custody.StepBedsideVerify, custody.RoleNurse, true},
		{custody.StateAtTreatment, custody.StepBedsideVerify, custody.RoleCourier, false},
		{custody.StateEnrolled, custody.StepDisposition, custody.RoleQA, true},
		{custody.StateEnrolled, custody.StepDisposition, custody.RoleNurse, false},
		{custody.StateEnrolled, custody.StepNote, custody.RoleCourier, true},
		{custody.StateEnrolled, custody.StepNote, custody.RoleAdmin, false},
	} {
		rule, err := j.Rule(tc.state, tc.step)
		if err != nil {
			t.Fatalf("%s in %s: %v", tc.step, tc.state, err)
		}
		if got := rule.MaySign(tc.role); got != tc.want {
			t.Errorf("%s in %s by %s: %v, want %v", tc.step, tc.state, tc.role, got, tc.want)
		}
	}
}
