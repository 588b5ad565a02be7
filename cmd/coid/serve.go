package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/api/metrics"
	"github.com/coid-project/coid/api/web"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/coldchain"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/phitext"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/coid-project/coid/custody/verifiable/witness"
	"github.com/coid-project/coid/labels"
	"github.com/coid-project/coid/sensors"
)

func runServe(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	var s settings
	fs := newFlags("serve", env, stderr, &s)
	fs.StringVar(&s.http, "http", or(getenv(env, "COID_HTTP"), "127.0.0.1:8080"), "HTTP listen address (COID_HTTP)")
	fs.StringVar(&s.fin, "fin", or(getenv(env, "COID_FIN"), "A9999"), "issuing facility's ISBT 128 FIN for new COI IDs (COID_FIN)")
	var labelZone string
	fs.StringVar(&labelZone, "label-zone", getenv(env, "COID_LABEL_ZONE"), "default IANA time zone for local times of sites with no registered zone, e.g. Europe/Berlin; default UTC (COID_LABEL_ZONE)")
	warnDays := fs.Int("qualification-warning-days", envInt(env, "COID_QUALIFICATION_WARNING_DAYS", custody.DefaultQualificationWarningDays),
		"days before a site's accreditation or qualification or a shipper's requalification expires that the QA console warns (COID_QUALIFICATION_WARNING_DAYS)")
	var hp httpSettings
	hp.flags(fs, env)
	var mq mqttSettings
	mq.flags(fs, env)
	pw := passwordFlags(fs, env)
	epcisBase := epcisBaseFlag(fs, env)
	cpEvery := fs.Duration("checkpoint-interval", envDuration(env, "COID_CHECKPOINT_INTERVAL", 5*time.Second),
		"sign a checkpoint of the ledger's Merkle tree after commits at most this often (COID_CHECKPOINT_INTERVAL)")
	var witnessSpecs siteCodes // a repeatable string flag
	fs.Var(&witnessSpecs, "witness", "submit each checkpoint to this C2SP tlog-witness, NAME=URL+VERIFIERKEY (repeatable; "+
		"COID_WITNESSES, space-separated)")
	witnessQuorum := fs.Int("witness-quorum", envInt(env, "COID_WITNESS_QUORUM", 0),
		"how many witnesses must cosign a checkpoint for it to count as witnessed; default all (COID_WITNESS_QUORUM)")

	docDir := fs.String("documents", getenv(env, "COID_DOCUMENTS"), "directory of expanded-access documents, named by their SHA-256; default <data>/documents (COID_DOCUMENTS)")
	docMaxMB := fs.Int("document-max-mb", envInt(env, "COID_DOCUMENT_MAX_MB", custody.DefaultMaxDocument>>20), "largest expanded-access document accepted, in MB (COID_DOCUMENT_MAX_MB)")
	var ms metricsSettings
	ms.flags(fs, env)
	var initLedger bool
	slaEmergency := fs.Duration("access-sla-emergency", envDuration(env, "COID_ACCESS_SLA_EMERGENCY", custody.DefaultAccessSLA.Emergency),
		"time the access team has to decide an emergency expanded-access request; paused while waiting for the physician (COID_ACCESS_SLA_EMERGENCY)")
	slaStandard := fs.Duration("access-sla-standard", envDuration(env, "COID_ACCESS_SLA_STANDARD", custody.DefaultAccessSLA.Standard),
		"time the access team has to decide a non-emergency expanded-access request; paused while waiting for the physician (COID_ACCESS_SLA_STANDARD)")
	slaSoon := fs.Duration("access-sla-due-soon", envDuration(env, "COID_ACCESS_SLA_DUE_SOON", custody.DefaultAccessSLA.DueSoon),
		"an open request this close to its service-level deadline is shown due soon in the triage queue (COID_ACCESS_SLA_DUE_SOON)")
	fs.BoolVar(&initLedger, "init", false, "start a new, empty ledger if --data holds none (otherwise serve refuses a directory without one)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *docMaxMB < 1 {
		return usagef("serve: --document-max-mb must be at least 1")
	}
	if *slaEmergency <= 0 || *slaStandard <= 0 || *slaSoon <= 0 {
		return usagef("serve: --access-sla-emergency, --access-sla-standard and --access-sla-due-soon must be positive durations")
	}
	httpTLS, proxies, err := hp.check(s.http)
	if err != nil {
		return err
	}
	if err := checkEPCISBase("serve", *epcisBase); err != nil {
		return err
	}
	metricsToken, err := ms.token()
	if err != nil {
		return err
	}
	// From the start: a SIGHUP (reload the broker's accounts) that comes
	// while the service starts must not kill it; it waits for the reload
	// loop below.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	log, err := newLogger(stderr, s.logLevel, s.logFormat)
	if err != nil {
		return err
	}
	var zone *time.Location
	if labelZone != "" {
		if zone, err = time.LoadLocation(labelZone); err != nil || labelZone == "Local" {
			return usagef("serve: --label-zone %q is not an IANA time zone name (e.g. Europe/Berlin)", labelZone)
		}
	}
	if *warnDays < 0 || *warnDays > custody.MaxQualificationWarningDays {
		return usagef("serve: --qualification-warning-days must be 0-%d", custody.MaxQualificationWarningDays)
	}
	if *warnDays == 0 {
		*warnDays = -1 // "only what has expired", not the default
	}
	if err := pw.Check(); err != nil {
		return usagef("serve: --password-expiry-days 0-%d, --password-history 0-%d: %v", custody.MaxPasswordExpiryDays, custody.MaxPasswordHistory, err)
	}
	if *cpEvery < 100*time.Millisecond || *cpEvery > time.Hour {
		return usagef("serve: --checkpoint-interval must be from 100ms to 1h")
	}
	if len(witnessSpecs) == 0 {
		witnessSpecs = strings.Fields(getenv(env, "COID_WITNESSES"))
	}
	if *witnessQuorum == 0 {
		*witnessQuorum = len(witnessSpecs)
	}
	witnesses, err := witness.ParseList(witnessSpecs, *witnessQuorum)
	if err != nil {
		return usagef("serve: --witness NAME=URL+VERIFIERKEY, --witness-quorum 1 to their number: %v", err)
	}
	if !custody.ValidFIN(s.fin) {
		return usagef("serve: --fin %q is not an ISBT 128 facility identification number (A-N, P-Z or 1-9; two of A-N, P-Z, 0-9; two digits, e.g. A9999)", s.fin)
	}
	if s.store == "" { // a PostgreSQL store is named, not found by mistake
		if err := checkLedger(s.data, initLedger); err != nil {
			return err
		}
	}
	st, err := openStores(s.data, storeOptions{logger: log, url: s.store, cmd: "serve", keyFile: s.checkpointKey})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if st.keyErr != nil {
		// Signing with another key would fork the log's signatures.
		st.close()
		return fmt.Errorf("serve: %w", st.keyErr)
	}
	defer func() {
		if err := st.close(); err != nil {
			log.Error("closing store", "err", err)
		}
		log.Info("store closed")
	}()
	profiles, err := mq.loadProfiles()
	if err != nil {
		return err
	}
	// One limit on argon2id derivations (64 MiB each) for sign-ins,
	// signatures and MQTT connects, all of which strangers can trigger.
	hasher := passwd.NewLimited(passwd.Default(), runtime.GOMAXPROCS(0))
	docs, err := custody.NewDocumentStore(or(*docDir, filepath.Join(s.data, "documents")), int64(*docMaxMB)<<20)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// The metrics are kept whether or not they are served (a few
	// counters); the stores are timed at the edge, custody knows nothing
	// of them.
	mets := metrics.New()
	readings := timedReadings{TelemetryStore: st.telemetry, m: mets, now: time.Now}
	svc, err := custody.NewService(custody.Config{Documents: docs, AccessSLA: custody.AccessSLA{Emergency: *slaEmergency, Standard: *slaStandard, DueSoon: *slaSoon}, Store: timedLedger{Store: st.ledger, m: mets, now: time.Now}, Hasher: hasher, Logger: log, Now: time.Now,
		FIN: s.fin, Profiles: slices.Sorted(maps.Keys(profiles)),
		Telemetry: custody.TelemetryConfig{Readings: readings, Profiles: profiles}, LabelText: labels.CheckEnrollment,
		Folder: phitext.Folder{}, Passwords: *pw})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	tele, err := startTelemetry(mq, readings, svc, hasher, log, mets, st.leadership, st.bus)
	if ue := (usageError{}); errors.As(err, &ue) {
		return err // already says "serve: ..."
	} else if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer tele.stop() // idempotent; normally stopped first, below
	// The waiting list's offers expire and pass on without a caller.
	defer startWaitlist(svc, log)()
	// SIGHUP reloads the embedded broker's accounts (--mqtt-auth), so a
	// new shipper needs no restart.
	hupDone := make(chan struct{})
	var hupWG sync.WaitGroup
	hupWG.Go(func() {
		for {
			select {
			case <-hup:
				tele.reloadAccounts(mq.auth)
			case <-hupDone:
				return
			}
		}
	})
	defer func() { // before tele.stop, deferred above
		signal.Stop(hup)
		close(hupDone)
		hupWG.Wait()
	}()
	// The ledger's checkpoints: signed after commits, at most every
	// --checkpoint-interval, and once more at shutdown.
	vlog := verifiable.NewLog(st.tree, st.keys, time.Now, log)
	// Each signed checkpoint goes to the witnesses, in the background.
	var wsub *witness.Submitter
	if len(witnesses) > 0 {
		if wsub, err = witness.New(witness.Config{Witnesses: witnesses, Quorum: *witnessQuorum, Log: vlog, Store: st.cosignatures,
			Now: time.Now, After: time.After, Logger: log}); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		// What was last seen of each witness, as before a restart.
		if err := wsub.Restore(context.Background()); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		vlog.OnSigned(wsub.Notify)
		// Reports and exports carry the latest checkpoint the quorum
		// cosigned, with the cosignatures.
		names := make([]string, len(witnesses))
		for i, w := range witnesses {
			names[i] = w.Name
		}
		vlog.SetWitnesses(names, *witnessQuorum)
		wCtx, stopWitnesses := context.WithCancel(context.Background())
		var wWG sync.WaitGroup
		wWG.Go(func() { wsub.Run(wCtx) })
		defer func() { // before the store closes, deferred above
			stopWitnesses()
			wWG.Wait()
		}()
		log.Info("checkpoints are submitted to witnesses", "witnesses", len(witnesses), "quorum", *witnessQuorum)
	}
	cpCtx, stopCheckpoints := context.WithCancel(context.Background())
	var cpWG sync.WaitGroup
	cpWG.Go(func() { vlog.Run(cpCtx, *cpEvery, time.After) })
	defer func() { // before the store closes, deferred above
		stopCheckpoints()
		cpWG.Wait()
		if _, err := vlog.SignIfGrown(context.Background()); err != nil {
			log.Error("signing the last checkpoint failed", "err", err)
		}
	}()
	log.Info("checkpoint signing key", "verifier", st.keys.Verifier())
	metricsAddr, stopMetrics, err := serveMetrics(mets, ms, metricsToken, tele, &st, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	// Without a listener of its own, /metrics is on the main listener,
	// and only behind the scrape token.
	var onMain http.Handler
	if ms.listen == "" && metricsToken != "" {
		onMain = mets.Handler(metricsToken)
	}
	srv, err := api.New(api.Config{Service: svc, Logger: log, Version: version, LabelZone: zone, Telemetry: tele.apiConfig(),
		TrustedProxies: proxies, QualificationWarningDays: *warnDays, EPCISBase: *epcisBase, Log: vlog, Witnesses: wsub,
		Health: tele.health, ObserveRequest: mets.ObserveRequest, Metrics: onMain, Shared: st.shared})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if err := web.Mount(srv, web.WithQuarantine(tele.store)); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	ln, err := net.Listen("tcp", s.http)
	if errors.Is(err, syscall.EADDRINUSE) {
		return usagef("serve: HTTP address %s is already in use (another coid, or another program): pick another with "+
			"--http %s, or COID_HTTP=%[2]s, or make run RUN_FLAGS=\"--http %[2]s\"", s.http, nextPort(s.http))
	} else if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", s.http, err)
	}
	// Long-lived responses (the alert stream) end when baseCtx is cancelled.
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 120 * time.Second, ErrorLog: nil, BaseContext: func(net.Listener) context.Context { return baseCtx }}
	errc := make(chan error, 1)
	scheme := "http"
	if httpTLS != nil {
		scheme, hs.TLSConfig = "https", httpTLS
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- hs.Serve(ln) }()
	}
	log.Info("coid serving", "http", ln.Addr().String(), "tls", httpTLS != nil, "trusted_proxies", len(proxies), "data", s.data, "fin", s.fin, "version", version)
	fmt.Fprintf(stdout, "coid: serving HTTP on %s://%s\n", scheme, ln.Addr())
	if metricsAddr != "" {
		fmt.Fprintf(stdout, "coid: serving metrics on http://%s/metrics\n", metricsAddr)
	}
	srv.SetReady(true)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	srv.SetReady(false) // load balancers stop sending new requests
	tele.stop()         // MQTT intake first, so nothing new arrives while HTTP drains
	// Requests in flight finish (a signature being recorded is answered,
	// not failed); the streams, which never finish, are ended first.
	srv.StopStreams()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("http shutdown: requests still running after 10 s are cut off", "err", err)
		cancelBase()
		_ = hs.Close()
	}
	return nil
}

// checkLedger refuses a data directory without a ledger unless init
// asks for a new one: only "coid user add" or an explicit --init starts a
// ledger, so a mistyped --data does not serve an empty one.
func checkLedger(dir string, init bool) error {
	if _, err := os.Stat(ledgerFile(dir)); init || !errors.Is(err, os.ErrNotExist) {
		return nil // anything else about the file is openStores's to report
	}
	return fmt.Errorf("serve: ledger %w in %s (no %s there): check --data (or COID_DATA); to start a ledger, add its first "+
		"user with \"coid user add --data %[2]s ...\" (see coid help user add), or start serve with --init",
		custody.ErrNotFound, dir, filepath.Base(ledgerFile(dir)))
}

// nextPort suggests another address: addr's port plus one.
func nextPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(port); err == nil && perr == nil && n > 0 && n < 65535 {
		return net.JoinHostPort(host, strconv.Itoa(n+1))
	}
	return "127.0.0.1:8081"
}

// httpSettings are the flags that secure coid serve's HTTP listener.
type httpSettings struct {
	tlsCert, tlsKey string
	// proxies are CIDR ranges, comma-separated, of TLS-terminating
	// proxies whose X-Forwarded-For and X-Forwarded-Proto are believed.
	proxies string
}

func (h *httpSettings) flags(fs *flag.FlagSet, env []string) {
	fs.StringVar(&h.tlsCert, "tls-cert", getenv(env, "COID_TLS_CERT"), "PEM certificate (chain): serve HTTPS instead of HTTP (COID_TLS_CERT)")
	fs.StringVar(&h.tlsKey, "tls-key", getenv(env, "COID_TLS_KEY"), "PEM private key of --tls-cert (COID_TLS_KEY)")
	fs.StringVar(&h.proxies, "trusted-proxy", getenv(env, "COID_TRUSTED_PROXIES"), "comma-separated CIDR ranges of the TLS proxies in front of coid, whose X-Forwarded-For/-Proto are believed (COID_TRUSTED_PROXIES)")
}

// check returns the HTTPS configuration (nil for plain HTTP) and the
// trusted proxies. Passwords for signatures and sign-ins travel in
// request bodies, so plain HTTP beyond loopback is refused unless a TLS
// proxy in front of coid is named.
func (h *httpSettings) check(listen string) (*tls.Config, []string, error) {
	if (h.tlsCert == "") != (h.tlsKey == "") {
		return nil, nil, usagef("serve: give both --tls-cert and --tls-key, or neither")
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return nil, nil, usagef("serve: --http %q is not an address with a port, e.g. 127.0.0.1:8080", listen)
	}
	var proxies []string
	for p := range strings.SplitSeq(h.proxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, _, err := net.ParseCIDR(p); err != nil {
			return nil, nil, usagef("serve: --trusted-proxy %q is not a CIDR range (e.g. 10.0.0.5/32)", p)
		}
		proxies = append(proxies, p)
	}
	var cfg *tls.Config
	if h.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(h.tlsCert, h.tlsKey)
		if err != nil {
			return nil, nil, usagef("serve: --tls-cert/--tls-key: %v", err)
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if cfg == nil && len(proxies) == 0 && !sensors.LoopbackAddr(listen) {
		return nil, nil, usagef("serve: --http %s is reachable from other machines, and passwords (signatures, sign-ins) would cross "+
			"the network in clear: give --tls-cert and --tls-key, or put a TLS proxy in front of coid and name it with --trusted-proxy", listen)
	}
	return cfg, proxies, nil
}

// mqttSettings are the MQTT flags of coid serve.
type mqttSettings struct {
	listen, url, ca, username, password, prefix, clientID string
	// auth is the embedded broker's credentials file (--mqtt-auth).
	auth string
	// tlsCert and tlsKey make the embedded broker speak TLS.
	tlsCert, tlsKey string
	// profiles is a JSON file of temperature profiles added to (or
	// replacing) the built-in ones.
	profiles string
	// shareGroup shares the telemetry subscription of an external broker
	// among the instances of this group (--mqtt-share-group).
	shareGroup string
	// maxConns caps the embedded broker's open connections
	// (--mqtt-max-conns).
	maxConns int
	// holdMargin is how much longer than a leg's remaining journey its
	// dry shipper's projected hold time must be (--hold-margin).
	holdMargin string
}

// loadProfiles returns the built-in profiles and those of --profiles.
func (m *mqttSettings) loadProfiles() (map[string]custody.Profile, error) {
	if m.profiles == "" {
		return custody.BuiltinProfiles(), nil
	}
	b, err := os.ReadFile(m.profiles)
	if err != nil {
		return nil, fmt.Errorf("serve: --profiles: %w", err)
	}
	ps, err := custody.ParseProfiles(b)
	if err != nil {
		return nil, usagef("serve: --profiles %s: %v", m.profiles, err)
	}
	return ps, nil
}

func (m *mqttSettings) flags(fs *flag.FlagSet, env []string) {
	fs.StringVar(&m.listen, "mqtt-listen", or(getenv(env, "COID_MQTT_LISTEN"), "127.0.0.1:1883"), "embedded MQTT broker address, or \"off\" (COID_MQTT_LISTEN)")
	fs.StringVar(&m.url, "mqtt-url", getenv(env, "COID_MQTT_URL"), "external MQTT broker, tcp://host:1883 or ssl://host:8883, instead of the embedded one (COID_MQTT_URL)")
	fs.StringVar(&m.ca, "mqtt-ca", getenv(env, "COID_MQTT_CA"), "PEM CA file for an ssl:// broker (COID_MQTT_CA)")
	fs.StringVar(&m.username, "mqtt-username", getenv(env, "COID_MQTT_USERNAME"), "MQTT user name (COID_MQTT_USERNAME)")
	fs.StringVar(&m.password, "mqtt-password", getenv(env, "COID_MQTT_PASSWORD"), "MQTT password (COID_MQTT_PASSWORD; prefer the variable to the flag)")
	fs.StringVar(&m.prefix, "mqtt-prefix", or(getenv(env, "COID_MQTT_PREFIX"), sensors.DefaultTopicPrefix), "telemetry topic prefix: {prefix}/{shipper}/telemetry (COID_MQTT_PREFIX)")
	fs.StringVar(&m.profiles, "profiles", getenv(env, "COID_PROFILES"), "JSON file of temperature profiles added to the built-in cryogenic, refrigerated and room (COID_PROFILES)")
	fs.StringVar(&m.auth, "mqtt-auth", getenv(env, "COID_MQTT_AUTH"), "credentials file of the embedded broker's clients (coid mqtt-user add writes it); without it the broker listens on loopback only (COID_MQTT_AUTH)")
	fs.StringVar(&m.tlsCert, "mqtt-tls-cert", getenv(env, "COID_MQTT_TLS_CERT"), "PEM certificate (chain) of the embedded broker: it then speaks MQTT over TLS only (COID_MQTT_TLS_CERT)")
	fs.StringVar(&m.tlsKey, "mqtt-tls-key", getenv(env, "COID_MQTT_TLS_KEY"), "PEM private key of --mqtt-tls-cert (COID_MQTT_TLS_KEY)")
	fs.IntVar(&m.maxConns, "mqtt-max-conns", envInt(env, "COID_MQTT_MAX_CONNS", sensors.DefaultMaxConnections),
		"most connections the embedded broker keeps open, logged in or not; more are refused (COID_MQTT_MAX_CONNS)")
	fs.StringVar(&m.holdMargin, "hold-margin", or(getenv(env, "COID_HOLD_MARGIN"), coldchain.DefaultHoldMargin.String()),
		"warn when a dry shipper's projected LN2 hold time is shorter than the leg's remaining journey plus this (COID_HOLD_MARGIN)")
	fs.StringVar(&m.clientID, "mqtt-client-id", or(getenv(env, "COID_MQTT_CLIENT_ID"), sensors.DefaultClientID), "MQTT client ID of the subscriber; keep it fixed (COID_MQTT_CLIENT_ID)")
	fs.StringVar(&m.shareGroup, "mqtt-share-group", getenv(env, "COID_MQTT_SHARE_GROUP"),
		"with --mqtt-url, subscribe through $share/NAME/... so the instances of group NAME split the telemetry; each needs its own fixed --mqtt-client-id (COID_MQTT_SHARE_GROUP)")
}

// telemetry is the running MQTT intake: embedded broker (optional),
// subscriber, pipeline and excursion monitor.
type telemetry struct {
	log     *slog.Logger
	store   custody.TelemetryStore
	alerts  *sensors.AlertHub
	broker  *sensors.Broker
	sub     *sensors.Subscriber
	pipe    *sensors.Pipeline
	cancel  context.CancelFunc
	monDone chan struct{}
	once    sync.Once
	now     func() time.Time
	// monitorRunning is set while the excursion monitor runs here.
	monitorRunning atomic.Bool
	// metrics counts the alerts raised.
	metrics *metrics.Metrics
	// bus, when set, carries alerts to every instance sharing the store,
	// this one included, whose listener publishes them to its alert
	// streams; nil publishes them here only.
	bus custody.Broadcaster
}

// alertChannel is the broadcast channel of the alerts.
const alertChannel = "alerts"

func startTelemetry(m mqttSettings, store custody.TelemetryStore, svc *custody.Service, verifier sensors.PasswordVerifier, log *slog.Logger,
	mets *metrics.Metrics, lead custody.Leadership, bus custody.Broadcaster) (*telemetry, error) {
	t := &telemetry{log: log, store: store, alerts: sensors.NewAlertHub(), monDone: make(chan struct{}), now: time.Now, metrics: mets, bus: bus}
	margin, err := time.ParseDuration(m.holdMargin)
	if err != nil || margin <= 0 {
		return nil, usagef("serve: --hold-margin (COID_HOLD_MARGIN): give a positive duration such as 12h")
	}
	mon := sensors.NewMonitor(sensors.MonitorConfig{Service: svc, Readings: store, Logger: log, Alert: t.alert,
		Hold: coldchain.HoldConfig{Margin: margin}})
	// Readings committed here reach the monitor at once when it runs
	// here, and through the bus when another instance leads it.
	var bell *readingsBell
	if bus != nil {
		bell = &readingsBell{bus: bus, ring: make(chan struct{}, 1), log: log, gap: bellGap}
	}
	t.pipe, err = sensors.NewPipeline(sensors.PipelineConfig{Sink: store, Logger: log, Prefix: m.prefix,
		OnCommitted: committedHook(mon, bell, &t.monitorRunning)})
	if err != nil {
		return nil, err
	}
	url := m.url
	if (m.auth != "" || m.tlsCert != "" || m.tlsKey != "") && (url != "" || m.listen == "off") {
		t.pipe.Close()
		return nil, usagef("serve: --mqtt-auth and --mqtt-tls-* are for the embedded broker; an external one (--mqtt-url) keeps its own")
	}
	if m.shareGroup != "" {
		switch {
		case url == "":
			t.pipe.Close()
			return nil, usagef("serve: --mqtt-share-group shares an external broker's subscription; give --mqtt-url too")
		case !sensors.ValidShareGroup(m.shareGroup):
			t.pipe.Close()
			return nil, usagef("serve: --mqtt-share-group %q: give 1 to 64 letters, digits, '-', '_' or '.'", m.shareGroup)
		case m.clientID == sensors.DefaultClientID:
			// Two instances with one client ID take the session from each
			// other in turn; a client ID that changes on restart strands
			// the messages its old session holds.
			t.pipe.Close()
			return nil, usagef("serve: --mqtt-share-group needs a fixed --mqtt-client-id of this instance's own (COID_MQTT_CLIENT_ID), not the default %q", sensors.DefaultClientID)
		}
	}
	if (m.tlsCert == "") != (m.tlsKey == "") {
		t.pipe.Close()
		return nil, usagef("serve: give both --mqtt-tls-cert and --mqtt-tls-key, or neither")
	}
	username, password := m.username, m.password
	if url == "" && m.listen != "off" {
		if m.maxConns < 1 {
			t.pipe.Close()
			return nil, usagef("serve: --mqtt-max-conns (COID_MQTT_MAX_CONNS): give a whole number of at least 1")
		}
		bc := sensors.BrokerConfig{Listen: m.listen, Logger: log, Prefix: m.prefix, Pipeline: t.pipe, IngestClientID: m.clientID,
			MaxConnections: m.maxConns}
		if m.auth != "" {
			if bc.Accounts, err = sensors.LoadBrokerAccounts(m.auth); err != nil {
				t.pipe.Close()
				return nil, usagef("serve: --mqtt-auth: %v", err)
			}
			bc.Verifier = verifier
		}
		if m.tlsCert != "" {
			cert, err := tls.LoadX509KeyPair(m.tlsCert, m.tlsKey)
			if err != nil {
				t.pipe.Close()
				return nil, usagef("serve: --mqtt-tls-cert/--mqtt-tls-key: %v", err)
			}
			bc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		t.broker, err = sensors.StartBroker(bc)
		switch {
		case errors.Is(err, sensors.ErrAddrInUse):
			t.pipe.Close()
			return nil, usagef("%v; to use the broker already running there, start with --mqtt-url tcp://%s (or pick another --mqtt-listen)", err, m.listen)
		case errors.Is(err, custody.ErrInvalid):
			t.pipe.Close()
			return nil, usagef("serve: %v", err)
		case err != nil:
			t.pipe.Close()
			return nil, err
		default:
			url = t.broker.IngestURL()
			username, password = t.broker.IngestCredentials()
			log.Info("embedded MQTT broker listening", "mqtt_listen", t.broker.Addr(), "url", t.broker.URL(), "accounts", len(bc.Accounts),
				"authenticated", bc.Accounts != nil, "tls", bc.TLS != nil, "max_connections", bc.MaxConnections)
		}
	}
	if url != "" {
		t.sub, err = sensors.NewSubscriber(sensors.SubscriberConfig{URL: url, ClientID: m.clientID, Username: username, Password: password,
			CAFile: m.ca, Prefix: m.prefix, ShareGroup: m.shareGroup, Pipeline: t.pipe, Logger: log, Now: t.now})
		if err != nil {
			t.stop()
			return nil, usagef("serve: %v", err)
		}
		t.sub.Start()
		if t.broker != nil {
			// The embedded broker is in this process: the subscription is
			// in place within moments, and /healthz should not report the
			// intake down in them.
			wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := t.sub.WaitSubscribed(wctx); err != nil {
				log.Warn("the subscriber is not yet subscribed to the embedded broker", "err", err)
			}
			cancel()
		}
		log.Info("mqtt subscriber started", "broker", url, "filter", t.sub.Filter(), "client_id", m.clientID)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	var listening sync.WaitGroup
	if bus != nil {
		listening.Go(func() { t.listenAlerts(ctx) })
		listening.Go(func() { bell.Run(ctx) })
	}
	go func() {
		defer close(t.monDone)
		runLed(ctx, lead, "excursion-monitor", &t.monitorRunning, log, monitorJob(mon, bus))
		listening.Wait()
	}()
	return t, nil
}

// readingsChannel is the broadcast channel on which an instance says it
// committed readings, for the instance leading the monitor. The payload is
// empty: the leader reads what was stored from the store's reading log.
const readingsChannel = "readings"

// bellGap is the least time between two broadcasts of readingsBell: the
// leader's monitor settles 250 ms after a wake-up anyway, so ringing more
// often would only load the database.
const bellGap = 100 * time.Millisecond

// readingsBell tells the instances sharing the store, through the bus,
// that this one committed readings: at most one broadcast in flight and
// one waiting, however many batches commit meanwhile, and gap apart.
type readingsBell struct {
	bus  custody.Broadcaster
	ring chan struct{} // capacity 1
	log  *slog.Logger
	gap  time.Duration
}

// committedHook is the pipeline's OnCommitted: the readings committed go
// to the monitor, and, while it runs on another instance (leading false),
// bell rings for it (nil: no other instance).
func committedHook(mon *sensors.Monitor, bell *readingsBell, leading *atomic.Bool) func([]custody.Reading, custody.IngestResult) {
	return func(rs []custody.Reading, res custody.IngestResult) {
		mon.Notify(rs, res)
		if bell != nil && !leading.Load() {
			bell.Ring()
		}
	}
}

// Ring asks for a broadcast; it never blocks.
func (b *readingsBell) Ring() {
	select {
	case b.ring <- struct{}{}:
	default:
	}
}

// Run broadcasts once for each Ring heard, until ctx ends.
func (b *readingsBell) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.ring:
		}
		if err := b.bus.Broadcast(ctx, readingsChannel, nil); err != nil && ctx.Err() == nil {
			// The leader judges them at its next full check instead.
			b.log.Warn("could not tell the monitor's leader of readings committed here", "err", err)
		}
		if b.gap > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(b.gap):
			}
		}
	}
}

// monitorJob is the job runLed runs: the monitor, woken while it runs
// here by the readings other instances commit (heard on bus; nil: no
// other instance).
func monitorJob(mon *sensors.Monitor, bus custody.Broadcaster) func(context.Context) {
	return func(held context.Context) {
		if bus == nil {
			mon.Run(held)
			return
		}
		var wg sync.WaitGroup
		wg.Go(func() { _ = bus.Listen(held, readingsChannel, func([]byte) { mon.Wake() }) })
		mon.Run(held)
		wg.Wait()
	}
}

// runLed runs job while this instance leads it: with no leadership (a
// store only this process opens) at once, until ctx ends; otherwise each
// time lead makes this instance the leader, stopping the job when the
// leadership is lost and waiting to lead again. running is true while the
// job runs here.
func runLed(ctx context.Context, lead custody.Leadership, name string, running *atomic.Bool, log *slog.Logger, job func(context.Context)) {
	if lead == nil {
		running.Store(true)
		defer running.Store(false)
		job(ctx)
		return
	}
	for ctx.Err() == nil {
		held, release, err := lead.Lead(ctx, name)
		if err != nil {
			return // ctx ended
		}
		log.Info("this instance leads", "job", name)
		running.Store(true)
		job(held)
		running.Store(false)
		release()
		if ctx.Err() == nil {
			log.Warn("this instance no longer leads; waiting to lead again", "job", name)
		}
	}
}

// reloadAccounts reads the credentials file again and gives the embedded
// broker its accounts; on any error it keeps the ones it has.
func (t *telemetry) reloadAccounts(file string) {
	if t.broker == nil || file == "" {
		t.log.Warn("SIGHUP: no embedded broker with accounts (--mqtt-auth) to reload")
		return
	}
	accounts, err := sensors.LoadBrokerAccounts(file)
	closed := 0
	if err == nil {
		closed, err = t.broker.SetAccounts(accounts)
	}
	if err != nil {
		t.log.Error("MQTT accounts not reloaded; the broker keeps the accounts it had", "file", file, "err", err)
		return
	}
	t.log.Info("MQTT accounts reloaded", "file", file, "accounts", len(accounts), "connections_closed", closed)
}

func (t *telemetry) alert(a sensors.Alert) {
	t.publish(a)
	kind := "excursion"
	if a.Warning != nil {
		kind = "hold_warning"
	}
	t.metrics.Alert(kind)
	if t.sub != nil {
		b, _ := json.Marshal(a)
		t.sub.Publish(sensors.AlertTopic(a.COI), b)
	}
}

// publish gives an alert to the alert streams: of every instance through
// the bus when there is one (this one hears it back), else of this one.
// When the bus fails the alert reaches this instance's streams at least.
func (t *telemetry) publish(a sensors.Alert) {
	if t.bus != nil {
		b, err := json.Marshal(a)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = t.bus.Broadcast(ctx, alertChannel, b)
			cancel()
		}
		if err == nil {
			return
		}
		t.log.Error("alert not broadcast to the other instances; this one's streams have it", "err", err)
	}
	t.alerts.Publish(a)
}

// listenAlerts publishes the alerts broadcast by any instance to this
// one's alert streams, until ctx ends.
func (t *telemetry) listenAlerts(ctx context.Context) {
	_ = t.bus.Listen(ctx, alertChannel, func(b []byte) {
		var a sensors.Alert
		if err := json.Unmarshal(b, &a); err != nil {
			t.log.Error("a broadcast alert cannot be read", "err", err)
			return
		}
		t.alerts.Publish(a)
	})
}

func (t *telemetry) apiConfig() api.TelemetryConfig {
	return api.TelemetryConfig{Alerts: t.alerts, Quarantine: t.store}
}

// stop ends intake in order: the subscriber and broker (no new messages),
// the pipeline (what was taken is committed and acknowledged), then the
// monitor.
func (t *telemetry) stop() {
	t.once.Do(func() {
		if t.sub != nil {
			t.sub.Close()
		}
		if t.broker != nil {
			if err := t.broker.Close(); err != nil {
				t.log.Error("closing MQTT broker", "err", err)
			}
		}
		t.pipe.Close()
		if t.cancel != nil {
			t.cancel()
			<-t.monDone
		}
		t.log.Info("telemetry intake stopped", "stats", fmt.Sprintf("%+v", t.pipe.Stats()))
	})
}
