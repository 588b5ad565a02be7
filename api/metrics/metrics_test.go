package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/api/metrics"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestHandlerToken(t *testing.T) {
	m := metrics.New()
	m.ObserveRequest("GET", "", 404, time.Millisecond)
	m.GaugeFunc("test_gauge", "A test gauge.", func() float64 { return 7 })
	h := m.Handler("0123456789abcdef0123")
	for _, tc := range []struct {
		auth string
		code int
	}{
		{"", 401},
		{"Bearer wrong", 401},
		{"Basic 0123456789abcdef0123", 401},
		{"Bearer 0123456789abcdef012", 401},
		{"Bearer 0123456789abcdef0123", 200},
		{"bearer 0123456789abcdef0123", 200},
	} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tc.code {
			t.Errorf("Authorization %q: %d, want %d", tc.auth, w.Code, tc.code)
			continue
		}
		if tc.code != 200 {
			if strings.Contains(w.Body.String(), "coid_") {
				t.Errorf("Authorization %q: metrics served with the refusal", tc.auth)
			}
			continue
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(w.Body)
		if err != nil {
			t.Fatal(err)
		}
		if g := fams["coid_test_gauge"]; g == nil || g.Metric[0].Gauge.GetValue() != 7 {
			t.Errorf("coid_test_gauge = %v", g)
		}
		hist := fams["coid_http_request_duration_seconds"]
		if hist == nil || hist.Metric[0].Histogram.GetSampleCount() != 1 {
			t.Fatalf("http histogram = %v", hist)
		}
		for _, l := range hist.Metric[0].Label {
			if l.GetName() == "route" && l.GetValue() != "unmatched" {
				t.Errorf("an unmatched request's route label is %q", l.GetValue())
			}
		}
	}
}

// BenchmarkObserveRequest is the cost metrics add to each HTTP request.
func BenchmarkObserveRequest(b *testing.B) {
	m := metrics.New()
	for b.Loop() {
		m.ObserveRequest("GET", "/api/v1/chains/:coi", 200, 3*time.Millisecond)
	}
}

// BenchmarkScrape is one scrape's cost with a few dozen routes observed.
func BenchmarkScrape(b *testing.B) {
	m := metrics.New()
	for i := range 40 {
		m.ObserveRequest("GET", "/api/v1/route"+strings.Repeat("x", i), 200, time.Millisecond)
	}
	h := m.Handler("")
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	}
}
