package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
)

// TestServeMQTTPortTaken: an explicitly chosen embedded-broker address
// that is taken fails at once and suggests --mqtt-url.
func TestServeMQTTPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out, errb bytes.Buffer
	err = run(context.Background(), []string{"serve", "--init", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--mqtt-listen", ln.Addr().String()},
		nil, strings.NewReader(""), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "--mqtt-url tcp://"+ln.Addr().String()) || exitCode(err) != 2 {
		t.Fatalf("err = %v (exit %d)", err, exitCode(err))
	}
}

func TestServeBadMQTTURL(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"serve", "--init", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--mqtt-url", "http://x"},
		nil, strings.NewReader(""), &out, &errb)
	if err == nil || exitCode(err) != 2 {
		t.Fatalf("err = %v", err)
	}
}
