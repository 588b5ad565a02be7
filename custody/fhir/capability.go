package fhir

import (
	"time"

	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Search limits: a page holds DefaultCount results unless _count asks for
// 1 to MaxCount.
const (
	DefaultCount = 50
	MaxCount     = 200
)

// Capability is the CapabilityStatement of coid's read-only FHIR R4
// interface, as of date, for coid version (empty: unknown) at base (the
// absolute URL of the endpoint).
func Capability(base, version string, date time.Time) fm.CapabilityStatement {
	token, reference := fm.SearchParamTypeToken, fm.SearchParamTypeReference
	read := fm.CapabilityStatementRestResourceInteraction{Code: fm.TypeRestfulInteractionRead}
	search := fm.CapabilityStatementRestResourceInteraction{Code: fm.TypeRestfulInteractionSearchType}
	param := func(name string, t fm.SearchParamType, doc string) fm.CapabilityStatementRestResourceSearchParam {
		return fm.CapabilityStatementRestResourceSearchParam{Name: name, Type: t, Documentation: ptr(doc)}
	}
	sw := fm.CapabilityStatementSoftware{Name: "coid"}
	if version != "" {
		sw.Version = ptr(version)
	}
	return fm.CapabilityStatement{
		Name:           ptr("CoidFHIR"),
		Title:          ptr("coid chain of identity and custody, read-only FHIR R4"),
		Status:         fm.PublicationStatusActive,
		Date:           date.UTC().Format(time.RFC3339),
		Kind:           fm.CapabilityStatementKindInstance,
		Description:    ptr("Bags of autologous cell therapies as BiologicallyDerivedProduct and the custody ledger's records as Provenance. The patient appears only as the chain of identity (COI) identifier; no Patient resource is served."),
		Software:       &sw,
		Implementation: &fm.CapabilityStatementImplementation{Description: "coid FHIR R4 endpoint", Url: ptr(base)},
		FhirVersion:    fm.FHIRVersion4_0_1,
		Format:         []string{"json"},
		Rest: []fm.CapabilityStatementRest{{
			Mode: fm.RestfulCapabilityModeServer,
			Documentation: ptr("Read-only. Searches answer Bundles of type searchset of at most _count entries (1-200, default 50), with a next link while more remain. " +
				"Unknown search parameters and malformed values are refused (400, OperationOutcome). A chain the user may not read is not found (404) and left out of searches. " +
				"GET Bundle/{COI} answers the whole chain as a Bundle of type collection: its bags, then its records."),
			Security: &fm.CapabilityStatementRestSecurity{Cors: ptr(false),
				Description: ptr("Every request needs Authorization: Bearer <token>, a coid API token; the user's read scope applies.")},
			Resource: []fm.CapabilityStatementRestResource{
				{Type: fm.ResourceTypeBiologicallyDerivedProduct, Interaction: []fm.CapabilityStatementRestResourceInteraction{read, search},
					Documentation: ptr("A bag; its id is the bag ID (<COI>-APH-NN or <COI>-FP-NN)."),
					SearchParam: []fm.CapabilityStatementRestResourceSearchParam{
						param("identifier", token, "A bag ID ("+SystemBag+"|<bag ID>, or the bag ID alone) or a COI ("+SystemCOI+"|<COI>): the chain's bags."),
						param("coi", token, "The COI (15 characters, optionally with its check character): every bag of the chain."),
						param("_id", token, "The bag ID."),
					}},
				{Type: fm.ResourceTypeProvenance, Interaction: []fm.CapabilityStatementRestResourceInteraction{read, search},
					Documentation: ptr("A ledger record; its id is <COI>-<position of the record in the chain>."),
					SearchParam: []fm.CapabilityStatementRestResourceSearchParam{
						param("target", reference, "BiologicallyDerivedProduct/<bag ID>: the records that concern the bag."),
						param("coi", token, "The COI: every record of the chain, in chain order."),
						param("_id", token, "The Provenance id."),
					}},
				{Type: fm.ResourceTypeBundle, Interaction: []fm.CapabilityStatementRestResourceInteraction{read},
					Documentation: ptr("A chain as a whole; its id is the COI.")},
			},
		}},
	}
}
