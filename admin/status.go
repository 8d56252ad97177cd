package admin

import (
	"context"
	"net/http"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Status answers GET /tokengate/status on Caddy's admin endpoint only: what
// an operator asks first in an incident. Readiness and its reason, the
// store (reached, how far the watch is behind, each member of the cluster
// as it answers), the cache, the filter of issued tokens, who delivers
// webhooks and how many gateways share rate limits. Members are asked for
// their status at once, each within statusMemberTimeout; one that does not
// answer says so.

const (
	statusPath          = "/status"
	statusMemberTimeout = 2 * time.Second
)

type status struct {
	Status    string         `json:"status"`
	Reason    string         `json:"reason,omitempty"`
	Store     storeStatus    `json:"store"`
	Cache     cacheStatus    `json:"cache"`
	Filter    filterStatus   `json:"filter"`
	Webhooks  webhookStatus  `json:"webhooks"`
	RateLimit rateLimitState `json:"rate_limit"`
}

type storeStatus struct {
	Name      string `json:"name"`
	Reachable bool   `json:"reachable"`
	// LastSync is when the watch was last known in sync; SyncAge how long
	// ago, beside max_stale.
	LastSync *time.Time `json:"last_sync,omitempty"`
	SyncAge  string     `json:"sync_age,omitempty"`
	MaxStale string     `json:"max_stale"`
	// WatchRevision is what the watch has applied, ClusterRevision what
	// the cluster has reached (0 when it could not be asked): their
	// difference is the watch's lag in revisions.
	WatchRevision   int64          `json:"watch_revision"`
	ClusterRevision int64          `json:"cluster_revision,omitempty"`
	Members         []memberStatus `json:"members,omitempty"`
	Error           string         `json:"error,omitempty"`
}

type memberStatus struct {
	Name       string   `json:"name"`
	ClientURLs []string `json:"client_urls"`
	Leader     bool     `json:"leader"`
	Version    string   `json:"version,omitempty"`
	DBSize     int64    `json:"db_size_bytes,omitempty"`
	RaftIndex  uint64   `json:"raft_index,omitempty"`
	Error      string   `json:"error,omitempty"`
}

type cacheStatus struct {
	Entries int64 `json:"entries"`
	Hits    int64 `json:"hits"`
	Misses  int64 `json:"misses"`
	Warmed  int64 `json:"warmed"`
}

type filterStatus struct {
	Usable   bool  `json:"usable"`
	Keys     int64 `json:"keys"`
	Bytes    int64 `json:"bytes"`
	Revision int64 `json:"revision"`
}

type webhookStatus struct {
	// Leading: this instance delivers webhooks. Leader names the instance
	// that does (its host and process), as the election holds it.
	Leading bool   `json:"leading"`
	Leader  string `json:"leader,omitempty"`
}

type rateLimitState struct {
	// Gateways share users' rate limits, this one included.
	Gateways int64 `json:"gateways"`
}

// serveStatus answers a status request on Caddy's admin endpoint.
func (a *AdminEndpoint) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, []string{http.MethodGet})
		return
	}
	if a.backend == nil {
		writeJSON(w, http.StatusServiceUnavailable, status{Status: "unavailable", Reason: "tokengate is not configured here"})
		return
	}
	run, err := a.backend.app.RunningContext(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, status{Status: "unavailable",
			Reason: "the token store cannot be opened: " + err.Error()})
		return
	}
	v := run.Verifier
	rd := v.Readiness()
	st := status{Status: "ready", Reason: rd.Reason}
	if !rd.Ready {
		st.Status = "unavailable"
	}
	vs := v.Stats()
	st.Store = storeStatus{Name: v.Config().StoreName, Reachable: rd.StoreReachable, MaxStale: rd.MaxStale.String(),
		WatchRevision: vs.WatchRevision}
	if last := v.LastSync(); !last.IsZero() {
		st.Store.LastSync, st.Store.SyncAge = &last, rd.SyncAge.Round(time.Millisecond).String()
	}
	st.Cache = cacheStatus{Entries: v.Entries(), Hits: vs.Hits, Misses: vs.Misses, Warmed: vs.Warmed}
	st.Filter = filterStatus{Usable: vs.FilterUsable, Keys: vs.FilterKeys, Bytes: vs.FilterBytes, Revision: vs.FilterRevision}
	if run.Webhooks != nil {
		st.Webhooks.Leading = run.Webhooks.Leading()
	}
	if run.Limits != nil {
		st.RateLimit.Gateways = run.Limits.Stats().Gateways
	}
	ctx, cancel := context.WithTimeout(r.Context(), statusMemberTimeout)
	defer cancel()
	client := run.Store.Client()
	if resp, err := client.Get(ctx, run.Store.WebhookLeaderPrefix(), clientv3.WithFirstCreate()...); err == nil {
		if len(resp.Kvs) > 0 {
			st.Webhooks.Leader = string(resp.Kvs[0].Value)
		}
		st.Store.ClusterRevision = resp.Header.Revision
	} else {
		st.Store.Error = err.Error()
	}
	st.Store.Members = clusterMembers(ctx, client)
	writeJSON(w, http.StatusOK, st)
}

// clusterMembers asks the cluster for its members, then for each member's
// status: through the endpoints the gateway uses, and for a member none of
// them reached, through the client URLs it advertises; all at once.
func clusterMembers(ctx context.Context, client *clientv3.Client) []memberStatus {
	list, err := client.MemberList(ctx)
	if err != nil {
		return []memberStatus{{Name: "?", Error: err.Error()}}
	}
	var mu sync.Mutex
	answers := map[uint64]*clientv3.StatusResponse{}
	failures := map[string]error{}
	ask := func(endpoints []string) {
		var wg sync.WaitGroup
		for _, ep := range endpoints {
			wg.Go(func() {
				s, err := client.Status(ctx, ep)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failures[ep] = err
					return
				}
				answers[s.Header.MemberId] = s
			})
		}
		wg.Wait()
	}
	ask(client.Endpoints())
	var more []string
	for _, m := range list.Members {
		if answers[m.ID] == nil && len(m.ClientURLs) > 0 {
			more = append(more, m.ClientURLs[0])
		}
	}
	ask(more)
	out := make([]memberStatus, len(list.Members))
	for i, m := range list.Members {
		out[i] = memberStatus{Name: m.Name, ClientURLs: m.ClientURLs}
		s := answers[m.ID]
		switch {
		case s != nil:
			out[i].Leader, out[i].Version = s.Leader == m.ID, s.Version
			out[i].DBSize, out[i].RaftIndex = s.DbSize, s.RaftIndex
		case len(m.ClientURLs) == 0:
			out[i].Error = "no client URL (a learner not started yet?)"
		case failures[m.ClientURLs[0]] != nil:
			out[i].Error = failures[m.ClientURLs[0]].Error()
		default:
			out[i].Error = "did not answer"
		}
	}
	return out
}
