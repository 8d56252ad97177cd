package etcdconn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// writeCert issues a certificate signed by parent (self-signed when parent
// is nil) and writes it and its key as PEM files.
func writeCert(t *testing.T, dir, name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return cert, key
}

// TestTLSClientCertAndPassword connects to a real etcd that requires TLS
// with client certificates and, after auth is enabled, a password.
func TestTLSClientCertAndPassword(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, caKey := writeCert(t, dir, "ca", &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	writeCert(t, dir, "server", &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "etcd"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey)
	writeCert(t, dir, "client", &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey)

	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(dir, "data")
	cfg.LogLevel = "error"
	cu, _ := url.Parse("https://127.0.0.1:0")
	pu, _ := url.Parse("http://127.0.0.1:0")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ClientTLSInfo = transport.TLSInfo{
		CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem"),
		TrustedCAFile: filepath.Join(dir, "ca.pem"), ClientCertAuth: true,
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	<-e.Server.ReadyNotify()
	endpoint := "https://" + e.Clients[0].Addr().String()

	tlsCfg := Config{
		Endpoints:   []string{endpoint},
		TLSCA:       filepath.Join(dir, "ca.pem"),
		TLSCert:     filepath.Join(dir, "client.pem"),
		TLSKey:      filepath.Join(dir, "client-key.pem"),
		DialTimeout: 0,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Open(&tlsCfg, "", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Client.Put(ctx, "/tokengate/x", "y"); err != nil {
		t.Fatalf("put over TLS: %v", err)
	}

	// Without the client certificate the server refuses.
	noCert := Config{Endpoints: []string{endpoint}, TLSCA: tlsCfg.TLSCA}
	bare, err := Open(&noCert, "", zap.NewNop())
	if err == nil {
		short, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = bare.Client.Get(short, "/tokengate/x")
		cancel()
		bare.Close()
	}
	if err == nil {
		t.Fatal("connected without a client certificate")
	}

	// Turn on etcd's authentication: a password is now required as well.
	if _, err := conn.Client.UserAdd(ctx, "root", "rootpw"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Client.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Client.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	t.Setenv("TG_ETCD_PASSWORD", "rootpw")
	withPassword := tlsCfg
	withPassword.Username, withPassword.Password = "root", "{env.TG_ETCD_PASSWORD}"
	authed, err := Open(&withPassword, "", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer authed.Close()
	if _, err := authed.Client.Get(ctx, "/tokengate/x"); err != nil {
		t.Fatalf("get with password: %v", err)
	}
	wrong := tlsCfg
	wrong.Username, wrong.Password = "root", "nope"
	if c, err := Open(&wrong, "", zap.NewNop()); err == nil {
		c.Close()
		t.Fatal("wrong password accepted")
	}
}
