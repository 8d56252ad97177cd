package etcdcluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Security is what a secure cluster (Options.Secure) asks of its clients:
// TLS with a client certificate from its own CA, on client and peer
// connections alike, and etcd's authentication, with a user for tokengate
// whose role reaches only Prefix.
type Security struct {
	// CA, ClientCert and ClientKey are PEM files.
	CA, ClientCert, ClientKey string
	// Username and Password are tokengate's etcd user; its role may read
	// and write Prefix and nothing else.
	Username, Password, Prefix string
	// rootPassword is the root user's, for the harness's own clients.
	rootPassword string
	serverCert   string
	serverKey    string
}

// Security returns the cluster's security, nil for a plain cluster.
func (c *Cluster) Security() *Security { return c.sec }

// newSecurity issues a CA, a certificate for the members (client and peer
// TLS, 127.0.0.1) and one for clients, into dir.
func newSecurity(t testing.TB, dir string) *Security {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	issue := func(name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		for file, block := range map[string]*pem.Block{
			name + ".pem":     {Type: "CERTIFICATE", Bytes: der},
			name + "-key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER},
		} {
			if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(block), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return cert, key
	}
	ca, caKey := issue("ca", &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test etcd ca"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	issue("member", &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "etcd member"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}, ca, caKey)
	issue("client", &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "tokengate"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, caKey)
	p := func(name string) string { return filepath.Join(dir, name) }
	return &Security{CA: p("ca.pem"), ClientCert: p("client.pem"), ClientKey: p("client-key.pem"),
		serverCert: p("member.pem"), serverKey: p("member-key.pem"),
		Username: "tokengate", Password: fmt.Sprintf("pw-%x", randUint()), Prefix: "/tokengate/",
		rootPassword: fmt.Sprintf("root-%x", randUint())}
}

func randUint() uint64 {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	var n uint64
	for _, x := range b {
		n = n<<8 | uint64(x)
	}
	return n
}

// memberArgs are the TLS flags of a secure member.
func (s *Security) memberArgs() []string {
	return []string{
		"--cert-file", s.serverCert, "--key-file", s.serverKey, "--trusted-ca-file", s.CA, "--client-cert-auth",
		"--peer-cert-file", s.serverCert, "--peer-key-file", s.serverKey, "--peer-trusted-ca-file", s.CA,
		"--peer-client-cert-auth",
	}
}

// TLSConfig is a client's TLS configuration.
func (s *Security) TLSConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(s.ClientCert, s.ClientKey)
	if err != nil {
		return nil, err
	}
	pemCA, err := os.ReadFile(s.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemCA) {
		return nil, fmt.Errorf("no certificate in %s", s.CA)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// enableAuth makes the root user, tokengate's user and its role over
// Prefix, and turns authentication on; the harness's clients use root
// from then on.
func (c *Cluster) enableAuth() {
	c.t.Helper()
	s := c.sec
	cl := c.ClientOf()
	defer c.forget(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	steps := []func() error{
		func() error { _, err := cl.UserAdd(ctx, "root", s.rootPassword); return err },
		func() error { _, err := cl.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cl.RoleAdd(ctx, s.Username); return err },
		func() error {
			_, err := cl.RoleGrantPermission(ctx, s.Username, s.Prefix, clientv3.GetPrefixRangeEnd(s.Prefix),
				clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cl.UserAdd(ctx, s.Username, s.Password); return err },
		func() error { _, err := cl.UserGrantRole(ctx, s.Username, s.Username); return err },
		func() error { _, err := cl.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			c.t.Fatalf("enabling etcd auth, step %d: %v", i, err)
		}
	}
	c.mu.Lock()
	c.authed = true
	old := c.shared
	c.shared = nil
	c.mu.Unlock()
	if old != nil {
		c.forget(old)
	}
}
