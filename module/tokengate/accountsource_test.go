package tokengate_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/module/store"
)

// The account source trap: configuring where the account is read must not
// leave the default sources (accountId in the query, X-Account-Id) unjudged,
// since an upstream written for the default still reads them.
const accountSourceCaddyfile = `{
	admin off
	persist_config off
	tokengate {
		etcd {
			endpoints {{ETCD}}
			prefix /tg
		}
	}
}

http://127.0.0.1:{{PORT}} {
	route /q/* {
		tokengate api {
			account {query.tenant}
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /qa/* {
		tokengate api {
			account {query.accountId}
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /h/* {
		tokengate api {
			account {header.X-Tenant}
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /p/* {
		tokengate api {
			account {http.request.uri.path.1}
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /c/* {
		tokengate api {
			account {cookie.tenant}
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /cl/* {
		tokengate api {
			account {http.request.cookie.tenant}
		}
		reverse_proxy {{UPSTREAM}}
	}
	route /cu/* {
		tokengate api {
			account {cookie.ten_ant}
		}
		reverse_proxy {{UPSTREAM}}
	}
}

http://127.0.0.1:{{PORT2}} {
	respond 404
}
`

func TestAccountSourceJudgesDefaultSources(t *testing.T) {
	g := startGatewayWith(t, accountSourceCaddyfile)
	// An account-level user of act1 and an org-level user reaching act1 only.
	_, acctTok := g.user(nil)
	_, orgTok := g.user(func(u *store.User) {
		u.Level, u.Account, u.Accounts = store.LevelOrganization, "", []string{g.act1}
	})
	g.synced()
	own, other := g.act1, g.act2

	for _, tc := range []struct {
		name   string
		tok    string
		path   string
		hdr    []string
		status int
		code   string
		acct   string // the account tag the upstream gets when admitted
	}{
		// The configured source alone.
		{"query source", orgTok, "/q/x?tenant=" + own, nil, 200, "", own},
		{"query source, other account", orgTok, "/q/x?tenant=" + other, nil, 403, "account_forbidden", ""},
		// The default header beside a configured query parameter: judged.
		{"query source, X-Account-Id of another account", acctTok, "/q/x", []string{"X-Account-Id", other}, 403, "account_forbidden", ""},
		{"query source, X-Account-Id disagreeing", orgTok, "/q/x?tenant=" + own, []string{"X-Account-Id", other}, 403, "account_forbidden", ""},
		{"query source, X-Account-Id agreeing", orgTok, "/q/x?tenant=" + own, []string{"X-Account-Id", own}, 200, "", own},
		{"query source, accountId of another account", acctTok, "/q/x?accountId=" + other, nil, 403, "account_forbidden", ""},
		{"query source, AccountID disagreeing", orgTok, "/q/x?tenant=" + own + "&AccountID=" + other, nil, 403, "account_forbidden", ""},
		{"query source, default header names the account", orgTok, "/q/x", []string{"X-Account-Id", own}, 200, "", own},
		// The README's example is the default's query parameter: the
		// default header is still judged.
		{"accountId source, X-Account-Id of another account", acctTok, "/qa/x", []string{"X-Account-Id", other}, 403, "account_forbidden", ""},
		{"accountId source, X-Account-Id disagreeing", orgTok, "/qa/x?accountId=" + own, []string{"X-Account-Id", other}, 403, "account_forbidden", ""},
		{"accountId source", orgTok, "/qa/x?accountId=" + own, nil, 200, "", own},
		// A configured header, and the default sources.
		{"header source", orgTok, "/h/x", []string{"X-Tenant", own}, 200, "", own},
		{"header source, X-Account-Id of another account", acctTok, "/h/x", []string{"X-Account-Id", other}, 403, "account_forbidden", ""},
		{"header source, accountId disagreeing", orgTok, "/h/x?accountId=" + other, []string{"X-Tenant", own}, 403, "account_forbidden", ""},
		{"header source, x_account_id spelling", acctTok, "/h/x", []string{"X-Account-ID", other}, 403, "account_forbidden", ""},
		// Any other placeholder, and the default sources.
		{"path source", orgTok, "/p/" + own, nil, 200, "", own},
		{"path source, X-Account-Id disagreeing", orgTok, "/p/" + own, []string{"X-Account-Id", other}, 403, "account_forbidden", ""},
		{"path source, accountId of another account", acctTok, "/p/?accountId=" + other, nil, 403, "account_forbidden", ""},
		// A cookie: every cookie some upstream reads as the name, in every
		// Cookie header; Caddy's placeholder reads the first, Python's
		// cookie parser the last, PHP and Rack decode the value.
		{"cookie source", orgTok, "/c/x", []string{"Cookie", "a=1; tenant=" + own}, 200, "", own},
		{"cookie source, long placeholder", orgTok, "/cl/x", []string{"Cookie", "tenant=" + own}, 200, "", own},
		{"cookie source, other account", orgTok, "/c/x", []string{"Cookie", "tenant=" + other}, 403, "account_forbidden", ""},
		{"cookie source, repeated, last differs", orgTok, "/c/x", []string{"Cookie", "tenant=" + own + "; tenant=" + other}, 403, "account_forbidden", ""},
		{"cookie source, repeated in two headers", orgTok, "/cl/x", []string{"Cookie", "tenant=" + own, "Cookie", "tenant=" + other}, 403, "account_forbidden", ""},
		{"cookie source, repeated alike", orgTok, "/c/x", []string{"Cookie", "tenant=" + own + "; tenant=" + own}, 200, "", own},
		{"cookie source, name in another case", orgTok, "/c/x", []string{"Cookie", "tenant=" + own + "; Tenant=" + other}, 403, "account_forbidden", ""},
		{"cookie source, percent-encoded", orgTok, "/c/x", []string{"Cookie", "tenant=" + own[:4] + fmt.Sprintf("%%%02x", own[4]) + own[5:]}, 403, "account_forbidden", ""},
		// PHP and Rack keep the quotes, Go and Python take them off.
		{"cookie source, quoted", orgTok, "/c/x", []string{"Cookie", `tenant="` + own + `"`}, 403, "account_forbidden", ""},
		{"cookie source, X-Account-Id disagreeing", orgTok, "/c/x", []string{"Cookie", "tenant=" + own, "X-Account-Id", other}, 403, "account_forbidden", ""},
		// Python's SimpleCookie splits at white space; str.strip() drops
		// Latin-1's and Unicode's white space around a name; PHP reads an
		// unclosed "[" as "_".
		{"cookie source, pair after white space", orgTok, "/c/x", []string{"Cookie", "tenant=" + own + "; x=1 tenant=" + other}, 403, "account_forbidden", ""},
		{"cookie source, pair after white space, account user", acctTok, "/c/x", []string{"Cookie", "x=1 tenant=" + other}, 403, "account_forbidden", ""},
		{"cookie source, no-break space after the name", orgTok, "/c/x", []string{"Cookie", "tenant=" + own + "; tenant\xa0=" + other}, 403, "account_forbidden", ""},
		{"cookie source, UTF-8 ideographic space before the name", acctTok, "/c/x", []string{"Cookie", "\u3000tenant=" + other}, 403, "account_forbidden", ""},
		{"cookie source, unclosed bracket", orgTok, "/cu/x", []string{"Cookie", "ten[ant=" + other + "; ten_ant=" + own}, 403, "account_forbidden", ""},
		{"cookie source, unclosed bracket alone", acctTok, "/cu/x", []string{"Cookie", "ten[ant=" + other}, 403, "account_forbidden", ""},
		{"cookie source, underscore name", orgTok, "/cu/x", []string{"Cookie", "ten_ant=" + own}, 200, "", own},
		{"cookie source, X-Account-Id of another account", acctTok, "/c/x", []string{"X-Account-Id", other}, 403, "account_forbidden", ""},
		// An account-level user without any source acts on its own account.
		{"no source named", acctTok, "/q/x", nil, 200, "", own},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := g.do("GET", tc.path, tc.tok, tc.hdr...)
			r.want(t, tc.status, tc.code)
			if tc.status == 200 {
				if got := r.upstream(t, "X-Tokengate-Account-Id"); got != tc.acct {
					t.Fatalf("account tag %q, want %q", got, tc.acct)
				}
			}
		})
	}

	// account_required names the configured source.
	for path, want := range map[string]string{
		"/q/x":  "tenant query parameter",
		"/qa/x": "accountId query parameter",
		"/h/x":  "X-Tenant header",
		"/c/x":  "tenant cookie",
	} {
		r := g.do("GET", path, orgTok)
		r.want(t, 400, "account_required")
		if !strings.Contains(string(r.body), want) {
			t.Errorf("%s: account_required message %s does not name %q", path, r.body, want)
		}
	}
}
