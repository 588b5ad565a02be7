package sensors

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// URL is the broker: tcp://host:port or ssl://host:port.
	URL string
	// ClientID is the MQTT client ID; each publisher needs its own.
	ClientID string
	// Username and Password authenticate to the broker when set.
	Username, Password string
	// TLS configures an ssl:// connection; nil uses paho's default.
	TLS *tls.Config
	// ConnectTimeout bounds the first connection (default 15s).
	ConnectTimeout time.Duration
	// OnLost, if set, hears of each connection the broker drops; the
	// publisher reconnects by itself.
	OnLost func(error)
}

// Publisher is the sending side of a shipper's data logger: a paho client
// (MQTT 3.1.1, clean session, automatic reconnect) that publishes telemetry
// at QoS 1. `coid simulate` publishes through it, so that the simulator
// speaks to the broker with the same client as real loggers and cmd/coid
// does not import paho itself.
type Publisher struct {
	client mqtt.Client
}

// NewPublisher connects to the broker and returns the publisher, or the
// error that kept it from connecting within ConnectTimeout.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	o := mqtt.NewClientOptions().AddBroker(cfg.URL).SetClientID(cfg.ClientID).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).SetOrderMatters(false)
	if cfg.OnLost != nil {
		o.SetConnectionLostHandler(func(_ mqtt.Client, err error) { cfg.OnLost(err) })
	}
	if cfg.Username != "" {
		o.SetUsername(cfg.Username).SetPassword(cfg.Password)
	}
	if cfg.TLS != nil {
		o.SetTLSConfig(cfg.TLS)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(cfg.ConnectTimeout) {
		c.Disconnect(0)
		return nil, errors.New("timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return &Publisher{client: c}, nil
}

// Publish sends payload to topic at QoS 1 and returns at once; the
// Delivery tells when the broker has acknowledged it.
func (p *Publisher) Publish(topic string, payload []byte) *Delivery {
	return &Delivery{tok: p.client.Publish(topic, 1, false, payload)}
}

// Close disconnects, giving work in flight up to quiesce to complete.
func (p *Publisher) Close(quiesce time.Duration) {
	p.client.Disconnect(uint(quiesce / time.Millisecond))
}

// Delivery is one message published at QoS 1, waiting for the broker's
// acknowledgement (PUBACK).
type Delivery struct {
	tok mqtt.Token
}

// Done is closed once the message is acknowledged or has failed.
func (d *Delivery) Done() <-chan struct{} { return d.tok.Done() }

// Err is the delivery's failure once Done is closed: nil means the broker
// acknowledged the message.
func (d *Delivery) Err() error { return d.tok.Error() }

// Wait waits up to timeout for the outcome: nil when the broker
// acknowledged the message, else why not.
func (d *Delivery) Wait(timeout time.Duration) error {
	if !d.tok.WaitTimeout(timeout) {
		return fmt.Errorf("no acknowledgement within %s", timeout)
	}
	return d.tok.Error()
}
