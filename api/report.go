package api

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/epcis"
	"github.com/coid-project/coid/labels/report"
	"github.com/labstack/echo/v4"
)

// registerReportRoutes adds the custody report and EPCIS export routes.
func (s *Server) registerReportRoutes(g *echo.Group) {
	g.GET("/chains/:coi/report.pdf", s.custodyReport)
	g.GET("/chains/:coi/epcis", s.epcisExport)
}

// mimeLDJSON is the media type of JSON-LD documents.
const mimeLDJSON = "application/ld+json"

// reportZone parses the optional "tz" query parameter, an IANA time zone
// name for the local times of a report or export; UTC by default.
func reportZone(c echo.Context) (*time.Location, error) {
	name := c.QueryParam("tz")
	if name == "" {
		return time.UTC, nil
	}
	if len(name) > 64 {
		return nil, fmt.Errorf("tz: longer than an IANA time zone name: %w", custody.ErrInvalid)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("tz %q is not an IANA time zone name such as Europe/Berlin: %w", name, custody.ErrInvalid)
	}
	return loc, nil
}

// custodyReport serves the QA custody report of a chain as a PDF (qa and
// admin; the rule is report.Build's).
func (s *Server) custodyReport(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	zone, err := reportZone(c)
	if err != nil {
		return err
	}
	if err := s.svc.CheckRead(c.Request().Context(), user(c), coi); err != nil {
		return err
	}
	at := s.svc.Now().Truncate(time.Second)
	in, err := report.Build(c.Request().Context(), report.ServiceSource{Service: s.svc}, coi, user(c), at)
	if err != nil {
		return err
	}
	in.Zone = zone
	if in.SiteZones, err = s.svc.SiteZones(c.Request().Context(), in.Chain); err != nil {
		return err
	}
	if s.cfg.Log != nil {
		if err := report.AttachProof(c.Request().Context(), in, s.cfg.Log); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	if err := report.Write(&buf, in); err != nil {
		return err
	}
	s.log.Info("custody report generated", "coi", string(coi), "user", user(c).ID, "records", len(in.Chain.Records),
		"chain_head", in.Chain.Head, "bytes", buf.Len())
	c.Response().Header().Set(echo.HeaderContentDisposition,
		fmt.Sprintf(`attachment; filename="coid-report-%s-%s.pdf"`, coi, at.UTC().Format("20060102T150405Z")))
	return c.Blob(http.StatusOK, "application/pdf", buf.Bytes())
}

// epcisExport serves the chain as an EPCIS 2.0 JSON-LD document. It holds
// no patient identifiers, so any authenticated user may read it, as the
// chain itself.
func (s *Server) epcisExport(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	zone, err := reportZone(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	ch, err := s.svc.ReadChain(ctx, user(c), coi)
	if err != nil {
		return err
	}
	in := &epcis.Input{Chain: ch, CreatedAt: s.svc.Now().Truncate(time.Second), Zone: zone, Base: s.cfg.EPCISBase}
	if in.SiteZones, err = s.svc.SiteZones(ctx, ch); err != nil {
		return err
	}
	if in.GS1, err = s.svc.ChainGS1IDs(ctx, ch); err != nil {
		return err
	}
	for _, l := range ch.Legs {
		_, rs, err := s.svc.LegReadings(ctx, coi, l.N)
		switch {
		case errors.Is(err, custody.ErrInvalid):
			// No reading store: legs are summarised from their seals.
			in.Telemetry = append(in.Telemetry, epcis.Telemetry{})
		case err != nil:
			return err
		default:
			in.Telemetry = append(in.Telemetry, epcis.Telemetry{Available: true, Readings: rs})
		}
	}
	var buf bytes.Buffer
	if s.cfg.Log != nil {
		p, err := report.NewProof(c.Request().Context(), s.cfg.Log, ch)
		if err != nil {
			return err
		}
		in.Proof = p.Bundle
	}
	if err := epcis.Write(&buf, in); err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf(`inline; filename="coid-epcis-%s.jsonld"`, coi))
	return c.Blob(http.StatusOK, mimeLDJSON, buf.Bytes())
}
