package sensors

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coid-project/coid/custody"
)

// DefaultClientID is the MQTT client ID of coid's subscriber. It is fixed
// so that the broker keeps the persistent session (CleanSession=false), and
// the QoS 1 messages queued in it, while coid is down.
const DefaultClientID = "coid-ingest"

// AlertTopic returns the topic an excursion alert of chain coi is
// published to: "coid/alerts/{coi}".
func AlertTopic(coi custody.COI) string { return "coid/alerts/" + string(coi) }

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	// URL is the broker: tcp://host:port or ssl://host:port.
	URL string
	// ClientID defaults to DefaultClientID.
	ClientID string
	// Username and Password authenticate to the broker when set.
	Username, Password string
	// CAFile is a PEM file of CAs trusted for ssl:// brokers; the system
	// pool when empty.
	CAFile string
	// Prefix is the telemetry topic prefix; DefaultTopicPrefix if empty.
	Prefix string
	// ShareGroup, when set, subscribes through the broker's shared
	// subscription "$share/{ShareGroup}/{prefix}/+/telemetry" (MQTT 5, and
	// Mosquitto 2 and EMQX for MQTT 3.1.1 clients), so that the instances
	// of one group split the telemetry between them. Each instance then
	// needs its own stable ClientID: its persistent session holds the
	// messages sent to it and not yet acknowledged.
	ShareGroup string
	// Pipeline stores and acknowledges the messages received; required.
	Pipeline *Pipeline
	// Logger hears of the connection's state; required.
	Logger *slog.Logger
	// MaxReconnectInterval caps the back-off between connection attempts
	// (default 30s); attempts never stop.
	MaxReconnectInterval time.Duration
	// Now is the clock of LastMessage; time.Now when nil.
	Now func() time.Time
}

// Subscriber is coid's MQTT client (paho, MQTT 3.1.1). It subscribes to
// "{prefix}/+/telemetry" at QoS 1 with a fixed client ID and a persistent
// session, subscribes again on every connect, hands each message to the
// Pipeline without blocking the client's own goroutines, and acknowledges a
// message only after its readings are committed. It reconnects forever.
// It also publishes alerts.
//
// Its connection reads through a buffer and coalesces writes (see
// bufferedConn): paho would otherwise spend a system call on every PUBACK
// and several on every message received, which at tens of thousands of
// messages a second costs more CPU than storing them.
type Subscriber struct {
	cfg    SubscriberConfig
	client mqtt.Client
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	connected chan struct{} // closed on first successful subscription
	once      sync.Once
	// lastMessage is the clock's time of the last message received, in
	// Unix nanoseconds; 0 before the first.
	lastMessage atomic.Int64
}

// Connected reports whether the connection to the broker is open now
// (false while reconnecting).
func (s *Subscriber) Connected() bool { return s.client.IsConnectionOpen() }

// LastMessage returns when the last message arrived (by the configured
// clock), and the zero time if none has.
func (s *Subscriber) LastMessage() time.Time {
	if n := s.lastMessage.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// NewSubscriber checks cfg and builds the client; Start connects it.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if cfg.Pipeline == nil || cfg.Logger == nil {
		return nil, fmt.Errorf("new subscriber: pipeline and logger are required: %w", custody.ErrInvalid)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "mqtt" && u.Scheme != "mqtts") {
		return nil, fmt.Errorf("new subscriber: broker URL %q must be tcp://host:port or ssl://host:port: %w", cfg.URL, custody.ErrInvalid)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultTopicPrefix
	}
	if cfg.ShareGroup != "" && !ValidShareGroup(cfg.ShareGroup) {
		return nil, fmt.Errorf("new subscriber: share group %q: give letters, digits, '-', '_' or '.': %w", cfg.ShareGroup, custody.ErrInvalid)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxReconnectInterval <= 0 {
		cfg.MaxReconnectInterval = 30 * time.Second
	}
	s := &Subscriber{cfg: cfg, connected: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	o := mqtt.NewClientOptions().AddBroker(cfg.URL).SetClientID(cfg.ClientID).
		SetCleanSession(false).SetOrderMatters(false).SetAutoAckDisabled(true).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(cfg.MaxReconnectInterval).SetKeepAlive(30 * time.Second).
		SetPingTimeout(10 * time.Second).SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second).
		SetMessageChannelDepth(1024).
		// Buffered reads and coalesced writes (see bufferedConn): the
		// PUBACKs of a group commit leave in one system call.
		SetCustomOpenConnectionFn(openBufferedConn).
		SetOnConnectHandler(s.onConnect).
		// A resumed session delivers queued messages right after CONNACK,
		// before the new SUBSCRIBE is answered: without a default handler
		// paho would drop them unacknowledged.
		SetDefaultPublishHandler(s.handle).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			cfg.Logger.Warn("mqtt connection lost; reconnecting", "broker", redactURL(cfg.URL), "err", err)
		}).
		SetReconnectingHandler(func(_ mqtt.Client, _ *mqtt.ClientOptions) {
			cfg.Logger.Info("mqtt reconnecting", "broker", redactURL(cfg.URL))
		})
	if cfg.Username != "" {
		o.SetUsername(cfg.Username).SetPassword(cfg.Password)
	}
	if u.Scheme == "ssl" || u.Scheme == "mqtts" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("new subscriber: CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("new subscriber: CA file %s holds no PEM certificate: %w", cfg.CAFile, custody.ErrInvalid)
			}
			tc.RootCAs = pool
		}
		o.SetTLSConfig(tc)
	}
	s.client = mqtt.NewClient(o)
	return s, nil
}

// redactURL drops any user information from a broker URL for logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}

// Filter returns the topic filter the subscriber subscribes to.
func (s *Subscriber) Filter() string {
	return SharedFilter(s.cfg.ShareGroup, s.cfg.Prefix)
}

func (s *Subscriber) onConnect(c mqtt.Client) {
	filter := s.Filter()
	// The subscription is made again on every connect: a broker that lost
	// the session (or a clean start) would otherwise send nothing.
	go func() {
		tok := c.Subscribe(filter, 1, s.handle)
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			s.cfg.Logger.Error("mqtt subscribe failed; reconnecting", "filter", filter, "err", tok.Error())
			return
		}
		s.cfg.Logger.Info("mqtt subscribed", "broker", redactURL(s.cfg.URL), "filter", filter, "client_id", s.cfg.ClientID, "share_group", s.cfg.ShareGroup)
		s.once.Do(func() { close(s.connected) })
	}()
}

// handle runs on a goroutine of its own (SetOrderMatters(false)), so
// waiting here for room in the pipeline never stalls the client.
func (s *Subscriber) handle(_ mqtt.Client, m mqtt.Message) {
	s.lastMessage.Store(s.cfg.Now().UnixNano())
	err := s.cfg.Pipeline.Submit(s.ctx, Message{Topic: m.Topic(), Payload: m.Payload(), Ack: m.Ack})
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrPipelineClosed) {
		s.cfg.Logger.Error("telemetry not taken; the broker will redeliver it", "topic", m.Topic(), "err", err)
	}
}

// Start begins connecting in the background; it never fails because the
// broker is down (attempts continue with back-off).
func (s *Subscriber) Start() {
	s.client.Connect()
}

// WaitSubscribed waits until the first subscription is in place.
func (s *Subscriber) WaitSubscribed(ctx context.Context) error {
	select {
	case <-s.connected:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqtt subscriber: not subscribed to %s: %w", redactURL(s.cfg.URL), ctx.Err())
	}
}

// Publish sends payload to topic at QoS 1 without waiting for the broker.
func (s *Subscriber) Publish(topic string, payload []byte) {
	tok := s.client.Publish(topic, 1, false, payload)
	go func() {
		if tok.WaitTimeout(30*time.Second) && tok.Error() != nil {
			s.cfg.Logger.Warn("mqtt publish failed", "topic", topic, "err", tok.Error())
		}
	}()
}

// Close disconnects. Messages not yet acknowledged stay with the broker
// and are redelivered on the next start (and stored once).
func (s *Subscriber) Close() {
	s.cancel()
	s.client.Disconnect(250)
}
