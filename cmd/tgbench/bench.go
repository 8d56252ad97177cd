package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/tokengate/module/tokengate"
)

// options are the tool's flags.
type options struct {
	Duration    time.Duration `json:"duration"`
	Rounds      int           `json:"rounds"`
	Connections int           `json:"connections"`
	Users       int           `json:"users"`
	OtherUsers  int           `json:"other_users"`
	BcryptCost  int           `json:"bcrypt_cost"`
	Warmup      time.Duration `json:"warmup"`
	Fronts      string        `json:"fronts"`
	CPUProfile  string        `json:"-"`
	MemProfile  string        `json:"-"`
}

// frontKeys are the front ends in the order rounds visit them; by default
// all are measured, since the targets compare every one of them
// with another ((g) splits (b)'s cost into tokengate's own work and what
// its seven identity headers cost Caddy's proxy and the upstream).
const (
	frontKeys     = "abcdefghi"
	defaultFronts = frontKeys
)

func (o *options) check() error {
	switch {
	case o.Duration <= 0:
		return errors.New("-duration must be positive")
	case o.Rounds < 1:
		return errors.New("-rounds must be at least 1")
	case o.Connections < 1:
		return errors.New("-connections must be at least 1")
	case o.Users < 1:
		return errors.New("-users must be at least 1")
	case o.OtherUsers < 0:
		return errors.New("-other-users must not be negative")
	case o.BcryptCost < bcrypt.MinCost || o.BcryptCost > bcrypt.MaxCost:
		return fmt.Errorf("-bcrypt-cost must be between %d and %d", bcrypt.MinCost, bcrypt.MaxCost)
	case o.Warmup < 0:
		return errors.New("-warmup must not be negative")
	case o.Fronts == "":
		return errors.New("-fronts names no front end")
	}
	for _, c := range o.Fronts {
		if !strings.ContainsRune(frontKeys, c) {
			return fmt.Errorf("-fronts: %q is not one of %s", c, frontKeys)
		}
	}
	return nil
}

// basicUser is (d)'s user; its password is made per run.
const basicUser = "bench"

// frontEnd is one front end under test and what it did over all rounds.
type frontEnd struct {
	key, name string
	url       string
	want      expectation
	tokengate bool // served by tokengate: its etcd reads are counted
	newCreds  func(conn int) credentials
	clients   []*http.Client

	total   roundResult // over the measured rounds
	perRPS  []float64   // requests/s of each round
	elapsed time.Duration
	usage   usage
}

// bench is one run: the servers, Caddy, the users and the front ends.
type bench struct {
	opts     options
	log      io.Writer
	dir      string
	upstream *server
	auth     *server
	app      *tokengate.App
	caddyUp  bool
	users    []user // (b), (c) and (h) spread over their tokens
	limited  []user // (i)'s, each with a rate_limit it never reaches
	others   []user // no front end's, each with a rate_limit
	// oneAMinute is a user limited to one request a minute, which shows
	// whether the handler enforces rate_limit at all (see probeRateLimit).
	oneAMinute user
	fronts     []*frontEnd // all of them, in frontKeys order
	checks     []Check
	negative   negativeCheck
	rateLimits rateLimitNote
}

// setUp starts everything a run needs. On error, what was started is
// stopped again.
func setUp(ctx context.Context, opts options, log io.Writer) (b *bench, err error) {
	b = &bench{opts: opts, log: log}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.tearDown())
			b = nil
		}
	}()
	if err := checkGenerator(); err != nil {
		return b, err
	}
	if b.dir, err = os.MkdirTemp("", "tgbench-"); err != nil {
		return b, fmt.Errorf("creating the temporary directory: %w", err)
	}
	if b.upstream, err = listen("upstream"); err != nil {
		return b, err
	}
	b.upstream.start(upstream())
	if b.auth, err = listen("token service"); err != nil {
		return b, err
	}
	settings, password, err := b.caddySettings()
	if err != nil {
		return b, err
	}
	fmt.Fprintln(log, "starting Caddy with embedded etcd in", b.dir)
	if b.app, err = startCaddy(settings.caddyfile(), log); err != nil {
		return b, err
	}
	b.caddyUp = true

	withLimits := strings.Contains(opts.Fronts, "i")
	if withLimits {
		fmt.Fprintf(log, "creating %d users, %d more with a rate_limit for (i) and %d other users with a rate_limit, a token each\n", opts.Users, opts.Users, opts.OtherUsers)
	} else {
		fmt.Fprintf(log, "creating %d users with a token each\n", opts.Users)
	}
	users, err := createUsers(ctx, b.app.Store(), opts.Users, withLimits, opts.OtherUsers)
	if err != nil {
		return b, err
	}
	b.users, b.limited, b.others, b.oneAMinute = users.plain, users.limited, users.others, users.oneAMinute
	b.auth.start(b.tokenService())
	if err := b.makeFronts(settings.ports, password); err != nil {
		return b, err
	}
	return b, nil
}

// caddySettings picks the ports and (d)'s credentials.
func (b *bench) caddySettings() (caddySettings, string, error) {
	ports, err := freePorts(len(frontKeys))
	if err != nil {
		return caddySettings{}, "", err
	}
	s := caddySettings{
		dir:       b.dir,
		ports:     map[string]int{},
		upstream:  b.upstream.addr,
		auth:      b.auth.addr,
		basicUser: basicUser,
	}
	for i, key := range frontKeys {
		s.ports[string(key)] = ports[i]
	}
	password := newUnknownTokens().next()[len("Bearer "):] // any random string does
	fmt.Fprintf(b.log, "hashing (d)'s password with bcrypt cost %d\n", b.opts.BcryptCost)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), b.opts.BcryptCost)
	if err != nil {
		return caddySettings{}, "", fmt.Errorf("hashing the basic_auth password: %w", err)
	}
	s.basicHash = string(hash)
	return s, password, nil
}

// tokenService knows the same tokens as tokengate.
func (b *bench) tokenService() tokenService {
	ts := make(tokenService, len(b.users))
	for _, u := range b.users {
		ts["Bearer "+u.token] = u.id
	}
	return ts
}

func (b *bench) makeFronts(ports map[string]int, password string) error {
	valid := make([]string, len(b.users))
	for i, u := range b.users {
		valid[i] = u.token
	}
	validAuth := bearer(valid)
	limited := make([]string, len(b.limited))
	for i, u := range b.limited {
		limited[i] = u.token
	}
	limitedAuth := bearer(limited)
	malformed, err := malformedTokens(64)
	if err != nil {
		return err
	}
	malformedAuth := bearer(malformed)
	basic := basicAuthorization(basicUser, password)
	conns := b.opts.Connections
	ok, refused := expectation{status: http.StatusOK}, expectation{status: http.StatusUnauthorized}
	tagged := expectation{status: http.StatusOK, tagged: true}
	b.fronts = []*frontEnd{
		{key: "a", name: "reverse_proxy, no auth", want: ok,
			newCreds: func(int) credentials { return noCredentials }},
		{key: "b", name: "tokengate, cached tokens", want: tagged, tokengate: true,
			newCreds: func(c int) credentials { return cycle(validAuth, c, conns) }},
		{key: "c", name: "forward_auth to token service", want: tagged,
			newCreds: func(c int) credentials { return cycle(validAuth, c, conns) }},
		{key: "d", name: fmt.Sprintf("basic_auth, bcrypt %d (cached)", b.opts.BcryptCost), want: ok,
			newCreds: func(int) credentials { return func() string { return basic } }},
		{key: "e", name: "tokengate, unknown tokens", want: refused, tokengate: true,
			newCreds: func(int) credentials { return newUnknownTokens().next }},
		{key: "f", name: "tokengate, malformed tokens", want: refused, tokengate: true,
			newCreds: func(c int) credentials { return cycle(malformedAuth, c, conns) }},
		{key: "g", name: "reverse_proxy, static identity headers", want: tagged,
			newCreds: func(int) credentials { return noCredentials }},
		{key: "h", name: "tokengate, cached tokens, user-id and user-type only", want: tagged, tokengate: true,
			newCreds: func(c int) credentials { return cycle(validAuth, c, conns) }},
		{key: "i", name: "tokengate, cached tokens of rate-limited users", want: tagged, tokengate: true,
			newCreds: func(c int) credentials { return cycle(limitedAuth, c, conns) }},
	}
	for _, f := range b.fronts {
		f.url = fmt.Sprintf("http://127.0.0.1:%d%s", ports[f.key], itemsPath)
		for range conns {
			f.clients = append(f.clients, newClient())
		}
	}
	return nil
}

func (b *bench) front(key string) *frontEnd {
	for _, f := range b.fronts {
		if f.key == key {
			return f
		}
	}
	return nil
}

func (b *bench) selected() []*frontEnd {
	var out []*frontEnd
	for _, f := range b.fronts {
		if strings.Contains(b.opts.Fronts, f.key) {
			out = append(out, f)
		}
	}
	return out
}

// tearDown stops Caddy (and with it the embedded etcd), the tool's servers,
// and removes the temporary directory.
func (b *bench) tearDown() error {
	var errs []error
	for _, f := range b.fronts {
		closeClients(f.clients)
	}
	if b.caddyUp {
		if err := caddy.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping Caddy: %w", err))
		}
		b.caddyUp = false
	}
	for _, s := range []*server{b.auth, b.upstream} {
		if s != nil {
			if err := s.close(); err != nil {
				errs = append(errs, fmt.Errorf("stopping a server: %w", err))
			}
		}
	}
	if b.dir != "" {
		if err := os.RemoveAll(b.dir); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", b.dir, err))
		}
	}
	return errors.Join(errs...)
}

// measure runs one round on f and adds it to f's totals, with the etcd
// reads, CPU time and allocations the process made meanwhile.
func (b *bench) measure(ctx context.Context, f *frontEnd, d time.Duration, record bool) *roundResult {
	creds := make([]credentials, len(f.clients))
	for i := range creds {
		creds[i] = f.newCreds(i)
	}
	before := b.readUsage()
	res := drive(ctx, f.url, f.clients, creds, f.want, d)
	if !record {
		return res
	}
	f.usage.add(b.readUsage().minus(before))
	f.total.merge(res)
	f.elapsed += res.elapsed
	f.perRPS = append(f.perRPS, float64(res.ok)/res.elapsed.Seconds())
	return res
}

// usage is what the process spent, as counters that only grow.
type usage struct {
	Lookups   int64         `json:"lookups"`    // verifier reads of the store
	EtcdReads int64         `json:"etcd_reads"` // range requests sent to etcd
	Mallocs   uint64        `json:"mallocs"`
	Bytes     uint64        `json:"alloc_bytes"`
	CPU       time.Duration `json:"cpu_ns"`
}

func (b *bench) readUsage() usage {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{
		Lookups:   b.app.Verifier().Stats().Lookups,
		EtcdReads: b.app.Store().Stats().RangeRPCs,
		Mallocs:   ms.Mallocs,
		Bytes:     ms.TotalAlloc,
		CPU:       processCPU(),
	}
}

func (u usage) minus(o usage) usage {
	return usage{u.Lookups - o.Lookups, u.EtcdReads - o.EtcdReads, u.Mallocs - o.Mallocs, u.Bytes - o.Bytes, u.CPU - o.CPU}
}

func (u *usage) add(o usage) {
	u.Lookups += o.Lookups
	u.EtcdReads += o.EtcdReads
	u.Mallocs += o.Mallocs
	u.Bytes += o.Bytes
	u.CPU += o.CPU
}

// get sends one request and returns the status and the identity the
// upstream saw.
func get(ctx context.Context, client *http.Client, url, auth string) (int, string, error) {
	return getHeader(ctx, client, url, auth, seenHeader)
}

// probeIdentity sends one request to the front end's probe path, where the
// upstream answers with the names of the identity headers it got.
func probeIdentity(ctx context.Context, client *http.Client, frontURL, auth string) (int, string, error) {
	return getHeader(ctx, client, strings.TrimSuffix(frontURL, itemsPath)+probePath, auth, seenNamesHeader)
}

// getHeader sends one GET with the Authorization value (none if empty) and
// returns the status and one header of the answer.
func getHeader(ctx context.Context, client *http.Client, url, auth, header string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get(header), nil
}
