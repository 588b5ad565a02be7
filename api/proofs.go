package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/coid-project/coid/custody/verifiable/witness"
	"github.com/labstack/echo/v4"
)

// The verifiable log: signed checkpoints, inclusion and consistency
// proofs as JSON under /api/v1/proofs, and the log as C2SP tlog-tiles
// under /api/v1/log/ (checkpoint, hash tiles, entry bundles) for mirrors and
// auditors' own tools. Every route takes a token, as the rest of the API;
// any signed-in user may read them, as any may verify the ledger
// (GET /api/v1/verify): they hold record hashes and the records' ledger
// bytes, which carry no patient identifier.

// registerProofRoutes registers the proof routes and the tiles on g
// (/api/v1): /api/v1/log/ is the log's prefix for tlog-tiles tools.
func (s *Server) registerProofRoutes(g *echo.Group) {
	g.GET("/proofs/checkpoint", s.latestCheckpoint)
	g.POST("/proofs/checkpoint", s.signCheckpoint)
	g.GET("/proofs/inclusion", s.inclusionProof)
	g.GET("/proofs/consistency", s.consistencyProof)
	g.GET("/proofs/witnesses", s.witnessStatus)
	g.GET("/proofs/witnessed", s.witnessedCheckpoints)
	g.GET("/log/checkpoint", s.logCheckpoint)
	g.GET("/log/tile/*", s.logTile)
}

// Tile caching: a full tile never changes; a partial one is replaced by a
// wider one as the log grows, and the checkpoint by the next.
const (
	fullTileCache    = "private, max-age=31536000, immutable"
	partialTileCache = "private, max-age=5"
	checkpointCache  = "private, max-age=2"
)

func (s *Server) verifiableLog() (*verifiable.Log, error) {
	if s.cfg.Log == nil {
		return nil, fmt.Errorf("this server keeps no verifiable log: %w", custody.ErrNotFound)
	}
	return s.cfg.Log, nil
}

// checkpointResponse is a signed checkpoint with its body read out.
type checkpointResponse struct {
	// Checkpoint is the signed note, as /log/checkpoint serves it: the
	// log's signature and the witnesses' cosignatures kept of it.
	Checkpoint string          `json:"checkpoint"`
	Origin     string          `json:"origin"`
	Size       int64           `json:"size"`
	Root       verifiable.Hash `json:"root"`
	// VerifierKey is the active key's verifier key.
	VerifierKey string `json:"verifier_key"`
}

func (s *Server) checkpointJSON(c echo.Context, status int, signed []byte, cp verifiable.Checkpoint, l *verifiable.Log) error {
	return c.JSON(status, checkpointResponse{Checkpoint: string(signed), Origin: cp.Origin, Size: cp.Size, Root: cp.Root,
		VerifierKey: l.Keys().Verifier()})
}

func (s *Server) latestCheckpoint(c echo.Context) error {
	l, err := s.verifiableLog()
	if err != nil {
		return err
	}
	signed, cp, err := l.LatestCosigned(c.Request().Context())
	if err != nil {
		return err
	}
	return s.checkpointJSON(c, http.StatusOK, signed, cp, l)
}

// signCheckpoint signs a checkpoint of the log as it is now (on demand,
// besides the periodic ones) and keeps it.
func (s *Server) signCheckpoint(c echo.Context) error {
	l, err := s.verifiableLog()
	if err != nil {
		return err
	}
	signed, cp, err := l.Sign(c.Request().Context())
	if err != nil {
		return err
	}
	return s.checkpointJSON(c, http.StatusCreated, signed, cp, l)
}

// sizeQuery reads an optional tree size (records) from the query; 0 when
// absent.
func sizeQuery(c echo.Context, name string, required bool) (int64, error) {
	v := c.QueryParam(name)
	if v == "" && !required {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > custody.MaxCheckpointRecords {
		return 0, fmt.Errorf("%s %q: a record count from 1 to %d: %w", name, v, int64(custody.MaxCheckpointRecords), custody.ErrInvalid)
	}
	return n, nil
}

func (s *Server) inclusionProof(c echo.Context) error {
	l, err := s.verifiableLog()
	if err != nil {
		return err
	}
	seq, err := sizeQuery(c, "seq", true)
	if err != nil {
		return err
	}
	size, err := sizeQuery(c, "size", false)
	if err != nil {
		return err
	}
	p, err := l.Inclusion(c.Request().Context(), uint64(seq), size)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) consistencyProof(c echo.Context) error {
	l, err := s.verifiableLog()
	if err != nil {
		return err
	}
	from, err := sizeQuery(c, "from", true)
	if err != nil {
		return err
	}
	to, err := sizeQuery(c, "to", false)
	if err != nil {
		return err
	}
	if to != 0 && from > to {
		return fmt.Errorf("from %d is after to %d: %w", from, to, custody.ErrInvalid)
	}
	p, err := l.Consistency(c.Request().Context(), from, to)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// logCheckpoint serves the latest signed checkpoint as C2SP tlog-tiles
// does: the signed note, text/plain, with the witnesses' cosignatures
// kept of it as further signature lines.
func (s *Server) logCheckpoint(c echo.Context) error {
	l, err := s.verifiableLog()
	if err != nil {
		return err
	}
	signed, _, err := l.LatestCosigned(c.Request().Context())
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", checkpointCache)
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", signed)
}

// logTile serves a hash tile or an entry bundle by its C2SP path.
func (s *Server) logTile(c echo.Context) error {
	l, err := s.verifiableLog()
	if err != nil {
		return err
	}
	path := "tile/" + c.Param("*")
	data, full, err := l.Tile(c.Request().Context(), path)
	if err != nil {
		return err
	}
	if full {
		c.Response().Header().Set("Cache-Control", fullTileCache)
	} else {
		c.Response().Header().Set("Cache-Control", partialTileCache)
	}
	return c.Blob(http.StatusOK, echo.MIMEOctetStream, data)
}

func (s *Server) witnesses() (*witness.Submitter, error) {
	if s.cfg.Witnesses == nil {
		return nil, fmt.Errorf("this server submits its checkpoints to no witness: %w", custody.ErrNotFound)
	}
	return s.cfg.Witnesses, nil
}

// witnessStatus lists the configured witnesses with the outcome of the
// last checkpoint each was sent, and the quorum.
func (s *Server) witnessStatus(c echo.Context) error {
	ws, err := s.witnesses()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"quorum": ws.Quorum(), "witnesses": ws.Statuses()})
}

// witnessedCheckpoints pages through the cosigned checkpoints, smallest
// first (after: the last size of the previous page), each marked with
// whether it reached the quorum.
func (s *Server) witnessedCheckpoints(c echo.Context) error {
	ws, err := s.witnesses()
	if err != nil {
		return err
	}
	limit, err := pageLimit(c, custody.MaxCosignedPage)
	if err != nil {
		return err
	}
	var after int64
	if c.QueryParam("after") != "" {
		if after, err = sizeQuery(c, "after", true); err != nil {
			return err
		}
	}
	page, err := ws.Witnessed(c.Request().Context(), after, limit)
	if err != nil {
		return err
	}
	body := map[string]any{"quorum": ws.Quorum(), "checkpoints": page, "count": len(page)}
	if len(page) == limit {
		body["next"] = page[len(page)-1].Size
	}
	return c.JSON(http.StatusOK, body)
}
