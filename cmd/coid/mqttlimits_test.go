package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeMQTTMaxConns: --mqtt-max-conns (over COID_MQTT_MAX_CONNS)
// reaches the embedded broker, which refuses connections beyond it and
// says so in the log; a value that is not a whole number of at least 1 is
// a usage error.
func TestServeMQTTMaxConns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append(serveArgs(t.TempDir()), "--mqtt-max-conns", "2"), []string{"COID_MQTT_MAX_CONNS=50"},
			strings.NewReader(""), pw, stderr)
		pw.CloseWithError(fmt.Errorf("run returned: %v", err))
		done <- err
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("server did not shut down")
		}
	}()
	if _, err := bufio.NewReader(pr).ReadString('\n'); err != nil {
		t.Fatalf("server did not start: %v\nstderr:\n%s", err, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	m := regexp.MustCompile(`embedded MQTT broker listening" mqtt_listen=(\S+) .*max_connections=2\b`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no broker line with max_connections=2 in:\n%s", stderr.String())
	}
	// coid's own subscriber holds one of the two: three more are too many.
	for range 3 {
		c, err := net.Dial("tcp", m[1])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	deadline := time.Now().Add(60 * time.Second) // a guard against a hang only
	for !strings.Contains(stderr.String(), "maximum of open connections") {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal at the cap in the log:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	for _, tc := range []struct {
		args []string
		env  string
	}{
		{[]string{"--mqtt-max-conns", "0"}, ""},
		{[]string{"--mqtt-max-conns", "-5"}, ""},
		{nil, "COID_MQTT_MAX_CONNS=many"},
		{nil, "COID_MQTT_MAX_CONNS=0"},
	} {
		err := run(context.Background(), append(serveArgs(t.TempDir()), tc.args...), []string{tc.env}, strings.NewReader(""), io.Discard, io.Discard)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), "--mqtt-max-conns") {
			t.Errorf("%v %s: %v, want a usage error naming --mqtt-max-conns", tc.args, tc.env, err)
		}
	}
}
