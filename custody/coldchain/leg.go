package coldchain

import "github.com/coid-project/coid/custody"

// EvaluateLeg judges leg l's readings rs: Evaluate under l.Profile over the
// window [l.From, l.To] (take l from custody.LegRef.At, so that an open
// leg's window ends now and a received leg's at its receipt). An excursion
// still going on when a received leg was received ends, for that leg, at
// the receipt (l.To): its figures are final and QA can decide on them. An
// open leg's excursions stay open.
func EvaluateLeg(l custody.LegRef, rs []custody.Reading) []custody.Excursion {
	return endAtReceipt(l, Evaluate(l.Profile, rs, l.From, l.To))
}

// endAtReceipt ends at l.To the excursions es of leg l still open, when l
// was received.
func endAtReceipt(l custody.LegRef, es []custody.Excursion) []custody.Excursion {
	if l.Leg.ReceivedAt == nil {
		return es
	}
	for i := range es {
		if es[i].Open() {
			es[i].End = l.To
		}
	}
	return es
}
