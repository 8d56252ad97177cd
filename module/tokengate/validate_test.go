package tokengate_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/tokengate/tokengate/internal/caddytest"
)

// validateCaddyfile is the README's demo shape: the app on an embedded
// etcd, the gateway handler and the admin mount.
const validateCaddyfile = `{
	admin off
	persist_config off
	tokengate {
		embedded_dir {{DIR}}
		{{EXTRA}}
	}
}
http://127.0.0.1:{{PORT}} {
	handle /api/* {
		tokengate api
		respond "ok"
	}
	handle_path /admin/* {
		tokengate_admin
	}
}
`

// TestValidateOpensNothing: `tokengate validate` provisions a config
// without starting it. It must not start an embedded etcd (no data
// directory appears), must work beside a running gateway on the same
// directory, and must refuse bad settings before any side effect.
func TestValidateOpensNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	vars := map[string]string{"DIR": dir, "EXTRA": "", "PORT": "0"}
	if err := caddy.Validate(caddyJSON(t, vars)); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("validate created the embedded etcd's directory (%v)", err)
	}

	// The JSON config is checked by the app's Validate; the Caddyfile by
	// the same rule as it is adapted.
	bad := caddyJSON(t, vars)
	bad.AppsRaw["tokengate"] = json.RawMessage(fmt.Sprintf(`{"embedded_dir":%q,"cache_ttl":"10s","max_stale":"1m"}`, dir))
	err := caddy.Validate(bad)
	if err == nil || !strings.Contains(err.Error(), "max_stale") {
		t.Fatalf("max_stale > cache_ttl: %v", err)
	}
	badFile := strings.Replace(validateCaddyfile, "{{EXTRA}}", "cache_ttl 10s\n\t\tmax_stale 1m", 1)
	if _, _, err := (caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}).Adapt([]byte(badFile), nil); err == nil || !strings.Contains(err.Error(), "max_stale") {
		t.Fatalf("the Caddyfile's max_stale > cache_ttl: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("a refused config left a data directory behind")
	}

	// Beside a running gateway on the same directory: the directory lock
	// would refuse a second etcd, so validate must not start one.
	caddytest.Load(t, validateCaddyfile, map[string]string{"DIR": dir, "EXTRA": "", "PORT": fmt.Sprint(caddytest.FreePort(t))})
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the running gateway has no data directory: %v", err)
	}
	if err := caddy.Validate(caddyJSON(t, vars)); err != nil {
		t.Fatalf("validate beside a running gateway: %v", err)
	}
}

// caddyJSON adapts the Caddyfile and decodes it as `caddy validate` does.
func caddyJSON(t *testing.T, vars map[string]string) *caddy.Config {
	t.Helper()
	var cfg caddy.Config
	if err := caddy.StrictUnmarshalJSON(caddytest.Adapt(t, validateCaddyfile, vars), &cfg); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// TestAccountHeaderWithIdentityPrefixRefused: an account read from a header
// the handler removes first (it carries the identity prefix) would judge
// nothing; the config is refused.
func TestAccountHeaderWithIdentityPrefixRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	body := strings.Replace(validateCaddyfile, "tokengate api\n", "tokengate api {\n\t\t\taccount {header.X-Tokengate-Account}\n\t\t}\n", 1)
	var cfg caddy.Config
	if err := caddy.StrictUnmarshalJSON(caddytest.Adapt(t, body, map[string]string{"DIR": dir, "EXTRA": "", "PORT": "0"}), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err == nil || !strings.Contains(err.Error(), "removed before the account is judged") {
		t.Fatalf("validate: %v", err)
	}
}
