package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coid-project/coid/api/metrics"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/sensors"
)

// metricsSettings are coid serve's Prometheus flags.
type metricsSettings struct {
	// listen is a listener of its own for /metrics; empty: none.
	listen string
	// tokenFile holds the scrape token; with no listen, /metrics is
	// served on the main listener, behind the token.
	tokenFile string
}

func (m *metricsSettings) flags(fs *flag.FlagSet, env []string) {
	fs.StringVar(&m.listen, "metrics-listen", getenv(env, "COID_METRICS_LISTEN"),
		"serve Prometheus /metrics on a listener of its own at this address; default off (COID_METRICS_LISTEN)")
	fs.StringVar(&m.tokenFile, "metrics-token-file", getenv(env, "COID_METRICS_TOKEN_FILE"),
		"file holding the scrape token Prometheus sends as a bearer token; without --metrics-listen, /metrics is then served "+
			"on the main listener behind it (COID_METRICS_TOKEN_FILE)")
}

// token reads the scrape token, and checks that /metrics is never served
// without authentication where other machines can reach it.
func (m *metricsSettings) token() (string, error) {
	var tok string
	if m.tokenFile != "" {
		b, err := os.ReadFile(m.tokenFile)
		if err != nil {
			return "", usagef("serve: --metrics-token-file: %v", err)
		}
		if tok = strings.TrimSpace(string(b)); len(tok) < 16 || strings.ContainsAny(tok, " \t\r\n") {
			return "", usagef("serve: --metrics-token-file %s: the token must be one word of at least 16 characters "+
				"(e.g. openssl rand -hex 32)", m.tokenFile)
		}
	}
	if m.listen != "" {
		if _, _, err := net.SplitHostPort(m.listen); err != nil {
			return "", usagef("serve: --metrics-listen %q is not an address with a port, e.g. 127.0.0.1:9464", m.listen)
		}
		if tok == "" && !sensors.LoopbackAddr(m.listen) {
			return "", usagef("serve: --metrics-listen %s is reachable from other machines: give --metrics-token-file too", m.listen)
		}
	}
	return tok, nil
}

// serveMetrics registers the metrics read from the running service and,
// with --metrics-listen, starts their own listener; stop closes it.
func serveMetrics(m *metrics.Metrics, ms metricsSettings, token string, tele *telemetry, st *stores, log *slog.Logger) (addr string, stop func(), err error) {
	tele.register(m)
	registerStoreGauges(m, st, log)
	if ms.listen == "" {
		return "", func() {}, nil
	}
	ln, err := net.Listen("tcp", ms.listen)
	if err != nil {
		return "", nil, fmt.Errorf("serve: metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler(token))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "err", err)
		}
	}()
	log.Info("metrics served", "metrics_listen", ln.Addr().String(), "token", token != "")
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}

// maxGaugeCount bounds what a store gauge counts at one scrape: a count
// beyond it is reported as maxGaugeCount (an alert threshold lies far below).
const maxGaugeCount = 100000

// registerStoreGauges adds the gauges read from the store at each scrape:
// chains with an open excursion (from the excursion index) and the
// quarantine's size, where the backend can answer them.
func registerStoreGauges(m *metrics.Metrics, st *stores, log *slog.Logger) {
	count := func(name string, f func(ctx context.Context) (int, error)) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n, err := f(ctx)
			if err != nil {
				log.Warn("metrics: store gauge not read", "gauge", name, "err", err)
				return -1
			}
			return float64(n)
		}
	}
	m.GaugeFunc("excursions_open", "Chains with an excursion not yet closed by QA's review, from the excursion index "+
		"(chains from before the store kept open-issue counts are counted too; -1: the store did not answer).",
		count("excursions_open", func(ctx context.Context) (int, error) {
			n, before := 0, custody.COI("")
			for n < maxGaugeCount {
				page, err := st.ledger.ExcursionChains(ctx, true, before, 500)
				if err != nil || len(page) == 0 {
					return n, err
				}
				n, before = n+len(page), page[len(page)-1]
			}
			return maxGaugeCount, nil
		}))
	if q, ok := st.telemetry.(interface {
		QuarantineCount(ctx context.Context) (int, error)
	}); ok {
		m.GaugeFunc("quarantine_entries", "Refused telemetry payloads kept in the quarantine for review (-1: the store did not answer).",
			count("quarantine_entries", q.QuarantineCount))
	}
}

// register adds the intake's counters and gauges, read at each scrape.
func (t *telemetry) register(m *metrics.Metrics) {
	stat := func(f func(sensors.PipelineStats) uint64) func() float64 {
		return func() float64 { return float64(f(t.pipe.Stats())) }
	}
	m.CounterFunc("telemetry_messages_total", "MQTT telemetry messages taken.", stat(func(s sensors.PipelineStats) uint64 { return s.Messages }))
	m.CounterFunc("telemetry_readings_stored_total", "Readings stored for the first time.", stat(func(s sensors.PipelineStats) uint64 { return s.Stored }))
	m.CounterFunc("telemetry_readings_duplicate_total", "Readings received again, identical to those stored (redeliveries).",
		stat(func(s sensors.PipelineStats) uint64 { return s.Duplicates }))
	m.CounterFunc("telemetry_messages_quarantined_total", "Messages refused and kept in the quarantine (malformed or conflicting).",
		stat(func(s sensors.PipelineStats) uint64 { return s.Rejected }))
	m.CounterFunc("telemetry_messages_refused_conflict_total", "Of the quarantined messages, those refused because a reading "+
		"differed from the one stored under its identity.", stat(func(s sensors.PipelineStats) uint64 { return s.Conflicts }))
	m.CounterFunc("telemetry_store_failures_total", "Attempts to store readings that failed (the message is retried).",
		stat(func(s sensors.PipelineStats) uint64 { return s.StoreFailed }))
	m.GaugeFunc("telemetry_queue_depth", "Messages waiting in the intake queue for a worker.", func() float64 { return float64(t.pipe.Queued()) })
	m.GaugeFunc("telemetry_retrying", "Messages waiting to be stored again after a store failure (unacknowledged, in flight).",
		stat(func(s sensors.PipelineStats) uint64 { return s.Retrying }))
	m.GaugeFunc("mqtt_connected", "1 while the MQTT subscriber is connected to the broker, 0 otherwise (or without intake).", func() float64 {
		if t.sub != nil && t.sub.Connected() {
			return 1
		}
		return 0
	})
	m.GaugeFunc("mqtt_last_message_age_seconds", "Seconds since the last MQTT telemetry message arrived; -1 before the first.", func() float64 {
		if t.sub == nil || t.sub.LastMessage().IsZero() {
			return -1
		}
		return t.now().Sub(t.sub.LastMessage()).Seconds()
	})
	m.GaugeFunc("mqtt_broker_connections", "Connections open at the embedded MQTT broker (0 with an external broker).", func() float64 {
		if t.broker == nil {
			return 0
		}
		return float64(t.broker.Connections())
	})
	m.GaugeFunc("monitor_leader", "1 on the instance running the excursion monitor.", func() float64 {
		if t.monitorRunning.Load() {
			return 1
		}
		return 0
	})
}

// health reports the MQTT intake: the subscriber must be connected to
// the broker. With intake off there is nothing to check.
func (t *telemetry) health(context.Context) error {
	if t.sub != nil && !t.sub.Connected() {
		last := "never"
		if lm := t.sub.LastMessage(); !lm.IsZero() {
			last = t.now().Sub(lm).Round(time.Second).String() + " ago"
		}
		return fmt.Errorf("mqtt intake: not connected to the broker (last message %s)", last)
	}
	return nil
}

// timedLedger times the store's appends (one journey record each) for
// the commit latency histogram, and counts those the store failed.
type timedLedger struct {
	custody.Store
	m   *metrics.Metrics
	now func() time.Time
}

// Append appends through the store and records how long it took.
func (l timedLedger) Append(ctx context.Context, d custody.Draft) (custody.Record, error) {
	start := l.now()
	r, err := l.Store.Append(ctx, d)
	observeCommit(l.m, "ledger_append", l.now().Sub(start), err)
	return r, err
}

// timedReadings times each message's readings from hand-over to the
// group commit that makes them durable.
type timedReadings struct {
	custody.TelemetryStore
	m   *metrics.Metrics
	now func() time.Time
}

// AddReadingsAsync queues through the store and records when done is
// called.
func (r timedReadings) AddReadingsAsync(readings []custody.Reading, q *custody.QuarantineEntry, done func(custody.IngestResult, error)) error {
	start := r.now()
	return r.TelemetryStore.AddReadingsAsync(readings, q, func(res custody.IngestResult, err error) {
		observeCommit(r.m, "reading_batch", r.now().Sub(start), err)
		done(res, err)
	})
}

// observeCommit records a commit's latency, or a store error; a refusal
// of the request (bad input, a conflict, a cancelled caller) is neither.
func observeCommit(m *metrics.Metrics, kind string, latency time.Duration, err error) {
	if err == nil {
		m.ObserveCommit(kind, latency)
		return
	}
	for _, refusal := range []error{custody.ErrInvalid, custody.ErrConflict, custody.ErrNotFound, custody.ErrReadingConflict,
		context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, refusal) {
			return
		}
	}
	m.StoreError(kind)
}
