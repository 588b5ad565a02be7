package api

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/coid-project/coid/custody"
)

// TestErrorTableOutcomes: each typed outcome answers with its status, code
// and Retry-After. A lost optimistic check (ErrRetry) is a 503 the client
// may retry at once, not a 409 refusal; a bedside mismatch stays a 409.
func TestErrorTableOutcomes(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cases := []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter string
	}{
		{"lost optimistic check", fmt.Errorf("record receive on X: append: chain X changed while the step was checked: %w", custody.ErrRetry),
			http.StatusServiceUnavailable, "retry", "1"},
		{"refused step", fmt.Errorf("release is not allowed while the chain is enrolled: %w", custody.ErrConflict),
			http.StatusConflict, "conflict", ""},
		{"quota exhausted", fmt.Errorf("book X: quota P/C for 2027-01: all 2 slots of the month are booked: %w", custody.ErrQuotaExhausted),
			http.StatusConflict, "quota_exhausted", ""},
		{"offer expired", fmt.Errorf("accept offer of X: %w", custody.ErrOfferExpired),
			http.StatusConflict, "offer_expired", ""},
		{"bedside mismatch", fmt.Errorf("record bedside-verify: %w", &custody.MismatchError{Record: custody.Record{Seq: 7}, Reasons: []string{"wrong wristband"}}),
			http.StatusConflict, "conflict", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			c := echo.New().NewContext(httptest.NewRequest(http.MethodPost, "/api/v1/chains/X/records", nil), rec)
			s.handleError(tc.err, c)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			var body errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body.Error.Code != tc.code {
				t.Errorf("code %q, want %q", body.Error.Code, tc.code)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
			}
		})
	}
}
