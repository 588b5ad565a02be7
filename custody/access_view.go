package custody

import "strings"

// What a screen showing one request needs from the domain, so that it
// repeats none of the domain's rules: the journey row a step takes from
// the request's state, the requirements of its jurisdiction that apply to
// it, and its service-level clock.

// AccessRule returns the request journey's row for step from a request
// whose view is in state from (ErrConflict when the step is not allowed
// then, with the steps that are).
func AccessRule(from State, step Step) (Transition, error) {
	return accessRule(AccessJourney(), from, step)
}

// RequirementsOf returns the requirements of j that request r must meet
// before enrollment: the emergency ones for an emergency request when j
// has them, the others otherwise. Each is a set of steps any one of which
// meets it.
func (j Jurisdiction) RequirementsOf(r *AccessRequest) [][]Step { return j.requirements(r) }

// RequestClock returns request r's service-level clock at the service's
// present time, against the service's configured limits.
func (s *Service) RequestClock(r *AccessRequest) AccessClock {
	return s.sla.ClockOf(r, s.now().UTC())
}

// MayReadAccessRequests reports whether role r works with expanded-access
// requests (the list and the request pages): physicians, who ask, and the
// coordinators and QA who form the access team and enroll. Which requests
// each reads is the service's (AccessRequest).
func MayReadAccessRequests(r Role) bool {
	return r == RolePhysician || r == RoleCoordinator || r == RoleQA
}

// MayRequestAccess reports whether role r submits expanded-access
// requests: physicians.
func MayRequestAccess(r Role) bool { return r == RolePhysician }

// validMultiline is validText for the free text of a request (a clinical
// summary, a treatment plan, a message), which is written in paragraphs:
// line feeds and tabs are allowed, other control characters (a carriage
// return among them: forms send line breaks as "\n") are not.
func validMultiline(field, s string, required bool, max int) error {
	return validText(field, strings.NewReplacer("\n", " ", "\t", " ").Replace(s), required, max)
}

// requireEntryReader refuses one who may not read the registries' entries
// (ErrForbidden): the registry readers, and physicians, whose request
// form offers the jurisdictions, products and sites. The other views the
// registry readers have (capacity, quotas, the waiting list) stay theirs.
func requireEntryReader(op string, actor User) error {
	if actor.Role == RolePhysician {
		return nil
	}
	return requireRegistryReader(op, actor)
}
