package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/sensors"
)

// sseEvent is one server-sent event of the alert stream.
type sseEvent struct {
	name string
	data sensors.Alert
}

// TestHoldWarningEndToEnd: LN2 readings published to the real embedded
// MQTT broker, stored by the pipeline in a bbolt store and judged by the
// monitor, show a lid left open; the hold-time warning reaches the alert
// stream (SSE) and the MQTT alert topic once, although later readings
// renew it, and is in the chain; the leg then running past its planned
// arrival raises the late warning, once. The clock is injected.
func TestHoldWarningEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setClock := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	log := slog.New(slog.DiscardHandler)
	svc, err := custody.NewService(custody.Config{Store: store, Hasher: passwd.Fast(), Logger: log, Now: clock, FIN: "A9999",
		Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())), Telemetry: custody.TelemetryConfig{Readings: store}})
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for id, r := range map[string]custody.Role{"coord": custody.RoleCoordinator, "n1": custody.RoleNurse, "n2": custody.RoleNurse,
		"cour": custody.RoleCourier, "qa1": custody.RoleQA} {
		if tokens[id], err = svc.AddUser(ctx, id, "Printed "+id, r, password(id)); err != nil {
			t.Fatal(err)
		}
	}
	u := func(id string) custody.User { x, _ := store.User(ctx, id); return x }
	s := func(id string, m custody.Meaning) custody.SignatureRequest {
		return custody.SignatureRequest{User: id, Password: password(id), Meaning: m}
	}
	c, err := svc.Enroll(ctx, u("coord"), custody.EnrollRequest{Patient: custody.PHI{Name: "Jane Doe", BirthDate: "1970-01-02", MRN: "MRN-1"},
		Product: "CAR-T", Sites: custody.Sites{Collection: "A", Manufacturing: "B", Treatment: "C"}})
	if err != nil {
		t.Fatal(err)
	}
	step := func(step custody.Step, data any, sigs ...custody.SignatureRequest) {
		b, _ := json.Marshal(data)
		if _, err := svc.Record(ctx, u("n1"), c.COI, custody.StepRequest{Step: step, Data: b, Signatures: sigs}); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	step(custody.StepCollect, map[string]any{"din": "A999926123456", "volume_ml": 200, "bags": 1, "started_at": "2026-11-23T06:00:00Z",
		"ended_at": "2026-11-23T07:00:00Z"}, s("n1", custody.MeaningPerformed), s("n2", custody.MeaningVerified))
	planned := now.Add(24 * time.Hour)
	step(custody.StepShip, map[string]any{"shipper": "SHP-0042", "profile": "cryogenic", "planned_arrival": planned.Format(time.RFC3339)},
		s("n1", custody.MeaningHandedOver), s("cour", custody.MeaningReceived))
	shipped := clock()

	// The intake as coid serve wires it: broker, pipeline, subscriber,
	// monitor, alerts to the hub (SSE) and the MQTT alert topic.
	hub := sensors.NewAlertHub()
	var sub *sensors.Subscriber
	var subMu sync.Mutex
	mon := sensors.NewMonitor(sensors.MonitorConfig{Service: svc, Readings: store, Logger: log, Interval: time.Hour, Settle: 10 * time.Millisecond,
		Alert: func(a sensors.Alert) {
			hub.Publish(a)
			b, _ := json.Marshal(a)
			subMu.Lock()
			defer subMu.Unlock()
			sub.Publish(sensors.AlertTopic(a.COI), b)
		}})
	prefix := "holdtest"
	pipe, err := sensors.NewPipeline(sensors.PipelineConfig{Sink: store, Logger: log, Prefix: prefix, Now: clock, OnCommitted: mon.Notify})
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	broker, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", Logger: log, Prefix: prefix, Pipeline: pipe, IngestClientID: "coid-ingest"})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	subMu.Lock()
	sub, err = sensors.NewSubscriber(sensors.SubscriberConfig{URL: broker.URL(), ClientID: "coid-ingest", Prefix: prefix, Pipeline: pipe, Logger: log})
	subMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	sub.Start()
	defer sub.Close()
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second) // catches a hang only
	defer wcancel()
	if err := sub.WaitSubscribed(wctx); err != nil {
		t.Fatal(err)
	}
	monDone := make(chan struct{})
	go func() { defer close(monDone); mon.Run(ctx) }()
	defer func() { cancel(); <-monDone }()

	// A watcher on the MQTT alert topic.
	mqttAlerts := make(chan sensors.Alert, 16)
	watcher := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("watcher").SetCleanSession(true))
	if tok := watcher.Connect(); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher connect: %v", tok.Error())
	}
	defer watcher.Disconnect(50)
	if tok := watcher.Subscribe("coid/alerts/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		var a sensors.Alert
		if json.Unmarshal(m.Payload(), &a) == nil && m.Topic() == sensors.AlertTopic(a.COI) {
			mqttAlerts <- a
		}
	}); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher subscribe: %v", tok.Error())
	}

	// QA's alert stream.
	srv, err := api.New(api.Config{Service: svc, Logger: log, Version: "test", Telemetry: api.TelemetryConfig{Alerts: hub}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/api/v1/alerts/stream", nil)
	req.Header.Set("Authorization", "Bearer "+tokens["qa1"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("alert stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	events := make(chan sseEvent, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data)
			case line == "" && ev.name != "":
				events <- ev
				ev = sseEvent{}
			}
		}
	}()

	// The shipper reports its LN2 charge every minute: steady boil-off
	// (0.5 %/h) for 40 minutes, then the lid is left open (20 %/h).
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("shipper").SetCleanSession(true))
	if tok := pub.Connect(); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("shipper connect: %v", tok.Error())
	}
	defer pub.Disconnect(50)
	stored := 0
	send := func(from, to int) {
		t.Helper()
		setClock(shipped.Add(time.Duration(to)*time.Minute + 30*time.Second))
		var items []string
		for m := from; m <= to; m++ {
			level := 80 - 0.5*float64(m)/60
			if m > 40 {
				level = 80 - 0.5*40/60 - 20*float64(m-40)/60
			}
			items = append(items, fmt.Sprintf(`{"shipper":"SHP-0042","seq":%d,"time":%q,"temp_c":-185,"tilt_deg":2,"lid_open":false,"ln2_pct":%.2f}`,
				m, shipped.Add(time.Duration(m)*time.Minute).Format(time.RFC3339), level))
		}
		if tok := pub.Publish(prefix+"/SHP-0042/telemetry", 1, false, "["+strings.Join(items, ",")+"]"); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		stored += to - from + 1
		deadline := time.Now().Add(60 * time.Second) // catches a hang only
		for {
			n, err := store.ReadingsCount(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n >= stored {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d readings stored, want %d", n, stored)
			}
			time.Sleep(10 * time.Millisecond)
		}
		mon.Check(ctx, nil) // the leg judged with these readings, whatever the monitor's own timing
	}
	// next returns the next event but the silence excursion that the
	// clock's jump to the planned arrival makes.
	next := func(what string) sseEvent {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.name == "excursion" && ev.data.Excursion.Kind == custody.ExcursionSilence {
					continue
				}
				return ev
			case <-time.After(60 * time.Second): // catches a hang only
				t.Fatalf("no %s on the alert stream", what)
			}
		}
	}
	// Batches of ten minutes, the clock just past each: the monitor, which
	// may judge the leg between a batch's clock and its readings, never
	// sees a gap as long as a silence.
	for m := 1; m <= 40; m += 10 {
		send(m, m+9)
	}
	if ch, _ := svc.Chain(ctx, c.COI); len(ch.Records) != 3 {
		t.Fatalf("steady boil-off recorded %d records after the ship step", len(ch.Records)-3)
	}
	for m := 41; m <= 70; m += 10 {
		send(m, m+9)
	}
	ev := next("hold-time warning")
	if ev.name != "warning" || ev.data.Warning == nil || ev.data.Warning.Cause != custody.HoldCauseHoldTime || ev.data.COI != c.COI ||
		ev.data.Warning.Leg != 1 || ev.data.Warning.Projection.RatePctPerHour < 2 || ev.data.Warning.Projection.PlannedArrival == nil {
		t.Fatalf("first event %+v %+v", ev, ev.data.Warning)
	}
	first := ev.data.Seq
	// More readings renew the condition; nothing more is raised. The
	// late warning then comes next on the stream: nothing came between.
	send(71, 80)
	send(81, 90)
	setClock(planned.Add(time.Minute))
	mon.Check(ctx, nil)
	ev = next("late warning")
	if ev.name != "warning" || ev.data.Warning == nil || ev.data.Warning.Cause != custody.HoldCauseLate {
		t.Fatalf("second event %+v, want the late warning (the hold-time one only once)", ev)
	}
	mon.Check(ctx, nil)
	// The MQTT alert topic carried the same two, once each.
	var got []custody.HoldWarningCause
	for len(got) < 2 {
		select {
		case a := <-mqttAlerts:
			if a.Warning == nil && a.Excursion.Kind == custody.ExcursionSilence {
				continue
			}
			if a.Warning == nil {
				t.Fatalf("MQTT alert %+v", a)
			}
			got = append(got, a.Warning.Cause)
		case <-time.After(60 * time.Second): // catches a hang only
			t.Fatalf("MQTT alerts %v", got)
		}
	}
	if got[0] != custody.HoldCauseHoldTime || got[1] != custody.HoldCauseLate {
		t.Fatalf("MQTT alerts %v", got)
	}
	// The chain holds the two warning records, system-signed; the one
	// open issue is the silence excursion: a warning blocks nothing.
	ch, err := svc.Chain(ctx, c.COI)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := custody.ChainHoldWarnings(ch)
	if err != nil || len(ws) != 2 || ws[0].Seq != first || len(ch.OpenIssues()) != 1 {
		t.Fatalf("warnings %+v issues %+v %v", ws, ch.OpenIssues(), err)
	}
	for _, r := range ch.Records {
		if r.Step == custody.StepHoldWarning && (r.SubmittedBy != custody.SystemUser || r.Signatures[0].Role != custody.RoleSystem) {
			t.Fatalf("warning record %+v", r)
		}
	}
	if rep, err := svc.VerifyLedger(ctx); err != nil || !rep.OK {
		t.Fatalf("ledger: %+v %v", rep, err)
	}
	if rep, err := svc.VerifyChain(ctx, c.COI); err != nil || !rep.OK {
		t.Fatalf("chain: %+v %v", rep, err)
	}
	select {
	case ev := <-events:
		t.Fatalf("a further event %+v", ev)
	case a := <-mqttAlerts:
		t.Fatalf("a further MQTT alert %+v", a)
	default:
	}
}
