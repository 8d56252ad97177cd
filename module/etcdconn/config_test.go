package etcdconn

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestPlaceholdersNeverComeOutEmpty: a setting written with a placeholder
// that resolves to nothing is refused, naming the setting; one that
// resolves is used, the prefix included.
func TestPlaceholdersNeverComeOutEmpty(t *testing.T) {
	t.Setenv("TG_TEST_PREFIX", "/realprefix")
	base := Config{Endpoints: []string{"http://127.0.0.1:2379"}}
	for _, c := range []struct {
		name string
		set  func(c *Config)
	}{
		{"prefix", func(c *Config) { c.Prefix = "{env.TG_TEST_UNSET}" }},
		{"tls_ca", func(c *Config) { c.TLSCA = "{env.TG_TEST_UNSET}" }},
		{"tls_cert", func(c *Config) { c.TLSCert, c.TLSKey = "{env.TG_TEST_UNSET}", "/k.pem" }},
		{"username", func(c *Config) { c.Username, c.Password = "{env.TG_TEST_UNSET}", "{env.TG_TEST_UNSET}" }},
	} {
		cfg := base
		c.set(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.name) || !strings.Contains(err.Error(), "empty") {
			t.Errorf("%s from an unset variable: %v", c.name, err)
		}
	}
	cfg := base
	cfg.Prefix = "{env.TG_TEST_PREFIX}"
	r, err := cfg.resolve(caddy.NewReplacer())
	if err != nil || r.prefix != "/realprefix" {
		t.Fatalf("prefix from a set variable: %q, %v", r.prefix, err)
	}
}

// TestEndpointRules: endpoints are http(s)://host:port, no credentials
// (never echoed back), a real port.
func TestEndpointRules(t *testing.T) {
	for _, ep := range []string{"http://root:SuperSecretPW@127.0.0.1:2379", "http://127.0.0.1:99999", "ftp://a:1",
		"http://a:1/path", "http://a:1?x=1", "127.0.0.1:2379"} {
		cfg := Config{Endpoints: []string{ep}}
		err := cfg.Validate()
		if err == nil {
			t.Errorf("endpoint %q accepted", ep)
		} else if strings.Contains(err.Error(), "SuperSecretPW") {
			t.Errorf("the refusal shows the password: %v", err)
		}
	}
	for _, ep := range []string{"http://127.0.0.1:2379", "https://etcd.example.com:2379", "http://[::1]:2379/", "http://etcd"} {
		if err := (&Config{Endpoints: []string{ep}}).Validate(); err != nil {
			t.Errorf("endpoint %q refused: %v", ep, err)
		}
	}
}
