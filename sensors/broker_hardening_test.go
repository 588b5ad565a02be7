package sensors_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/sensors"
)

// logBuffer is a log destination tests read while the broker writes it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until the log holds every one of parts on one line.
func (l *logBuffer) waitFor(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for line := range strings.SplitSeq(l.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return line
			}
		}
		if time.Now().After(deadline) {
			logged := l.String()
			t.Fatalf("no log line with %q in:\n%s", parts, logged[max(0, len(logged)-4096):])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hardEnv is a broker with accounts SHP-A (its own telemetry) and gw-1
// (every shipper's), coid's own subscriber connected to it as ingestID,
// and the broker's log at debug level.
type hardEnv struct {
	b        *sensors.Broker
	st       *boltstore.Store
	log      *logBuffer
	ingestID string
}

const (
	passA  = "password of shipper A"
	passGW = "password of gateway 1"
)

func newHardEnv(t *testing.T, verifier sensors.PasswordVerifier) *hardEnv {
	t.Helper()
	if verifier == nil {
		verifier = passwd.Fast()
	}
	st, pipe := storeAndPipeline(t)
	a, _ := sensors.NewBrokerAccount("SHP-A", fastHash(t, passA), nil)
	gw, _ := sensors.NewBrokerAccount("gw-1", fastHash(t, passGW), []string{"*"})
	e := &hardEnv{st: st, log: new(logBuffer), ingestID: "coid-test-ingest"}
	logger := slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", Logger: logger, Pipeline: pipe,
		IngestClientID: e.ingestID, Accounts: []sensors.BrokerAccount{a, gw}, Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	e.b = b
	user, pass := b.IngestCredentials()
	sub, err := sensors.NewSubscriber(sensors.SubscriberConfig{URL: b.URL(), ClientID: e.ingestID, Username: user, Password: pass,
		Pipeline: pipe, Logger: quiet, MaxReconnectInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sub.Start()
	t.Cleanup(sub.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sub.WaitSubscribed(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// connect connects a paho client (MQTT 3.1.1) as user with clientID
// (a random one if empty); lost hears of the connection's loss.
func (e *hardEnv) connect(clientID, user, pass string, lost chan<- error) (mqtt.Client, error) {
	if clientID == "" {
		clientID = "c-" + randID(nil)
	}
	o := mqtt.NewClientOptions().AddBroker(e.b.URL()).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetProtocolVersion(4).SetConnectTimeout(5 * time.Second)
	if lost != nil {
		o.SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost <- err })
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(60 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	return c, tok.Error()
}

// mqttLen encodes n as an MQTT remaining length.
func mqttLen(n int) []byte {
	var out []byte
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			return out
		}
	}
}

// mqttStr encodes s as an MQTT string.
func mqttStr(s string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...)
}

// rawConnect opens a TCP connection and logs in with MQTT 3.1.1 as user,
// with a will on willTopic when it is not empty; it fails the test unless
// the broker accepts.
func rawConnect(t *testing.T, addr, clientID, user, pass, willTopic string, willPayload []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	flags := byte(0xC2) // user name, password, clean session
	body := append(mqttStr("MQTT"), 4, 0, 0, 60)
	payload := mqttStr(clientID)
	if willTopic != "" {
		flags |= 0x04 // will, QoS 0
		payload = append(payload, mqttStr(willTopic)...)
		payload = append(payload, mqttStr(string(willPayload))...)
	}
	body[7] = flags
	payload = append(append(payload, mqttStr(user)...), mqttStr(pass)...)
	body = append(body, payload...)
	pkt := append(append([]byte{0x10}, mqttLen(len(body))...), body...)
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.ReadFull(conn, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("connect as %s: CONNACK % x, %v", user, ack, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn
}

// expectClosed reads conn until the broker closes it. The deadline is a
// guard only: the broker closes at once, or (before the fix) not at all.
func expectClosed(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the broker kept the connection open, waiting for the packet", what)
	}
}

// totalAlloc returns the bytes allocated by the process so far.
func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// hugeLen is the largest remaining length MQTT can announce (256 MiB).
const hugeLen = 1<<28 - 1

// TestBrokerRefusesHugePacketsBeforeLogin: connections that announce a
// CONNECT of 256 MiB, or of 1 MiB (no login needs that much), are closed
// at once without the broker allocating what they announce.
func TestBrokerRefusesHugePacketsBeforeLogin(t *testing.T) {
	e := newHardEnv(t, nil)
	before := totalAlloc()
	for i, n := range []int{hugeLen, hugeLen, hugeLen, sensors.MaxPayloadBytes} {
		conn, err := net.Dial("tcp", e.b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write(append([]byte{0x10}, mqttLen(n)...)); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, conn, fmt.Sprintf("CONNECT %d announcing %d bytes", i, n))
	}
	if grew := totalAlloc() - before; grew > 64<<20 {
		t.Fatalf("the broker allocated %d MiB for packets it never received", grew>>20)
	}
	e.log.waitFor(t, "larger than the broker accepts")
}

// TestBrokerRefusesHugePacketsAfterLogin: a logged-in shipper announcing a
// publish of 256 MiB is disconnected without the broker allocating it,
// while a publish of the decoder's largest payload still goes through.
func TestBrokerRefusesHugePacketsAfterLogin(t *testing.T) {
	e := newHardEnv(t, nil)
	conn := rawConnect(t, e.b.Addr(), "c-"+randID(t), "SHP-A", passA, "", nil)
	before := totalAlloc()
	if _, err := conn.Write(append([]byte{0x32}, mqttLen(hugeLen)...)); err != nil { // PUBLISH, QoS 1
		t.Fatal(err)
	}
	expectClosed(t, conn, "PUBLISH announcing 256 MiB")
	if grew := totalAlloc() - before; grew > 64<<20 {
		t.Fatalf("the broker allocated %d MiB for a packet it never received", grew>>20)
	}
	c, err := e.connect("", "SHP-A", passA, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(10)
	big := bytes.Repeat([]byte("x"), sensors.MaxPayloadBytes) // malformed: quarantined, then acknowledged
	tok := c.Publish(sensors.TelemetryTopic(sensors.DefaultTopicPrefix, "SHP-A"), 1, false, big)
	if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("a payload of MaxPayloadBytes was not acknowledged: %v", tok.Error())
	}
}

// TestBrokerNeverLogsPayloads: a publish refused for its topic, and one
// taken by the durable path, leave their topic, client, user and size in
// the log (at debug level too), never their payload.
func TestBrokerNeverLogsPayloads(t *testing.T) {
	e := newHardEnv(t, nil)
	lost := make(chan error, 1)
	c, err := e.connect("c-payload-a", "SHP-A", passA, lost)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(10)
	body := bytes.Repeat([]byte("Z"), 64<<10)
	own := c.Publish(sensors.TelemetryTopic(sensors.DefaultTopicPrefix, "SHP-A"), 1, false, body)
	if !own.WaitTimeout(60*time.Second) || own.Error() != nil {
		t.Fatalf("own topic: %v", own.Error())
	}
	other := sensors.TelemetryTopic(sensors.DefaultTopicPrefix, "SHP-B")
	c.Publish(other, 1, false, body)
	select {
	case <-lost:
	case <-time.After(60 * time.Second):
		t.Fatal("a publish to another shipper's topic left the connection open")
	}
	line := e.log.waitFor(t, "publish refused", "topic="+other, "client=c-payload-a", "user=SHP-A", "bytes=65536")
	if logged := e.log.String(); strings.Contains(logged, "90 90 90") || strings.Contains(logged, "ZZZZ") || len(logged) > 32<<10 {
		t.Fatalf("the log holds payloads (%d bytes): %.2000s", len(logged), logged)
	}
	t.Log(line)
}

// TestBrokerAccountsCannotSubscribe: no account (a shipper's or a
// gateway's) may subscribe, to alerts or anything else; coid's own user
// still may.
func TestBrokerAccountsCannotSubscribe(t *testing.T) {
	e := newHardEnv(t, nil)
	for _, cred := range [][2]string{{"SHP-A", passA}, {"gw-1", passGW}} {
		c, err := e.connect("", cred[0], cred[1], nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, filter := range []string{"coid/alerts/#", "coid/alerts/COI-1", "#", "shippers/+/telemetry", "$SYS/#"} {
			tok := c.Subscribe(filter, 1, func(mqtt.Client, mqtt.Message) {})
			if !tok.WaitTimeout(60 * time.Second) {
				t.Fatalf("%s subscribing to %s: no SUBACK", cred[0], filter)
			}
			if rc := tok.(*mqtt.SubscribeToken).Result()[filter]; rc != 0x80 {
				t.Errorf("%s subscribed to %s (SUBACK %#x)", cred[0], filter, rc)
			}
		}
		c.Disconnect(10)
	}
	e.log.waitFor(t, "subscription refused", "user=gw-1")
	user, pass := e.b.IngestCredentials()
	got := make(chan string, 1)
	obs, err := e.connect("", user, pass, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Disconnect(10)
	if tok := obs.Subscribe("coid/alerts/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() }); !tok.WaitTimeout(60*time.Second) ||
		tok.(*mqtt.SubscribeToken).Result()["coid/alerts/#"] != 1 {
		t.Fatal("coid's own user cannot subscribe to alerts")
	}
	obs.Publish("coid/alerts/COI-1", 1, false, []byte("{}"))
	select {
	case <-got:
	case <-time.After(60 * time.Second):
		t.Fatal("coid's own user did not get its alert")
	}
}

// TestBrokerRefusesQoS2Telemetry: a QoS 2 telemetry publish is never
// confirmed (it could not be stored before it is): the connection is
// closed, a line logged, and nothing stored.
func TestBrokerRefusesQoS2Telemetry(t *testing.T) {
	e := newHardEnv(t, nil)
	lost := make(chan error, 1)
	c, err := e.connect("c-qos2", "SHP-A", passA, lost)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(10)
	tok := c.Publish(sensors.TelemetryTopic(sensors.DefaultTopicPrefix, "SHP-A"), 2, false, payload("SHP-A", 1, time.Now().Add(-time.Hour)))
	select {
	case <-lost:
	case <-time.After(60 * time.Second):
		t.Fatalf("QoS 2 telemetry taken (token done %v, %v)", tok.WaitTimeout(0), tok.Error())
	}
	if tok.WaitTimeout(time.Second) && tok.Error() == nil {
		t.Fatal("QoS 2 telemetry confirmed")
	}
	e.log.waitFor(t, "QoS 2", "client=c-qos2", "user=SHP-A")
	if rs, _, err := e.st.ShipperReadings(context.Background(), "SHP-A", time.Time{}, time.Time{}, 0); err != nil || len(rs) != 0 {
		t.Fatalf("stored %d readings, %v", len(rs), err)
	}
}

// TestBrokerReservesIngestClientID: no account may connect with coid's own
// subscriber's client ID (the configured one, or the default), which would
// take over its session.
func TestBrokerReservesIngestClientID(t *testing.T) {
	e := newHardEnv(t, nil)
	for _, id := range []string{e.ingestID, sensors.DefaultClientID} {
		if c, err := e.connect(id, "SHP-A", passA, nil); err == nil {
			c.Disconnect(10)
			t.Fatalf("an account connected as %s", id)
		}
		e.log.waitFor(t, "client ID is reserved", "client="+id, "user=SHP-A")
	}
	if strings.Contains(e.log.String(), "session taken over") {
		t.Fatal("coid's subscriber's session was taken over")
	}
}

// gatedVerifier holds its first verification until released.
type gatedVerifier struct {
	sensors.PasswordVerifier
	once             sync.Once
	started, release chan struct{}
}

func (v *gatedVerifier) Verify(encoded, password string) (bool, error) {
	first := false
	v.once.Do(func() { first = true })
	if first {
		close(v.started)
		<-v.release
	}
	return v.PasswordVerifier.Verify(encoded, password)
}

// TestBrokerReloadDuringPasswordCheck: a connect whose old password is
// being checked while a reload changes that account's password does not
// get in (the reload's sweep cannot see it yet).
func TestBrokerReloadDuringPasswordCheck(t *testing.T) {
	v := &gatedVerifier{PasswordVerifier: passwd.Fast(), started: make(chan struct{}), release: make(chan struct{})}
	old, _ := sensors.NewBrokerAccount("SHP-A", fastHash(t, passA), nil)
	b, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", Logger: quiet,
		Accounts: []sensors.BrokerAccount{old}, Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	res := make(chan error, 1)
	go func() {
		o := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("c-" + randID(t)).SetUsername("SHP-A").SetPassword(passA).
			SetAutoReconnect(false).SetConnectRetry(false)
		c := mqtt.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(60 * time.Second) {
			res <- errors.New("connect timed out")
			return
		}
		if tok.Error() == nil {
			c.Disconnect(10)
		}
		res <- tok.Error()
	}()
	<-v.started
	rotated, _ := sensors.NewBrokerAccount("SHP-A", fastHash(t, "the new password of A"), nil)
	if _, err := b.SetAccounts([]sensors.BrokerAccount{rotated}); err != nil {
		t.Fatal(err)
	}
	close(v.release)
	if err := <-res; err == nil {
		t.Fatal("the old password got in after the reload that changed it")
	}
}

// TestBrokerIgnoresAccountWills: an account's will is never published (it
// would reach subscribers without any access check: a shipper could have
// its will stored as another shipper's telemetry).
func TestBrokerIgnoresAccountWills(t *testing.T) {
	e := newHardEnv(t, nil)
	user, pass := e.b.IngestCredentials()
	seen := make(chan string, 16)
	obs, err := e.connect("", user, pass, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Disconnect(10)
	for _, f := range []string{"shippers/#", "coid/alerts/#"} {
		if tok := obs.Subscribe(f, 0, func(_ mqtt.Client, m mqtt.Message) { seen <- m.Topic() }); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	forged := sensors.TelemetryTopic(sensors.DefaultTopicPrefix, "SHP-B")
	conn := rawConnect(t, e.b.Addr(), "c-will", "SHP-A", passA, forged, payload("SHP-B", 7, time.Now().Add(-time.Hour)))
	conn.Close() // abruptly: the broker would send the will
	// Mochi publishes a will before it logs the disconnect; a marker sent
	// after that reaches the observer after any will.
	e.log.waitFor(t, "client disconnected", "client=c-will")
	obs.Publish("coid/alerts/marker", 0, false, []byte("{}"))
	for done := false; !done; {
		select {
		case topic := <-seen:
			if topic == forged {
				t.Fatal("an account's will was published to another shipper's telemetry topic")
			}
			done = topic == "coid/alerts/marker"
		case <-time.After(60 * time.Second):
			t.Fatal("the marker did not arrive")
		}
	}
	e.log.waitFor(t, "will dropped", "client=c-will", "user=SHP-A")
}
