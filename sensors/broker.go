package sensors

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/coid-project/coid/custody"
)

// ErrAddrInUse is wrapped by StartBroker's error when its address is taken,
// usually by another MQTT broker already running there.
var ErrAddrInUse = errors.New("address already in use")

// BrokerConfig configures the embedded broker.
type BrokerConfig struct {
	// Listen is the TCP address, e.g. 127.0.0.1:1883 (port 0 picks one).
	Listen string
	// Logger hears of the broker's connections and refusals; required.
	Logger *slog.Logger
	// Prefix is the telemetry topic prefix; DefaultTopicPrefix if empty.
	Prefix string
	// Pipeline, when set, makes telemetry publishes durable before they
	// are acknowledged (see Broker).
	Pipeline *Pipeline
	// IngestClientID is the client ID of coid's own subscriber on this
	// broker. Telemetry the broker already stored is not forwarded to it:
	// it would only decode it again and find duplicates, at the cost of
	// about a third of the broker's throughput and of a queue in memory
	// whenever it lags.
	IngestClientID string
	// Accounts, when not nil, are the only clients the broker lets in
	// (see ParseBrokerAccounts), each publishing only the telemetry of its
	// own shippers, with Verifier checking their passwords. Without
	// accounts the broker lets every client in, so it listens on loopback
	// only: StartBroker refuses any other address.
	Accounts []BrokerAccount
	// Verifier checks the accounts' passwords; required with Accounts.
	Verifier PasswordVerifier
	// TLS, when set, makes the broker speak MQTT over TLS only (ssl://),
	// so that passwords and readings do not cross the network in clear;
	// coid's own subscriber then connects through a second, plain
	// listener on loopback (IngestURL). Any address other than loopback
	// needs both Accounts and TLS.
	TLS *tls.Config
}

// ingestUser is the user name of coid's own subscriber when the broker has
// accounts; '$' cannot start an account's user name.
const ingestUser = "$coid-ingest"

// Broker is coid's embedded MQTT broker (mochi-mqtt, MQTT 3.1.1 and 5), so
// that coid needs nothing else installed.
//
// Durability: a publish to a telemetry topic is not acknowledged by the
// broker's own code path. A hook takes it before mochi would send the
// PUBACK, hands it to the Pipeline, and sends the PUBACK itself only after
// the pipeline has committed the readings to coid's store (or quarantined a
// malformed payload); then it forwards the message to subscribers. So a
// publisher never gets a PUBACK for a reading that a crash of coid could
// still lose: if coid dies first, the publisher (with its own session or
// store) sends the message again. While coid's store fails, the PUBACK
// waits for the Pipeline's retries to store the readings. Publishes are
// pipelined: many messages of one connection wait for the same group
// commit.
//
// Queue limits: mochi drops QoS 1 messages for a subscriber that has more
// than MaximumInflight unacknowledged or MaximumClientWritesPending queued;
// both are raised to their maxima here. Telemetry does not depend on them
// (it is stored before it is forwarded), other topics do.
type Broker struct {
	srv  *mochi.Server
	ln   net.Listener
	addr string
	hook *durableHook
	auth *brokerAuth // nil: every client is let in
	tls  bool
	// internalAddr is the loopback listener of coid's own subscriber when
	// the public one speaks TLS.
	internalAddr string
	closed       atomic.Bool
}

// StartBroker binds the listener and starts serving. A taken address fails
// at once with an error wrapping ErrAddrInUse.
func StartBroker(cfg BrokerConfig) (*Broker, error) {
	if cfg.Logger == nil {
		return nil, fmt.Errorf("start broker: logger required: %w", custody.ErrInvalid)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultTopicPrefix
	}
	var auth *brokerAuth
	if cfg.Accounts != nil {
		if cfg.Verifier == nil {
			return nil, fmt.Errorf("start broker: accounts need a password verifier: %w", custody.ErrInvalid)
		}
		pass := make([]byte, 32)
		if _, err := rand.Read(pass); err != nil {
			return nil, fmt.Errorf("start broker: %w", err)
		}
		auth = &brokerAuth{verifier: cfg.Verifier, internalUser: ingestUser, internalPass: hex.EncodeToString(pass)}
		if _, err := auth.set(cfg.Accounts); err != nil {
			return nil, fmt.Errorf("start broker: %w", err)
		}
	}
	if !LoopbackAddr(cfg.Listen) && (auth == nil || cfg.TLS == nil) {
		return nil, fmt.Errorf("start MQTT broker on %s: beyond loopback it needs accounts (--mqtt-auth), or any client could publish telemetry, and TLS (--mqtt-tls-cert, --mqtt-tls-key), or passwords and readings would cross the network in clear: %w",
			cfg.Listen, custody.ErrInvalid)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("start MQTT broker on %s: %w (is another broker running there?)", cfg.Listen, ErrAddrInUse)
		}
		return nil, fmt.Errorf("start MQTT broker on %s: %w", cfg.Listen, err)
	}
	var internal net.Listener // coid's own subscriber's way in when the public one is TLS
	if cfg.TLS != nil {
		if internal, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			ln.Close()
			return nil, fmt.Errorf("start MQTT broker: internal listener: %w", err)
		}
		tc := cfg.TLS.Clone()
		tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
		ln = tls.NewListener(ln, tc)
	}
	closeAll := func() {
		ln.Close()
		if internal != nil {
			internal.Close()
		}
	}
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumInflight = 65535
	caps.MaximumClientWritesPending = 1 << 17
	caps.ReceiveMaximum = 65535
	caps.MaximumMessageExpiryInterval = 0 // keep queued messages until delivered
	srv := mochi.New(&mochi.Options{InlineClient: true, Capabilities: caps,
		Logger: cfg.Logger.With("component", "mqtt-broker")})
	var access mochi.Hook = new(allowHook)
	if auth != nil {
		access = &authHook{auth: auth, prefix: cfg.Prefix, log: cfg.Logger}
	}
	if err := srv.AddHook(access, nil); err != nil {
		closeAll()
		return nil, fmt.Errorf("start broker: %w", err)
	}
	b := &Broker{srv: srv, ln: ln, addr: ln.Addr().String(), auth: auth, tls: cfg.TLS != nil}
	if internal != nil {
		b.internalAddr = internal.Addr().String()
	}
	if cfg.Pipeline != nil {
		b.hook = &durableHook{srv: srv, prefix: cfg.Prefix, p: cfg.Pipeline, log: cfg.Logger, ingestID: cfg.IngestClientID}
		if err := srv.AddHook(b.hook, nil); err != nil {
			closeAll()
			return nil, fmt.Errorf("start broker: %w", err)
		}
	}
	if err := srv.AddListener(&boundListener{id: "coid-tcp", ln: ln}); err != nil {
		closeAll()
		return nil, fmt.Errorf("start broker: %w", err)
	}
	if internal != nil {
		if err := srv.AddListener(&boundListener{id: "coid-internal", ln: internal}); err != nil {
			closeAll()
			return nil, fmt.Errorf("start broker: %w", err)
		}
	}
	if err := srv.Serve(); err != nil {
		closeAll()
		return nil, fmt.Errorf("start broker: %w", err)
	}
	return b, nil
}

// Addr returns the address the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// IngestCredentials returns the user name and password with which coid's
// own subscriber connects, made up when the broker started; both are
// empty when the broker has no accounts.
func (b *Broker) IngestCredentials() (user, password string) {
	if b.auth == nil {
		return "", ""
	}
	return b.auth.internalUser, b.auth.internalPass
}

// SetAccounts replaces the accounts of a broker started with accounts (a
// reload of the credentials file): from then on only the new accounts
// connect, and the connections of accounts removed or changed (password
// or shippers) are closed; they must connect again. A broker started
// without accounts refuses, as does an invalid list (which changes
// nothing). It returns how many connections it closed.
func (b *Broker) SetAccounts(accounts []BrokerAccount) (int, error) {
	if b.auth == nil {
		return 0, fmt.Errorf("set broker accounts: the broker was started without accounts (--mqtt-auth): %w", custody.ErrInvalid)
	}
	changed, err := b.auth.set(accounts)
	if err != nil {
		return 0, fmt.Errorf("set broker accounts: %w", err)
	}
	n := 0
	for _, cl := range b.srv.Clients.GetAll() {
		if !cl.Net.Inline && changed[string(cl.Properties.Username)] {
			_ = b.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
			n++
		}
	}
	return n, nil
}

// IngestURL returns the URL coid's own subscriber connects to: the
// broker's URL, or its plain loopback listener when the broker speaks TLS.
func (b *Broker) IngestURL() string {
	if b.internalAddr != "" {
		return "tcp://" + b.internalAddr
	}
	return b.URL()
}

// URL returns the broker's address as a URL for clients: ssl:// when it
// speaks TLS, tcp:// otherwise.
func (b *Broker) URL() string {
	if b.tls {
		return "ssl://" + b.addr
	}
	return "tcp://" + b.addr
}

// Close disconnects every client and stops the broker.
func (b *Broker) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	if b.hook != nil {
		b.hook.stop()
	}
	return b.srv.Close()
}

// boundListener is mochi's TCP listener over a listener bound beforehand,
// so that port 0 and "address in use" are known before serving.
type boundListener struct {
	id   string
	ln   net.Listener
	end  atomic.Bool
	once sync.Once
}

func (l *boundListener) ID() string                { return l.id }
func (l *boundListener) Address() string           { return l.ln.Addr().String() }
func (l *boundListener) Protocol() string          { return "tcp" }
func (l *boundListener) Init(_ *slog.Logger) error { return nil }

func (l *boundListener) Serve(establish listeners.EstablishFn) {
	for {
		conn, err := l.ln.Accept()
		if err != nil || l.end.Load() {
			if conn != nil {
				conn.Close()
			}
			return
		}
		go func() { _ = establish(l.id, conn) }()
	}
}

func (l *boundListener) Close(closeClients listeners.CloseFn) {
	l.once.Do(func() {
		l.end.Store(true)
		closeClients(l.id)
		l.ln.Close()
	})
}

// durableHook stores telemetry before acknowledging it (see Broker).
type durableHook struct {
	mochi.HookBase
	srv    *mochi.Server
	prefix string
	p      *Pipeline
	log    *slog.Logger
	// ingestID is coid's own subscriber, which is not sent stored
	// telemetry again.
	ingestID string
	ctx      context.Context
	cancel   context.CancelFunc
	once     sync.Once
}

func (h *durableHook) ID() string { return "coid-durable-telemetry" }

func (h *durableHook) Provides(b byte) bool { return b == mochi.OnPublish }

func (h *durableHook) context() context.Context {
	h.once.Do(func() { h.ctx, h.cancel = context.WithCancel(context.Background()) })
	return h.ctx
}

func (h *durableHook) stop() {
	h.context()
	h.cancel()
}

// OnPublish takes telemetry publishes away from mochi's normal path: the
// hook acknowledges and forwards them itself once they are stored.
func (h *durableHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	if _, err := ShipperFromTopic(h.prefix, pk.TopicName); err != nil || pk.FixedHeader.Qos > 1 {
		// Not telemetry, or QoS 2 (which shippers do not use): mochi's
		// own path, and coid's subscriber stores what it forwards.
		return pk, nil
	}
	topic, payload := pk.TopicName, bytes.Clone(pk.Payload)
	qos, id, version := pk.FixedHeader.Qos, pk.PacketID, cl.Properties.ProtocolVersion
	m := Message{Topic: topic, Payload: payload, Ack: func() {
		if qos > 0 {
			// PUBACK only now: the readings are durable.
			ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: id,
				ReasonCode: packets.CodeSuccess.Code, ProtocolVersion: version}
			if err := cl.WritePacket(ack); err != nil {
				h.log.Debug("puback not sent; the publisher will resend", "client", cl.ID, "err", err)
			}
		}
		// Forward to subscribers (dashboards, an external coid...), if
		// there are any besides coid's own.
		if h.forward(topic) {
			if err := h.srv.Publish(topic, payload, false, 1); err != nil {
				h.log.Debug("forwarding telemetry failed", "topic", topic, "err", err)
			}
		}
	}}
	if err := h.p.Submit(h.context(), m); err != nil {
		// Not taken: no PUBACK, so the publisher sends it again.
		h.log.Warn("telemetry not taken by the embedded broker", "topic", topic, "err", err)
	}
	return pk, packets.ErrRejectPacket
}

// forward reports whether a stored telemetry message has subscribers other
// than coid's own subscriber.
func (h *durableHook) forward(topic string) bool {
	subs := h.srv.Topics.Subscribers(topic)
	if len(subs.Shared) > 0 || len(subs.InlineSubscriptions) > 0 {
		return true
	}
	for id := range subs.Subscriptions {
		if id != h.ingestID {
			return true
		}
	}
	return false
}

// LoopbackAddr reports whether the listen address addr (host:port) names
// only loopback interfaces: only this machine can connect.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authHook lets in only the broker's accounts and coid's own subscriber,
// and lets each account publish only its shippers' telemetry.
type authHook struct {
	mochi.HookBase
	auth   *brokerAuth
	prefix string
	log    *slog.Logger
}

func (h *authHook) ID() string { return "coid-accounts" }

func (h *authHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if h.auth.authenticate(string(pk.Connect.Username), string(pk.Connect.Password)) {
		return true
	}
	// The user name only: never the password.
	h.log.Warn("MQTT connection refused: unknown user or wrong password", "client", cl.ID, "user", string(pk.Connect.Username),
		"remote", cl.Net.Remote)
	return false
}

func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if h.auth.allowed(string(cl.Properties.Username), h.prefix, topic, write) {
		return true
	}
	h.log.Warn("MQTT access refused", "client", cl.ID, "user", string(cl.Properties.Username), "topic", topic, "publish", write)
	return false
}

// allowHook lets every client connect and use every topic: the broker
// without accounts, which listens on loopback only.
type allowHook struct{ mochi.HookBase }

func (h *allowHook) ID() string { return "coid-allow-all" }

func (h *allowHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *allowHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool { return true }

func (h *allowHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool { return true }
