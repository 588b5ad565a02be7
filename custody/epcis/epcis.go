// Package epcis exports a chain as a GS1 EPCIS 2.0 document in JSON-LD,
// so that a partner's supply-chain system can import
// the chain's handoffs as standard events. It imports only the standard
// library and custody, and reads the chain through custody.ChainView.
//
// # Identifiers
//
// Every identifier is a URN of the form urn:coid:<kind>:<id>. They are
// stable: they are derived only from ledger content that never changes,
// so another system may keep them as keys.
//
//	urn:coid:coi:CHA999926000001            the chain (ISBT 128 DS 040 content, without K)
//	urn:coid:bag:CHA999926000001-FP-01      a bag
//	urn:coid:din:A999926123456              the collection's DIN (in ilmd)
//	urn:coid:site:A9999:CellWorks%20NJ      a site: issuing facility FIN, then the site's name as enrolled, percent-encoded
//	urn:coid:shipper:SHP-0042               a shipper's data logger (sensor deviceID)
//	urn:coid:profile:cryogenic              a temperature profile (sensor bizRules)
//	urn:coid:record:<sha-256 hex>           a ledger record (eventID): its hash
//	urn:coid:measurement:lid-open           lid or light sensor (non-GS1 measurement type)
//	urn:coid:measurement:silence            no reading for longer than the profile allows
//	urn:coid:epcis:<COI>:<chain head hash>  the document
//
// In site names every byte outside the RFC 3986 unreserved set
// (A-Z a-z 0-9 - . _ ~) is percent-encoded as UTF-8, upper-case hex.
// Extension members use the prefix "coid:", declared in the document's
// @context as https://github.com/coid-project/coid/ns#.
//
// # Events
//
// Each record that moves or judges the product is one ObjectEvent, in chain
// order; eventID is the record's URN and eventTime its time (in the zone
// given, +00:00 by default). CBV 2.0 values are written in their JSON-LD
// compact form ("shipping", "in_transit"), as the GS1 schema requires:
//
//	enroll          ADD      commissioning     active           the COI
//	collect         ADD      commissioning     active           apheresis bags; ilmd: COI, DIN, volume
//	ship            OBSERVE  shipping          in_transit       leg's bags; source and destination sites
//	receive         OBSERVE  receiving         in_progress      leg's bags; the leg's temperature summary
//	                                           (active at the treatment site; non_conformant if the seal was broken)
//	excursion       OBSERVE  sensor_reporting  -                leg's bags; the excursion as ALARM_CONDITION
//	manufacture     ADD      commissioning     active           final-product bags; ilmd: COI, source bags
//	disposition     OBSERVE  inspecting        conformant or non_conformant (QA accept or reject);
//	                                           coid:about the record, coid:decision, coid:reason
//	release         OBSERVE  inspecting        conformant       final-product bags
//	bedside-verify  OBSERVE  inspecting        conformant       the verified bag
//	mismatch        OBSERVE  inspecting        mismatch_instance
//	acknowledge     OBSERVE  holding           non_sellable_other  the mismatch's bag, set aside for QA
//	infuse          OBSERVE  dispensing        dispensed        the bag infused
//	cancel          DELETE   decommissioning   inactive         the COI and every bag
//	(any other)     OBSERVE  -                 -                the COI
//
// A step the table above does not name, such as one a custom journey
// adds, is exported as a plain OBSERVE event of the COI at the record's
// site; its coid:step names it.
//
// Notes are not events. A corrected record's event carries
// "coid:corrections" naming the correction records and their reasons; the
// handoff itself stays, as in the ledger. Every event names its coid step
// ("coid:step") and ledger position ("coid:seq").
//
// # Temperature
//
// The receive event of a leg carries sensorElementList: one element with
// sensorMetadata (deviceID the shipper, startTime and endTime the leg's
// ship and receive times, bizRules the profile) and a sensorReport of type
// gs1:Temperature with minValue and maxValue from the leg's seal and
// meanValue from the readings (only when the readings still hash to the
// seal, so all three describe the same data), uom CEL; then one element per
// excursion of the leg with exception ALARM_CONDITION over the excursion's
// span. Excursion events carry the same alarm element.
package epcis

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
)

// Context is the EPCIS 2.0 JSON-LD context every document names first.
const Context = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"

// Namespace is the IRI of the "coid:" extension prefix.
const Namespace = "https://github.com/coid-project/coid/ns#"

// Telemetry is one leg's readings as the export uses them.
type Telemetry struct {
	// Available is false when no reading store is connected; the leg is
	// then summarised from its seal alone.
	Available bool
	// Readings are the leg's readings in device-time order.
	Readings []custody.Reading
}

// Input is what Export turns into a document.
type Input struct {
	Chain *custody.Chain
	// Telemetry holds each leg's readings, index n-1 for leg n; a missing
	// entry means none are available.
	Telemetry []Telemetry
	// CreatedAt is the document's creationDate.
	CreatedAt time.Time
	// Zone gives eventTimeZoneOffset of events at sites with no zone in
	// SiteZones (sites from before the network); nil means UTC (+00:00).
	Zone *time.Location
	// SiteZones gives each registered site's zone: an event at one has
	// its site's offset at the event time.
	SiteZones custody.SiteZones
}

// Document is an EPCISDocument.
type Document struct {
	Context       []any  `json:"@context"`
	ID            string `json:"id"`
	Type          string `json:"type"`
	SchemaVersion string `json:"schemaVersion"`
	CreationDate  string `json:"creationDate"`
	Body          Body   `json:"epcisBody"`
}

// Body is the document's epcisBody.
type Body struct {
	EventList []Event `json:"eventList"`
}

// Event is an ObjectEvent.
type Event struct {
	Type                string          `json:"type"`
	EventTime           string          `json:"eventTime"`
	EventTimeZoneOffset string          `json:"eventTimeZoneOffset"`
	EventID             string          `json:"eventID"`
	EPCList             []string        `json:"epcList"`
	Action              string          `json:"action"`
	BizStep             string          `json:"bizStep,omitempty"`
	Disposition         string          `json:"disposition,omitempty"`
	ReadPoint           *Location       `json:"readPoint,omitempty"`
	BizLocation         *Location       `json:"bizLocation,omitempty"`
	SourceList          []Source        `json:"sourceList,omitempty"`
	DestinationList     []Destination   `json:"destinationList,omitempty"`
	SensorElementList   []SensorElement `json:"sensorElementList,omitempty"`
	ILMD                map[string]any  `json:"ilmd,omitempty"`
	Step                string          `json:"coid:step"`
	Seq                 uint64          `json:"coid:seq"`
	Corrections         []Correction    `json:"coid:corrections,omitempty"`
	// About is the URN of the record a disposition or an acknowledgement
	// is about (the excursion, broken-seal receive or mismatch).
	About string `json:"coid:about,omitempty"`
	// Decision and Reason are QA's, on a disposition event.
	Decision string `json:"coid:decision,omitempty"`
	Reason   string `json:"coid:reason,omitempty"`
}

// Location is a readPoint or bizLocation.
type Location struct {
	ID string `json:"id"`
}

// Source is a sourceList entry.
type Source struct {
	Type   string `json:"type"`
	Source string `json:"source"`
}

// Destination is a destinationList entry.
type Destination struct {
	Type        string `json:"type"`
	Destination string `json:"destination"`
}

// Correction names a correction record that amends an event's record.
type Correction struct {
	Record string `json:"coid:record"`
	Time   string `json:"coid:time"`
	Reason string `json:"coid:reason"`
}

// SensorElement is one sensorElementList entry.
type SensorElement struct {
	Metadata SensorMetadata `json:"sensorMetadata"`
	Report   []SensorReport `json:"sensorReport"`
}

// SensorMetadata describes the device and span of a sensor element.
type SensorMetadata struct {
	DeviceID     string `json:"deviceID"`
	StartTime    string `json:"startTime,omitempty"`
	EndTime      string `json:"endTime,omitempty"`
	BizRules     string `json:"bizRules,omitempty"`
	Count        *int   `json:"coid:readings,omitempty"`
	ReadingsHash string `json:"coid:readingsHash,omitempty"`
}

// SensorReport is one sensorReport entry.
type SensorReport struct {
	Type         string   `json:"type"`
	Exception    string   `json:"exception,omitempty"`
	Value        *float64 `json:"value,omitempty"`
	BooleanValue *bool    `json:"booleanValue,omitempty"`
	MinValue     *float64 `json:"minValue,omitempty"`
	MaxValue     *float64 `json:"maxValue,omitempty"`
	MeanValue    *float64 `json:"meanValue,omitempty"`
	UOM          string   `json:"uom,omitempty"`
	Excursion    string   `json:"coid:excursion,omitempty"`
	Kind         string   `json:"coid:kind,omitempty"`
}

// URN builders.

// COIURN is the URN of a chain.
func COIURN(c custody.COI) string { return "urn:coid:coi:" + string(c) }

// BagURN is the URN of a bag ID such as "CHA999926000001-FP-01".
func BagURN(bag string) string { return "urn:coid:bag:" + escape(bag) }

// SiteURN is the URN of a site named at enrollment, under the issuing
// facility's FIN.
func SiteURN(fin, name string) string { return "urn:coid:site:" + escape(fin) + ":" + escape(name) }

// ShipperURN is the URN of a shipper's data logger.
func ShipperURN(id string) string { return "urn:coid:shipper:" + escape(id) }

// RecordURN is the URN of a ledger record: its hash.
func RecordURN(h custody.Hash) string { return "urn:coid:record:" + h.String() }

// escape percent-encodes every byte outside the RFC 3986 unreserved set.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// Write writes the chain's EPCIS document to w as indented JSON.
func Write(w io.Writer, in *Input) error {
	doc, err := Export(in)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("epcis: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Export builds the chain's EPCIS document. The same input gives the same
// document.
func Export(in *Input) (*Document, error) {
	if in == nil || in.Chain == nil || len(in.Chain.Records) == 0 {
		return nil, fmt.Errorf("epcis: no chain: %w", custody.ErrInvalid)
	}
	if in.CreatedAt.IsZero() {
		return nil, fmt.Errorf("epcis: creation time not set: %w", custody.ErrInvalid)
	}
	x := &exporter{in: in, c: in.Chain, v: custody.ViewChain(in.Chain), zone: in.Zone}
	if x.zone == nil {
		x.zone = time.UTC
	}
	doc := &Document{
		Context:       []any{Context, map[string]string{"coid": Namespace}},
		ID:            "urn:coid:epcis:" + string(in.Chain.COI) + ":" + in.Chain.Head,
		Type:          "EPCISDocument",
		SchemaVersion: "2.0",
		CreationDate:  in.CreatedAt.UTC().Format(time.RFC3339Nano),
		Body:          Body{EventList: []Event{}},
	}
	for i := range x.c.Records {
		if ev, ok := x.event(&x.c.Records[i]); ok {
			doc.Body.EventList = append(doc.Body.EventList, ev)
		}
	}
	return doc, nil
}

type exporter struct {
	in   *Input
	c    *custody.Chain
	v    *custody.ChainView
	zone *time.Location
}

// corrections names the correction records of the record at seq.
func (x *exporter) corrections(seq uint64) []Correction {
	var out []Correction
	for _, r := range x.v.Corrections(seq) {
		d, _ := r.Body().(custody.CorrectionData)
		out = append(out, Correction{Record: RecordURN(r.Hash), Time: x.time(r.Time), Reason: d.Reason})
	}
	return out
}

func (x *exporter) time(t time.Time) string { return t.In(x.zone).Format(time.RFC3339Nano) }

func (x *exporter) site(name string) *Location {
	if name == "" {
		return nil
	}
	return &Location{ID: SiteURN(x.c.Facility, name)}
}

// bags returns the URNs of the chain's bags of a kind, all of them for
// kind "".
// mismatchBags is the bag a mismatch record names, when it could be read;
// else the final-product bags.
func (x *exporter) mismatchBags(m *custody.Record) []string {
	if m != nil {
		d, _ := m.Body().(custody.MismatchData)
		if code, err := custody.ParseCode(d.BagCode); err == nil && code.Bag != nil && code.COI == x.c.COI {
			return []string{BagURN(code.Bag.String())}
		}
	}
	return x.bags(custody.BagFinalProduct)
}

func (x *exporter) bags(kind custody.BagKind) []string {
	var out []string
	for _, b := range x.c.Bags {
		if id, err := custody.ParseBagID(b); kind == "" || err == nil && id.Kind == kind {
			out = append(out, BagURN(b))
		}
	}
	return out
}

// legBags are the bags a leg carries: apheresis bags on the first leg,
// final-product bags after.
func (x *exporter) legBags(n int) []string {
	if n <= 1 {
		return x.bags(custody.BagApheresis)
	}
	return x.bags(custody.BagFinalProduct)
}

func (x *exporter) withCOI(urns []string) []string {
	return append([]string{COIURN(x.c.COI)}, urns...)
}

func (x *exporter) event(r *custody.Record) (Event, bool) {
	ev := Event{Type: "ObjectEvent", EventTime: x.time(r.Time), EventTimeZoneOffset: r.Time.In(x.in.SiteZones.Zone(r.Site, x.zone)).Format("-07:00"),
		EventID: RecordURN(r.Hash), Action: "OBSERVE", Step: string(r.Step), Seq: r.Seq, Corrections: x.corrections(r.Seq)}
	here := x.site(r.Site)
	ev.ReadPoint, ev.BizLocation = here, here
	switch r.Step {
	case custody.StepEnroll:
		ev.Action, ev.BizStep, ev.Disposition = "ADD", "commissioning", "active"
		ev.EPCList = []string{COIURN(x.c.COI)}
	case custody.StepCollect:
		d, _ := r.Body().(custody.CollectData)
		ev.Action, ev.BizStep, ev.Disposition = "ADD", "commissioning", "active"
		for n := 1; n <= d.Bags; n++ {
			ev.EPCList = append(ev.EPCList, BagURN(custody.BagID{COI: x.c.COI, Kind: custody.BagApheresis, N: n}.String()))
		}
		ev.ILMD = map[string]any{"coid:coi": COIURN(x.c.COI)}
		if d.DIN != "" {
			ev.ILMD["coid:din"] = "urn:coid:din:" + escape(d.DIN)
		}
		if d.VolumeML != nil {
			ev.ILMD["coid:volumeML"] = *d.VolumeML
		}
	case custody.StepManufacture:
		d, _ := r.Body().(custody.ManufactureData)
		ev.Action, ev.BizStep, ev.Disposition = "ADD", "commissioning", "active"
		for n := 1; n <= d.FinalBags; n++ {
			ev.EPCList = append(ev.EPCList, BagURN(custody.BagID{COI: x.c.COI, Kind: custody.BagFinalProduct, N: n}.String()))
		}
		ev.ILMD = map[string]any{"coid:coi": COIURN(x.c.COI), "coid:madeFrom": nonNil(x.bags(custody.BagApheresis))}
	case custody.StepShip:
		l := x.v.LegOf(r.Seq)
		ev.BizStep, ev.Disposition = "shipping", "in_transit"
		ev.EPCList = x.withCOI(x.legBags(l.N))
		ev.BizLocation = nil // in transit
		if l.From != "" {
			ev.SourceList = []Source{{Type: "location", Source: SiteURN(x.c.Facility, l.From)}}
		}
		if l.To != "" {
			ev.DestinationList = []Destination{{Type: "location", Destination: SiteURN(x.c.Facility, l.To)}}
		}
	case custody.StepReceive:
		l := x.v.LegOf(r.Seq)
		ev.BizStep, ev.Disposition = "receiving", "in_progress"
		if l.N > 1 {
			ev.Disposition = "active"
		}
		if l.SealIntact != nil && !*l.SealIntact {
			ev.Disposition = "non_conformant"
		}
		ev.EPCList = x.withCOI(x.legBags(l.N))
		if l.From != "" {
			ev.SourceList = []Source{{Type: "location", Source: SiteURN(x.c.Facility, l.From)}}
		}
		if l.To != "" {
			ev.DestinationList = []Destination{{Type: "location", Destination: SiteURN(x.c.Facility, l.To)}}
		}
		ev.SensorElementList = x.legSensors(l, r)
	case custody.StepExcursion:
		e, _ := x.v.Excursion(r.Seq)
		d, n := e.Data, e.Leg
		ev.BizStep = "sensor_reporting"
		ev.EPCList = x.withCOI(x.legBags(n))
		ev.ReadPoint, ev.BizLocation = nil, nil // judged in transit
		shipper := d.Shipper
		if shipper == "" && n > 0 && n <= len(x.c.Legs) {
			shipper = x.c.Legs[n-1].Shipper
		}
		ev.SensorElementList = []SensorElement{x.alarm(r, d, shipper)}
	case custody.StepDisposition:
		d, _ := r.Body().(custody.DispositionData)
		ev.BizStep, ev.Disposition = "inspecting", "conformant"
		ev.Decision, ev.Reason = d.Decision, d.Reason
		if t := x.v.Record(d.Excursion); t != nil {
			ev.About = RecordURN(t.Hash)
		}
		if d.Decision == custody.DecisionReject {
			ev.Disposition = "non_conformant"
		}
		n := 0
		if t := x.v.Record(d.Excursion); t != nil {
			switch t.Step {
			case custody.StepExcursion:
				if e, ok := x.v.Excursion(t.Seq); ok && e.Readable {
					n = e.Data.Leg
				}
			case custody.StepReceive:
				n = x.v.LegOf(t.Seq).N
			}
		}
		switch t := x.v.Record(d.Excursion); {
		case n > 0:
			ev.EPCList = x.withCOI(x.legBags(n))
		case t != nil && t.Step == custody.StepMismatch:
			ev.EPCList = x.withCOI(x.mismatchBags(t))
		default:
			ev.EPCList = x.withCOI(nonNil(x.bags("")))
		}
	case custody.StepRelease:
		ev.BizStep, ev.Disposition = "inspecting", "conformant"
		ev.EPCList = x.withCOI(x.bags(custody.BagFinalProduct))
	case custody.StepBedsideVerify, custody.StepMismatch:
		var bag, bagCode string
		switch d := r.Body().(type) {
		case custody.BedsideData:
			bag, bagCode = d.Bag, d.BagCode
		case custody.MismatchData:
			bagCode = d.BagCode
		}
		ev.BizStep, ev.Disposition = "inspecting", "conformant"
		if r.Step == custody.StepMismatch {
			ev.Disposition = "mismatch_instance"
		}
		if bag == "" {
			if code, err := custody.ParseCode(bagCode); err == nil && code.Bag != nil && code.COI == x.c.COI {
				bag = code.Bag.String()
			}
		}
		if bag != "" {
			ev.EPCList = x.withCOI([]string{BagURN(bag)})
		} else {
			ev.EPCList = x.withCOI(x.bags(custody.BagFinalProduct))
		}
	case custody.StepAcknowledge:
		d, _ := r.Body().(custody.AcknowledgeData)
		ev.BizStep, ev.Disposition = "holding", "non_sellable_other"
		if t := x.v.Record(d.Mismatch); t != nil {
			ev.About = RecordURN(t.Hash)
		}
		ev.EPCList = x.withCOI(x.mismatchBags(x.v.Record(d.Mismatch)))
	case custody.StepInfuse:
		ev.BizStep, ev.Disposition = "dispensing", "dispensed"
		d, _ := r.Body().(custody.InfuseData)
		if d.Bag != "" && slices.Contains(x.bags(custody.BagFinalProduct), BagURN(d.Bag)) { // the bag the bedside check verified
			ev.EPCList = x.withCOI([]string{BagURN(d.Bag)})
		} else { // records written before coid named it (a client's text then)
			ev.EPCList = x.withCOI(x.bags(custody.BagFinalProduct))
		}
	case custody.StepCancel:
		ev.Action, ev.BizStep, ev.Disposition = "DELETE", "decommissioning", "inactive"
		ev.EPCList = x.withCOI(nonNil(x.bags("")))
	case custody.StepNote, custody.StepCorrection, custody.StepReview,
		custody.StepSchedule, custody.StepReschedule, custody.StepUnschedule, custody.StepCollectOverride:
		// Notes, corrections, QA's review of the record and the
		// booking's plan are not supply-chain events; a correction shows
		// on the event it amends.
		return Event{}, false
	default:
		// A step this export has no mapping for (one a journey table
		// adds): an OBSERVE event of the chain at the record's site, with
		// no business step; coid:step names it.
		ev.EPCList = x.withCOI(nil)
	}
	if ev.EPCList == nil {
		ev.EPCList = []string{}
	}
	return ev, true
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func f64(v float64) *float64 { return &v }

// legSensors summarises leg l's temperature for its receive event.
func (x *exporter) legSensors(l custody.Leg, r *custody.Record) []SensorElement {
	d, _ := r.Body().(custody.ReceiveData)
	var seal *custody.LegSeal
	if d.Telemetry != nil {
		seal = &d.Telemetry.Seal
	}
	var tele Telemetry
	if l.N >= 1 && l.N <= len(x.in.Telemetry) {
		tele = x.in.Telemetry[l.N-1]
	}
	meta := SensorMetadata{DeviceID: ShipperURN(l.Shipper), StartTime: x.time(l.ShippedAt), BizRules: "urn:coid:profile:" + escape(l.Profile)}
	if l.ReceivedAt != nil {
		meta.EndTime = x.time(*l.ReceivedAt)
	}
	rep := SensorReport{Type: "gs1:Temperature", UOM: "CEL"}
	var sum float64
	var n int
	if tele.Available {
		for _, rd := range tele.Readings {
			if rd.TempC != nil {
				sum += *rd.TempC
				n++
			}
		}
	}
	switch {
	case seal != nil:
		count := seal.Count
		meta.Count, meta.ReadingsHash = &count, seal.ReadingsHash
		rep.MinValue, rep.MaxValue = seal.MinC, seal.MaxC
		if n > 0 && custody.SealReadings(tele.Readings, custody.Profile{}).ReadingsHash == seal.ReadingsHash {
			rep.MeanValue = f64(round3(sum / float64(n)))
		}
	case n > 0:
		lo, hi := 0.0, 0.0
		first := true
		for _, rd := range tele.Readings {
			if rd.TempC == nil {
				continue
			}
			if first || *rd.TempC < lo {
				lo = *rd.TempC
			}
			if first || *rd.TempC > hi {
				hi = *rd.TempC
			}
			first = false
		}
		count := len(tele.Readings)
		meta.Count = &count
		rep.MinValue, rep.MaxValue, rep.MeanValue = f64(lo), f64(hi), f64(round3(sum/float64(n)))
	}
	var out []SensorElement
	if rep.MinValue != nil {
		out = append(out, SensorElement{Metadata: meta, Report: []SensorReport{rep}})
	}
	for _, ev := range x.v.LegExcursions(l.N) {
		e := ev.Data
		// With the figures the system recorded after it (its end, or
		// figures that readings stored late revised).
		if end := ev.Figures; end != nil {
			if end.Start != nil {
				e.Start = *end.Start
			}
			e.End = end.End
			if end.Worst != nil {
				e.Worst = end.Worst
			}
		}
		out = append(out, x.alarm(ev.Record, e, l.Shipper))
	}
	return out
}

func round3(v float64) float64 {
	s := strconv.FormatFloat(v, 'f', 3, 64)
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// alarm is the sensor element of one excursion: ALARM_CONDITION over its
// span, with the worst value where the rule has one.
func (x *exporter) alarm(r *custody.Record, e custody.ExcursionData, shipper string) SensorElement {
	meta := SensorMetadata{DeviceID: ShipperURN(shipper), StartTime: x.time(e.Start)}
	if shipper == "" {
		meta.DeviceID = "urn:coid:shipper:unknown"
	}
	if e.End != nil {
		meta.EndTime = x.time(*e.End)
	}
	if e.Profile != "" {
		meta.BizRules = "urn:coid:profile:" + escape(e.Profile)
	}
	rep := SensorReport{Exception: "ALARM_CONDITION", Excursion: RecordURN(r.Hash), Kind: string(e.Kind)}
	switch e.Kind {
	case custody.ExcursionTemperature:
		rep.Type, rep.UOM = "gs1:Temperature", "CEL"
		if e.Worst != nil {
			if e.Limit != nil && *e.Worst < *e.Limit {
				rep.MinValue = e.Worst
			} else {
				rep.MaxValue = e.Worst
			}
		}
	case custody.ExcursionTilt:
		rep.Type, rep.UOM = "gs1:Angle", "DD" // UN/CEFACT DD: degree (unit of angle)
		rep.MaxValue = e.Worst
	case custody.ExcursionLid:
		rep.Type, rep.BooleanValue = "urn:coid:measurement:lid-open", new(bool)
		*rep.BooleanValue = true
	case custody.ExcursionSilence:
		rep.Type = "urn:coid:measurement:silence"
	default:
		rep.Type = "urn:coid:measurement:" + escape(string(e.Kind))
	}
	return SensorElement{Metadata: meta, Report: []SensorReport{rep}}
}
