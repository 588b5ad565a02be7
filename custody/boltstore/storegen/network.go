package storegen

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/coid-project/coid/custody"
)

// The network of a generated store (Config.Network = N): an administrator
// registers, before any chain is enrolled,
//
//   - N hospitals, each its own organisation HospitalOrg(k) with one site
//     HospitalSite(k) that collects and treats its own patients;
//   - the manufacturer ManufacturerOrg with Plants plants PlantSite(j);
//   - the courier CourierOrg, owning the fleet of shippers the legs use.
//
// The people are bound to them as the site rules ask of signers: each
// hospital has its own coordinator and two nurses (HospitalStaff), who
// enroll, collect, ship, receive and infuse its chains; mfg1 works at
// every plant; qa1 is the manufacturer's QA (reads and releases every
// chain, as the manufacturer's QA does); courier1 is the courier's.
// ScopedQA is QA of hospital 0 alone: it reads the chains collected or
// treated there, about one in N.
//
// The fleet holds one shipper a leg for each chain of a cohort
// (min(Cohort, Chains) for each of the two legs), registered once and
// reused by the cohorts that follow, whose legs start after the earlier
// ones were received; a reused shipper numbers its readings on from its
// last leg's.

// Plants is how many manufacturing plants a generated network has.
const Plants = 3

// The fixed accounts and organisations of a generated network.
const (
	// Admin registers the network.
	Admin = "admin1"
	// ScopedQA is QA bound to HospitalSite(0) alone.
	ScopedQA = "qa-h0"
	// ManufacturerOrg owns the plants; CourierOrg the shippers.
	ManufacturerOrg = "CELLCO"
	CourierOrg      = "FASTCO"
)

// HospitalOrg is the code of the k-th hospital's organisation.
func HospitalOrg(k int) string { return fmt.Sprintf("HOSP%03d", k) }

// HospitalSite is the code of the k-th hospital's site, where its
// patients' cells are collected and infused.
func HospitalSite(k int) string { return fmt.Sprintf("H%03d", k) }

// PlantSite is the code of the j-th manufacturing plant (0 to Plants-1).
func PlantSite(j int) string { return fmt.Sprintf("MFG-%d", j+1) }

// HospitalStaff is the suffix of the k-th hospital's staff's user IDs:
// "coord" + HospitalStaff(k), "nurse1" + ..., "nurse2" + ....
func HospitalStaff(k int) string { return fmt.Sprintf("-h%d", k) }

// Sites returns the sites chain i (in enrollment order) of the store of c
// names: three free-text names without a network, HospitalSite(i % N)
// for collection and treatment and PlantSite(i % Plants) for manufacture
// with one.
func (c Config) Sites(i int) custody.Sites {
	if c.Network <= 0 {
		return custody.Sites{Collection: "St Elsewhere Apheresis", Manufacturing: "CellWorks NJ", Treatment: "St Elsewhere BMT"}
	}
	h := HospitalSite(i % c.Network)
	return custody.Sites{Collection: h, Manufacturing: PlantSite(i % Plants), Treatment: h}
}

// fleet is how many shippers carry each leg: one for each chain without a
// network (each chain its own, as before), one for each chain of a cohort
// with one.
func (c Config) fleet() int {
	c = c.withDefaults()
	if c.Network <= 0 {
		return c.Chains
	}
	return min(c.Cohort, c.Chains)
}

// ShipperOf returns the shipper that carries leg (0 or 1) of chain i of
// the store of c: Shipper(i, leg) without a network, the fleet's
// Shipper(i % fleet, leg) with one.
func (c Config) ShipperOf(i, leg int) string { return Shipper(i%c.fleet(), leg) }

// seqBase is the sequence number chain i's shippers' readings number on
// from: the readings of the shipper's earlier legs.
func (c Config) seqBase(i int) uint64 {
	return uint64(i/c.fleet()) * uint64(c.withDefaults().PerLeg)
}

// account is a generated user and where it is bound.
type account struct {
	id    string
	role  custody.Role
	org   string
	sites []string
}

// accounts returns the users of the store of c: Users without a network;
// with one, Admin, the manufacturer's and courier's people, each
// hospital's staff and ScopedQA, bound as the package doc says.
func (c Config) accounts() []account {
	if c.Network <= 0 {
		var out []account
		for _, id := range slices.Sorted(maps.Keys(Users)) {
			out = append(out, account{id: id, role: Users[id]})
		}
		return out
	}
	plants := make([]string, Plants)
	for j := range plants {
		plants[j] = PlantSite(j)
	}
	out := []account{
		{id: Admin, role: custody.RoleAdmin},
		{id: "qa1", role: custody.RoleQA, org: ManufacturerOrg, sites: plants},
		{id: "mfg1", role: custody.RoleManufacturing, org: ManufacturerOrg, sites: plants},
		{id: "courier1", role: custody.RoleCourier, org: CourierOrg},
	}
	for k := range c.Network {
		org, site := HospitalOrg(k), []string{HospitalSite(k)}
		out = append(out,
			account{id: "coord" + HospitalStaff(k), role: custody.RoleCoordinator, org: org, sites: site},
			account{id: "nurse1" + HospitalStaff(k), role: custody.RoleNurse, org: org, sites: site},
			account{id: "nurse2" + HospitalStaff(k), role: custody.RoleNurse, org: org, sites: site})
	}
	return append(out, account{id: ScopedQA, role: custody.RoleQA, org: HospitalOrg(0), sites: []string{HospitalSite(0)}})
}

// UserRoles returns the users of the store of c, by ID, with their roles
// (Users without a network). Their passwords are Password(id).
func (c Config) UserRoles() map[string]custody.Role {
	m := map[string]custody.Role{}
	for _, a := range c.accounts() {
		m[a.id] = a.role
	}
	return m
}

// netSite is a registered site of the generated network, in good
// standing for years after T0.
func netSite(code, name, org string, kinds ...custody.SiteRole) custody.Site {
	return custody.Site{Code: code, Name: name, Kinds: kinds, Organisation: org, TimeZone: "Europe/Paris",
		Address: "1 rue de la Paix, 75002 Paris", Country: "FR",
		Accreditation: custody.Accreditation{Status: custody.AccreditationAccredited, Expiry: "2029-06-30"},
		Qualification: custody.Qualification{TrainingDone: true, Date: "2026-01-15", Expiry: "2029-01-15"}}
}

// registerNetwork registers the network of g.cfg through the service's
// registry API, as Admin.
func (g *gen) registerNetwork(ctx context.Context) error {
	admin := g.users[Admin]
	const why = "network set-up"
	orgs := []custody.Organisation{{Code: ManufacturerOrg, Name: "CellCo Manufacturing", Kind: custody.OrgManufacturer},
		{Code: CourierOrg, Name: "FastCo Cryo Logistics", Kind: custody.OrgCourier}}
	sites := make([]custody.Site, 0, g.cfg.Network+Plants)
	for j := range Plants {
		sites = append(sites, netSite(PlantSite(j), fmt.Sprintf("CellCo plant %d", j+1), ManufacturerOrg, custody.SiteManufacturing))
	}
	for k := range g.cfg.Network {
		orgs = append(orgs, custody.Organisation{Code: HospitalOrg(k), Name: fmt.Sprintf("Hospital %d", k), Kind: custody.OrgHospital})
		sites = append(sites, netSite(HospitalSite(k), fmt.Sprintf("Hospital %d cell therapy unit", k), HospitalOrg(k),
			custody.SiteCollection, custody.SiteTreatment))
	}
	for _, o := range orgs {
		if _, err := g.svc.RegisterOrganisation(ctx, admin, o, why); err != nil {
			return fmt.Errorf("storegen: network: %w", err)
		}
	}
	for _, s := range sites {
		if _, err := g.svc.RegisterSite(ctx, admin, s, why); err != nil {
			return fmt.Errorf("storegen: network: %w", err)
		}
	}
	fleet := g.cfg.fleet()
	return g.parallel(ctx, 0, 2*fleet, 8, func(n int) error {
		sh := custody.Shipper{ID: Shipper(n%fleet, n/fleet), Courier: CourierOrg, RequalificationDue: "2029-01-01"}
		if _, err := g.svc.RegisterShipper(ctx, admin, sh, why); err != nil {
			return fmt.Errorf("storegen: network: %w", err)
		}
		return nil
	})
}
