package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/spf13/pflag"
)

// tokenEnv names the environment variable holding the bearer token for
// --url. There is deliberately no flag for it: flags end up in shell
// history and in every process listing on the machine.
const tokenEnv = "TOKENGATE_TOKEN"

// adminPrefix is where the API lives on Caddy's admin endpoint.
const adminPrefix = "/tokengate"

// Limits on one exchange with the API.
const (
	requestTimeout = time.Minute
	maxAnswer      = 64 << 20
)

// target is where a command's request goes: Caddy's admin endpoint, as
// the machine's operator, or a tokengate_admin mount, as the admin whose
// token is in TOKENGATE_TOKEN.
type target struct {
	adminAddress string
	mount        *url.URL
	token        string
}

// targetFrom reads --address, --url and TOKENGATE_TOKEN. Its errors are
// usage errors: nothing has been sent yet.
func targetFrom(fs *pflag.FlagSet) (target, error) {
	t, err := endpointFrom(fs)
	if err != nil || t.mount == nil {
		return t, err
	}
	tok := strings.TrimSpace(os.Getenv(tokenEnv))
	if tok == "" {
		return target{}, usageErrorf("--url needs an admin's token in the %s environment variable "+
			"(there is no flag for it, so that it stays out of shell history and process lists)", tokenEnv)
	}
	t.token = tok
	return t, nil
}

// endpointFrom reads --address and --url: where a request goes, without
// any token (public routes need none, and get none).
func endpointFrom(fs *pflag.FlagSet) (target, error) {
	address, _ := fs.GetString("address")
	rawURL, _ := fs.GetString("url")
	if !fs.Changed("url") {
		if address == "" {
			return target{}, usageErrorf("--address is empty")
		}
		return target{adminAddress: address}, nil
	}
	if fs.Changed("address") {
		return target{}, usageErrorf("give --address (Caddy's admin endpoint) or --url (a tokengate_admin mount), not both")
	}
	mount, err := url.Parse(rawURL)
	if err != nil || (mount.Scheme != "http" && mount.Scheme != "https") || mount.Host == "" {
		return target{}, usageErrorf("--url must be an http:// or https:// URL such as https://gw.example.com/admin")
	}
	if mount.RawQuery != "" || mount.Fragment != "" {
		return target{}, usageErrorf("--url must be the mount's base URL, without query or fragment")
	}
	return target{mount: mount}, nil
}

// describe names the target in messages. It never includes the token.
func (t target) describe() string {
	if t.mount != nil {
		return t.mount.Redacted()
	}
	return "Caddy's admin endpoint at " + t.adminAddress
}

// answer is what the API said.
type answer struct {
	status   int
	body     []byte
	location string // of a redirect, which is not followed
}

// send makes one request to the API at path (which may carry a query) and
// reads the answer. body, when not nil, is JSON.
func (t target) send(ctx context.Context, method, path string, body []byte) (*answer, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var req *http.Request
	var client *http.Client
	var err error
	if t.mount != nil {
		req, client, err = t.mountRequest(ctx, method, path, body)
	} else {
		req, client, err = t.adminRequest(ctx, method, path, body)
	}
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		hint := ""
		if t.mount == nil {
			hint = " (is tokengate running, with its admin endpoint there?)"
		}
		return nil, fmt.Errorf("reaching %s%s: %w", t.describe(), hint, unwrapURLError(err))
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", t.describe(), err)
	}
	return &answer{status: res.StatusCode, body: data, location: res.Header.Get("Location")}, nil
}

// unwrapURLError drops the method and URL net/http puts in front of a
// transport error: the message already says which endpoint it was.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// mountRequest addresses a tokengate_admin mount with the bearer token, if
// the target has one.
// Redirects are not followed, so the token is only ever sent to the URL
// the user named.
func (t target) mountRequest(ctx context.Context, method, path string, body []byte) (*http.Request, *http.Client, error) {
	u := strings.TrimSuffix(t.mount.String(), "/") + path
	req, err := http.NewRequestWithContext(ctx, method, u, bodyReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("making the request to %s: %w", t.describe(), err)
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return req, client, nil
}

// adminRequest addresses Caddy's admin endpoint the way Caddy's own
// commands do (see caddycmd.AdminAPIRequest): the address may be a TCP
// host:port or a unix socket, and the Origin header must name the
// endpoint, which is how Caddy tells its own CLI from a web page. That
// helper is not used directly because it turns error answers into text,
// and the API's error code must reach the user intact.
func (t target) adminRequest(ctx context.Context, method, path string, body []byte) (*http.Request, *http.Client, error) {
	addr, err := caddy.ParseNetworkAddress(t.adminAddress)
	if err != nil || addr.PortRangeSize() > 1 {
		return nil, nil, usageErrorf("--address %q is not an admin endpoint address such as localhost:2019 or unix//run/caddy-admin.sock", t.adminAddress)
	}
	local := addr.IsUnixNetwork() || addr.IsFdNetwork()
	origin := "http://" + addr.JoinHostPort(0)
	if local {
		// Such addresses have no host; Caddy accepts a loopback one.
		origin = "http://127.0.0.1"
		// A unix socket address may end in |mode, the socket's
		// permission bits, which are not part of its path.
		addr.Host, _, _ = strings.Cut(addr.Host, "|")
	}
	req, err := http.NewRequestWithContext(ctx, method, origin+adminPrefix+path, bodyReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("making the request to %s: %w", t.describe(), err)
	}
	if !local {
		req.Header.Set("Origin", origin)
	}
	dialer := &net.Dialer{}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, addr.Network, addr.JoinHostPort(0))
		},
	}}
	return req, client, nil
}

func bodyReader(body []byte) io.Reader {
	if body == nil {
		return nil
	}
	return bytes.NewReader(body)
}
