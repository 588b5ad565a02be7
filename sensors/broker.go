package sensors

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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
	// MaxConnections caps the connections open at once on the broker's
	// public listener, logged in or not; one more is closed as soon as it
	// is accepted, and the log says so at most once a minute.
	// DefaultMaxConnections if 0. The loopback listener of coid's own
	// subscriber (see TLS) is not counted.
	MaxConnections int
	// ConnectTimeout is how long a new connection has for its TLS
	// handshake and its whole CONNECT packet before it is closed;
	// DefaultConnectTimeout if 0.
	ConnectTimeout time.Duration
	// Now is the clock of the log's rate limit; time.Now if nil.
	Now func() time.Time
}

const (
	// DefaultMaxConnections is BrokerConfig.MaxConnections when it is 0.
	DefaultMaxConnections = 2000
	// DefaultConnectTimeout is BrokerConfig.ConnectTimeout when it is 0.
	DefaultConnectTimeout = 30 * time.Second
	// MaxKeepalive is the longest keep alive, in seconds, the broker
	// grants: a client asking for more, or for none (0), is given this
	// one (MQTT 5 clients are told so in the CONNACK), so that a silent
	// connection is closed after one and a half times it.
	MaxKeepalive = 1200
)

// ingestUser is the user name of coid's own subscriber when the broker has
// accounts; '$' cannot start an account's user name.
const ingestUser = "$coid-ingest"

const (
	// maxPacketBytes is the largest MQTT packet the broker reads: the
	// decoder's largest payload with room for the topic, packet ID and
	// properties. Mochi checks it against the length a packet's header
	// announces, before it allocates the packet.
	maxPacketBytes = MaxPayloadBytes + 64<<10
	// maxConnectBytes is the largest CONNECT packet, all that a client may
	// make the broker allocate before it has logged in.
	maxConnectBytes = 64 << 10
	// maxWritesPending is the number of packets mochi queues for a
	// client to write (mochi.Capabilities.MaximumClientWritesPending), 8
	// bytes a packet, made whole for every client (128 KiB) once its
	// CONNECT has arrived; a QoS 1 subscriber further behind loses
	// messages. 1024 lost a tenth of BenchmarkThroughput's raw run.
	maxWritesPending = 1 << 14
	// refusalLogInterval is the shortest time between two log lines about
	// connections refused at the connection cap.
	refusalLogInterval = time.Minute
	// logClip is the longest client ID, user name or topic written to the
	// log.
	logClip = 256
)

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
// QoS 2: with a Pipeline, a telemetry publish at QoS 2 is refused, never
// confirmed: the broker logs it and closes the connection (MQTT 5 clients
// get a DISCONNECT "QoS not supported"). Mochi would confirm it (PUBREC) on
// receipt, before it is stored, and lose it if coid's subscriber is away.
// Shippers publish at QoS 1 (or 0).
//
// Limits: the broker reads no packet larger than the decoder's largest
// payload (MaxPayloadBytes) plus 64 KiB for the topic and properties, and
// before a client has logged in no packet larger than 64 KiB, nor waits
// more than BrokerConfig.ConnectTimeout (30 s) for its CONNECT; a client
// that announces more is disconnected before anything is allocated for
// it. The listener reads the CONNECT itself, into a buffer that grows
// only as its bytes arrive, and hands the connection to mochi (which
// allocates a client's queues) only once it has the whole packet: a
// connection that has not sent its whole CONNECT costs a goroutine and a
// few KiB (5,000 of them about 30 MiB). At most
// BrokerConfig.MaxConnections are open at once, and no keep alive is
// longer than MaxKeepalive. The log never holds a payload or a password:
// mochi's own lines show a packet as its type, topic, QoS, packet ID and
// size.
//
// Accounts (BrokerConfig.Accounts) only publish: a shipper's data logger
// or a gateway publishes telemetry and reads nothing, so every
// subscription of an account is refused (alerts name chains, which no
// device account is tied to; coid's own subscriber is the broker's only
// reader). An account's will is dropped (a will reaches subscribers with
// no access check), and an account cannot use the client ID of coid's own
// subscriber (BrokerConfig.IngestClientID, or DefaultClientID), which
// would take over its session.
//
// Queue limits: mochi drops QoS 1 messages for a subscriber that has more
// than MaximumInflight unacknowledged or MaximumClientWritesPending queued.
// MaximumInflight is raised to its maximum; the write queue, which mochi
// makes for every client once its CONNECT has arrived, holds 16,384
// packets (128 KiB): a QoS 1 subscriber that falls further behind loses
// messages. Telemetry does not depend on them (it is stored before it is
// forwarded, and not forwarded to coid's own subscriber), other topics do.
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
	// public is the listener clients connect to; it counts them.
	public *boundListener
	closed atomic.Bool
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
	caps.MaximumClientWritesPending = maxWritesPending
	caps.ReceiveMaximum = 65535
	caps.MaximumMessageExpiryInterval = 0 // keep queued messages until delivered
	caps.MaximumPacketSize = maxPacketBytes
	srv := mochi.New(&mochi.Options{InlineClient: true, Capabilities: caps,
		Logger: slog.New(redactPackets{cfg.Logger.Handler()}).With("component", "mqtt-broker")})
	if err := srv.AddHook(new(keepaliveHook), nil); err != nil {
		closeAll()
		return nil, fmt.Errorf("start broker: %w", err)
	}
	var access mochi.Hook = new(allowHook)
	if auth != nil {
		reserved := map[string]bool{DefaultClientID: true}
		if cfg.IngestClientID != "" {
			reserved[cfg.IngestClientID] = true
		}
		access = &authHook{srv: srv, auth: auth, prefix: cfg.Prefix, log: cfg.Logger, reserved: reserved}
	}
	if err := srv.AddHook(access, nil); err != nil {
		closeAll()
		return nil, fmt.Errorf("start broker: %w", err)
	}
	b := &Broker{srv: srv, ln: ln, addr: ln.Addr().String(), auth: auth, tls: cfg.TLS != nil}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b.public = &boundListener{id: "coid-tcp", ln: ln, log: cfg.Logger, max: cfg.MaxConnections, timeout: cfg.ConnectTimeout, now: cfg.Now}
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
	if err := srv.AddListener(b.public); err != nil {
		closeAll()
		return nil, fmt.Errorf("start broker: %w", err)
	}
	if internal != nil {
		if err := srv.AddListener(&boundListener{id: "coid-internal", ln: internal, log: cfg.Logger, timeout: cfg.ConnectTimeout, now: cfg.Now}); err != nil {
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

// Connections returns the number of connections open on the broker's
// public listener, logged in or not (see BrokerConfig.MaxConnections).
func (b *Broker) Connections() int { return int(b.public.open.Load()) }

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
// so that port 0 and "address in use" are known before serving. It keeps
// at most max connections open (0: no cap), gives a new connection
// timeout to send its whole CONNECT, of at most maxConnectBytes, and only
// then hands it to mochi.
type boundListener struct {
	id      string
	ln      net.Listener
	log     *slog.Logger
	max     int
	timeout time.Duration
	now     func() time.Time
	open    atomic.Int64
	end     atomic.Bool
	once    sync.Once

	mu       sync.Mutex // guards the refusals' log
	lastLog  time.Time
	loggedAt bool
	unlogged int // connections refused since the last line
}

func (l *boundListener) ID() string                { return l.id }
func (l *boundListener) Address() string           { return l.ln.Addr().String() }
func (l *boundListener) Protocol() string          { return "tcp" }
func (l *boundListener) Init(_ *slog.Logger) error { return nil }

func (l *boundListener) Serve(establish listeners.EstablishFn) {
	var backoff time.Duration
	for {
		conn, err := l.ln.Accept()
		if l.end.Load() || errors.Is(err, net.ErrClosed) {
			if conn != nil {
				conn.Close()
			}
			return
		}
		if err != nil {
			// Out of file descriptors, or a connection reset before it
			// was accepted: wait and go on, never stop listening.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Debug("MQTT accept failed; retrying", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if l.max > 0 && l.open.Load() >= int64(l.max) {
			// Counted before the close, so a client that sees its
			// connection closed finds it counted.
			l.refused(conn.RemoteAddr().String())
			conn.Close()
			continue
		}
		l.open.Add(1)
		go func() {
			defer l.open.Add(-1)
			l.establish(establish, conn)
		}()
	}
}

// refused logs a connection refused at the cap: the first one, then at
// most one line a refusalLogInterval, with the number refused since.
func (l *boundListener) refused(remote string) {
	l.mu.Lock()
	now := l.now()
	if l.loggedAt && now.Sub(l.lastLog) < refusalLogInterval {
		l.unlogged++
		l.mu.Unlock()
		return
	}
	n := l.unlogged + 1
	l.unlogged, l.lastLog, l.loggedAt = 0, now, true
	l.mu.Unlock()
	l.log.Warn("MQTT connections refused: the broker has its maximum of open connections (--mqtt-max-conns)",
		"max_connections", l.max, "refused", n, "last_remote", remote, "next_line_in", refusalLogInterval)
}

// establish reads conn's CONNECT and hands conn to mochi, which reads that
// packet again; it logs a connection closed for a packet larger than the
// broker reads.
func (l *boundListener) establish(establish listeners.EstablishFn, conn net.Conn) {
	// The network's deadline is real time; mochi sets the keep alive's
	// once it has read the CONNECT.
	_ = conn.SetDeadline(time.Now().Add(l.timeout))
	pkt, err := readConnect(conn)
	if err != nil {
		conn.Close()
		if errors.Is(err, errConnectTooLarge) {
			l.log.Warn("MQTT connection closed: it announced a packet larger than the broker accepts", "remote", conn.RemoteAddr().String(),
				"max_connect_bytes", maxConnectBytes, "max_packet_bytes", maxPacketBytes)
		} else {
			l.log.Debug("MQTT connection closed before its CONNECT", "remote", conn.RemoteAddr().String(), "err", err)
		}
		return
	}
	err = establish(l.id, &replayConn{Conn: conn, pending: pkt})
	if errors.Is(err, packets.ErrPacketTooLarge) {
		l.log.Warn("MQTT connection closed: it announced a packet larger than the broker accepts", "remote", conn.RemoteAddr().String(),
			"max_connect_bytes", maxConnectBytes, "max_packet_bytes", maxPacketBytes)
	}
}

var (
	// errConnectTooLarge closes a connection whose first packet announces
	// more than maxConnectBytes.
	errConnectTooLarge = errors.New("MQTT CONNECT packet too large")
	// errNotConnect closes a connection whose first packet is not a
	// CONNECT, or whose length is malformed.
	errNotConnect = errors.New("the first MQTT packet is not a well-formed CONNECT")
)

// readConnect reads one CONNECT packet from r, fixed header included, and
// not a byte more. It refuses a first packet of another type, a remaining
// length longer than four bytes, and one over maxConnectBytes, before it
// reads the body; the body's buffer grows only as its bytes arrive, so a
// client that announces 64 KiB and sends nothing costs nothing.
func readConnect(r io.Reader) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return nil, err
	}
	if hdr[0] != packets.Connect<<4 {
		return nil, errNotConnect
	}
	n, length := 1, 0
	for {
		if n == len(hdr) {
			return nil, errNotConnect // a fifth length byte
		}
		if _, err := io.ReadFull(r, hdr[n:n+1]); err != nil {
			return nil, noEOF(err)
		}
		length |= int(hdr[n]&0x7f) << (7 * (n - 1))
		n++
		if hdr[n-1]&0x80 == 0 {
			break
		}
	}
	if length > maxConnectBytes {
		return nil, errConnectTooLarge
	}
	buf := bytes.NewBuffer(make([]byte, 0, n+min(length, 512)))
	buf.Write(hdr[:n])
	if _, err := io.CopyN(buf, r, int64(length)); err != nil {
		return nil, noEOF(err)
	}
	return buf.Bytes(), nil
}

// noEOF turns the end of input inside a packet into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// replayConn is a connection whose reads return pending (the CONNECT the
// listener read) before what follows it on the wire. Only mochi's reader
// reads it, one Read at a time.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
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
	if _, err := ShipperFromTopic(h.prefix, pk.TopicName); err != nil {
		// Not telemetry: mochi's own path.
		return pk, nil
	}
	if pk.FixedHeader.Qos > 1 {
		// Mochi would confirm it (PUBREC) before it is stored, and lose it
		// if coid's subscriber is away: refused, never confirmed.
		h.log.Warn("MQTT connection closed: QoS 2 telemetry is not taken; publish at QoS 1", "client", clip(cl.ID),
			"user", clip(string(cl.Properties.Username)), "topic", clip(pk.TopicName), "bytes", len(pk.Payload))
		_ = h.srv.DisconnectClient(cl, packets.ErrQosNotSupported)
		return pk, packets.ErrRejectPacket
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
// lets each account publish only its shippers' telemetry and subscribe to
// nothing, and keeps accounts off the client IDs reserved for coid.
type authHook struct {
	mochi.HookBase
	srv    *mochi.Server
	auth   *brokerAuth
	prefix string
	log    *slog.Logger
	// reserved are the client IDs of coid's own subscriber.
	reserved map[string]bool
}

func (h *authHook) ID() string { return "coid-accounts" }

func (h *authHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck || b == mochi.OnPacketRead || b == mochi.OnSessionEstablished
}

func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	internal := user == h.auth.internalUser
	if !internal && h.reserved[cl.ID] {
		// It would take over coid's own subscriber's session.
		h.log.Warn("MQTT connection refused: the client ID is reserved for coid's own subscriber", "client", clip(cl.ID),
			"user", clip(user), "remote", cl.Net.Remote)
		return false
	}
	if !h.auth.authenticate(user, string(pk.Connect.Password)) {
		// The user name only: never the password.
		h.log.Warn("MQTT connection refused: unknown user or wrong password", "client", clip(cl.ID), "user", clip(user),
			"remote", cl.Net.Remote)
		return false
	}
	if !internal && atomic.LoadUint32(&cl.Properties.Will.Flag) != 0 {
		// Mochi publishes a will to subscribers without asking OnACLCheck:
		// an account could have its will stored as any shipper's telemetry.
		h.log.Warn("MQTT will dropped: accounts publish only telemetry", "client", clip(cl.ID), "user", clip(user),
			"topic", clip(cl.Properties.Will.TopicName), "bytes", len(cl.Properties.Will.Payload))
		cl.Properties.Will = mochi.Will{}
	}
	return true
}

// OnSessionEstablished checks the password again once the client is in
// the broker's client list: a reload (SetAccounts) that changed the
// account after the first check closes only the connections in that list.
// The password is remembered, so this costs no derivation unless the
// account did change.
func (h *authHook) OnSessionEstablished(cl *mochi.Client, pk packets.Packet) {
	user := string(pk.Connect.Username)
	if cl.Net.Inline || user == h.auth.internalUser || h.auth.authenticate(user, string(pk.Connect.Password)) {
		return
	}
	h.log.Warn("MQTT connection closed: its account changed while it logged in", "client", clip(cl.ID), "user", clip(user),
		"remote", cl.Net.Remote)
	_ = h.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
}

// OnPacketRead logs the publishes and subscriptions of accounts that
// OnACLCheck will refuse, once a packet and with the payload's size, never
// the payload.
func (h *authHook) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	user := string(cl.Properties.Username)
	if cl.Net.Inline || user == h.auth.internalUser {
		return pk, nil
	}
	switch pk.FixedHeader.Type {
	case packets.Publish:
		if !h.auth.allowed(user, h.prefix, pk.TopicName, true) {
			h.log.Warn("MQTT publish refused: not the telemetry of this account's shippers", "client", clip(cl.ID), "user", clip(user),
				"topic", clip(pk.TopicName), "qos", pk.FixedHeader.Qos, "bytes", len(pk.Payload))
		}
	case packets.Subscribe:
		first := ""
		if len(pk.Filters) > 0 {
			first = pk.Filters[0].Filter
		}
		h.log.Warn("MQTT subscription refused: accounts only publish telemetry", "client", clip(cl.ID), "user", clip(user),
			"filter", clip(first), "filters", len(pk.Filters))
	}
	return pk, nil
}

// OnACLCheck refuses silently: OnPacketRead has logged the refusal.
func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	return h.auth.allowed(string(cl.Properties.Username), h.prefix, topic, write)
}

// clip shortens s for the log.
func clip(s string) string {
	if len(s) <= logClip {
		return s
	}
	return strings.ToValidUTF8(s[:logClip], "") + "…"
}

// redactPackets is a log handler that writes an MQTT packet or will as its
// type, topic, QoS, packet ID and size, and a byte slice as its length:
// mochi logs whole packets, payload and password included (a refused
// publish of 20 MB became 60 MB of decimal bytes).
type redactPackets struct{ h slog.Handler }

func (r redactPackets) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r redactPackets) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r redactPackets) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = redactAttr(a)
	}
	return redactPackets{r.h.WithAttrs(out)}
}

func (r redactPackets) WithGroup(name string) slog.Handler { return redactPackets{r.h.WithGroup(name)} }

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, ga := range g {
			out[i] = redactAttr(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case packets.Packet:
			return packetAttr(a.Key, &x)
		case *packets.Packet:
			if x != nil {
				return packetAttr(a.Key, x)
			}
		case mochi.Will:
			return slog.Group(a.Key, "topic", clip(x.TopicName), "qos", x.Qos, "bytes", len(x.Payload))
		case []byte:
			return slog.Int(a.Key+"_bytes", len(x))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func packetAttr(key string, pk *packets.Packet) slog.Attr {
	return slog.Group(key, "type", packets.PacketNames[pk.FixedHeader.Type], "topic", clip(pk.TopicName), "qos", pk.FixedHeader.Qos,
		"id", pk.PacketID, "bytes", len(pk.Payload))
}

// keepaliveHook grants no keep alive longer than MaxKeepalive, and none
// that is 0 (a connection never closed for silence).
type keepaliveHook struct{ mochi.HookBase }

func (h *keepaliveHook) ID() string { return "coid-keepalive" }

func (h *keepaliveHook) Provides(b byte) bool { return b == mochi.OnConnect }

// OnConnect runs after mochi has taken the client's keep alive and before
// it sets the connection's deadline from it.
func (h *keepaliveHook) OnConnect(cl *mochi.Client, _ packets.Packet) error {
	if cl.State.Keepalive == 0 || cl.State.Keepalive > MaxKeepalive {
		cl.State.Keepalive = MaxKeepalive
		cl.State.ServerKeepalive = true // MQTT 5: the CONNACK says so
	}
	return nil
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
