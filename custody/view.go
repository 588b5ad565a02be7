package custody

import "time"

// ChainView is a chain read once for the exports (the custody report, the
// EPCIS document, and any export to come): its records by position with
// their data parsed, each record's corrections, each issue's latest
// disposition, each leg's telemetry seal and excursions, and each
// excursion's latest figures. It is built from a folded Chain by ViewChain
// and only read after. It is tolerant, as exports are: data that does not
// read (which verification reports) is left out, not an error.
type ChainView struct {
	// Chain is the folded chain the view reads.
	Chain *Chain

	bySeq        map[uint64]*Record
	corrections  map[uint64][]*Record
	dispositions map[uint64]*Record
	seals        map[int]*ReceiveSeal
	ends         map[uint64]ExcursionEnd
	excursions   []ExcursionView
	byLeg        map[int][]int // indexes into excursions
}

// ExcursionView is an excursion record as the exports read it.
type ExcursionView struct {
	// Record is the excursion record.
	Record *Record
	// Readable is false when the record's data is not a JSON object; Data
	// is then empty but for Kind and Start.
	Readable bool
	// Data is the record's data as recorded, read member by member: Kind
	// is "unknown" when it names none, and Start is the record's time when
	// it holds none.
	Data ExcursionData
	// Leg is the leg the excursion happened on: the one it names, or else
	// the shipper's leg whose window holds its start; 0 if none.
	Leg int
	// Figures is the latest system correction of this excursion (same
	// excursion ID): its figures as the readings give them now.
	Figures *ExcursionEnd
}

// ViewChain reads c for export.
func ViewChain(c *Chain) *ChainView {
	v := &ChainView{Chain: c, bySeq: map[uint64]*Record{}, corrections: map[uint64][]*Record{},
		dispositions: map[uint64]*Record{}, seals: map[int]*ReceiveSeal{}, byLeg: map[int][]int{}}
	// Tolerant: a malformed system correction (which verification
	// reports) only loses its figures.
	v.ends, _ = ExcursionEnds(c)
	legOfReceive := map[uint64]int{}
	for _, l := range c.Legs {
		if l.ReceiveSeq != 0 {
			legOfReceive[l.ReceiveSeq] = l.N
		}
	}
	for i := range c.Records {
		r := &c.Records[i]
		v.bySeq[r.Seq] = r
		data, err := r.Parsed()
		switch d := data.(type) {
		case CorrectionData:
			if err == nil {
				v.corrections[d.Corrects] = append(v.corrections[d.Corrects], r)
			}
		case DispositionData:
			if err == nil && d.Excursion != 0 {
				v.dispositions[d.Excursion] = r
			}
		case ReceiveData:
			if n := legOfReceive[r.Seq]; d.Telemetry != nil && n > 0 {
				v.seals[n] = d.Telemetry
			}
		case ExcursionData:
			_, merr := r.Members()
			e := ExcursionView{Record: r, Readable: merr == nil, Data: d}
			if e.Data.Kind == "" {
				e.Data.Kind = "unknown"
			}
			if e.Data.Start.IsZero() {
				e.Data.Start = r.Time
			}
			e.Leg = e.Data.Leg
			if e.Leg == 0 {
				e.Leg = v.LegAt(e.Data.Shipper, e.Data.Start)
			}
			if x, ok := v.ends[r.Seq]; ok && x.ID == d.ID {
				e.Figures = &x
			}
			if e.Readable {
				v.byLeg[e.Leg] = append(v.byLeg[e.Leg], len(v.excursions))
			}
			v.excursions = append(v.excursions, e)
		}
	}
	return v
}

// Record returns the chain's record at ledger position seq, or nil.
func (v *ChainView) Record(seq uint64) *Record { return v.bySeq[seq] }

// Corrections returns the correction records naming the record at seq, in
// chain order.
func (v *ChainView) Corrections(seq uint64) []*Record { return v.corrections[seq] }

// Disposition returns QA's latest disposition record on the issue recorded
// at seq (an excursion, a broken-seal receive or a mismatch), or nil.
func (v *ChainView) Disposition(seq uint64) *Record { return v.dispositions[seq] }

// Seal returns the telemetry seal of leg n's receive record, or nil.
func (v *ChainView) Seal(n int) *ReceiveSeal { return v.seals[n] }

// Figures returns the latest system correction of the excursion record at
// seq, whatever excursion ID it names.
func (v *ChainView) Figures(seq uint64) (ExcursionEnd, bool) {
	x, ok := v.ends[seq]
	return x, ok
}

// Excursions returns the chain's excursion records in chain order.
func (v *ChainView) Excursions() []ExcursionView { return v.excursions }

// Excursion returns the excursion record at seq as the view reads it.
func (v *ChainView) Excursion(seq uint64) (ExcursionView, bool) {
	for _, e := range v.excursions {
		if e.Record.Seq == seq {
			return e, true
		}
	}
	return ExcursionView{}, false
}

// LegExcursions returns the readable excursion records of leg n, in chain
// order.
func (v *ChainView) LegExcursions(n int) []ExcursionView {
	out := make([]ExcursionView, 0, len(v.byLeg[n]))
	for _, i := range v.byLeg[n] {
		out = append(out, v.excursions[i])
	}
	return out
}

// LegOf returns the leg whose ship or receive record is at seq; the zero
// Leg if none.
func (v *ChainView) LegOf(seq uint64) Leg {
	for _, l := range v.Chain.Legs {
		if l.ShipSeq == seq || l.ReceiveSeq == seq {
			return l
		}
	}
	return Leg{}
}

// LegAt returns the number of the leg of shipper (any shipper when empty)
// whose window, from shipping to receipt, holds t; 0 if none.
func (v *ChainView) LegAt(shipper string, t time.Time) int {
	for _, l := range v.Chain.Legs {
		if (shipper == "" || l.Shipper == shipper) && !t.Before(l.ShippedAt) && (l.ReceivedAt == nil || !t.After(*l.ReceivedAt)) {
			return l.N
		}
	}
	return 0
}
