package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
)

// The sections of a chain whose product was out of specification and of a
// chain enrolled from an expanded-access request. A chain with neither
// prints neither, so its report is as it always was.

// exceptionalRelease prints QA's oos records (the failed attributes) and
// the elements of the exceptional release: the physician's request, the
// consent, the release with QA's and the medical director's signatures,
// and the expanded-access request it rests on.
func (r *renderer) exceptionalRelease() {
	c := r.in.Chain
	x := custody.OOSOf(c)
	if x == nil {
		return
	}
	r.heading("Out of specification and exceptional release")
	var rows [][2]string
	for i, seq := range x.OOSSeq {
		rec := r.d.v.Record(seq)
		s := fmt.Sprintf("record %d, %s, by %s. Reason: %s", seq, r.both(rec.Time), signers(rec), x.Reasons[i])
		rows = append(rows, [2]string{"OOS record", s})
	}
	rows = append(rows, [2]string{"Failed attributes", strings.Join(x.Attributes, ", ")})
	element := func(seq uint64, what string) string {
		if seq == 0 {
			return "NOT RECORDED"
		}
		rec := r.d.v.Record(seq)
		return fmt.Sprintf("record %d, %s, by %s%s", seq, r.both(rec.Time), signers(rec), what)
	}
	reqReason := ""
	if seq := x.Request; seq != 0 {
		if m, err := r.d.v.Record(seq).Members(); err == nil {
			reqReason = ". Reason: " + rawText(m["reason"])
		}
	}
	rows = append(rows, [2]string{"Physician's request", element(x.Request, reqReason)})
	rows = append(rows, [2]string{"Informed consent", element(x.Consent, "")})
	if id := custody.RequestOf(c); id != "" {
		rows = append(rows, [2]string{"Expanded-access request", string(id) + " (its history below)"})
	} else {
		rows = append(rows, [2]string{"Expanded-access request", "NONE: the chain was not enrolled from an expanded-access request"})
	}
	if x.Released == 0 {
		rows = append(rows, [2]string{"Exceptional release", "NOT RECORDED: the product may not go to the patient"})
	} else {
		rec := r.d.v.Record(x.Released)
		rows = append(rows, [2]string{"Exceptional release", fmt.Sprintf("record %d, %s", x.Released, r.both(rec.Time))})
		for _, s := range x.Signatures {
			who := "Signature"
			switch s.Role {
			case custody.RoleQA:
				who = "QA signature"
			case custody.RoleMedicalDirector:
				who = "Director's signature" // the medical director's
			}
			rows = append(rows, [2]string{who, fmt.Sprintf("%s (%s, %s), %s, %s", s.Name, s.User, s.Role, s.Meaning, r.sigTime(s.Time))})
		}
	}
	r.kv(rows)
	r.y += 2
}

// sigTime shows a signature's RFC 3339 time as the report shows times.
func (r *renderer) sigTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return r.both(t)
}

// Request history columns: seq, step, time, signatures, what it says.
var accessCols = []float64{11, 32, 37, 46, 54}

// accessRequest prints the expanded-access request the chain was enrolled
// from: what was asked, where it stands, and every record of its history
// with its signatures, in order. The request holds no patient
// identifiers.
func (r *renderer) accessRequest() {
	a := r.in.Access
	if a == nil {
		return
	}
	c := r.in.Chain
	r.heading(fmt.Sprintf("Expanded-access request %s (%d records)", a.ID, len(a.Events)))
	sub := a.Submission
	link := "names this chain back (enroll record)"
	if a.COI != c.COI {
		link = "WARNING: the request does not name this chain back"
		if a.COI != "" {
			link += " (it names " + string(a.COI) + ")"
		}
	}
	state := string(a.State)
	if !a.Decided.IsZero() {
		state += ", decided " + r.both(a.Decided)
	}
	rows := [][2]string{
		{"Request", string(a.ID) + "; " + link},
		{"Urgency", string(sub.Urgency)},
		{"Jurisdiction", sub.Jurisdiction},
		{"Product", sub.Product},
		{"Treatment site", sub.TreatmentSite},
		{"Manufacturing site", sub.ManufacturingSite},
		{"Indication", sub.Indication},
		{"Clinical summary", sub.ClinicalSummary},
		{"Treatment plan", sub.TreatmentPlan},
		{"Submitted", r.both(a.Submitted)},
		{"State", state},
	}
	if a.Reason != "" {
		rows = append(rows, [2]string{"Decision reason", a.Reason})
	}
	if len(a.Missing) > 0 {
		var m []string
		for _, any := range a.Missing {
			s := make([]string, len(any))
			for i, st := range any {
				s[i] = string(st)
			}
			m = append(m, strings.Join(s, " or "))
		}
		rows = append(rows, [2]string{"Still required", strings.Join(m, "; ")})
	}
	for _, d := range a.Deadlines {
		rows = append(rows, [2]string{"Deadline", fmt.Sprintf("%s %s, due %s", d.Step, strings.ToUpper(d.Status), r.both(d.Due))})
	}
	r.kv(rows)
	r.y += 1
	head := func() {
		r.tableHead([]string{"Seq", "Step", "Time (local / UTC)", "Signatures: name (role), meaning", "What it records"}, accessCols)
	}
	head()
	r.continued = head
	for _, ev := range a.Events {
		r.accessEvent(ev)
	}
	r.continued = nil
	r.y += 2
}

// accessEvent draws one record of the request's history.
func (r *renderer) accessEvent(ev custody.AccessEvent) {
	cols := accessCols
	w := func(i int) float64 { return cols[i] - 2 }
	r.font("", smallPt)
	tm := []string{ev.Time.In(r.d.zone).Format("2006-01-02 15:04:05 MST"), utc(ev.Time)}
	if r.zoneIsUTC() {
		tm = tm[1:]
	}
	var sigs []string
	for _, s := range ev.Signatures {
		sigs = append(sigs, r.wrap(fmt.Sprintf("%s (%s), %s", s.Name, s.Role, s.Meaning), w(3))...)
	}
	if len(sigs) == 0 {
		sigs = []string{"(no signature)"}
	}
	var what []string
	d := ev.Data
	if ev.Step == custody.StepAccessSubmit {
		what = append(what, "Request submitted ("+string(r.in.Access.Submission.Urgency)+")")
	}
	text := d.Text
	if d.Approve != nil {
		verdict := "DECLINED"
		if *d.Approve {
			verdict = "APPROVED"
		}
		text = strings.TrimSuffix(verdict+": "+text, ": ")
	}
	if text != "" {
		what = append(what, text)
	}
	if d.Reference != "" {
		what = append(what, "Reference: "+d.Reference)
	}
	if d.Assignee != "" {
		what = append(what, "Assigned to "+d.Assignee)
	}
	if d.COI != "" {
		what = append(what, "Became chain "+string(d.COI))
	}
	for _, h := range d.Documents {
		what = append(what, "Document SHA-256 "+h)
	}
	var lines []string
	r.font("", smallPt)
	for _, s := range what {
		lines = append(lines, r.wrap(s, w(4))...)
	}
	if len(lines) == 0 {
		lines = []string{"-"}
	}
	r.row(cols, [][]string{{strconv.FormatUint(ev.Seq, 10)}, r.wrap(string(ev.Step), w(1)), tm, sigs, lines}, false, "B")
}
