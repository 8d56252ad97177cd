package store

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Use says that a token was used at a time, and, when known, from where:
// the client address and user agent of a request that carried it.
type Use struct {
	Org, User, Token string
	At               time.Time
	Client           *Client
}

// Client is where a token was last used from.
type Client struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// MaxUserAgent bounds the user agent kept of a token's last use.
const MaxUserAgent = 256

// The client of a token's last use lives under /_lastclient/, beside its
// time (a key of its own, so that the time's value stays what earlier
// gateways read).
func (s *Store) lastClientRoot() string { return s.prefix + "/_lastclient/" }
func (s *Store) lastClientPrefix(org, user string) string {
	return s.lastClientRoot() + org + "/" + user + "/"
}
func (s *Store) lastClientKey(org, user, tok string) string {
	return s.lastClientPrefix(org, user) + tok
}

// usageBatch bounds the tokens recorded per etcd request.
const usageBatch = 50

// Last-use times live under /_lastused/, outside VerdictRange (schema 2);
// schema 1 kept them under /lastused/, inside it. A gateway of schema 1
// still running beside newer ones writes there: both are read, and both
// removed with their token.
func (s *Store) lastUsedRoot() string         { return s.prefix + "/_lastused/" }
func (s *Store) legacyLastUsedPrefix() string { return s.prefix + "/lastused/" }

// legacyRateLimitPrefix is where gateways of schema 1 share rate-limit
// budgets; their leased keys vanish with them.
func (s *Store) legacyRateLimitPrefix() string { return s.prefix + "/ratelimit/" }

func (s *Store) lastUsedPrefix(org, user string) string {
	return s.lastUsedRoot() + org + "/" + user + "/"
}

func (s *Store) legacyLastUsedUserPrefix(org, user string) string {
	return s.legacyLastUsedPrefix() + org + "/" + user + "/"
}

func (s *Store) lastUsedKey(org, user, tok string) string { return s.lastUsedPrefix(org, user) + tok }
func (s *Store) legacyLastUsedKey(org, user, tok string) string {
	return s.legacyLastUsedUserPrefix(org, user) + tok
}

// RecordUses stores when tokens were last used, many per etcd request.
// Times live under their own keys, apart from the token records, so that
// recording use never disturbs cached identities. A token revoked meanwhile
// is skipped: each record is a nested transaction guarded by the token's
// existence. Each request has its own deadline (the store's default when
// ctx has none): a gateway that met 100 000 tokens since its last flush
// writes 2 000 of them, which together take longer than any one should.
func (s *Store) RecordUses(ctx context.Context, uses []Use) error {
	for len(uses) > 0 {
		n := min(len(uses), usageBatch)
		ops := make([]clientv3.Op, 0, n)
		for _, u := range uses[:n] {
			if !ValidOrgID(u.Org) || !ValidUserID(u.User) || !ValidTokenID(u.Token) {
				continue
			}
			then := []clientv3.Op{clientv3.OpPut(s.lastUsedKey(u.Org, u.User, u.Token), lastUsedValue(u.At))}
			if u.Client != nil {
				c := *u.Client
				if len(c.UserAgent) > MaxUserAgent {
					c.UserAgent = strings.ToValidUTF8(c.UserAgent[:MaxUserAgent], "")
				}
				value, _ := json.Marshal(c) // two strings: cannot fail
				then = append(then, clientv3.OpPut(s.lastClientKey(u.Org, u.User, u.Token), string(value)))
			}
			ops = append(ops, clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(s.userTokenKey(u.Org, u.User, u.Token)), ">", 0)},
				then, nil))
		}
		uses = uses[n:]
		if len(ops) == 0 {
			continue
		}
		s.usageTxns.Add(1)
		bctx, cancel := withTimeout(ctx)
		_, err := s.commit(opUsage, s.client.Txn(bctx).Then(ops...))
		cancel()
		if err != nil {
			return unavailable(err)
		}
	}
	return nil
}

// lastUsedValue and parseLastUsed write and read a last-use time as its
// key holds it; a value that does not parse is a missing time.
func lastUsedValue(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseLastUsed(v []byte) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, string(v))
	return t, err == nil
}

// lastUsed reads the last-use times of a user's tokens, where this
// schema and the one before keep them: the later time wins.
func (s *Store) lastUsed(ctx context.Context, org, user string) (map[string]time.Time, error) {
	prefixes := [2]string{s.lastUsedPrefix(org, user), s.legacyLastUsedUserPrefix(org, user)}
	resp, err := s.commit(opRead, s.client.Txn(ctx).Then(
		clientv3.OpGet(prefixes[0], clientv3.WithPrefix()),
		clientv3.OpGet(prefixes[1], clientv3.WithPrefix())))
	if err != nil {
		return nil, unavailable(err)
	}
	out := make(map[string]time.Time)
	for i, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			t, ok := parseLastUsed(kv.Value)
			if !ok {
				continue // a damaged time is only a missing time
			}
			tok := strings.TrimPrefix(string(kv.Key), prefixes[i])
			if t.After(out[tok]) {
				out[tok] = t
			}
		}
	}
	return out, nil
}

// lastClients reads where each of a user's tokens was last used from.
func (s *Store) lastClients(ctx context.Context, org, user string) (map[string]Client, error) {
	prefix := s.lastClientPrefix(org, user)
	resp, err := s.get(ctx, opRead, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	out := make(map[string]Client, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var c Client
		if json.Unmarshal(kv.Value, &c) == nil {
			out[strings.TrimPrefix(string(kv.Key), prefix)] = c
		}
	}
	return out, nil
}
