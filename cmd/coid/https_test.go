package main

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
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns their files and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// loginCookieSecure fetches the sign-in page and reports whether the
// cookie it sets is marked Secure.
func loginCookieSecure(t *testing.T, c *http.Client, url string, header ...string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/login", nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) == 0 {
		t.Fatalf("GET /login: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	for _, ck := range resp.Cookies() {
		if !ck.Secure {
			return false
		}
	}
	return true
}

// TestServeHTTPS: with a certificate coid serves HTTPS only, and its
// cookies are Secure; plain HTTP to the port gets nowhere.
func TestServeHTTPS(t *testing.T) {
	tmp := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, tmp, "coid")
	srv := startServer(t, filepath.Join(tmp, "data"), "COID_TLS_CERT="+certFile, "COID_TLS_KEY="+keyFile)
	if !strings.HasPrefix(srv.url, "https://") {
		t.Fatalf("serving on %s, want https", srv.url)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	resp, err := c.Get(srv.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz over TLS: %d", resp.StatusCode)
	}
	if !loginCookieSecure(t, c, srv.url) {
		t.Error("cookies over HTTPS are not Secure")
	}
	plain := "http://" + strings.TrimPrefix(srv.url, "https://")
	if resp, err := http.Get(plain + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200 on the HTTPS port")
		}
	}
}

// TestServeBehindATLSProxy: a proxy named with --trusted-proxy is believed
// when it says the client came over HTTPS (cookies are then Secure); the
// same header from anyone else is not.
func TestServeBehindATLSProxy(t *testing.T) {
	tmp := t.TempDir()
	c := &http.Client{Timeout: 10 * time.Second}
	srv := startServer(t, filepath.Join(tmp, "a"), "COID_TRUSTED_PROXIES=127.0.0.1/32")
	if !loginCookieSecure(t, c, srv.url, "X-Forwarded-Proto", "https") {
		t.Error("a trusted proxy's X-Forwarded-Proto: https did not make the cookies Secure")
	}
	if loginCookieSecure(t, c, srv.url) {
		t.Error("cookies Secure over plain HTTP")
	}
	other := startServer(t, filepath.Join(tmp, "b"), "COID_TRUSTED_PROXIES=10.9.8.0/24")
	if loginCookieSecure(t, c, other.url, "X-Forwarded-Proto", "https") {
		t.Error("X-Forwarded-Proto believed from a peer that is not a trusted proxy")
	}
}

// TestServeRefusesPlainHTTPBeyondLoopback: passwords travel in request
// bodies, so plain HTTP on an address other machines reach is refused
// unless a TLS proxy is named; bad settings are refused clearly.
func TestServeRefusesPlainHTTPBeyondLoopback(t *testing.T) {
	tmp := t.TempDir()
	certFile, _, _ := selfSigned(t, tmp, "coid")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"all interfaces", []string{"--http", "0.0.0.0:0"}, "in clear"},
		{"no host", []string{"--http", ":0"}, "in clear"},
		{"cert without key", []string{"--tls-cert", certFile}, "both --tls-cert and --tls-key"},
		{"bad proxy", []string{"--trusted-proxy", "10.0.0.1"}, "not a CIDR range"},
		{"no port", []string{"--http", "bogus"}, "not an address with a port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--data", filepath.Join(tmp, "data"), "--mqtt-listen", "off"}, tc.args...)
			var out, errb strings.Builder
			err := run(context.Background(), args, nil, strings.NewReader(""), &out, &errb)
			var ue usageError
			if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a usage error saying %q", err, tc.want)
			}
		})
	}
}
