package main

// coid simulate: shippers publishing cold-chain telemetry over MQTT with the
// same MQTT client (sensors.Publisher, paho) and payload formats as real loggers (project JSON and
// SenML, see package sensors), for demonstrations, load and tests.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/sensors"
)

// The simulator's scenarios. Each shipper runs one; "mix" deals them out
// in this order (shipper 1 warming, 2 tilt, ...).
var simScenarios = []string{"warming", "tilt", "silence", "offline", "duplicates", "normal"}

type simSettings struct {
	url, prefix, idPrefix, scenario, format, clientID string
	username, password, ca                            string
	shippers, count                                   int
	rate                                              float64
	duration, eventAt, eventFor                       time.Duration
	seed                                              uint64
}

func runSimulate(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("coid simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c simSettings
	fs.StringVar(&c.url, "mqtt-url", or(getenv(env, "COID_MQTT_URL"), "tcp://127.0.0.1:1883"), "MQTT broker, tcp://host:port or ssl://host:port (COID_MQTT_URL)")
	fs.StringVar(&c.prefix, "prefix", or(getenv(env, "COID_MQTT_PREFIX"), sensors.DefaultTopicPrefix), "telemetry topic prefix: {prefix}/{shipper}/telemetry (COID_MQTT_PREFIX)")
	fs.StringVar(&c.ca, "mqtt-ca", getenv(env, "COID_MQTT_CA"), "PEM CA file for an ssl:// broker (COID_MQTT_CA)")
	fs.StringVar(&c.username, "mqtt-username", getenv(env, "COID_MQTT_USERNAME"), "MQTT user name (COID_MQTT_USERNAME)")
	fs.StringVar(&c.password, "mqtt-password", getenv(env, "COID_MQTT_PASSWORD"), "MQTT password (COID_MQTT_PASSWORD)")
	fs.StringVar(&c.clientID, "client-id", "", "MQTT client ID prefix of the shippers' connections (default: coid-sim-{random})")
	fs.StringVar(&c.idPrefix, "id-prefix", "SHP-SIM", "shipper IDs are {id-prefix}-0001, {id-prefix}-0002, ...")
	fs.IntVar(&c.shippers, "shippers", 1, "number of shippers, each with its own MQTT connection")
	fs.Float64Var(&c.rate, "rate", 5, "readings per second over all shippers (each reading is one message except offline flushes)")
	fs.DurationVar(&c.duration, "duration", 0, "stop after this long (default 1m when --count is not given)")
	fs.IntVar(&c.count, "count", 0, "stop after this many readings over all shippers")
	fs.StringVar(&c.scenario, "scenario", "mix", "what the shippers do: "+strings.Join(simScenarios, ", ")+", or mix (one of each in turn)")
	fs.StringVar(&c.format, "format", "json", "payload format: json (the project's), senml (RFC 8428), or mix (alternating by shipper)")
	fs.DurationVar(&c.eventAt, "event-at", 30*time.Second, "when the scenario's event (warming, tilt, gap, offline, duplicates) begins, after the start")
	fs.DurationVar(&c.eventFor, "event-for", 0, "how long the event lasts (default: just longer than the built-in cryogenic profile's grace for it: warming 6m30s, tilt 10m30s, gap 15m30s; offline 2m; duplicates 1m)")
	var seed int64
	fs.Int64Var(&seed, "seed", 1, "random seed of the sensor noise")
	if err := parse(fs, args); err != nil {
		return err
	}
	c.seed = uint64(seed)
	if err := c.check(); err != nil {
		return err
	}
	if c.duration == 0 && c.count == 0 {
		c.duration = time.Minute
	}
	if c.clientID == "" {
		c.clientID = fmt.Sprintf("coid-sim-%08x", rand.Uint32())
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return err
	}
	sim := &simulator{cfg: c, tls: tc, stdout: stdout, stderr: stderr}
	return sim.run(ctx)
}

func (c *simSettings) check() error {
	u, err := url.Parse(c.url)
	if err != nil || u.Host == "" || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "mqtt" && u.Scheme != "mqtts") {
		return usagef("simulate: --mqtt-url %q must be tcp://host:port or ssl://host:port", c.url)
	}
	switch {
	case c.shippers < 1 || c.shippers > 10000:
		return usagef("simulate: --shippers must be 1 to 10000")
	case !(c.rate > 0) || c.rate > 1e6:
		return usagef("simulate: --rate must be above 0 and at most 1000000")
	case c.duration < 0 || c.count < 0 || c.eventAt < 0 || c.eventFor < 0:
		return usagef("simulate: --duration, --count, --event-at and --event-for cannot be negative")
	case c.scenario != "mix" && !slices.Contains(simScenarios, c.scenario):
		return usagef("simulate: unknown --scenario %q; use %s or mix", c.scenario, strings.Join(simScenarios, ", "))
	case c.format != "json" && c.format != "senml" && c.format != "mix":
		return usagef("simulate: unknown --format %q; use json, senml or mix", c.format)
	case c.prefix == "" || strings.ContainsAny(c.prefix, "+#"):
		return usagef("simulate: --prefix %q must be a topic without wildcards", c.prefix)
	}
	if err := custody.ValidateShipperID(fmt.Sprintf("%s-%04d", c.idPrefix, c.shippers)); err != nil {
		return usagef("simulate: --id-prefix: %v", err)
	}
	return nil
}

func (c *simSettings) tlsConfig() (*tls.Config, error) {
	if !strings.HasPrefix(c.url, "ssl://") && !strings.HasPrefix(c.url, "mqtts://") {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.ca != "" {
		pem, err := os.ReadFile(c.ca)
		if err != nil {
			return nil, fmt.Errorf("simulate: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("simulate: CA file %s holds no PEM certificate", c.ca)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// simulator runs the shippers and counts what they did.
type simulator struct {
	cfg            simSettings
	tls            *tls.Config
	stdout, stderr io.Writer

	readings atomic.Int64 // distinct readings published
	quota    atomic.Int64 // readings left under --count (when set)
	messages atomic.Int64 // messages published (including duplicates)
	dups     atomic.Int64 // messages sent again
	flushes  atomic.Int64 // offline array payloads
	acked    atomic.Int64 // messages PUBACKed by the broker
	failed   atomic.Int64 // messages the broker did not acknowledge
	// lost counts connections the broker dropped (for instance for
	// publishing a shipper the account may not): paho may report the
	// messages then in flight as delivered, so any loss fails the run.
	lost      atomic.Int64
	withheld  atomic.Int64 // readings a silent logger never sent
	scenarios map[string]int
}

func (sim *simulator) run(ctx context.Context) error {
	c := sim.cfg
	if c.count > 0 {
		sim.quota.Store(int64(c.count))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c.duration > 0 {
		var cancelT context.CancelFunc
		ctx, cancelT = context.WithTimeout(ctx, c.duration)
		defer cancelT()
	}
	// Every shipper connects first, so a wrong URL fails at once.
	shippers := make([]*simShipper, c.shippers)
	sim.scenarios = map[string]int{}
	for i := range shippers {
		sc := c.scenario
		if sc == "mix" {
			sc = simScenarios[i%len(simScenarios)]
		}
		senml := c.format == "senml" || (c.format == "mix" && i%2 == 1)
		sh := &simShipper{sim: sim, id: fmt.Sprintf("%s-%04d", c.idPrefix, i+1), scenario: sc, senml: senml,
			rng: rand.New(rand.NewPCG(c.seed, uint64(i))), eventAt: c.eventAt, eventFor: c.eventFor}
		if sh.eventFor == 0 {
			sh.eventFor = defaultEventFor(sc)
		}
		sim.scenarios[sc]++
		pub, err := sensors.NewPublisher(sensors.PublisherConfig{URL: c.url, ClientID: fmt.Sprintf("%s-%d", c.clientID, i+1),
			Username: c.username, Password: c.password, TLS: sim.tls,
			OnLost: func(err error) {
				if sim.lost.Add(1) == 1 {
					fmt.Fprintf(sim.stderr, "coid simulate: the broker dropped a connection (%v); see its log\n", err)
				}
			}})
		if err != nil {
			for _, prev := range shippers[:i] {
				prev.client.Close(100 * time.Millisecond)
			}
			return fmt.Errorf("simulate: connect to %s: %w", redactSimURL(c.url), err)
		}
		sh.client = pub
		shippers[i] = sh
	}
	fmt.Fprintf(sim.stderr, "coid simulate: %d shipper(s) on %s, topic %s, %.4g readings/s, scenario %s, format %s\n",
		c.shippers, redactSimURL(c.url), sensors.TelemetryTopic(c.prefix, "{shipper}"), c.rate, c.scenario, c.format)
	start := time.Now()
	var wg sync.WaitGroup
	for i, sh := range shippers {
		wg.Go(func() {
			// Shippers start spread over one interval, like independent
			// loggers.
			interval := time.Duration(float64(time.Second) * float64(c.shippers) / c.rate)
			sh.run(ctx, start.Add(interval*time.Duration(i)/time.Duration(c.shippers)), interval)
		})
	}
	wg.Wait()
	// Wait (bounded) for the broker's acknowledgements of what was sent.
	var pending []*sensors.Delivery
	for _, sh := range shippers {
		sh.mu.Lock()
		pending = append(pending, sh.toks...)
		sh.mu.Unlock()
	}
	deadline := time.Now().Add(30 * time.Second)
	if sim.lost.Load() > 0 {
		// What was in flight on a dropped connection may never be
		// answered: do not wait long for it.
		deadline = time.Now().Add(3 * time.Second)
	}
	for _, t := range pending {
		if t.Wait(time.Until(deadline)) != nil {
			sim.failed.Add(1)
			continue
		}
		sim.acked.Add(1)
	}
	elapsed := time.Since(start)
	for _, sh := range shippers {
		sh.client.Close(250 * time.Millisecond)
	}
	sim.summary(elapsed)
	if n := sim.lost.Load(); n > 0 {
		return fmt.Errorf("simulate: the broker dropped %d connection(s) and %d message(s) were not acknowledged; messages in flight then may not have been stored (may the account publish for these shippers?)",
			n, sim.failed.Load())
	}
	if n := sim.failed.Load(); n > 0 {
		return fmt.Errorf("simulate: %d message(s) were not acknowledged by the broker", n)
	}
	return nil
}

func (sim *simulator) summary(elapsed time.Duration) {
	w := sim.stdout
	var sc []string
	for _, name := range simScenarios {
		if n := sim.scenarios[name]; n > 0 {
			sc = append(sc, fmt.Sprintf("%s %d", name, n))
		}
	}
	fmt.Fprintf(w, "shippers: %d (%s)\n", sim.cfg.shippers, strings.Join(sc, ", "))
	fmt.Fprintf(w, "readings: %d published, %d withheld by silent loggers\n", sim.readings.Load(), sim.withheld.Load())
	fmt.Fprintf(w, "messages: %d published (%d duplicate redeliveries, %d offline flushes), %d acknowledged, %d not acknowledged\n",
		sim.messages.Load(), sim.dups.Load(), sim.flushes.Load(), sim.acked.Load(), sim.failed.Load())
	if n := sim.lost.Load(); n > 0 {
		fmt.Fprintf(w, "connections dropped by the broker: %d\n", n)
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(sim.messages.Load()) / s
	}
	fmt.Fprintf(w, "elapsed: %s (%.0f messages/s)\n", elapsed.Round(time.Millisecond), rate)
}

func defaultEventFor(scenario string) time.Duration {
	// Just past the built-in cryogenic profile's grace for the rule, so
	// the event becomes an excursion (see custody.BuiltinProfiles).
	switch scenario {
	case "warming":
		return 6*time.Minute + 30*time.Second
	case "tilt":
		return 10*time.Minute + 30*time.Second
	case "silence":
		return 15*time.Minute + 30*time.Second
	case "offline":
		return 2 * time.Minute
	}
	return time.Minute
}

func redactSimURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}

// simShipper is one dry shipper's data logger.
type simShipper struct {
	sim      *simulator
	id       string
	scenario string
	senml    bool
	rng      *rand.Rand
	client   *sensors.Publisher
	eventAt  time.Duration
	eventFor time.Duration

	seq    uint64
	ln2    float64
	batt   float64
	lat    float64
	lon    float64
	buffer []custody.Reading // an offline logger's unsent readings
	recent []custody.Reading // the last readings sent

	mu   sync.Mutex
	toks []*sensors.Delivery
}

// run takes a reading every interval from first until ctx ends or the
// --count quota is spent. Device times are the wall clock, as a logger's
// real-time clock would give them, so readings fall inside the leg that a
// ship step opened before the simulation started.
func (sh *simShipper) run(ctx context.Context, first time.Time, interval time.Duration) {
	sh.ln2, sh.batt = 95, 100
	sh.lat, sh.lon = 40.71+sh.rng.Float64()*0.1, -74.01+sh.rng.Float64()*0.1
	start := first
	next := first
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			sh.flush() // a logger that reconnects before the end delivers its buffer
			return
		case <-timer.C:
		}
		if sh.sim.cfg.count > 0 && sh.sim.quota.Add(-1) < 0 {
			sh.flush()
			return
		}
		now := time.Now()
		sh.step(now, now.Sub(start))
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
		} else {
			// Behind (a slow broker): catch up without a burst.
			next = time.Now()
			timer.Reset(0)
		}
	}
}

// step takes one reading at device time now, elapsed into the run, and
// publishes it as the scenario says.
func (sh *simShipper) step(now time.Time, elapsed time.Duration) {
	inEvent := elapsed >= sh.eventAt && elapsed < sh.eventAt+sh.eventFor
	sh.seq++
	r := sh.reading(now.UTC().Truncate(time.Microsecond), elapsed, inEvent)
	switch sh.scenario {
	case "silence":
		if inEvent { // the logger is dead: nothing is measured or sent
			sh.sim.withheld.Add(1)
			return
		}
	case "offline":
		if inEvent { // no network: the logger keeps what it measures
			sh.buffer = append(sh.buffer, r)
			sh.sim.readings.Add(1)
			return
		}
		sh.flush()
	}
	sh.sim.readings.Add(1)
	sh.publish([]custody.Reading{r}, false)
	if sh.scenario == "duplicates" && inEvent {
		// A QoS 1 redelivery of the same message, and every fifth time an
		// older reading again, out of order.
		sh.publish([]custody.Reading{r}, true)
		if sh.seq%5 == 0 && len(sh.recent) >= 4 {
			sh.publish(sh.recent[len(sh.recent)-4:len(sh.recent)-3], true)
		}
	}
	sh.recent = append(sh.recent, r)
	if len(sh.recent) > 8 {
		sh.recent = append(sh.recent[:0], sh.recent[len(sh.recent)-8:]...)
	}
}

// reading is the logger's measurement at device time t.
func (sh *simShipper) reading(t time.Time, elapsed time.Duration, inEvent bool) custody.Reading {
	temp := -185.5 + sh.rng.NormFloat64()*0.4
	tilt := 2 + math.Abs(sh.rng.NormFloat64())*1.5
	if inEvent {
		into := (elapsed - sh.eventAt).Seconds()
		switch sh.scenario {
		case "warming":
			// The LN2 charge is gone: the product space warms past -150 C
			// within the first tenth of the event and levels off near
			// -120 C.
			tau := sh.eventFor.Seconds() / 10
			temp = -185.5 + 65*(1-math.Exp(-into/tau)) + sh.rng.NormFloat64()*0.4
		case "tilt":
			tilt = 78 + sh.rng.NormFloat64()*3
		}
	}
	sh.ln2 = math.Max(0, sh.ln2-0.001)
	sh.batt = math.Max(0, sh.batt-0.0005)
	sh.lat += 0.0001
	sh.lon += 0.0002
	round := func(v float64, d float64) *float64 { x := math.Round(v*d) / d; return &x }
	lid := false
	return custody.Reading{Shipper: sh.id, Seq: sh.seq, HasSeq: true, DeviceTime: t,
		TempC: round(temp, 10), TiltDeg: round(math.Min(tilt, 180), 10), LidOpen: &lid,
		BatteryPct: round(sh.batt, 10), LN2Pct: round(sh.ln2, 10),
		Lat: round(sh.lat, 1e5), Lon: round(sh.lon, 1e5)}
}

// flush publishes an offline logger's buffer as one array payload.
func (sh *simShipper) flush() {
	if len(sh.buffer) == 0 {
		return
	}
	sh.sim.flushes.Add(1)
	sh.publish(sh.buffer, false)
	sh.buffer = nil
}

func (sh *simShipper) publish(rs []custody.Reading, dup bool) {
	var (
		b   []byte
		err error
	)
	if sh.senml {
		b, err = sensors.EncodeSenML(rs)
	} else {
		b, err = sensors.EncodeJSON(rs)
	}
	if err != nil { // cannot happen for the readings built here
		fmt.Fprintf(sh.sim.stderr, "coid simulate: %s: %v\n", sh.id, err)
		return
	}
	tok := sh.client.Publish(sensors.TelemetryTopic(sh.sim.cfg.prefix, sh.id), b)
	sh.sim.messages.Add(1)
	if dup {
		sh.sim.dups.Add(1)
	}
	sh.mu.Lock()
	sh.toks = append(sh.toks, tok)
	// Keep the token list short: settle the acknowledged ones.
	if len(sh.toks) >= 4096 {
		kept := sh.toks[:0]
		for _, t := range sh.toks {
			select {
			case <-t.Done():
				if t.Err() != nil {
					sh.sim.failed.Add(1)
				} else {
					sh.sim.acked.Add(1)
				}
			default:
				kept = append(kept, t)
			}
		}
		sh.toks = kept
	}
	sh.mu.Unlock()
}
