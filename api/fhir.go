package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/fhir"
	"github.com/labstack/echo/v4"
)

// fhirBase is the path of the read-only FHIR R4 interface.
const fhirBase = "/fhir/r4"

// registerFHIRRoutes adds the read-only FHIR R4 interface. Its routes
// authenticate as the /api/v1 routes do, read chains through the same
// read scope, and answer errors as OperationOutcome (handleError).
func (s *Server) registerFHIRRoutes(e *echo.Echo) {
	g := e.Group(fhirBase, s.authenticate)
	g.GET("/metadata", s.fhirMetadata)
	g.GET("/BiologicallyDerivedProduct", s.fhirSearchProducts)
	g.GET("/BiologicallyDerivedProduct/:id", s.fhirReadProduct)
	g.GET("/Provenance", s.fhirSearchProvenance)
	g.GET("/Provenance/:id", s.fhirReadProvenance)
	g.GET("/Bundle/:id", s.fhirReadBundle)
}

// isFHIR reports whether the request is one of the FHIR interface's.
func isFHIR(c echo.Context) bool {
	p := c.Request().URL.Path
	return p == fhirBase || strings.HasPrefix(p, fhirBase+"/")
}

// writeOutcome answers an error of the FHIR interface as an
// OperationOutcome with status.
func writeOutcome(c echo.Context, status int, message string) {
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = fhirJSON(c, status, fhir.Outcome(status, message))
}

func fhirJSON(c echo.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Blob(status, fhir.MediaType, b)
}

// fhirURL is the absolute URL of the FHIR endpoint this request reached.
func fhirURL(c echo.Context) string {
	return c.Scheme() + "://" + c.Request().Host + fhirBase
}

func (s *Server) fhirMetadata(c echo.Context) error {
	return fhirJSON(c, http.StatusOK, fhir.Capability(fhirURL(c), s.cfg.Version, s.svc.Now().Truncate(time.Second)))
}

// fhirChain reads the chain for mapping, as the user may read it
// (ErrNotFound otherwise).
func (s *Server) fhirChain(ctx context.Context, u custody.User, coi custody.COI) (*fhir.Chain, error) {
	ch, err := s.svc.ReadChain(ctx, u, coi)
	if err != nil {
		return nil, err
	}
	in := &fhir.Input{Chain: ch, Profiles: s.svc.ProfileSet()}
	if ch.Product != "" {
		p, err := s.svc.Product(ctx, u, ch.Product)
		switch {
		case err == nil:
			in.ISBTProductCode, in.ProductName = p.ISBTCode, p.Name
		case !errors.Is(err, custody.ErrNotFound) && !errors.Is(err, custody.ErrForbidden):
			return nil, err
		}
	}
	return fhir.Read(in)
}

// searchQuery is a search's parameters once checked: each at most once.
type searchQuery struct {
	params url.Values
	count  int
	offset int
}

// parseSearch checks a search's query string: only the parameters named
// (and _count, _offset, _format) are accepted, each at most once.
func parseSearch(c echo.Context, names ...string) (searchQuery, error) {
	q := searchQuery{params: url.Values{}, count: fhir.DefaultCount}
	raw := c.QueryParams()
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range raw {
			if !yield(k) {
				return
			}
		}
	}) {
		vs := raw[k]
		if len(vs) != 1 {
			return q, fmt.Errorf("search parameter %s is given %d times; give it once: %w", k, len(vs), custody.ErrInvalid)
		}
		v := vs[0]
		switch {
		case k == "_count":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > fhir.MaxCount {
				return q, fmt.Errorf("_count must be a whole number from 1 to %d: %w", fhir.MaxCount, custody.ErrInvalid)
			}
			q.count = n
		case k == "_offset":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1_000_000 {
				return q, fmt.Errorf("_offset must be a whole number from 0: %w", custody.ErrInvalid)
			}
			q.offset = n
		case k == "_format":
			if v != "json" && v != fhir.MediaType && v != echo.MIMEApplicationJSON {
				return q, fmt.Errorf("_format: only json is served: %w", custody.ErrInvalid)
			}
		case slices.Contains(names, k):
			if v == "" {
				return q, fmt.Errorf("search parameter %s is empty: %w", k, custody.ErrInvalid)
			}
			q.params.Set(k, v)
		default:
			return q, fmt.Errorf("unknown search parameter %q (one of %s, _count, _offset): %w", k, strings.Join(names, ", "), custody.ErrInvalid)
		}
	}
	if len(q.params) == 0 {
		return q, fmt.Errorf("a search needs one of %s: %w", strings.Join(names, ", "), custody.ErrInvalid)
	}
	return q, nil
}

// chainSelector is what a search's parameters select: one chain, and in
// it one bag or record, or none of them.
type chainSelector struct {
	coi  custody.COI
	bag  string
	seq  uint64
	none bool // the parameters contradict each other: nothing matches
}

func (sel *chainSelector) chain(coi custody.COI) {
	if sel.coi != "" && sel.coi != coi {
		sel.none = true
	}
	sel.coi = coi
}

func (sel *chainSelector) bagID(bag string) error {
	id, err := custody.ParseBagID(bag)
	if err != nil || id.String() != bag {
		return fmt.Errorf("not a bag ID (<COI>-APH-NN or <COI>-FP-NN): %w", custody.ErrInvalid)
	}
	sel.chain(id.COI)
	if sel.bag != "" && sel.bag != bag {
		sel.none = true
	}
	sel.bag = bag
	return nil
}

func parseCOIValue(name, v string) (custody.COI, error) {
	coi, err := custody.ParseCOI(v)
	if err != nil {
		return "", fmt.Errorf("%s: not a COI (15 characters, optionally with its check character): %w", name, custody.ErrInvalid)
	}
	return coi, nil
}

func (sel *chainSelector) coiValue(name, v string) error {
	coi, err := parseCOIValue(name, v)
	if err != nil {
		return err
	}
	sel.chain(coi)
	return nil
}

// page answers a page of results as a searchset Bundle.
func (s *Server) page(c echo.Context, kind string, q searchQuery, all []fhir.Entry) error {
	base := fhirURL(c)
	link := func(offset int) string {
		v := url.Values{}
		for k, vs := range q.params {
			v[k] = vs
		}
		v.Set("_count", strconv.Itoa(q.count))
		v.Set("_offset", strconv.Itoa(offset))
		return base + "/" + kind + "?" + v.Encode()
	}
	from := min(q.offset, len(all))
	to := min(from+q.count, len(all))
	next := ""
	if to < len(all) {
		next = link(to)
	}
	b, err := fhir.SearchSet(base, all[from:to], len(all), link(q.offset), next, s.svc.Now().Truncate(time.Second))
	if err != nil {
		return err
	}
	return fhirJSON(c, http.StatusOK, b)
}

// selectedChain reads the selected chain; nil (no error) when nothing
// matches or the user may not read it.
func (s *Server) selectedChain(c echo.Context, sel chainSelector) (*fhir.Chain, error) {
	if sel.none {
		return nil, nil
	}
	x, err := s.fhirChain(c.Request().Context(), user(c), sel.coi)
	if errors.Is(err, custody.ErrNotFound) {
		return nil, nil
	}
	return x, err
}

func (s *Server) fhirSearchProducts(c echo.Context) error {
	q, err := parseSearch(c, "identifier", "coi", "_id")
	if err != nil {
		return err
	}
	var sel chainSelector
	if v := q.params.Get("identifier"); v != "" {
		system, value, hasSystem := strings.Cut(v, "|")
		if !hasSystem {
			system, value = "", v
		}
		switch {
		case value == "":
			return fmt.Errorf("identifier has no value: %w", custody.ErrInvalid)
		case system == fhir.SystemCOI:
			err = sel.coiValue("identifier", value)
		case system == fhir.SystemBag:
			err = sel.bagID(value)
			if err != nil {
				err = fmt.Errorf("identifier: %w", err)
			}
		case system == "" && hasSystem:
			return fmt.Errorf("identifier: give the system (%s or %s) or the bag ID alone: %w", fhir.SystemBag, fhir.SystemCOI, custody.ErrInvalid)
		case system == "":
			if err = sel.bagID(value); err != nil {
				err = fmt.Errorf("identifier: %w", err)
			}
		default:
			return fmt.Errorf("identifier: the system is not searchable (one of %s, %s): %w", fhir.SystemBag, fhir.SystemCOI, custody.ErrInvalid)
		}
		if err != nil {
			return err
		}
	}
	if v := q.params.Get("coi"); v != "" {
		if err := sel.coiValue("coi", strings.TrimPrefix(v, fhir.SystemCOI+"|")); err != nil {
			return err
		}
	}
	if v := q.params.Get("_id"); v != "" {
		if err := sel.bagID(v); err != nil {
			return fmt.Errorf("_id: %w", err)
		}
	}
	x, err := s.selectedChain(c, sel)
	if err != nil {
		return err
	}
	var all []fhir.Entry
	if x != nil {
		for _, p := range x.Products() {
			if sel.bag == "" || *p.Id == sel.bag {
				all = append(all, fhir.ProductEntry(p))
			}
		}
	}
	return s.page(c, "BiologicallyDerivedProduct", q, all)
}

func (s *Server) fhirReadProduct(c echo.Context) error {
	var sel chainSelector
	if err := sel.bagID(c.Param("id")); err != nil {
		return fmt.Errorf("id: %w", err)
	}
	x, err := s.fhirChain(c.Request().Context(), user(c), sel.coi)
	if err != nil {
		return err
	}
	p, ok := x.Product(sel.bag)
	if !ok {
		return fmt.Errorf("bag %s: %w", sel.bag, custody.ErrNotFound)
	}
	return fhirJSON(c, http.StatusOK, p)
}

func (s *Server) fhirSearchProvenance(c echo.Context) error {
	q, err := parseSearch(c, "target", "coi", "_id")
	if err != nil {
		return err
	}
	var sel chainSelector
	if v := q.params.Get("target"); v != "" {
		ref := strings.TrimPrefix(v, fhirURL(c)+"/")
		bag, ok := strings.CutPrefix(ref, "BiologicallyDerivedProduct/")
		if !ok {
			return fmt.Errorf("target must be BiologicallyDerivedProduct/<bag ID>: %w", custody.ErrInvalid)
		}
		if err := sel.bagID(bag); err != nil {
			return fmt.Errorf("target: %w", err)
		}
	}
	if v := q.params.Get("coi"); v != "" {
		if err := sel.coiValue("coi", strings.TrimPrefix(v, fhir.SystemCOI+"|")); err != nil {
			return err
		}
	}
	if v := q.params.Get("_id"); v != "" {
		coi, seq, err := fhir.ParseProvenanceID(v)
		if err != nil {
			return err
		}
		sel.chain(coi)
		sel.seq = seq
	}
	x, err := s.selectedChain(c, sel)
	if err != nil {
		return err
	}
	var all []fhir.Entry
	if x != nil {
		for _, seq := range x.Seqs() {
			if (sel.seq == 0 || sel.seq == seq) && (sel.bag == "" || x.Targets(seq, sel.bag)) {
				p, _ := x.Provenance(seq)
				all = append(all, fhir.ProvenanceEntry(p))
			}
		}
	}
	return s.page(c, "Provenance", q, all)
}

func (s *Server) fhirReadProvenance(c echo.Context) error {
	coi, seq, err := fhir.ParseProvenanceID(c.Param("id"))
	if err != nil {
		return err
	}
	x, err := s.fhirChain(c.Request().Context(), user(c), coi)
	if err != nil {
		return err
	}
	p, ok := x.Provenance(seq)
	if !ok {
		return fmt.Errorf("record %d of chain %s: %w", seq, coi, custody.ErrNotFound)
	}
	return fhirJSON(c, http.StatusOK, p)
}

func (s *Server) fhirReadBundle(c echo.Context) error {
	coi, err := parseCOIValue("Bundle id", c.Param("id"))
	if err != nil {
		return err
	}
	x, err := s.fhirChain(c.Request().Context(), user(c), coi)
	if err != nil {
		return err
	}
	b, err := x.ChainBundle(fhirURL(c), s.svc.Now().Truncate(time.Second))
	if err != nil {
		return err
	}
	return fhirJSON(c, http.StatusOK, b)
}
