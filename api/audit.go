package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/labels/auditreport"
	"github.com/labstack/echo/v4"
)

// registerAuditRoutes adds the administrative audit trail: a JSON page of
// entries and the printable report as PDF or CSV, with the same filters,
// for QA and administrators (the domain checks the role).
func (s *Server) registerAuditRoutes(g *echo.Group) {
	g.GET("/audit", s.auditTrail)
	g.GET("/audit.pdf", s.auditReport("pdf"))
	g.GET("/audit.csv", s.auditReport("csv"))
}

// defaultAuditPage is the JSON page's size unless limit says otherwise.
const defaultAuditPage = 100

// ParseAuditFilter reads an audit filter from query values: from and to
// (RFC 3339, or a date YYYY-MM-DD meaning its start in UTC; from
// inclusive, to exclusive), actor, kind, code, after and limit. get
// returns a value by name ("" for none).
func ParseAuditFilter(get func(string) string) (custody.AuditFilter, error) {
	var f custody.AuditFilter
	var err error
	if f.From, err = auditTime("from", get("from")); err != nil {
		return f, err
	}
	if f.To, err = auditTime("to", get("to")); err != nil {
		return f, err
	}
	f.Actor, f.Kind, f.Code = get("actor"), custody.ObjectKind(get("kind")), get("code")
	if v := get("after"); v != "" {
		if f.After, err = strconv.ParseUint(v, 10, 64); err != nil {
			return f, fmt.Errorf("after must be an entry number: %w", custody.ErrInvalid)
		}
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, fmt.Errorf("limit must be a positive integer: %w", custody.ErrInvalid)
		}
		f.Limit = n
	}
	return f, f.Validate()
}

func auditTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q must be an RFC 3339 time or a date YYYY-MM-DD: %w", name, v, custody.ErrInvalid)
}

// auditTrail answers GET /audit: a page of entries in trail order and,
// when the page is full, next_after to ask for the next one.
func (s *Server) auditTrail(c echo.Context) error {
	f, err := ParseAuditFilter(c.QueryParam)
	if err != nil {
		return err
	}
	if f.Limit == 0 {
		f.Limit = defaultAuditPage
	}
	entries, err := s.svc.AuditTrail(c.Request().Context(), user(c), f)
	if err != nil {
		return err
	}
	out := map[string]any{"entries": entries, "count": len(entries)}
	if len(entries) == f.Limit {
		out["next_after"] = entries[len(entries)-1].Seq
	}
	return c.JSON(http.StatusOK, out)
}

// auditReport answers GET /audit.pdf and /audit.csv: the report of every
// entry the filter selects (after and limit are not taken), refused with
// 400 when more than the configured maximum match.
func (s *Server) auditReport(format string) echo.HandlerFunc {
	return func(c echo.Context) error {
		f, err := ParseAuditFilter(c.QueryParam)
		if err != nil {
			return err
		}
		if f.After != 0 || f.Limit != 0 {
			return fmt.Errorf("a report takes every entry of its filter: after and limit are for /audit: %w", custody.ErrInvalid)
		}
		ctx, who := c.Request().Context(), user(c)
		in, err := auditreport.Build(ctx, func(ctx2 context.Context, q custody.AuditFilter) ([]custody.AuditEntry, error) {
			return s.svc.AuditTrail(ctx2, who, q)
		}, f, s.cfg.AuditReportMax, who, s.svc.Now())
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		mime := "application/pdf"
		if format == "csv" {
			mime = "text/csv; charset=utf-8"
			err = auditreport.WriteCSV(&buf, in)
		} else {
			err = auditreport.WritePDF(&buf, in)
		}
		if err != nil {
			return err
		}
		name := "audit-trail-" + in.GeneratedAt.Format("20060102T150405Z") + "." + format
		c.Response().Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		return c.Blob(http.StatusOK, mime, buf.Bytes())
	}
}

// AuditReportHandler answers the audit-trail report in format ("pdf" or
// "csv") with the filters of the query, for the web UI's downloads;
// custody's policy decides who may have it.
func (s *Server) AuditReportHandler(format string) echo.HandlerFunc { return s.auditReport(format) }
