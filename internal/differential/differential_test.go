package differential

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate/caddyfile"
	"github.com/tokengate/tokengate/internal/caddytest"
	"github.com/tokengate/tokengate/internal/etcdtest"
	"github.com/tokengate/tokengate/internal/upstreams"
	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

var operator = store.Actor{ID: "operator", Type: store.ActorOperator}

// identityTags are the headers every admitted request must carry upstream.
var identityTags = []string{"x-tokengate-user-id", "x-tokengate-user-type", "x-tokengate-user-name", "x-tokengate-org-id",
	"x-tokengate-account-id", "x-tokengate-role", "x-tokengate-token-id"}

// TestOneReadingAgainstRealParsers sends every generated request through
// tokengate to each real upstream parser. Whenever the gateway admits a
// request, what the upstream read must be what the gateway judged.
func TestOneReadingAgainstRealParsers(t *testing.T) {
	ups := upstreams.All(t)
	srv := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := store.New(srv.Client(), "/tg")
	if _, err := st.CreateOrg(ctx, store.Org{ID: "acme", Name: "Acme"}, operator); err != nil {
		t.Fatal(err)
	}
	var acts [2]string
	for i := range acts {
		a, err := st.CreateAccount(ctx, store.Account{Org: "acme", Name: fmt.Sprint("a", i)}, operator)
		if err != nil {
			t.Fatal(err)
		}
		acts[i] = a.ID
	}
	jobs, err := st.CreatePolicy(ctx, store.Policy{Org: "acme", Name: "jobs", Statements: []store.Statement{
		{Effect: "allow", Methods: []string{"GET"}, Paths: []string{"/api/**"}},
		{Effect: "allow", Methods: []string{"POST"}, Paths: []string{"/api/jobs/**"}},
		{Effect: "allow", Methods: []string{"*"}, Paths: []string{"/api/scratch/**"}},
		{Effect: "deny", Methods: []string{"*"}, Paths: []string{"/api/admin/*", "/api/clusters/secret"}},
		{Effect: "deny", Methods: []string{"GET"}, Paths: []string{"/api/clusters/hidden", "/api/scratch/hidden"}},
	}}, operator)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for name, u := range map[string]store.User{
		"viewer":    {Level: store.LevelAccount, Account: acts[0], Role: store.RoleViewer},
		"jobs":      {Level: store.LevelAccount, Account: acts[0], Role: store.RolePolicy, Policies: []string{jobs.ID}},
		"orgviewer": {Level: store.LevelOrganization, Accounts: []string{acts[0]}, Role: store.RoleViewer},
	} {
		u.Org, u.Type, u.Name = "acme", store.TypeProgrammatic, name
		secret, err := token.Generate(token.Programmatic)
		if err != nil {
			t.Fatal(err)
		}
		nt := store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID(), Hint: token.Hint(secret)}}
		if _, err := st.CreateUser(ctx, u, &nt, operator); err != nil {
			t.Fatal(err)
		}
		tokens[name] = secret
	}

	// One site per upstream, each the README's setup: tokengate api in
	// front of a reverse proxy.
	var cf strings.Builder
	fmt.Fprintf(&cf, "{\n\tadmin off\n\tpersist_config off\n\ttokengate {\n\t\tetcd {\n\t\t\tendpoints %s\n\t\t\tprefix /tg\n\t\t}\n\t}\n}\n", srv.Endpoint())
	sites := map[string]string{}
	for _, u := range ups {
		port := caddytest.FreePort(t)
		sites[u.Name] = fmt.Sprintf("127.0.0.1:%d", port)
		// /ck/ reads the account from a cookie as well.
		up := strings.TrimPrefix(u.URL, "http://")
		fmt.Fprintf(&cf, "http://127.0.0.1:%d {\n\troute /api/* {\n\t\ttokengate api\n\t\treverse_proxy %s\n\t}\n"+
			"\troute /ck/* {\n\t\ttokengate api {\n\t\t\taccount {cookie.accountId}\n\t\t}\n\t\treverse_proxy %s\n\t}\n}\n",
			port, up, up)
	}
	caddytest.Load(t, cf.String(), nil)

	reqs := generate(acts[0], acts[1])
	var wg sync.WaitGroup
	results := make([]tally, len(ups))
	for i, u := range ups {
		wg.Go(func() { results[i] = run(t, u.Name, sites[u.Name], reqs, tokens) })
	}
	wg.Wait()
	for i, u := range ups {
		r := results[i]
		t.Logf("%-6s %d requests: %d admitted and read, %d refused by the gateway, %d refused by the upstream itself; %d disagreements (%v)",
			u.Name, len(reqs), r.read, r.refused, r.unread, r.disagreements, r.took.Round(time.Millisecond))
		if r.read == 0 || r.refused == 0 {
			t.Errorf("%s: the run exercised nothing (%+v)", u.Name, r)
		}
	}
}

// tally counts one upstream's run.
type tally struct {
	read, refused, unread, disagreements int
	took                                 time.Duration
}

// run sends every request to one site and checks each reading.
func run(t *testing.T, parser, addr string, reqs []request, tokens map[string]string) (n tally) {
	c := &client{addr: addr}
	defer c.close()
	start := time.Now()
	defer func() { n.took = time.Since(start) }()
	for _, req := range reqs {
		status, body, err := c.send(req, tokens[req.user])
		if err != nil {
			t.Errorf("%s: %s: %v", parser, req, err)
			n.disagreements++
			continue
		}
		var reading upstreams.Reading
		switch {
		case status >= 400 && isGatewayError(body):
			n.refused++
			continue
		case status != http.StatusOK || json.Unmarshal(body, &reading) != nil || reading.Parser != parser:
			n.unread++ // the upstream's server refused it before any app ran
			continue
		}
		n.read++
		if msgs := judge(req, reading); len(msgs) > 0 {
			n.disagreements++
			if n.disagreements <= 20 {
				t.Errorf("%s read what the gateway did not judge:\n  request: %s\n  %s", parser, req, strings.Join(msgs, "\n  "))
			}
		}
	}
	return n
}

// judge lists where an admitted request's reading departs from what the
// gateway judged: the account it tagged, the user's role, the tags.
func judge(req request, r upstreams.Reading) []string {
	var msgs []string
	tags := map[string]string{}
	for name, vals := range r.Header {
		key := strings.TrimPrefix(strings.ReplaceAll(strings.ToLower(name), "_", "-"), "http-")
		if len(vals) > 0 {
			tags[key] = vals[0]
		}
	}
	for _, tag := range identityTags {
		if tags[tag] == "" {
			msgs = append(msgs, "identity tag "+tag+" missing upstream")
		}
	}
	account := tags["x-tokengate-account-id"]
	for _, a := range slices.Concat(r.QueryAccounts, r.HeaderAccounts, r.CookieAccounts) {
		if a != "" && a != account {
			msgs = append(msgs, fmt.Sprintf("account %q read, %q tagged", a, account))
		}
	}
	for _, m := range r.Methods {
		for _, p := range r.Paths {
			if !roleAllows(req.user, m, p) {
				msgs = append(msgs, fmt.Sprintf("%s %s read, which %s may not do", m, p, req.user))
			}
		}
	}
	return msgs
}

// roleAllows is the test's own statement of each user's rights, written
// independently of the gateway's policy code. The frameworks run the GET
// handler for HEAD, so for the policy user HEAD is read as GET.
func roleAllows(user, method, p string) bool {
	if user == "jobs" && strings.EqualFold(method, "HEAD") {
		method = "GET"
	}
	if user != "jobs" {
		return method == "GET" || method == "HEAD" || method == "OPTIONS"
	}
	clean := path.Clean("/" + strings.ReplaceAll(p, "\\", "/"))
	lower := strings.ToLower(clean)
	if lower == "/api/admin" || strings.HasPrefix(lower, "/api/admin/") || lower == "/api/clusters/secret" {
		return false
	}
	for _, hidden := range []string{"/api/clusters/hidden", "/api/scratch/hidden"} {
		if strings.EqualFold(method, "GET") && (lower == hidden || strings.HasPrefix(lower, hidden+".")) {
			return false
		}
	}
	switch {
	case strings.HasPrefix(clean, "/api/scratch/"):
		return true
	case method == "POST":
		return strings.HasPrefix(clean, "/api/jobs/")
	case method == "GET":
		return strings.HasPrefix(clean, "/api/")
	}
	return false
}

// isGatewayError reports whether a body is tokengate's JSON error.
func isGatewayError(body []byte) bool {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	return json.Unmarshal(body, &e) == nil && e.Error.Code != ""
}

// client sends requests exactly as generated over one keep-alive
// connection, dialling again when the server closes it.
type client struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// send writes the request and reads the answer; a request on a connection
// the server had already closed is sent once more on a new one.
func (c *client) send(req request, tok string) (int, []byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n", req.method, req.target, c.addr, tok)
	for _, h := range req.header {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	if req.body != "" || req.method == "POST" || req.method == "PUT" || req.method == "PATCH" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(req.body))
	}
	b.WriteString("\r\n")
	b.WriteString(req.body)
	for attempt := 0; ; attempt++ {
		fresh := c.conn == nil
		if fresh {
			conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
			if err != nil {
				return 0, nil, err
			}
			c.conn, c.br = conn, bufio.NewReader(conn)
		}
		c.conn.SetDeadline(time.Now().Add(20 * time.Second))
		status, body, keep, err := c.roundTrip(b.String(), req.method)
		if !keep || err != nil {
			c.close()
		}
		if err != nil && !fresh && attempt == 0 {
			continue // the server closed the idle connection first
		}
		return status, body, err
	}
}

func (c *client) roundTrip(msg, method string) (status int, body []byte, keep bool, err error) {
	if _, err := io.WriteString(c.conn, msg); err != nil {
		return 0, nil, false, err
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return 0, nil, false, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp.StatusCode, body, !resp.Close, err
}
