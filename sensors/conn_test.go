package sensors

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestBufferedConnWritesInOrderAndFlushesOnClose(t *testing.T) {
	c, s := tcpPair(t)
	b := newBufferedConn(c, time.Second)
	var want []byte
	for i := range 10000 {
		p := []byte{0x40, 0x02, byte(i >> 8), byte(i)} // a PUBACK
		want = append(want, p...)
		if n, err := b.Write(p); n != len(p) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	// Close flushes what is still pending before closing.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes, want %d in order", len(got), len(want))
	}
	if _, err := b.Write([]byte{1}); err == nil {
		t.Fatal("write after close succeeded")
	}
}

func TestBufferedConnReads(t *testing.T) {
	c, s := tcpPair(t)
	b := newBufferedConn(c, time.Second)
	defer b.Close()
	go func() {
		for i := range 1000 {
			s.Write([]byte{0x30, 0x03, 0, 1, byte(i)})
		}
		s.Close()
	}()
	b.SetDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5000 || got[4999] != byte(999%256) {
		t.Fatalf("read %d bytes", len(got))
	}
}

func TestBufferedConnWriteErrorCloses(t *testing.T) {
	c, s := tcpPair(t)
	b := newBufferedConn(c, time.Second)
	defer b.Close()
	s.(*net.TCPConn).SetLinger(0)
	s.Close() // the peer resets the connection
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		_, err = b.Write(make([]byte, 4096))
		time.Sleep(time.Millisecond)
	}
	if err == nil {
		t.Fatal("writes to a reset connection kept succeeding")
	}
	// The flusher closed the connection, so a reader sees it too.
	b.SetDeadline(time.Now().Add(60 * time.Second))
	if _, rerr := b.Read(make([]byte, 1)); rerr == nil {
		t.Fatalf("read after write error: %v", rerr)
	}
}

func TestBufferedConnBackpressure(t *testing.T) {
	c, s := tcpPair(t)
	b := newBufferedConn(c, 5*time.Second)
	var want []byte
	for i := range 3 * connMaxPending / 4096 {
		p := bytes.Repeat([]byte{byte(i)}, 4096+i%7)
		want = append(want, p...)
	}
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // let the pending buffer fill
		s.SetReadDeadline(time.Now().Add(60 * time.Second))
		all, _ := io.ReadAll(s)
		got <- all
	}()
	for rest := want; len(rest) > 0; {
		n := len(rest)
		if n > 64<<10 {
			n = 64 << 10
		}
		if _, err := b.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if g := <-got; !bytes.Equal(g, want) {
		t.Fatalf("received %d bytes, want %d in order", len(g), len(want))
	}
}
