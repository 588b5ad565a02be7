package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestWebBlankFreeText: a reason, note or statement left blank (or only
// spaces, which the browser's required attribute lets through) is refused
// by the domain, in its words under the form's label, the form shown
// again, and nothing is written.
func TestWebBlankFreeText(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	for _, c := range []struct {
		step custody.Step
		user string
		form url.Values
		want string
	}{
		{custody.StepCancel, wQA, url.Values{"reason": {"   "}}, "Reason is required."},
		{custody.StepCorrection, wQA, url.Values{"corrects": {"1"}, "reason": {""}}, "Reason is required."},
		{custody.StepNote, wNurse1, url.Values{"text": {" \t "}}, "Note is required."},
	} {
		t.Run(string(c.step), func(t *testing.T) {
			before := len(e.chain(coi).Records)
			c.form.Set("sig_user_1", c.user)
			c.form.Set("sig_password_1", webPassword(c.user))
			b := e.login(c.user)
			b.get(coiPath(coi))
			p := b.post(coiPath(coi)+"/steps/"+string(c.step), c.form)
			wantCode(t, p, http.StatusBadRequest, string(c.step)+" with blank text")
			wantBody(t, p, string(c.step)+" with blank text", "Please check the form.", c.want, `id="form-`+string(c.step)+`"`)
			wantNotBody(t, p, string(c.step)+" with blank text", "data.", "invalid input")
			if n := len(e.chain(coi).Records); n != before {
				t.Fatalf("a refused %s wrote %d record(s)", c.step, n-before)
			}
		})
	}
}
