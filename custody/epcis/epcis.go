// Package epcis exports a chain as a GS1 EPCIS 2.0 document in JSON-LD,
// so that a partner's supply-chain system can import
// the chain's handoffs as standard events. It imports only the standard
// library and custody, and reads the chain through custody.ChainView.
//
// # Identifiers
//
// Identifiers are HTTP URIs a partner can resolve. Where the registries
// give a GS1 key, the identifier is its GS1 Digital Link URI, which needs
// no GS1 company prefix length (an SGLN URN would, and a GLN alone does not
// say it):
//
//	https://id.gs1.org/414/4006381333931      a site with a GLN (readPoint, bizLocation, sources, destinations)
//	https://id.gs1.org/8004/0614141A%2F1      a shipper with a GIAI (sensor deviceID)
//
// Everything else is under the HTTP URI base the operator configures
// (coid serve and coid report --epcis-base; DefaultBase when not
// configured), in this scheme:
//
//	<base>coi/CHA999926000001                the chain (ISBT 128 DS 040 content, without K)
//	<base>bag/CHA999926000001-FP-01          a bag
//	<base>din/A999926123456                  the collection's DIN (in ilmd)
//	<base>site/A9999/CellWorks%20NJ          a site without a GLN: issuing facility FIN, then the site's name as enrolled, percent-encoded
//	<base>shipper/SHP-0042                   a shipper without a GIAI (sensor deviceID)
//	<base>profile/cryogenic                  a temperature profile (sensor bizRules)
//	<base>record/<sha-256 hex>               a ledger record (eventID): its hash
//	<base>transformation/<sha-256 hex>       a manufacture (transformationID): its record's hash
//	<base>access-request/EAA999926000001     an expanded-access request the chain was enrolled from
//	<base>epcis/<COI>/<chain head hash>      the document
//
// They are stable for a given base and registry: derived only from ledger
// content that never changes and from the registries' GLN and GIAI, so
// another system may keep them as keys. They change with the base, when a
// site gains a GLN or a shipper a GIAI, and they replace the urn:coid:
// URNs of earlier exports, which are not kept. Measurement types coid defines (lid open, silence)
// are terms of the coid namespace (Namespace + "lid-open").
//
// In the path segments (names and IDs) every byte outside the RFC 3986
// unreserved set (A-Z a-z 0-9 - . _ ~) is percent-encoded as UTF-8,
// upper-case hex.
// Extension members use the prefix "coid:", declared in the document's
// @context as https://github.com/coid-project/coid/ns#.
//
// # Events
//
// Each record that moves or judges the product is one event, in chain
// order: an ObjectEvent, or for a manufacture a TransformationEvent, so
// that a standard query traces a final-product bag back through its
// transformationID to the collection's bags and their COI; eventID is the
// record's URI and eventTime its time (in the zone given, +00:00 by
// default). CBV 2.0 values are written in their JSON-LD
// compact form ("shipping", "in_transit"), as the GS1 schema requires:
//
//	enroll          ADD      commissioning     active           the COI
//	collect         ADD      commissioning     active           apheresis bags; ilmd: COI, DIN, volume
//	ship            OBSERVE  shipping          in_transit       leg's bags; source and destination sites
//	receive         OBSERVE  receiving         in_progress      leg's bags; the leg's temperature summary
//	                                           (active at the treatment site; non_conformant if the seal was broken)
//	excursion       OBSERVE  sensor_reporting  -                leg's bags; the excursion as ALARM_CONDITION
//	manufacture     TransformationEvent, commissioning, active: inputEPCList the
//	                apheresis bags, outputEPCList the final-product bags,
//	                transformationID the manufacture's; ilmd: COI
//	disposition     OBSERVE  inspecting        conformant or non_conformant (QA accept or reject);
//	                                           coid:about the record, coid:decision, coid:reason
//	release         OBSERVE  inspecting        conformant       final-product bags
//	oos             OBSERVE  inspecting        non_conformant   final-product bags; persistentDisposition
//	                                           sets non_conformant; coid:attributes, coid:reason
//	exceptional-release OBSERVE inspecting     available        final-product bags; persistentDisposition
//	                                           keeps non_conformant set; coid:exceptionalRelease: the oos
//	                                           records and failed attributes, the physician's request and
//	                                           consent records, the expanded-access request, the
//	                                           approvals (role, meaning, time)
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
	"net/url"
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
	// Base is the URI base of identifiers (DefaultBase when empty); it
	// must pass ValidateBase.
	Base string
	// GS1 gives the GLNs of the chain's registered sites and the GIAIs of
	// its registered shippers; their identifiers are then GS1 Digital Link
	// URIs.
	GS1 custody.GS1IDs
	// Proof is the proof bundle of the chain's records (a coid proof
	// bundle's JSON), carried as the document's "coid:proof" member; nil
	// for none.
	Proof json.RawMessage
}

// Document is an EPCISDocument.
type Document struct {
	Context       []any  `json:"@context"`
	ID            string `json:"id"`
	Type          string `json:"type"`
	SchemaVersion string `json:"schemaVersion"`
	CreationDate  string `json:"creationDate"`
	Body          Body   `json:"epcisBody"`
	// Proof is the proof bundle of the records the events come from:
	// the signed checkpoint and each record's ledger bytes and inclusion
	// proof, which coid audit checks with the verifier key alone.
	Proof json.RawMessage `json:"coid:proof,omitempty"`
}

// Body is the document's epcisBody.
type Body struct {
	EventList []Event `json:"eventList"`
}

// Event is an ObjectEvent or, for a manufacture, a TransformationEvent
// (which has input and output lists and a transformationID instead of an
// epcList and an action).
type Event struct {
	Type                string          `json:"type"`
	EventTime           string          `json:"eventTime"`
	EventTimeZoneOffset string          `json:"eventTimeZoneOffset"`
	EventID             string          `json:"eventID"`
	EPCList             []string        `json:"epcList,omitzero"`
	InputEPCList        []string        `json:"inputEPCList,omitempty"`
	OutputEPCList       []string        `json:"outputEPCList,omitempty"`
	TransformationID    string          `json:"transformationID,omitempty"`
	Action              string          `json:"action,omitempty"`
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
	// About is the URI of the record a disposition or an acknowledgement
	// is about (the excursion, broken-seal receive or mismatch).
	About string `json:"coid:about,omitempty"`
	// Decision and Reason are QA's, on a disposition event; Reason is
	// also QA's on an oos event.
	Decision string `json:"coid:decision,omitempty"`
	Reason   string `json:"coid:reason,omitempty"`
	// PersistentDisposition keeps an out-of-specification product
	// non_conformant from its oos event on, through its exceptional
	// release.
	PersistentDisposition *PersistentDisposition `json:"persistentDisposition,omitempty"`
	// Attributes are the release attributes an oos record names as
	// failed.
	Attributes []string `json:"coid:attributes,omitempty"`
	// ExceptionalRelease is what an exceptional-release event rests on.
	ExceptionalRelease *ExceptionalRelease `json:"coid:exceptionalRelease,omitempty"`
}

// PersistentDisposition is an event's persistentDisposition: the
// dispositions it sets (and unsets) until another event changes them.
type PersistentDisposition struct {
	Set   []string `json:"set,omitempty"`
	Unset []string `json:"unset,omitempty"`
}

// ExceptionalRelease is the coid extension of an exceptional-release
// event: the oos records it overrides with their failed attributes, the
// physician's request and consent records, the expanded-access request
// the chain was enrolled from, and the approvals it was signed with (role
// and meaning; the signers' names are in the custody report).
type ExceptionalRelease struct {
	OOS              []string   `json:"coid:oos"`
	Attributes       []string   `json:"coid:attributes"`
	PhysicianRequest string     `json:"coid:physicianRequest,omitempty"`
	Consent          string     `json:"coid:consent,omitempty"`
	AccessRequest    string     `json:"coid:accessRequest,omitempty"`
	Approvals        []Approval `json:"coid:approvals"`
}

// Approval is one signature of an exceptional release.
type Approval struct {
	Role    string `json:"coid:role"`
	Meaning string `json:"coid:meaning"`
	Time    string `json:"coid:time"`
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

// DefaultBase is the URI base of coid's identifiers when the operator
// configures none. The .invalid top-level domain (RFC 6761) never
// resolves: it says plainly that no base was configured and never names
// another party's host. An operator whose partners resolve identifiers
// configures a base under a domain it owns.
const DefaultBase = "https://coid.invalid/id/"

// ValidateBase checks a URI base for identifiers: an absolute http or
// https URI with a host, without query, fragment or user information,
// ending in "/". Errors wrap custody.ErrInvalid.
func ValidateBase(base string) error {
	u, err := url.Parse(base)
	switch {
	case err != nil:
		return fmt.Errorf("epcis base %q: %v: %w", base, err, custody.ErrInvalid)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("epcis base %q must be an absolute http or https URI, such as https://coid.example.org/id/: %w", base, custody.ErrInvalid)
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(base, "?#") || u.User != nil:
		return fmt.Errorf("epcis base %q must have no query, fragment or user: %w", base, custody.ErrInvalid)
	case !strings.HasSuffix(base, "/"):
		return fmt.Errorf("epcis base %q must end in /: %w", base, custody.ErrInvalid)
	}
	return nil
}

// GLNURI is the GS1 Digital Link URI of a site's GLN (AI 414).
func GLNURI(gln string) string { return "https://id.gs1.org/414/" + gln }

// GIAIURI is the GS1 Digital Link URI of an asset's GIAI (AI 8004), its
// characters outside the URI unreserved set percent-encoded.
func GIAIURI(giai string) string { return "https://id.gs1.org/8004/" + escape(giai) }

// IDs names the things of one chain's export.
type IDs struct {
	// Base is the URI base (DefaultBase when empty).
	Base string
	// Facility is the issuing facility's FIN, under which sites without a
	// GLN are named.
	Facility string
	// GS1 gives sites' GLNs and shippers' GIAIs.
	GS1 custody.GS1IDs
}

func (n IDs) base() string {
	if n.Base == "" {
		return DefaultBase
	}
	return n.Base
}

// COI is the URI of a chain.
func (n IDs) COI(c custody.COI) string { return n.base() + "coi/" + escape(string(c)) }

// Bag is the URI of a bag ID such as "CHA999926000001-FP-01".
func (n IDs) Bag(bag string) string { return n.base() + "bag/" + escape(bag) }

// DIN is the URI of a collection's ISBT 128 donation identification
// number.
func (n IDs) DIN(din string) string { return n.base() + "din/" + escape(din) }

// Site is the URI of a site named on the chain: its GLN's Digital Link
// URI when the registry gives one, else a URI under the base naming the
// issuing facility's FIN and the name.
func (n IDs) Site(name string) string {
	if gln := n.GS1.SiteGLN[name]; gln != "" {
		return GLNURI(gln)
	}
	return n.base() + "site/" + escape(n.Facility) + "/" + escape(name)
}

// Shipper is the URI of a shipper's data logger: its GIAI's Digital Link
// URI when the registry gives one, else a URI under the base.
func (n IDs) Shipper(id string) string {
	if giai := n.GS1.ShipperGIAI[id]; giai != "" {
		return GIAIURI(giai)
	}
	return n.base() + "shipper/" + escape(id)
}

// Profile is the URI of a temperature profile.
func (n IDs) Profile(name string) string { return n.base() + "profile/" + escape(name) }

// Record is the URI of a ledger record: its hash.
func (n IDs) Record(h custody.Hash) string { return n.base() + "record/" + h.String() }

// AccessRequest is the URI of an expanded-access request (its
// identifier, EA...), the chain its therapy chain was enrolled from.
func (n IDs) AccessRequest(id custody.COI) string {
	return n.base() + "access-request/" + escape(string(id))
}

// Transformation is the transformationID of a manufacture: its record's
// hash.
func (n IDs) Transformation(h custody.Hash) string { return n.base() + "transformation/" + h.String() }

// Document is the URI of a chain's document as of its head.
func (n IDs) Document(c custody.COI, head string) string {
	return n.base() + "epcis/" + escape(string(c)) + "/" + escape(head)
}

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
	if in.Base != "" {
		if err := ValidateBase(in.Base); err != nil {
			return nil, fmt.Errorf("epcis: %w", err)
		}
	}
	x := &exporter{in: in, c: in.Chain, v: custody.ViewChain(in.Chain), zone: in.Zone,
		ids: IDs{Base: in.Base, Facility: in.Chain.Facility, GS1: in.GS1}}
	if x.zone == nil {
		x.zone = time.UTC
	}
	doc := &Document{
		Context:       []any{Context, map[string]string{"coid": Namespace}},
		ID:            x.ids.Document(in.Chain.COI, in.Chain.Head),
		Type:          "EPCISDocument",
		SchemaVersion: "2.0",
		CreationDate:  in.CreatedAt.UTC().Format(time.RFC3339Nano),
		Body:          Body{EventList: []Event{}},
		Proof:         in.Proof,
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
	ids  IDs
}

// corrections names the correction records of the record at seq.
func (x *exporter) corrections(seq uint64) []Correction {
	var out []Correction
	for _, r := range x.v.Corrections(seq) {
		d, _ := r.Body().(custody.CorrectionData)
		out = append(out, Correction{Record: x.ids.Record(r.Hash), Time: x.time(r.Time), Reason: d.Reason})
	}
	return out
}

func (x *exporter) time(t time.Time) string { return t.In(x.zone).Format(time.RFC3339Nano) }

func (x *exporter) site(name string) *Location {
	if name == "" {
		return nil
	}
	return &Location{ID: x.ids.Site(name)}
}

// bags returns the URNs of the chain's bags of a kind, all of them for
// kind "".
// mismatchBags is the bag a mismatch record names, when it could be read;
// else the final-product bags.
func (x *exporter) mismatchBags(m *custody.Record) []string {
	if m != nil {
		d, _ := m.Body().(custody.MismatchData)
		if code, err := custody.ParseCode(d.BagCode); err == nil && code.Bag != nil && code.COI == x.c.COI {
			return []string{x.ids.Bag(code.Bag.String())}
		}
	}
	return x.bags(custody.BagFinalProduct)
}

func (x *exporter) bags(kind custody.BagKind) []string {
	var out []string
	for _, b := range x.c.Bags {
		if id, err := custody.ParseBagID(b); kind == "" || err == nil && id.Kind == kind {
			out = append(out, x.ids.Bag(b))
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
	return append([]string{x.ids.COI(x.c.COI)}, urns...)
}

func (x *exporter) event(r *custody.Record) (Event, bool) {
	ev := Event{Type: "ObjectEvent", EventTime: x.time(r.Time), EventTimeZoneOffset: r.Time.In(x.in.SiteZones.Zone(r.Site, x.zone)).Format("-07:00"),
		EventID: x.ids.Record(r.Hash), Action: "OBSERVE", Step: string(r.Step), Seq: r.Seq, Corrections: x.corrections(r.Seq)}
	here := x.site(r.Site)
	ev.ReadPoint, ev.BizLocation = here, here
	switch r.Step {
	case custody.StepEnroll:
		ev.Action, ev.BizStep, ev.Disposition = "ADD", "commissioning", "active"
		ev.EPCList = []string{x.ids.COI(x.c.COI)}
	case custody.StepCollect:
		d, _ := r.Body().(custody.CollectData)
		ev.Action, ev.BizStep, ev.Disposition = "ADD", "commissioning", "active"
		for n := 1; n <= d.Bags; n++ {
			ev.EPCList = append(ev.EPCList, x.ids.Bag(custody.BagID{COI: x.c.COI, Kind: custody.BagApheresis, N: n}.String()))
		}
		ev.ILMD = map[string]any{"coid:coi": x.ids.COI(x.c.COI)}
		if d.DIN != "" {
			ev.ILMD["coid:din"] = x.ids.DIN(d.DIN)
		}
		if d.VolumeML != nil {
			ev.ILMD["coid:volumeML"] = *d.VolumeML
		}
	case custody.StepManufacture:
		d, _ := r.Body().(custody.ManufactureData)
		ev.BizStep, ev.Disposition = "commissioning", "active"
		var made []string
		for n := 1; n <= d.FinalBags; n++ {
			made = append(made, x.ids.Bag(custody.BagID{COI: x.c.COI, Kind: custody.BagFinalProduct, N: n}.String()))
		}
		ev.ILMD = map[string]any{"coid:coi": x.ids.COI(x.c.COI)}
		if from := x.bags(custody.BagApheresis); len(from) > 0 || len(made) > 0 {
			// The collection's bags in, the final-product bags out: a
			// standard trace follows transformationID from one to the other.
			ev.Type, ev.Action, ev.TransformationID = "TransformationEvent", "", x.ids.Transformation(r.Hash)
			ev.InputEPCList, ev.OutputEPCList = from, made
			return ev, true
		}
		ev.Action = "ADD" // nothing in, nothing out: the commissioning alone
	case custody.StepShip:
		l := x.v.LegOf(r.Seq)
		ev.BizStep, ev.Disposition = "shipping", "in_transit"
		ev.EPCList = x.withCOI(x.legBags(l.N))
		ev.BizLocation = nil // in transit
		if l.From != "" {
			ev.SourceList = []Source{{Type: "location", Source: x.ids.Site(l.From)}}
		}
		if l.To != "" {
			ev.DestinationList = []Destination{{Type: "location", Destination: x.ids.Site(l.To)}}
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
			ev.SourceList = []Source{{Type: "location", Source: x.ids.Site(l.From)}}
		}
		if l.To != "" {
			ev.DestinationList = []Destination{{Type: "location", Destination: x.ids.Site(l.To)}}
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
			ev.About = x.ids.Record(t.Hash)
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
	case custody.StepOOS:
		// QA found the product out of specification: non_conformant from
		// here on, whatever follows.
		ev.BizStep, ev.Disposition = "inspecting", "non_conformant"
		ev.PersistentDisposition = &PersistentDisposition{Set: []string{"non_conformant"}}
		ev.EPCList = x.withCOI(x.bags(custody.BagFinalProduct))
		if m, err := r.Members(); err == nil {
			_ = json.Unmarshal(m["attributes"], &ev.Attributes)
			_ = json.Unmarshal(m["reason"], &ev.Reason)
		}
	case custody.StepExceptionalRelease:
		// Released for this patient although out of specification: the
		// product is available, and stays non_conformant.
		ev.BizStep, ev.Disposition = "inspecting", "available"
		ev.PersistentDisposition = &PersistentDisposition{Set: []string{"non_conformant"}}
		ev.EPCList = x.withCOI(x.bags(custody.BagFinalProduct))
		ev.ExceptionalRelease = x.exceptionalRelease(r)
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
			ev.EPCList = x.withCOI([]string{x.ids.Bag(bag)})
		} else {
			ev.EPCList = x.withCOI(x.bags(custody.BagFinalProduct))
		}
	case custody.StepAcknowledge:
		d, _ := r.Body().(custody.AcknowledgeData)
		ev.BizStep, ev.Disposition = "holding", "non_sellable_other"
		if t := x.v.Record(d.Mismatch); t != nil {
			ev.About = x.ids.Record(t.Hash)
		}
		ev.EPCList = x.withCOI(x.mismatchBags(x.v.Record(d.Mismatch)))
	case custody.StepInfuse:
		ev.BizStep, ev.Disposition = "dispensing", "dispensed"
		d, _ := r.Body().(custody.InfuseData)
		if d.Bag != "" && slices.Contains(x.bags(custody.BagFinalProduct), x.ids.Bag(d.Bag)) { // the bag the bedside check verified
			ev.EPCList = x.withCOI([]string{x.ids.Bag(d.Bag)})
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

// exceptionalRelease is what exceptional-release record r rests on: the
// chain's oos records before it, the physician's request and consent
// records, the expanded-access request and r's approvals.
func (x *exporter) exceptionalRelease(r *custody.Record) *ExceptionalRelease {
	out := &ExceptionalRelease{OOS: []string{}, Attributes: []string{}, Approvals: []Approval{}}
	for i := range x.c.Records {
		p := &x.c.Records[i]
		if p.Seq >= r.Seq {
			break
		}
		switch p.Step {
		case custody.StepOOS:
			out.OOS = append(out.OOS, x.ids.Record(p.Hash))
			var attrs []string
			if m, err := p.Members(); err == nil && json.Unmarshal(m["attributes"], &attrs) == nil {
				for _, a := range attrs {
					if !slices.Contains(out.Attributes, a) {
						out.Attributes = append(out.Attributes, a)
					}
				}
			}
		case custody.StepExceptionalReleaseRequest:
			out.PhysicianRequest = x.ids.Record(p.Hash)
		case custody.StepConsent:
			out.Consent = x.ids.Record(p.Hash)
		}
	}
	if id := custody.RequestOf(x.c); id != "" {
		out.AccessRequest = x.ids.AccessRequest(id)
	}
	for _, s := range r.Signatures {
		t := s.Time
		if tt, err := time.Parse(time.RFC3339Nano, s.Time); err == nil {
			t = x.time(tt)
		}
		out.Approvals = append(out.Approvals, Approval{Role: string(s.Role), Meaning: string(s.Meaning), Time: t})
	}
	return out
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
	meta := SensorMetadata{DeviceID: x.ids.Shipper(l.Shipper), StartTime: x.time(l.ShippedAt), BizRules: x.ids.Profile(l.Profile)}
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
	meta := SensorMetadata{DeviceID: x.ids.Shipper(shipper), StartTime: x.time(e.Start)}
	if shipper == "" {
		meta.DeviceID = x.ids.Shipper("unknown")
	}
	if e.End != nil {
		meta.EndTime = x.time(*e.End)
	}
	if e.Profile != "" {
		meta.BizRules = x.ids.Profile(e.Profile)
	}
	rep := SensorReport{Exception: "ALARM_CONDITION", Excursion: x.ids.Record(r.Hash), Kind: string(e.Kind)}
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
		rep.Type, rep.BooleanValue = Namespace+"lid-open", new(bool)
		*rep.BooleanValue = true
	case custody.ExcursionSilence:
		rep.Type = Namespace + "silence"
	default:
		rep.Type = Namespace + escape(string(e.Kind))
	}
	return SensorElement{Metadata: meta, Report: []SensorReport{rep}}
}
