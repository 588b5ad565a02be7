package custody

// Who may do what, by role. The JSON API, the web UI and the domain ask
// these; no other package keeps a list of roles. Which roles sign each
// step of the journey is the journey's (Transition.MaySign).

// MayEnroll reports whether role r may enroll patients: coordinators.
func MayEnroll(r Role) bool { return r == RoleCoordinator }

// MayUseConsole reports whether role r may open the QA console (the open
// issues and the chains; no patient identifiers): QA, coordinators,
// manufacturing and administrators.
func MayUseConsole(r Role) bool {
	switch r {
	case RoleQA, RoleCoordinator, RoleManufacturing, RoleAdmin:
		return true
	}
	return false
}

// StartsAtConsole reports whether the web UI opens on the QA console for
// role r, rather than the scan station: the roles whose work is review
// (QA, coordinators, administrators).
func StartsAtConsole(r Role) bool {
	switch r {
	case RoleQA, RoleCoordinator, RoleAdmin:
		return true
	}
	return false
}

// MayGenerateReports reports whether role r may generate custody reports:
// QA, who files them in the batch record, and administrators.
func MayGenerateReports(r Role) bool { return r == RoleQA || r == RoleAdmin }

// MayViewQuarantine reports whether role r may read the telemetry
// quarantine (the shipper payloads coid refused, which carry no patient
// identifiers) on the QA console: QA, who judges the cold chain, and
// administrators.
func MayViewQuarantine(r Role) bool { return r == RoleQA || r == RoleAdmin }

// MaySign reports whether role r may sign any signature of the step.
func (t Transition) MaySign(r Role) bool { return maySign(t.Signatures, r) }

// MaySign reports whether role r may sign any signature of the step.
func (e Exception) MaySign(r Role) bool { return maySign(e.Signatures, r) }

func maySign(rules []SignatureRule, r Role) bool {
	for _, s := range rules {
		for _, x := range s.Roles {
			if x == r {
				return true
			}
		}
	}
	return false
}

// MayAdminister reports whether role r may change the registries of
// organisations, sites, products and shippers: administrators only.
func MayAdminister(r Role) bool { return r == RoleAdmin }

// MayReadRegistries reports whether role r may read the registries: every
// role, since each needs the sites, products and shippers it works with.
func MayReadRegistries(r Role) bool {
	switch r {
	case RoleCoordinator, RoleNurse, RoleCourier, RoleManufacturing, RoleQA, RoleAdmin:
		return true
	}
	return false
}

// MayReadAuditTrail reports whether role r may read the administrative
// audit trail: QA, who reviews it, and administrators.
func MayReadAuditTrail(r Role) bool { return r == RoleQA || r == RoleAdmin }

// MayViewAdministration reports whether role r may open the
// administration screens: administrators, who change the registries and
// accounts, and QA, who reads the registries there.
func MayViewAdministration(r Role) bool { return r == RoleAdmin || r == RoleQA }

// MaySetQuotas reports whether u sets the quotas of plant's slots per
// treatment centre and allocates its waiting list: the manufacturer's
// programme lead, who is QA working at the plant, or an administrator.
func MaySetQuotas(u User, plant string) bool {
	return u.Role == RoleAdmin || u.Role == RoleQA && u.WorksAt(plant)
}
