package admin

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/errcode"
	"github.com/tokengate/tokengate/module/httpauth"
	"github.com/tokengate/tokengate/module/metrics"
	"github.com/tokengate/tokengate/module/report"
	"github.com/tokengate/tokengate/module/token"
)

// MaxReported is the most credentials one report may hold.
const MaxReported = 1000

// POST /credentials/revoke {"credentials":["tgp_…",…]}: anyone who finds
// a token reports it here, on either mount, without a token of its own.
// The answer is 202 {} whatever the credentials are, at once: the digests
// of the well-formed ones go to the app's Revoker, whose worker revokes
// the live ones moments later. Nothing that depends on whether a token
// is live happens before the answer, so neither the answer nor its timing
// tells the reporter which were. Malformed entries are dropped here,
// unseen by the store; a secret is never logged.
func reportCredentials(c *call) error {
	reporter := reporterIP(c.r, c.caller.Operator)
	if ok, wait := c.api.reports.Allow(reporter); !ok {
		metrics.ReportsRateLimited.Inc()
		secs := int(math.Ceil(wait.Seconds()))
		c.w.Header().Set("Retry-After", strconv.Itoa(secs))
		return &apiError{code: errcode.RateLimited, msg: fmt.Sprintf(
			"at most %s reports from one address; try again in %d seconds", c.api.reports.Limit(), secs)}
	}
	var credentials []string
	if err := c.decode(fields{"credentials": &credentials}, "credentials"); err != nil {
		metrics.ReportsRefused.Inc()
		return err
	}
	if len(credentials) > MaxReported {
		metrics.ReportsRefused.Inc()
		return invalid("credentials", fmt.Sprintf("holds %d entries, more than %d: send them in batches", len(credentials), MaxReported))
	}
	rep := report.Report{Reporter: reporter, Digests: make([]token.Hash, 0, len(credentials))}
	for _, s := range credentials {
		if _, err := token.Parse(s); err == nil {
			rep.Digests = append(rep.Digests, token.Sum(s))
		}
	}
	if len(rep.Digests) > 0 {
		if err := c.api.revoker.Submit(c.r.Context(), rep); err != nil {
			// The queue is full (or closing): a matter of load, never of
			// what this report holds.
			c.api.logger.Warn("report of leaked credentials not taken", zap.String("reporter", reporter), zap.Error(err))
			return &apiError{code: errcode.StoreUnavailable, msg: "reports cannot be taken right now; nothing was revoked, send it again shortly"}
		}
	}
	metrics.ReportsAccepted.Inc()
	metrics.ReportedCredentials.Add(float64(len(rep.Digests)))
	c.api.logger.Info("report of leaked credentials taken", zap.String("reporter", reporter),
		zap.Int("entries", len(credentials)), zap.Int("well_formed", len(rep.Digests)))
	writeJSON(c.w, http.StatusAccepted, struct{}{})
	return nil
}

// reporterIP is who sent a report: Caddy's client IP on a site (which
// honours the server's trusted_proxies), the peer's address on Caddy's
// admin endpoint, which has no such setting.
func reporterIP(r *http.Request, adminEndpoint bool) string {
	if !adminEndpoint {
		if addr := httpauth.ClientIP(r); addr.IsValid() {
			return addr.Unmap().WithZone("").String()
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr.Unmap().WithZone("").String()
	}
	// A unix socket, say: no address to tell reporters apart.
	return "local"
}
