package api

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// Expanded access: requests (submit, list, read, their records, enroll),
// their documents (upload, download) and the jurisdictions registry, under
// /api/v1/access. Who may do what is the service's.

// accessUploadPath is the route of document uploads: the only route whose
// body may exceed the server's body limit (the document store has its own).
const accessUploadPath = "/api/v1/access/requests/:id/documents"

func (s *Server) registerAccessRoutes(g *echo.Group) {
	signs := s.sigs.throttleSignatures(func(c echo.Context) string { return user(c).ID })
	a := g.Group("/access")
	a.POST("/requests", s.submitAccess, signs)
	a.GET("/requests", s.listAccess)
	a.GET("/requests/:id", s.getAccess)
	a.POST("/requests/:id/records", s.recordAccess, signs)
	a.POST("/requests/:id/enroll", s.enrollAccess, signs)
	a.POST("/requests/:id/documents", s.uploadAccessDocument)
	a.GET("/requests/:id/documents/:hash", s.downloadAccessDocument)
	a.POST("/requests/:id/assign", s.assignAccess, signs)
	a.GET("/queue", s.accessQueue)
	a.GET("/figures", s.accessFigures)
	a.GET("/figures.csv", s.accessFigures)
	registry[custody.Jurisdiction]{"jurisdictions", custody.ValidateRegistryCode, func(v custody.Jurisdiction) string { return v.Code },
		s.svc.RegisterJurisdiction, s.svc.UpdateJurisdiction, s.svc.SuspendJurisdiction, s.svc.JurisdictionEntry, s.svc.Jurisdictions}.mount(a)
}

func accessID(c echo.Context) (custody.COI, error) {
	id, err := custody.ParseAccessID(c.Param("id"))
	if err != nil {
		return "", fmt.Errorf("path: %w", err)
	}
	return id, nil
}

// accessSubmitBody is a submission with its optional signatures.
type accessSubmitBody struct {
	custody.AccessSubmission
	Signatures []custody.SignatureRequest `json:"signatures"`
}

func (s *Server) submitAccess(c echo.Context) error {
	var b accessSubmitBody
	if err := bind(c, &b); err != nil {
		return err
	}
	r, err := s.svc.SubmitAccess(c.Request().Context(), user(c), b.AccessSubmission, b.Signatures)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/access/requests/"+string(r.ID))
	return c.JSON(http.StatusCreated, r)
}

func (s *Server) listAccess(c echo.Context) error {
	limit, err := pageLimit(c, 500)
	if err != nil {
		return err
	}
	var after custody.COI
	if v := c.QueryParam("after"); v != "" {
		if after, err = custody.ParseAccessID(v); err != nil {
			return fmt.Errorf("after: %w", err)
		}
	}
	page, err := s.svc.AccessRequests(c.Request().Context(), user(c), custody.State(c.QueryParam("state")), after, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

func (s *Server) getAccess(c echo.Context) error {
	id, err := accessID(c)
	if err != nil {
		return err
	}
	r, err := s.svc.AccessRequest(c.Request().Context(), user(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (s *Server) recordAccess(c echo.Context) error {
	id, err := accessID(c)
	if err != nil {
		return err
	}
	var st custody.AccessStep
	if err := bind(c, &st); err != nil {
		return err
	}
	r, err := s.svc.RecordAccess(c.Request().Context(), user(c), id, st)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

// accessEnrollResponse is a request enrolled and the chain it became.
type accessEnrollResponse struct {
	Request *custody.AccessRequest `json:"request"`
	COI     custody.COI            `json:"coi"`
	Chain   *custody.Chain         `json:"chain"`
}

func (s *Server) enrollAccess(c echo.Context) error {
	id, err := accessID(c)
	if err != nil {
		return err
	}
	var en custody.AccessEnrollment
	if err := bind(c, &en); err != nil {
		return err
	}
	r, ch, err := s.svc.EnrollAccess(c.Request().Context(), user(c), id, en)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/chains/"+string(ch.COI))
	return c.JSON(http.StatusCreated, accessEnrollResponse{Request: r, COI: ch.COI, Chain: ch})
}

// maxUploadField is the size limit of an upload's form fields.
const maxUploadField = 1 << 10

// uploadAccessDocument takes a multipart/form-data body with one part
// named "file" (the PDF) and optional short text fields, streamed: the
// PDF goes to the document store's staging file as it arrives. The
// fields and the file's name are checked for patient identifiers, never
// kept; whatever is refused stores nothing. The answer is the document's
// hash, which a request record then names.
func (s *Server) uploadAccessDocument(c echo.Context) error {
	id, err := accessID(c)
	if err != nil {
		return err
	}
	ctx, u := c.Request().Context(), user(c)
	if err := s.svc.CheckAccessUpload(ctx, u, id); err != nil {
		return err
	}
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEMultipartForm {
		return fmt.Errorf("upload: the body must be multipart/form-data with a \"file\" part: %w", custody.ErrInvalid)
	}
	mr, err := c.Request().MultipartReader()
	if err != nil {
		return fmt.Errorf("upload: %v: %w", err, custody.ErrInvalid)
	}
	var fields []string
	var staged *custody.Staged
	defer func() {
		if staged != nil {
			staged.Discard()
		}
	}()
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("upload: %v: %w", err, custody.ErrInvalid)
		}
		if p.FormName() == "file" {
			if staged != nil {
				return fmt.Errorf("upload: one file per upload: %w", custody.ErrInvalid)
			}
			fields = append(fields, p.FileName())
			if staged, err = s.svc.Documents().Stage(p); err != nil {
				return fmt.Errorf("upload: %w", err)
			}
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p, maxUploadField+1))
		if err != nil {
			return fmt.Errorf("upload: %v: %w", err, custody.ErrInvalid)
		}
		if len(b) > maxUploadField {
			return fmt.Errorf("upload: field %q longer than %d bytes: %w", p.FormName(), maxUploadField, custody.ErrInvalid)
		}
		fields = append(fields, p.FormName(), string(b))
	}
	if staged == nil {
		return fmt.Errorf("upload: no \"file\" part: %w", custody.ErrInvalid)
	}
	if err := s.svc.CheckAccessUpload(ctx, u, id, fields...); err != nil {
		return err
	}
	st := staged
	staged = nil
	if err := st.Commit(); err != nil {
		return err
	}
	s.log.Info("access document stored", "request", string(id), "document", st.Hash.String(), "bytes", st.Size, "user", u.ID)
	return c.JSON(http.StatusCreated, map[string]any{"hash": st.Hash, "size": st.Size})
}

func (s *Server) downloadAccessDocument(c echo.Context) error {
	id, err := accessID(c)
	if err != nil {
		return err
	}
	h, err := custody.ParseHash(c.Param("hash"))
	if err != nil {
		return fmt.Errorf("path: %w", err)
	}
	f, err := s.svc.AccessDocument(c.Request().Context(), user(c), id, h)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/pdf")
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+h.String()+`.pdf"`)
	http.ServeContent(c.Response(), c.Request(), "", fi.ModTime(), f)
	return nil
}

// accessQueue answers GET /access/queue: the access team's triage queue,
// a page after the cursor "after" of at most "limit" (1-500).
func (s *Server) accessQueue(c echo.Context) error {
	limit, err := pageLimit(c, 500)
	if err != nil {
		return err
	}
	q, err := s.svc.AccessTriage(c.Request().Context(), user(c), c.QueryParam("after"), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, q)
}

// accessFigures answers GET /access/figures and /access/figures.csv: time
// to decision per month and urgency.
func (s *Server) accessFigures(c echo.Context) error {
	figs, err := s.svc.AccessFigures(c.Request().Context(), user(c))
	if err != nil {
		return err
	}
	if !strings.HasSuffix(c.Path(), ".csv") {
		return c.JSON(http.StatusOK, map[string]any{"figures": figs})
	}
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	_ = cw.Write([]string{"month", "urgency", "count", "median_hours", "p90_hours", "breached"})
	for _, f := range figs {
		_ = cw.Write([]string{f.Month, string(f.Urgency), strconv.Itoa(f.Count), strconv.FormatFloat(f.Median, 'f', 2, 64),
			strconv.FormatFloat(f.P90, 'f', 2, 64), strconv.Itoa(f.Breached)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="access-figures.csv"`)
	return c.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}

// accessAssignBody is an assignment: to whom, why, and optional
// signatures.
type accessAssignBody struct {
	Assignee   string                     `json:"assignee"`
	Reason     string                     `json:"reason"`
	Signatures []custody.SignatureRequest `json:"signatures"`
}

// assignAccess answers POST /access/requests/:id/assign: the request's
// assign record.
func (s *Server) assignAccess(c echo.Context) error {
	id, err := accessID(c)
	if err != nil {
		return err
	}
	var b accessAssignBody
	if err := bind(c, &b); err != nil {
		return err
	}
	r, err := s.svc.RecordAccess(c.Request().Context(), user(c), id, custody.AccessStep{Step: custody.StepAccessAssign,
		Data: custody.AccessStepData{Assignee: b.Assignee, Text: b.Reason}, Signatures: b.Signatures})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}
