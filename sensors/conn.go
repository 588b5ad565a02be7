package sensors

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// Buffered MQTT connections for the subscriber.
//
// paho reads every packet with three or more read system calls (the type
// byte, each byte of the remaining length, the rest) and writes every
// packet, each PUBACK included, with a system call of its own. At tens of
// thousands of messages a second that is most of coid's CPU time, and each
// lone PUBACK also costs the broker a read. bufferedConn reads through a
// buffer and coalesces writes: Write appends to a pending buffer and a
// flusher goroutine writes whatever has accumulated with one system call,
// so the PUBACKs of a group commit go out together.

const (
	// connReadBuffer is the read buffer of a subscriber connection.
	connReadBuffer = 64 << 10
	// connMaxPending bounds the bytes written but not yet flushed; Write
	// blocks beyond it (a broker that stops reading).
	connMaxPending = 1 << 20
	// connFlushOnClose bounds how long Close waits to flush what is
	// pending (a DISCONNECT, the last PUBACKs).
	connFlushOnClose = time.Second
)

// errConnClosed is returned by writes to a closed bufferedConn.
var errConnClosed = errors.New("mqtt connection closed")

// bufferedConn is a net.Conn with buffered reads and coalesced writes.
// Reads must come from one goroutine at a time (paho's reader); writes may
// come from any. A write error is returned by the following writes and
// closes the connection, which ends paho's reader and makes it reconnect.
type bufferedConn struct {
	net.Conn
	r            *bufio.Reader
	writeTimeout time.Duration

	mu      sync.Mutex
	cond    *sync.Cond // signalled when pending is flushed or err is set
	pending []byte
	spare   []byte
	err     error
	wake    chan struct{}
	done    chan struct{} // closed when the flusher has returned
	closing bool
	once    sync.Once
}

func newBufferedConn(c net.Conn, writeTimeout time.Duration) *bufferedConn {
	b := &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, connReadBuffer), writeTimeout: writeTimeout,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	go b.flusher()
	return b
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// Write queues p for the flusher and returns at once, unless too much is
// pending.
func (b *bufferedConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	for b.err == nil && len(b.pending) >= connMaxPending {
		b.cond.Wait()
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.pending = append(b.pending, p...)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// SetWriteDeadline is a no-op: writes do not block on the network; the
// flusher applies writeTimeout to each of its writes.
func (b *bufferedConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets the read deadline only (see SetWriteDeadline).
func (b *bufferedConn) SetDeadline(t time.Time) error { return b.Conn.SetReadDeadline(t) }

func (b *bufferedConn) flusher() {
	defer close(b.done)
	for {
		b.mu.Lock()
		for len(b.pending) == 0 && !b.closing {
			b.mu.Unlock()
			<-b.wake
			b.mu.Lock()
		}
		out := b.pending
		b.pending, b.spare = b.spare[:0], nil
		closing := b.closing
		b.mu.Unlock()
		var err error
		if len(out) > 0 {
			timeout := b.writeTimeout
			if closing {
				timeout = connFlushOnClose
			}
			if timeout > 0 {
				_ = b.Conn.SetWriteDeadline(time.Now().Add(timeout))
			}
			_, err = b.Conn.Write(out)
		}
		b.mu.Lock()
		if cap(out) <= connMaxPending {
			b.spare = out[:0]
		}
		if err != nil && b.err == nil {
			b.err = err
		}
		stop := b.err != nil || (b.closing && len(b.pending) == 0)
		b.cond.Broadcast()
		b.mu.Unlock()
		if stop {
			if err != nil {
				_ = b.Conn.Close()
			}
			return
		}
	}
}

// Close flushes what is pending (for at most connFlushOnClose) and closes
// the connection.
func (b *bufferedConn) Close() error {
	var err error
	b.once.Do(func() {
		b.mu.Lock()
		b.closing = true
		b.mu.Unlock()
		select {
		case b.wake <- struct{}{}:
		default:
		}
		select {
		case <-b.done:
		case <-time.After(connFlushOnClose + 100*time.Millisecond):
		}
		b.mu.Lock()
		if b.err == nil {
			b.err = errConnClosed
		}
		b.cond.Broadcast()
		b.mu.Unlock()
		err = b.Conn.Close()
	})
	return err
}

// openBufferedConn is the subscriber's paho OpenConnectionFunc: it dials
// like paho does for tcp:// and ssl:// (honouring ALL_PROXY for tcp) and
// wraps the connection in a bufferedConn.
func openBufferedConn(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	dialer := o.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: 30 * time.Second}
	}
	var c net.Conn
	var err error
	switch uri.Scheme {
	case "tcp", "mqtt":
		c, err = proxy.FromEnvironmentUsing(dialer).Dial("tcp", uri.Host)
	case "ssl", "mqtts":
		c, err = tls.DialWithDialer(dialer, "tcp", uri.Host, o.TLSConfig)
	default:
		err = errors.New("unsupported MQTT URL scheme " + uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return newBufferedConn(c, o.WriteTimeout), nil
}
