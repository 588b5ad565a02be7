package sensors_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/sensors"
)

func TestParseBrokerAccounts(t *testing.T) {
	h, err := passwd.Fast().Hash("a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	good := "# shippers\n\nSHP-0042:" + h + ":SHP-0042\ngw-1:" + h + ":*\ngw-2:" + h + ":SHP-1,SHP-2\n"
	as, err := sensors.ParseBrokerAccounts([]byte(good))
	if err != nil || len(as) != 3 {
		t.Fatalf("%d accounts, %v", len(as), err)
	}
	if !as[1].MayPublishFor("SHP-9") || as[2].MayPublishFor("SHP-3") || !as[2].MayPublishFor("SHP-2") || as[0].MayPublishFor("SHP-0043") {
		t.Fatalf("shipper rules: %+v", as)
	}
	if again, err := sensors.ParseBrokerAccounts([]byte(as[2].Line())); err != nil || again[0].User != "gw-2" {
		t.Fatalf("line round trip: %v %v", again, err)
	}
	for name, bad := range map[string]string{
		"no hash":          "SHP-1\n",
		"no shippers":      "SHP-1:" + h + "\n",
		"bad user":         "shp 1:" + h + ":SHP-1\n",
		"reserved user":    "$coid-ingest:" + h + ":*\n",
		"not argon2id":     "SHP-1:$2a$10$abc:SHP-1\n",
		"bad shipper":      "gw:" + h + ":SHP-1,bad id\n",
		"empty shipper":    "gw:" + h + ":SHP-1,\n",
		"user named twice": "SHP-1:" + h + ":SHP-1\nSHP-1:" + h + ":SHP-1\n",
	} {
		if _, err := sensors.ParseBrokerAccounts([]byte(bad)); !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), "line") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// storeAndPipeline opens a store and a pipeline into it, closed when the
// test ends.
func storeAndPipeline(t *testing.T) (*boltstore.Store, *sensors.Pipeline) {
	t.Helper()
	st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pipe, err := sensors.NewPipeline(sensors.PipelineConfig{Sink: st, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pipe.Close)
	return st, pipe
}

// fastHash hashes p with the test parameters.
func fastHash(t *testing.T, p string) string {
	t.Helper()
	h, err := passwd.Fast().Hash(p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestBrokerAccounts runs the embedded broker with accounts, real paho
// clients and coid's own subscriber: strangers and wrong passwords are
// refused, a shipper publishes only its own telemetry, a gateway any
// shipper's, and only what was allowed is stored.
func TestBrokerAccounts(t *testing.T) {
	ctx := context.Background()
	st, pipe := storeAndPipeline(t)
	hash := func(p string) string { return fastHash(t, p) }
	shp, _ := sensors.NewBrokerAccount("SHP-A", hash("shipper password A"), nil)
	gw, _ := sensors.NewBrokerAccount("gw-1", hash("gateway password 1"), []string{"*"})
	b, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", Logger: quiet, Pipeline: pipe, IngestClientID: "coid-test",
		Accounts: []sensors.BrokerAccount{shp, gw}, Verifier: passwd.Fast()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	user, pass := b.IngestCredentials()
	if user == "" || len(pass) < 32 {
		t.Fatalf("ingest credentials %q %q", user, pass)
	}
	sub, err := sensors.NewSubscriber(sensors.SubscriberConfig{URL: b.URL(), ClientID: "coid-test", Username: user, Password: pass,
		Pipeline: pipe, Logger: quiet, MaxReconnectInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sub.Start()
	defer sub.Close()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := sub.WaitSubscribed(wctx); err != nil {
		t.Fatal(err)
	}
	connect := func(user, pass string) (mqtt.Client, error) {
		o := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("c-" + randID(t)).SetCleanSession(true).
			SetAutoReconnect(false).SetConnectRetry(false)
		if user != "" {
			o.SetUsername(user).SetPassword(pass)
		}
		c := mqtt.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(60 * time.Second) {
			return nil, errors.New("connect timed out")
		}
		return c, tok.Error()
	}
	for _, cred := range [][2]string{{"", ""}, {"SHP-A", "wrong password"}, {"nobody", "shipper password A"}, {user, "not it"}} {
		if c, err := connect(cred[0], cred[1]); err == nil {
			c.Disconnect(10)
			t.Fatalf("connect as %q with %q let in", cred[0], cred[1])
		}
	}
	base := time.Now().Add(-time.Hour)
	publish := func(c mqtt.Client, shipper string, seq int) error {
		tok := c.Publish(sensors.TelemetryTopic(sensors.DefaultTopicPrefix, shipper), 1, false, payload(shipper, seq, base))
		if !tok.WaitTimeout(60 * time.Second) {
			return errors.New("no PUBACK")
		}
		return tok.Error()
	}
	a, err := connect("SHP-A", "shipper password A")
	if err != nil {
		t.Fatal(err)
	}
	if err := publish(a, "SHP-A", 1); err != nil {
		t.Fatalf("shipper's own telemetry: %v", err)
	}
	// Another shipper's topic: the broker drops the connection, stores
	// nothing, and sends no PUBACK.
	if err := publish(a, "SHP-B", 1); err == nil {
		t.Fatal("a shipper published another shipper's telemetry")
	}
	a.Disconnect(10)
	// The same password again is let in without another derivation; a
	// wrong one still is not.
	if a, err = connect("SHP-A", "shipper password A"); err != nil {
		t.Fatal(err)
	}
	a.Disconnect(10)
	if _, err := connect("SHP-A", "shipper password B"); err == nil {
		t.Fatal("a wrong password let in after a right one")
	}
	g, err := connect("gw-1", "gateway password 1")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Disconnect(10)
	for _, s := range []string{"SHP-B", "SHP-C"} {
		if err := publish(g, s, 2); err != nil {
			t.Fatalf("gateway for %s: %v", s, err)
		}
	}
	for shipper, want := range map[string]int{"SHP-A": 1, "SHP-B": 1, "SHP-C": 1} {
		rs, _, err := st.ShipperReadings(ctx, shipper, time.Time{}, time.Time{}, 0)
		if err != nil || len(rs) != want {
			t.Fatalf("%s: %d readings, %v; want %d", shipper, len(rs), err, want)
		}
		if shipper == "SHP-B" && rs[0].Seq != 2 {
			t.Fatalf("SHP-B's stored reading came from the shipper, not the gateway: %+v", rs[0])
		}
	}
}

func TestBrokerWithoutAccountsListensOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:1883"} {
		if b, err := sensors.StartBroker(sensors.BrokerConfig{Listen: addr, Logger: quiet}); !errors.Is(err, custody.ErrInvalid) {
			if b != nil {
				b.Close()
			}
			t.Errorf("%s without accounts: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		b, err := sensors.StartBroker(sensors.BrokerConfig{Listen: addr, Logger: quiet})
		if err != nil {
			if strings.Contains(err.Error(), "cannot assign") { // no IPv6 loopback here
				continue
			}
			t.Fatalf("%s: %v", addr, err)
		}
		b.Close()
	}
	// Beyond loopback: accounts alone are not enough, TLS alone neither.
	srvTLS, _, _ := selfSigned(t)
	for name, cfg := range map[string]sensors.BrokerConfig{
		"accounts, no TLS": {Listen: "0.0.0.0:0", Logger: quiet, Accounts: []sensors.BrokerAccount{}, Verifier: passwd.Fast()},
		"TLS, no accounts": {Listen: "0.0.0.0:0", Logger: quiet, TLS: srvTLS},
	} {
		if b, err := sensors.StartBroker(cfg); !errors.Is(err, custody.ErrInvalid) {
			if b != nil {
				b.Close()
			}
			t.Errorf("%s on all interfaces: %v", name, err)
		}
	}
	b, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "0.0.0.0:0", Logger: quiet, Accounts: []sensors.BrokerAccount{},
		Verifier: passwd.Fast(), TLS: srvTLS})
	if err != nil {
		t.Fatalf("all interfaces with accounts and TLS: %v", err)
	}
	b.Close()
}

// selfSigned makes a certificate for 127.0.0.1 and localhost: the
// server's TLS configuration, a pool that trusts it, and its PEM.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "coid test broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}, pool,
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestBrokerTLS: a broker with TLS takes telemetry over ssl:// from a
// client that trusts its certificate, stores it through coid's own
// subscriber on the internal listener, and refuses plain MQTT on its port.
func TestBrokerTLS(t *testing.T) {
	srvTLS, pool, _ := selfSigned(t)
	st, pipe := storeAndPipeline(t)
	h, _ := passwd.Fast().Hash("shipper password")
	acct, _ := sensors.NewBrokerAccount("SHP-T", h, nil)
	b, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", Logger: quiet, Pipeline: pipe, IngestClientID: "coid-tls",
		Accounts: []sensors.BrokerAccount{acct}, Verifier: passwd.Fast(), TLS: srvTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !strings.HasPrefix(b.URL(), "ssl://") || !strings.HasPrefix(b.IngestURL(), "tcp://127.0.0.1:") || b.IngestURL() == "tcp://"+b.Addr() {
		t.Fatalf("URL %s, ingest URL %s", b.URL(), b.IngestURL())
	}
	user, pass := b.IngestCredentials()
	sub, err := sensors.NewSubscriber(sensors.SubscriberConfig{URL: b.IngestURL(), ClientID: "coid-tls", Username: user, Password: pass,
		Pipeline: pipe, Logger: quiet, MaxReconnectInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sub.Start()
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sub.WaitSubscribed(ctx); err != nil {
		t.Fatal(err)
	}
	connect := func(url string) (mqtt.Client, error) {
		o := mqtt.NewClientOptions().AddBroker(url).SetClientID("c-" + randID(t)).SetUsername("SHP-T").SetPassword("shipper password").
			SetAutoReconnect(false).SetConnectTimeout(3 * time.Second).SetTLSConfig(&tls.Config{RootCAs: pool})
		c := mqtt.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(60 * time.Second) {
			return nil, errors.New("connect timed out")
		}
		return c, tok.Error()
	}
	if c, err := connect("tcp://" + b.Addr()); err == nil {
		c.Disconnect(10)
		t.Fatal("plain MQTT accepted on the TLS port")
	}
	c, err := connect(b.URL())
	if err != nil {
		t.Fatalf("MQTT over TLS: %v", err)
	}
	defer c.Disconnect(10)
	tok := c.Publish(sensors.TelemetryTopic(sensors.DefaultTopicPrefix, "SHP-T"), 1, false, payload("SHP-T", 1, time.Now().Add(-time.Hour)))
	if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("publish over TLS: %v", tok.Error())
	}
	if rs, _, err := st.ShipperReadings(context.Background(), "SHP-T", time.Time{}, time.Time{}, 0); err != nil || len(rs) != 1 {
		t.Fatalf("stored %d, %v", len(rs), err)
	}
}

// TestBrokerAccountsReload replaces a running broker's accounts: a removed
// account's live connection is closed and it cannot come back, a new one
// gets in, and an invalid list changes nothing.
func TestBrokerAccountsReload(t *testing.T) {
	hash := func(p string) string { return fastHash(t, p) }
	a, _ := sensors.NewBrokerAccount("SHP-A", hash("password of A"), nil)
	b, _ := sensors.NewBrokerAccount("SHP-B", hash("password of B"), nil)
	br, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", Logger: quiet, Accounts: []sensors.BrokerAccount{a},
		Verifier: passwd.Fast()})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	lost := make(chan struct{}, 1)
	connect := func(user, pass string) (mqtt.Client, error) {
		o := mqtt.NewClientOptions().AddBroker(br.URL()).SetClientID("c-" + randID(t)).SetUsername(user).SetPassword(pass).
			SetAutoReconnect(false).SetConnectionLostHandler(func(mqtt.Client, error) { lost <- struct{}{} })
		c := mqtt.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(60 * time.Second) {
			return nil, errors.New("connect timed out")
		}
		return c, tok.Error()
	}
	ca, err := connect("SHP-A", "password of A")
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Disconnect(10)
	if _, err := connect("SHP-B", "password of B"); err == nil {
		t.Fatal("SHP-B let in before it had an account")
	}
	closed, err := br.SetAccounts([]sensors.BrokerAccount{b})
	if err != nil || closed != 1 {
		t.Fatalf("reload: closed %d, %v", closed, err)
	}
	select {
	case <-lost:
	case <-time.After(60 * time.Second):
		t.Fatal("the removed account's connection stayed open")
	}
	if _, err := connect("SHP-A", "password of A"); err == nil {
		t.Fatal("a removed account let in")
	}
	cb, err := connect("SHP-B", "password of B")
	if err != nil {
		t.Fatalf("the new account: %v", err)
	}
	cb.Disconnect(10)
	bad := b
	bad.Hash = "plain"
	if _, err := br.SetAccounts([]sensors.BrokerAccount{a, bad}); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("invalid list: %v", err)
	}
	if cb, err = connect("SHP-B", "password of B"); err != nil {
		t.Fatalf("after a refused reload: %v", err)
	}
	cb.Disconnect(10)
	open, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if _, err := open.SetAccounts([]sensors.BrokerAccount{a}); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("accounts on a broker without them: %v", err)
	}
}
