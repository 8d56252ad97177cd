package etcdconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// DefaultPrefix is the key prefix under which tokengate keeps its data.
const DefaultPrefix = "/tokengate"

// DefaultDialTimeout bounds how long connecting to an endpoint may take.
const DefaultDialTimeout = 5 * time.Second

// Config says how to reach an existing etcd cluster. It is the `etcd` block
// of the tokengate global option; without it tokengate runs an embedded etcd.
type Config struct {
	// Client URLs of the cluster members, e.g. https://10.0.0.1:2379.
	// Required.
	Endpoints []string `json:"endpoints,omitempty"`

	// Key prefix under which all tokengate data lives, so that one cluster
	// can serve several deployments. Default: /tokengate.
	Prefix string `json:"prefix,omitempty"`

	// User name and password for etcd's own authentication, if enabled.
	// Both accept placeholders such as {env.ETCD_PASSWORD}.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`

	// PEM file of the CA that signed the members' certificates. Setting it
	// (or a client certificate) turns TLS on.
	TLSCA string `json:"tls_ca,omitempty"`

	// PEM files of the client certificate and its key, for clusters that
	// require client certificate authentication.
	TLSCert string `json:"tls_cert,omitempty"`
	TLSKey  string `json:"tls_key,omitempty"`

	// How long connecting to an endpoint may take. Default: 5s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
}

// ErrNoEndpoints is the error of an etcd configuration that names no member
// to connect to.
var ErrNoEndpoints = errors.New("endpoints is required (leave out the etcd block to use the embedded etcd)")

// EmbeddedDir returns where the embedded etcd keeps its data: dir with its
// placeholders replaced, made absolute; tokengate/etcd under Caddy's data
// directory when dir is empty.
func EmbeddedDir(dir string) (string, error) {
	dir = caddy.NewReplacer().ReplaceAll(dir, "")
	if dir == "" {
		dir = filepath.Join(caddy.AppDataDir(), "tokengate", "etcd")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("embedded_dir: %v", err)
	}
	return abs, nil
}

// resolved is a Config with placeholders replaced and defaults filled in.
type resolved struct {
	endpoints   []string
	prefix      string
	username    string
	password    string
	tlsCA       string
	tlsCert     string
	tlsKey      string
	dialTimeout time.Duration
}

// NormalizePrefix returns p as a key prefix: leading slash, no trailing
// slash, default when empty.
func NormalizePrefix(p string) (string, error) {
	p = strings.TrimRight(p, "/")
	if p == "" {
		return DefaultPrefix, nil
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if strings.ContainsAny(p, "\x00\n") {
		return "", errors.New("prefix contains a control character")
	}
	return p, nil
}

// Validate checks the configuration without connecting: placeholders,
// endpoints, pairs of settings, and that the TLS files can be read.
func (c *Config) Validate() error {
	r, err := c.resolve(caddy.NewReplacer())
	if err != nil {
		return err
	}
	_, err = r.tlsConfig()
	return err
}

func (c *Config) resolve(repl *caddy.Replacer) (resolved, error) {
	r := resolved{dialTimeout: time.Duration(c.DialTimeout)}
	// A setting written with placeholders must not come out empty: an
	// unset {env.ETCD_CA} would drop the pinned CA for the system's, an
	// unset prefix would share the default one with other deployments.
	for _, f := range []struct {
		name, value string
		to          *string
	}{{"prefix", c.Prefix, &r.prefix}, {"username", c.Username, &r.username}, {"password", c.Password, &r.password},
		{"tls_ca", c.TLSCA, &r.tlsCA}, {"tls_cert", c.TLSCert, &r.tlsCert}, {"tls_key", c.TLSKey, &r.tlsKey}} {
		*f.to = repl.ReplaceAll(f.value, "")
		if f.value != "" && *f.to == "" {
			return r, fmt.Errorf("%s: %q comes out empty (an environment variable not set?)", f.name, f.value)
		}
	}
	var err error
	if r.prefix, err = NormalizePrefix(r.prefix); err != nil {
		return r, err
	}
	if r.dialTimeout == 0 {
		r.dialTimeout = DefaultDialTimeout
	}
	if r.dialTimeout < 0 {
		return r, errors.New("dial_timeout must not be negative")
	}
	for _, ep := range c.Endpoints {
		ep = repl.ReplaceAll(ep, "")
		if err := checkEndpoint(ep); err != nil {
			return r, err
		}
		r.endpoints = append(r.endpoints, ep)
	}
	if len(r.endpoints) == 0 {
		return r, ErrNoEndpoints
	}
	if (r.tlsCert == "") != (r.tlsKey == "") {
		return r, errors.New("tls_cert and tls_key go together")
	}
	if (r.username == "") != (r.password == "") {
		return r, errors.New("username and password go together")
	}
	return r, nil
}

// checkEndpoint accepts http://host:port and https://host:port, without
// credentials (they would be logged with the endpoint, and etcd takes them
// from username and password) and with a port that exists.
func checkEndpoint(ep string) error {
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" && u.Path != "/" ||
		u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("endpoint %q: want http://host:port or https://host:port", redactEndpoint(ep))
	}
	if u.User != nil {
		return fmt.Errorf("endpoint %q: credentials go in username and password, not in the endpoint", redactEndpoint(ep))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("endpoint %q: port %q is not a port", ep, p)
		}
	}
	return nil
}

// redactEndpoint hides the credentials an endpoint may carry.
func redactEndpoint(ep string) string {
	if u, err := url.Parse(ep); err == nil && u.User != nil {
		return u.Redacted()
	}
	return ep
}

func (r resolved) usesTLS() bool {
	if r.tlsCA != "" || r.tlsCert != "" {
		return true
	}
	for _, ep := range r.endpoints {
		if strings.HasPrefix(ep, "https://") {
			return true
		}
	}
	return false
}

// tlsConfig builds the client TLS configuration, or nil when TLS is off.
func (r resolved) tlsConfig() (*tls.Config, error) {
	if !r.usesTLS() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.tlsCA != "" {
		pem, err := os.ReadFile(r.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("reading tls_ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca %s holds no PEM certificate", r.tlsCA)
		}
		cfg.RootCAs = pool
	}
	if r.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(r.tlsCert, r.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("loading tls_cert and tls_key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
