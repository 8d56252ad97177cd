package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/tokengate/tokengate/internal/measure"
)

// result is what was measured.
type result struct {
	tokens   int
	delays   []time.Duration // revocation acknowledged by A → refused by B
	admitted int             // answers of 200 from B after it had refused a token
	timedOut int             // tokens B did not refuse within the timeout
}

func run(cfg measure.Setup) (*result, error) {
	res := &result{tokens: cfg.Count}
	// A prefix of its own, so that a shared cluster's data is untouched.
	prefix := fmt.Sprintf("/tgfresh-%d", time.Now().UnixNano())

	a, err := startInstance(cfg, "a", prefix)
	if err != nil {
		return nil, err
	}
	defer a.Stop()
	b, err := startInstance(cfg, "b", prefix)
	if err != nil {
		return nil, err
	}
	defer b.Stop()

	fmt.Fprintf(cfg.Log, "creating %d users through A…\n", cfg.Count)
	if _, err := a.Admin("POST", "/orgs", map[string]string{"id": "fresh", "name": "tgfresh"}); err != nil {
		return nil, err
	}
	act, err := a.Admin("POST", "/orgs/fresh/accounts", map[string]string{"name": "fresh"})
	if err != nil {
		return nil, err
	}
	type credential struct{ user, token, secret string }
	creds := make([]credential, cfg.Count)
	for i := range creds {
		out, err := a.Admin("POST", "/orgs/fresh/users", map[string]any{"type": "programmatic", "level": "account",
			"account": act["id"], "role": "viewer", "name": fmt.Sprint("user-", i)})
		if err != nil {
			return nil, err
		}
		user, _ := out["user"].(map[string]any)
		tok, _ := out["token"].(map[string]any)
		creds[i] = credential{fmt.Sprint(user["id"]), fmt.Sprint(tok["id"]), fmt.Sprint(tok["secret"])}
	}
	// Every token cached on B before anything is revoked.
	for _, c := range creds {
		if status, err := b.gateway(c.secret); err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("warming B: %d %v", status, err)
		}
	}

	fmt.Fprintf(cfg.Log, "revoking through A, asking B…\n")
	for _, c := range creds {
		if _, err := a.Admin("DELETE", "/orgs/fresh/users/"+c.user+"/tokens/"+c.token, nil); err != nil {
			return nil, err
		}
		acked := time.Now()
		for {
			status, err := b.gateway(c.secret)
			if err != nil {
				return nil, err
			}
			if status == http.StatusUnauthorized {
				res.delays = append(res.delays, time.Since(acked))
				break
			}
			if time.Since(acked) > cfg.Timeout {
				res.timedOut++
				break
			}
		}
		// Once refused, refused for good.
		if status, err := b.gateway(c.secret); err != nil || status != http.StatusUnauthorized {
			res.admitted++
		}
	}
	return res, nil
}

// Print writes the figures.
func (r *result) Print(w io.Writer) {
	d := slices.Clone(r.delays)
	slices.Sort(d)
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	mean := time.Duration(0)
	if len(d) > 0 {
		mean = sum / time.Duration(len(d))
	}
	p50, p99, pmax := measure.Percentile(d, 50), measure.Percentile(d, 99), measure.Percentile(d, 100)
	fmt.Fprintf(w, "tgfresh: %d tokens revoked through instance A; delay until instance B refused each\n", r.tokens)
	fmt.Fprintf(w, "  p50 %s   p99 %s   max %s   mean %s\n", measure.Round(p50), measure.Round(p99), measure.Round(pmax), measure.Round(mean))
	fmt.Fprintf(w, "  admitted again after a refusal: %d   not refused in time: %d\n", r.admitted, r.timedOut)
}

// Failed reports whether B admitted a revoked token or was too slow to
// refuse one.
func (r *result) Failed() bool { return r.admitted > 0 || r.timedOut > 0 }

// instance is one of A and B: a tokengate process and its site.
type instance struct {
	*measure.Instance
	siteURL string
}

// site answers 200 to /api/* requests that tokengate lets through.
const site = `http://127.0.0.1:%d {
	route /api/* {
		tokengate api
		respond 200
	}
}
`

// startInstance starts A or B; it is ready when its site refuses a request
// without a token.
func startInstance(cfg measure.Setup, name, prefix string) (*instance, error) {
	sitePort, err := measure.FreePort()
	if err != nil {
		return nil, err
	}
	in := &instance{siteURL: fmt.Sprintf("http://127.0.0.1:%d", sitePort)}
	in.Instance, err = cfg.StartInstance(measure.InstanceConfig{
		Name: "instance " + name, Dir: filepath.Join(cfg.Dir, name), Prefix: prefix,
		Sites:  fmt.Sprintf(site, sitePort),
		Client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		Ready: func(started *measure.Instance) bool {
			status, err := started.Get(in.siteURL+"/api/x", "")
			return err == nil && status == http.StatusUnauthorized
		},
	})
	if err != nil {
		return nil, err
	}
	return in, nil
}

// gateway sends GET /api/x with the token (none if empty) and returns the
// status.
func (in *instance) gateway(tok string) (int, error) {
	return in.Get(in.siteURL+"/api/x", tok)
}
