// Package fhir maps a chain to HL7 FHIR R4 resources, so that a hospital's
// system can read coid's bags and ledger through a standard, read-only
// interface. It imports the standard library, custody and a FHIR R4 model
// library (typed structs, no dependencies), and reads the chain through
// custody.ChainView as the other exports do.
//
// # Resources
//
// Each bag of a chain is one BiologicallyDerivedProduct whose id is the bag
// ID ("CHA999926000001-APH-01"): productCategory cells, the product code
// (the registry's ISBT 128 product code, system
// http://terminology.hl7.org/CodeSystem/ib, when the registry has one; the
// product's name as text always), status available (unavailable once the
// chain is cancelled or the bag infused), identifiers (bag ID, COI and the
// collection's DIN), collection (the apheresis time or period, the
// collection site as an extension), processing (manufacture, for
// final-product bags, with parent naming the apheresis bags) and storage
// (one entry per shipment leg that carried the bag: profile, limits, span).
//
// Each ledger record of a chain is one Provenance whose id is the COI and
// the record's position in the chain ("CHA999926000001-7"): target the bags
// the record concerns (or the chain, by its COI identifier, when it
// concerns no bag), recorded the record's time, activity the coid step,
// location the site, one agent per signature (who: the user by ID and
// printed name; type from the signature's meaning; role the coid role),
// one signature per signature (type: the ASTM E1762 signature type and the
// coid meaning) and the record's hash as an extension. A manufacture
// record names the apheresis bags as its source entities.
//
// A chain as a whole is a Bundle of type collection whose id is the COI.
//
// # Identifier and code systems
//
//	https://github.com/coid-project/coid/fhir/bag      bag ID
//	https://github.com/coid-project/coid/fhir/coi     COI (ISBT 128 DS 040 content, without K)
//	https://github.com/coid-project/coid/fhir/din     ISBT 128 DIN of the collection
//	https://github.com/coid-project/coid/fhir/user    coid user ID
//	https://github.com/coid-project/coid/fhir/CodeSystem/step     coid steps
//	https://github.com/coid-project/coid/fhir/CodeSystem/role     coid roles
//	https://github.com/coid-project/coid/fhir/CodeSystem/meaning  signature meanings
//
// # Patient identifiers
//
// No resource names the patient but by the COI identifier: there is no
// Patient resource, and no record data but DINs, times, sites, bag counts
// and staff signatures is read.
package fhir

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Identifier, code and extension systems coid defines.
const (
	ns = "https://github.com/coid-project/coid/fhir/"
	// SystemBag is the identifier system of bag IDs.
	SystemBag = ns + "bag"
	// SystemCOI is the identifier system of COIs.
	SystemCOI = ns + "coi"
	// SystemDIN is the identifier system of the collection's ISBT 128 DIN.
	SystemDIN = ns + "din"
	// SystemUser is the identifier system of coid user IDs.
	SystemUser = ns + "user"
	// SystemStep is the code system of coid steps (Provenance.activity).
	SystemStep = ns + "CodeSystem/step"
	// SystemRole is the code system of coid roles (Provenance.agent.role).
	SystemRole = ns + "CodeSystem/role"
	// SystemMeaning is the code system of signature meanings.
	SystemMeaning = ns + "CodeSystem/meaning"
	// ExtCollectionSite is the extension on
	// BiologicallyDerivedProduct.collection naming the collection site.
	ExtCollectionSite = ns + "StructureDefinition/collection-site"
	// ExtRecordHash is the extension on Provenance holding the ledger
	// record's hash (SHA-256, hex).
	ExtRecordHash = ns + "StructureDefinition/record-hash"
	// SystemISBT is HL7's URI of ISBT 128 codes.
	SystemISBT = "http://terminology.hl7.org/CodeSystem/ib"
	// SystemSignatureType is the ASTM E1762 signature type system.
	SystemSignatureType = "urn:iso-astm:E1762-95:2013"
	// SystemParticipantType is HL7's provenance participant type system.
	SystemParticipantType = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
)

// MediaType is the media type of FHIR JSON.
const MediaType = "application/fhir+json"

// Input is one chain as the mapping reads it.
type Input struct {
	// Chain is the folded chain.
	Chain *custody.Chain
	// ISBTProductCode is the registry's ISBT 128 product code of the
	// chain's product; empty when the registry has none.
	ISBTProductCode string
	// ProductName is the registry's name of the chain's product; empty
	// when the registry has none (the chain's product text is used).
	ProductName string
	// Profiles are the temperature profiles by name, for storage limits.
	Profiles map[string]custody.Profile
}

// Chain is a chain read for mapping.
type Chain struct {
	in *Input
	c  *custody.Chain
	v  *custody.ChainView
}

// Read prepares in's chain for mapping.
func Read(in *Input) (*Chain, error) {
	if in == nil || in.Chain == nil || len(in.Chain.Records) == 0 {
		return nil, fmt.Errorf("fhir: no chain: %w", custody.ErrInvalid)
	}
	return &Chain{in: in, c: in.Chain, v: custody.ViewChain(in.Chain)}, nil
}

func ptr[T any](v T) *T { return &v }

func instant(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func coiIdentifier(c custody.COI) fm.Identifier {
	return fm.Identifier{System: ptr(SystemCOI), Value: ptr(string(c))}
}

func bagRef(bag string) fm.Reference {
	return fm.Reference{Reference: ptr("BiologicallyDerivedProduct/" + bag), Display: ptr("bag " + bag)}
}

// ProvenanceID is the resource id of the chain's record at chain
// position seq.
func ProvenanceID(coi custody.COI, seq uint64) string {
	return string(coi) + "-" + strconv.FormatUint(seq, 10)
}

// ParseProvenanceID splits a Provenance id into the COI and the record's
// chain position.
func ParseProvenanceID(id string) (custody.COI, uint64, error) {
	c, n, ok := strings.Cut(id, "-")
	seq, err := strconv.ParseUint(n, 10, 64)
	if !ok || err != nil || seq == 0 || n != strconv.FormatUint(seq, 10) {
		return "", 0, fmt.Errorf("Provenance id: want <COI>-<record position>: %w", custody.ErrInvalid)
	}
	coi, err := custody.ParseCOI(c)
	if err != nil || string(coi) != c {
		return "", 0, fmt.Errorf("Provenance id: the COI part is not the 15 characters of a COI: %w", custody.ErrInvalid)
	}
	return coi, seq, nil
}

// Bags returns the chain's bag IDs in chain order.
func (x *Chain) Bags() []string { return slices.Clone(x.c.Bags) }

func (x *Chain) bags(kind custody.BagKind) []string {
	var out []string
	for _, b := range x.c.Bags {
		if id, err := custody.ParseBagID(b); err == nil && id.Kind == kind {
			out = append(out, b)
		}
	}
	return out
}

func (x *Chain) first(step custody.Step) *custody.Record {
	for i := range x.c.Records {
		if x.c.Records[i].Step == step {
			return &x.c.Records[i]
		}
	}
	return nil
}

// infused reports whether an infuse record names bag (or names no bag
// the chain has, as records from before coid named it did).
func (x *Chain) infused(bag string) bool {
	for i := range x.c.Records {
		r := &x.c.Records[i]
		if r.Step != custody.StepInfuse {
			continue
		}
		d, _ := r.Body().(custody.InfuseData)
		if d.Bag == bag || !slices.Contains(x.c.Bags, d.Bag) {
			return true
		}
	}
	return false
}

// Product returns the BiologicallyDerivedProduct of the chain's bag, and
// false when the chain has no such bag.
func (x *Chain) Product(bag string) (fm.BiologicallyDerivedProduct, bool) {
	if !slices.Contains(x.c.Bags, bag) {
		return fm.BiologicallyDerivedProduct{}, false
	}
	id, err := custody.ParseBagID(bag)
	if err != nil {
		return fm.BiologicallyDerivedProduct{}, false
	}
	p := fm.BiologicallyDerivedProduct{
		Id:              ptr(bag),
		ProductCategory: ptr(fm.BiologicallyDerivedProductCategoryCells),
		Status:          ptr(fm.BiologicallyDerivedProductStatusAvailable),
		Quantity:        ptr(1),
		Identifier: []fm.Identifier{
			{System: ptr(SystemBag), Value: ptr(bag)},
			coiIdentifier(x.c.COI),
		},
	}
	if x.c.State == custody.StateCancelled || x.infused(bag) {
		p.Status = ptr(fm.BiologicallyDerivedProductStatusUnavailable)
	}
	if x.c.DIN != "" {
		p.Identifier = append(p.Identifier, fm.Identifier{System: ptr(SystemDIN), Value: ptr(string(x.c.DIN))})
	}
	if x.in.ISBTProductCode != "" || x.c.Product != "" {
		cc := fm.CodeableConcept{}
		if x.in.ISBTProductCode != "" {
			cc.Coding = []fm.Coding{{System: ptr(SystemISBT), Code: ptr(x.in.ISBTProductCode)}}
		}
		switch {
		case x.in.ProductName != "":
			cc.Text = ptr(x.in.ProductName)
		case x.c.Product != "":
			cc.Text = ptr(x.c.Product)
		}
		p.ProductCode = &cc
	}
	switch id.Kind {
	case custody.BagApheresis:
		if r := x.first(custody.StepCollect); r != nil {
			p.Collection = x.collection(r)
		}
	case custody.BagFinalProduct:
		for _, b := range x.bags(custody.BagApheresis) {
			p.Parent = append(p.Parent, bagRef(b))
		}
		if r := x.first(custody.StepManufacture); r != nil {
			desc := "manufacture"
			if r.Site != "" {
				desc += " at " + r.Site
			}
			p.Processing = []fm.BiologicallyDerivedProductProcessing{{
				Description:  ptr(desc),
				Procedure:    &fm.CodeableConcept{Coding: []fm.Coding{{System: ptr(SystemStep), Code: ptr(string(custody.StepManufacture))}}, Text: ptr("manufacture")},
				TimeDateTime: ptr(instant(r.Time)),
			}}
		}
	}
	for _, l := range x.c.Legs {
		if (l.N <= 1) != (id.Kind == custody.BagApheresis) {
			continue
		}
		p.Storage = append(p.Storage, x.storage(l))
	}
	return p, true
}

func (x *Chain) collection(r *custody.Record) *fm.BiologicallyDerivedProductCollection {
	d, _ := r.Body().(custody.CollectData)
	col := &fm.BiologicallyDerivedProductCollection{}
	start, err1 := time.Parse(time.RFC3339, d.StartedAt)
	end, err2 := time.Parse(time.RFC3339, d.EndedAt)
	switch {
	case err1 == nil && err2 == nil && !end.Before(start):
		col.CollectedPeriod = &fm.Period{Start: ptr(instant(start)), End: ptr(instant(end))}
	default:
		col.CollectedDateTime = ptr(instant(r.Time))
	}
	site := r.Site
	if site == "" {
		site = x.c.Sites.Collection
	}
	if site != "" {
		col.Extension = []fm.Extension{{Url: ExtCollectionSite, ValueString: ptr(site)}}
	}
	return col
}

func celsius(v *float64) string {
	if v == nil {
		return "unbounded"
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

func (x *Chain) storage(l custody.Leg) fm.BiologicallyDerivedProductStorage {
	var b strings.Builder
	fmt.Fprintf(&b, "shipment leg %d", l.N)
	if l.From != "" || l.To != "" {
		fmt.Fprintf(&b, " from %s to %s", l.From, l.To)
	}
	if l.Shipper != "" {
		fmt.Fprintf(&b, ", shipper %s", l.Shipper)
	}
	s := fm.BiologicallyDerivedProductStorage{Scale: ptr(fm.BiologicallyDerivedProductStorageScaleCelsius),
		Duration: &fm.Period{Start: ptr(instant(l.ShippedAt))}}
	if l.ReceivedAt != nil {
		s.Duration.End = ptr(instant(*l.ReceivedAt))
	}
	if prof, ok := x.in.Profiles[l.Profile]; ok {
		fmt.Fprintf(&b, ", profile %s (%s to %s Cel)", l.Profile, celsius(prof.MinC), celsius(prof.MaxC))
		if prof.MaxC != nil {
			// The temperature the product is kept at or below.
			s.Temperature = ptr(json.Number(strconv.FormatFloat(*prof.MaxC, 'f', -1, 64)))
		}
	} else if l.Profile != "" {
		fmt.Fprintf(&b, ", profile %s", l.Profile)
	}
	if seal := x.v.Seal(l.N); seal != nil && seal.Seal.MinC != nil && seal.Seal.MaxC != nil {
		fmt.Fprintf(&b, "; recorded %s to %s Cel over %d readings", celsius(seal.Seal.MinC), celsius(seal.Seal.MaxC), seal.Seal.Count)
	}
	s.Description = ptr(b.String())
	return s
}

// Products returns the chain's bags as BiologicallyDerivedProducts, in
// chain order.
func (x *Chain) Products() []fm.BiologicallyDerivedProduct {
	var out []fm.BiologicallyDerivedProduct
	for _, b := range x.c.Bags {
		if p, ok := x.Product(b); ok {
			out = append(out, p)
		}
	}
	return out
}

// targets returns the bags record r concerns; none for a record about the
// chain as a whole.
func (x *Chain) targets(r *custody.Record) []string {
	legBags := func(n int) []string {
		if n <= 1 {
			return x.bags(custody.BagApheresis)
		}
		return x.bags(custody.BagFinalProduct)
	}
	named := func(bag, code string) []string {
		if bag == "" {
			if c, err := custody.ParseCode(code); err == nil && c.Bag != nil && c.COI == x.c.COI {
				bag = c.Bag.String()
			}
		}
		if slices.Contains(x.c.Bags, bag) {
			return []string{bag}
		}
		return x.bags(custody.BagFinalProduct)
	}
	switch r.Step {
	case custody.StepCollect:
		return x.bags(custody.BagApheresis)
	case custody.StepManufacture, custody.StepRelease:
		return x.bags(custody.BagFinalProduct)
	case custody.StepShip, custody.StepReceive:
		if l := x.v.LegOf(r.Seq); l.N > 0 {
			return legBags(l.N)
		}
	case custody.StepExcursion:
		if e, ok := x.v.Excursion(r.Seq); ok && e.Leg > 0 {
			return legBags(e.Leg)
		}
	case custody.StepBedsideVerify:
		d, _ := r.Body().(custody.BedsideData)
		return named(d.Bag, d.BagCode)
	case custody.StepMismatch:
		d, _ := r.Body().(custody.MismatchData)
		return named("", d.BagCode)
	case custody.StepInfuse:
		d, _ := r.Body().(custody.InfuseData)
		return named(d.Bag, "")
	case custody.StepCancel:
		return slices.Clone(x.c.Bags)
	}
	return nil
}

// Seqs returns the chain positions of the chain's records, in order.
func (x *Chain) Seqs() []uint64 {
	out := make([]uint64, 0, len(x.c.Records))
	for i := range x.c.Records {
		out = append(out, x.c.Records[i].ChainSeq)
	}
	return out
}

// Targets reports whether the chain's record at chain position seq
// concerns bag.
func (x *Chain) Targets(seq uint64, bag string) bool {
	for i := range x.c.Records {
		if x.c.Records[i].ChainSeq == seq {
			return slices.Contains(x.targets(&x.c.Records[i]), bag)
		}
	}
	return false
}

// participant is the provenance participant type of a signature meaning.
var participant = map[custody.Meaning]string{
	custody.MeaningAuthored: "author", custody.MeaningPerformed: "performer", custody.MeaningVerified: "verifier",
	custody.MeaningHandedOver: "performer", custody.MeaningReceived: "custodian", custody.MeaningApproved: "attester",
	custody.MeaningDetected: "informant", custody.MeaningAcknowledged: "verifier",
}

// signatureType is the ASTM E1762 signature type of a meaning: code and
// display.
var signatureType = map[custody.Meaning][2]string{
	custody.MeaningAuthored:     {"1.2.840.10065.1.12.1.1", "Author's Signature"},
	custody.MeaningPerformed:    {"1.2.840.10065.1.12.1.1", "Author's Signature"},
	custody.MeaningDetected:     {"1.2.840.10065.1.12.1.1", "Author's Signature"},
	custody.MeaningVerified:     {"1.2.840.10065.1.12.1.5", "Verification Signature"},
	custody.MeaningHandedOver:   {"1.2.840.10065.1.12.1.3", "Co-participant's Signature"},
	custody.MeaningReceived:     {"1.2.840.10065.1.12.1.3", "Co-participant's Signature"},
	custody.MeaningApproved:     {"1.2.840.10065.1.12.1.6", "Validation Signature"},
	custody.MeaningAcknowledged: {"1.2.840.10065.1.12.1.13", "Review Signature"},
}

func userRef(id, name string) fm.Reference {
	ref := fm.Reference{Identifier: &fm.Identifier{System: ptr(SystemUser), Value: ptr(id)}}
	if name != "" {
		ref.Display = ptr(name)
	}
	return ref
}

// Provenance returns the Provenance of the chain's record at chain
// position seq, and false when the chain has none there.
func (x *Chain) Provenance(seq uint64) (fm.Provenance, bool) {
	for i := range x.c.Records {
		if x.c.Records[i].ChainSeq == seq {
			return x.provenance(&x.c.Records[i]), true
		}
	}
	return fm.Provenance{}, false
}

// Provenances returns one Provenance per record of the chain, in chain
// order.
func (x *Chain) Provenances() []fm.Provenance {
	out := make([]fm.Provenance, 0, len(x.c.Records))
	for i := range x.c.Records {
		out = append(out, x.provenance(&x.c.Records[i]))
	}
	return out
}

func (x *Chain) provenance(r *custody.Record) fm.Provenance {
	p := fm.Provenance{
		Id:               ptr(ProvenanceID(x.c.COI, r.ChainSeq)),
		Recorded:         instant(r.Time),
		OccurredDateTime: ptr(instant(r.Time)),
		Activity: &fm.CodeableConcept{Coding: []fm.Coding{{System: ptr(SystemStep), Code: ptr(string(r.Step))}},
			Text: ptr(string(r.Step))},
		Extension: []fm.Extension{{Url: ExtRecordHash, ValueString: ptr(r.Hash.String())}},
	}
	for _, b := range x.targets(r) {
		p.Target = append(p.Target, bagRef(b))
	}
	if len(p.Target) == 0 {
		p.Target = []fm.Reference{{Identifier: ptr(coiIdentifier(x.c.COI)), Display: ptr("chain " + x.c.Display)}}
	}
	if r.Site != "" {
		p.Location = &fm.Reference{Display: ptr(r.Site)}
	}
	if r.Step == custody.StepManufacture {
		for _, b := range x.bags(custody.BagApheresis) {
			p.Entity = append(p.Entity, fm.ProvenanceEntity{Role: fm.ProvenanceEntityRoleSource, What: bagRef(b)})
		}
	}
	for _, s := range r.Signatures {
		who := userRef(s.User, s.Name)
		ag := fm.ProvenanceAgent{Who: who, Role: []fm.CodeableConcept{{Coding: []fm.Coding{{System: ptr(SystemRole), Code: ptr(string(s.Role))}}}}}
		if t, ok := participant[s.Meaning]; ok {
			ag.Type = &fm.CodeableConcept{Coding: []fm.Coding{{System: ptr(SystemParticipantType), Code: ptr(t)}}}
		}
		p.Agent = append(p.Agent, ag)
		when := instant(r.Time)
		if t, err := time.Parse(time.RFC3339Nano, s.Time); err == nil {
			when = instant(t)
		}
		st, ok := signatureType[s.Meaning]
		if !ok {
			st = signatureType[custody.MeaningAuthored]
		}
		p.Signature = append(p.Signature, fm.Signature{
			Type: []fm.Coding{{System: ptr(SystemSignatureType), Code: ptr(st[0]), Display: ptr(st[1])},
				{System: ptr(SystemMeaning), Code: ptr(string(s.Meaning))}},
			When: when, Who: who,
		})
	}
	if len(p.Agent) == 0 { // a record with no signature: who submitted it
		p.Agent = []fm.ProvenanceAgent{{Who: userRef(r.SubmittedBy, ""),
			Type: &fm.CodeableConcept{Coding: []fm.Coding{{System: ptr(SystemParticipantType), Code: ptr("enterer")}}}}}
	}
	return p
}

// Entry is one resource of a Bundle: its relative URL
// ("Provenance/CHA999926000001-7") and the resource.
type Entry struct {
	Path     string
	Resource any
}

// ProductEntry is the bundle entry of a BiologicallyDerivedProduct.
func ProductEntry(p fm.BiologicallyDerivedProduct) Entry {
	return Entry{Path: "BiologicallyDerivedProduct/" + *p.Id, Resource: p}
}

// ProvenanceEntry is the bundle entry of a Provenance.
func ProvenanceEntry(p fm.Provenance) Entry {
	return Entry{Path: "Provenance/" + *p.Id, Resource: p}
}

// Everything returns the chain's bags, then its records, as entries.
func (x *Chain) Everything() []Entry {
	var out []Entry
	for _, p := range x.Products() {
		out = append(out, ProductEntry(p))
	}
	for _, p := range x.Provenances() {
		out = append(out, ProvenanceEntry(p))
	}
	return out
}

func entries(base string, es []Entry, search bool) ([]fm.BundleEntry, error) {
	out := make([]fm.BundleEntry, 0, len(es))
	for _, e := range es {
		raw, err := json.Marshal(e.Resource)
		if err != nil {
			return nil, fmt.Errorf("fhir: %w", err)
		}
		be := fm.BundleEntry{FullUrl: ptr(base + "/" + e.Path), Resource: raw}
		if search {
			be.Search = &fm.BundleEntrySearch{Mode: ptr(fm.SearchEntryModeMatch)}
		}
		out = append(out, be)
	}
	return out, nil
}

// ChainBundle returns the chain as a Bundle of type collection: its bags,
// then its records; base is the absolute URL of the FHIR endpoint
// ("https://coid.example/fhir/r4"), at the bundle's timestamp.
func (x *Chain) ChainBundle(base string, at time.Time) (fm.Bundle, error) {
	es, err := entries(base, x.Everything(), false)
	if err != nil {
		return fm.Bundle{}, err
	}
	return fm.Bundle{Id: ptr(string(x.c.COI)), Identifier: ptr(coiIdentifier(x.c.COI)), Type: fm.BundleTypeCollection,
		Timestamp: ptr(instant(at)), Entry: es}, nil
}

// SearchSet returns a page of search results: total matches in all,
// self the URL of this page, next that of the following one ("" on the
// last page).
func SearchSet(base string, page []Entry, total int, self, next string, at time.Time) (fm.Bundle, error) {
	es, err := entries(base, page, true)
	if err != nil {
		return fm.Bundle{}, err
	}
	b := fm.Bundle{Type: fm.BundleTypeSearchset, Total: ptr(total), Timestamp: ptr(instant(at)), Entry: es,
		Link: []fm.BundleLink{{Relation: "self", Url: self}}}
	if next != "" {
		b.Link = append(b.Link, fm.BundleLink{Relation: "next", Url: next})
	}
	return b, nil
}

// Outcome is an OperationOutcome of one error issue: code is a FHIR
// issue type chosen from the HTTP status.
func Outcome(status int, text string) fm.OperationOutcome {
	code := fm.IssueTypeException
	switch status {
	case 400:
		code = fm.IssueTypeInvalid
	case 401:
		code = fm.IssueTypeLogin
	case 403:
		code = fm.IssueTypeForbidden
	case 404:
		code = fm.IssueTypeNotFound
	case 409:
		code = fm.IssueTypeConflict
	case 413:
		code = fm.IssueTypeTooCostly
	case 429:
		code = fm.IssueTypeThrottled
	case 503:
		code = fm.IssueTypeTransient
	}
	return fm.OperationOutcome{Issue: []fm.OperationOutcomeIssue{{Severity: fm.IssueSeverityError, Code: code, Diagnostics: ptr(text)}}}
}
