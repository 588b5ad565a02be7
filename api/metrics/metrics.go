// Package metrics owns coid's Prometheus metrics: the registry, the HTTP
// latency histogram by route pattern, the commit latency histograms, the
// gauges and counters read from the running service through callbacks,
// and the scrape handler with its own bearer token. It is the only package
// that imports github.com/prometheus/client_golang; the domain (custody)
// and the intake (sensors) know nothing of it.
package metrics

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every coid metric name.
const Namespace = "coid"

// Metrics is one registry of coid's metrics. The zero value is not usable;
// call New.
type Metrics struct {
	reg     *prometheus.Registry
	http    *prometheus.HistogramVec
	commits *prometheus.HistogramVec
	errors  *prometheus.CounterVec
	alerts  *prometheus.CounterVec
}

// New returns a registry holding the Go runtime and process collectors and
// coid's own histograms and counters; callers add what they read from the
// running service with CounterFunc and GaugeFunc.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.http = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "http_request_duration_seconds",
		Help:    "Time to answer HTTP requests, by method, route pattern (never the raw path) and status code.",
		Buckets: prometheus.DefBuckets}, []string{"method", "route", "code"})
	m.commits = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "commit_duration_seconds",
		Help: "Time from handing a write to the store until it is durable: kind ledger_append (one journey record) " +
			"or reading_batch (one MQTT message's readings, committed in a group with others).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"kind"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "store_errors_total",
		Help: "Store writes that failed (not refusals of bad input), by kind."}, []string{"kind"})
	m.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "telemetry_alerts_total",
		Help: "Alerts raised by the excursion monitor on this instance, by kind (excursion or hold_warning)."}, []string{"kind"})
	m.reg.MustRegister(m.http, m.commits, m.errors, m.alerts)
	return m
}

// ObserveRequest records one answered HTTP request. route is the pattern
// the router matched (e.g. /api/v1/chains/:coi); an empty route (no route
// matched) is recorded as "unmatched", so that probing random paths
// cannot grow the label set.
func (m *Metrics) ObserveRequest(method, route string, status int, latency time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.http.WithLabelValues(method, route, strconv.Itoa(status)).Observe(latency.Seconds())
}

// ObserveCommit records the latency of one successful commit of kind.
func (m *Metrics) ObserveCommit(kind string, latency time.Duration) {
	m.commits.WithLabelValues(kind).Observe(latency.Seconds())
}

// StoreError counts one write of kind that the store failed.
func (m *Metrics) StoreError(kind string) { m.errors.WithLabelValues(kind).Inc() }

// Alert counts one alert of kind.
func (m *Metrics) Alert(kind string) { m.alerts.WithLabelValues(kind).Inc() }

// CounterFunc adds a counter coid_<name> whose value f returns at each
// scrape; f must only grow and must not block.
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, f))
}

// GaugeFunc adds a gauge coid_<name> whose value f returns at each scrape;
// f must not block.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, f))
}

// Handler serves the metrics in the Prometheus exposition format. When
// token is not empty, a scrape must present it as "Authorization: Bearer
// <token>" (Prometheus's authorization or bearer_token_file setting) and
// is refused with 401 otherwise; an empty token serves anyone who reaches
// the listener, which coid allows only on a listener of its own.
func (m *Metrics) Handler(token string) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	if token == "" {
		return h
	}
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="coid metrics"`)
			http.Error(w, "a scrape token is required (Authorization: Bearer <token>)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
