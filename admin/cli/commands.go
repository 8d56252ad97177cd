package cli

import "github.com/spf13/pflag"

// Fields several commands share.
var (
	nameField        = field{json: "name", required: true, usage: "name"}
	descriptionField = field{json: "description", usage: "description"}
	limitField       = field{json: "limit", kind: number, usage: "most entries in one page (API default 100, at most 1000)"}
	cursorField      = field{json: "cursor", usage: "where to continue: the next_cursor of the previous page"}
	// The window of a usage report, in whole hours.
	fromField = field{json: "from", usage: "the window's start (RFC 3339, such as 2026-12-01T00:00:00Z); default 7 days before --to, at most 31"}
	toField   = field{json: "to", usage: "the window's end, its hour excluded (RFC 3339); default the next whole hour"}
)

// rateLimitField is a user's rate_limit, for create and update; more says
// what giving it does there.
func rateLimitField(more string) field {
	return field{json: "rate_limit", kind: rateLimit,
		usage: "requests allowed per window across every gateway, such as 100/1m or 5000/1h (window 1s to 24h); " + more}
}

// policyBody is the policy document of §2, for create and update alike.
var policyBody = []field{
	nameField,
	descriptionField,
	{json: "account", usage: "account id (act-…) the policy belongs to; default: organization-wide"},
	{json: "statements", kind: jsonList, required: true, usage: `statements as JSON: '[{"effect":"allow","methods":["GET"],"paths":["/api/*"]}]'`},
}

// resources are the subcommands of `tokengate`, with one action per route
// of the admin API (see admin/api.go). Examples are written without what
// starts them ("tokengate" or "caddy tokengate", see invocation).
var resources = []resource{
	{
		name:  "org",
		short: "Creates, lists, shows and changes tokengate organizations",
		long:  "Organizations hold accounts, users and policies. They are created on Caddy's admin endpoint only.",
		actions: []action{
			{name: "create", short: "Create an organization", method: "POST", path: "/orgs",
				example: "org create --name Acme --org acme",
				body: []field{nameField,
					{json: "id", flag: "org", alias: "id", usage: "organization id (default: generated org-…)"}}},
			{name: "list", short: "List the organizations the caller may see", method: "GET", path: "/orgs"},
			{name: "get", short: "Show an organization", method: "GET", path: "/orgs/{org}"},
			{name: "update", short: "Change an organization's name and settings; only the fields given change", method: "PATCH", path: "/orgs/{org}",
				example: "org update --org acme --max-token-lifetime 90d --dormant-after 14d\norg update --org acme --max-token-lifetime ''",
				changes: true,
				body: []field{
					{json: "name", usage: "name"},
					{json: "max_token_lifetime", usage: `longest lifetime of new tokens, whole days such as 90d ("" removes the bound)`},
					{json: "dormant_after", usage: `days without a request before a user is reported dormant, such as 30d ("" for the default, 30d)`},
				}},
			{name: "usage", short: "Show every user's requests through the gateway in a window, busiest first", method: "GET",
				path:    "/orgs/{org}/usage",
				example: "org usage --org acme\norg usage --org acme --from 2026-12-01T00:00:00Z --to 2026-12-08T00:00:00Z --output table",
				query:   []field{fromField, toField}, table: printOrgUsage},
		},
	},
	{
		name:  "account",
		short: "Manages the accounts of a tokengate organization",
		long:  "Accounts (act-…) divide an organization; account-level users and policies belong to one.",
		actions: []action{
			{name: "create", short: "Create an account", method: "POST", path: "/orgs/{org}/accounts",
				example: "account create --org acme --name production\naccount create --org acme --name staging --account act-0000beef",
				body: []field{nameField,
					{json: "id", flag: "account", alias: "id", usage: "account id, act- and 8 lowercase hex digits (default: generated)"}}},
			{name: "list", short: "List accounts", method: "GET", path: "/orgs/{org}/accounts"},
			{name: "get", short: "Show an account", method: "GET", path: "/orgs/{org}/accounts/{account}"},
			{name: "delete", short: "Delete an account (refused while users or policies belong to it)", method: "DELETE",
				path: "/orgs/{org}/accounts/{account}", done: "account {account} deleted"},
		},
	},
	{
		name:  "user",
		short: "Manages tokengate users",
		long: "Users are ui (people) or programmatic (API only). A programmatic user is created with its first\n" +
			"token, whose secret is printed this once. A ui user needs --email and gets no token at creation.",
		actions: []action{
			{name: "create", short: "Create a user (a programmatic one with its first token)", method: "POST", path: "/orgs/{org}/users",
				example: "user create --org acme --type programmatic --level account --account act-1a2b3c4d --role viewer --name ci-bot\n" +
					"user create --org acme --type programmatic --level organization --role viewer --name exporter --rate-limit 100/1m\n" +
					"user create --org acme --type ui --level organization --accounts act-1a2b3c4d --role admin --name Ana --email ana@example.com",
				secret: true,
				body: []field{
					{json: "type", required: true, usage: "programmatic or ui"},
					{json: "level", required: true, usage: "account or organization"},
					{json: "role", required: true, usage: "viewer, editor, admin, or policy (account level only)"},
					nameField,
					{json: "account", usage: "the account (act-…) of an account-level user"},
					{json: "accounts", kind: list, usage: "accounts (act-…) an organization-level user reaches"},
					{json: "policies", kind: list, usage: "policies (pol-…) of a user with role policy"},
					descriptionField,
					{json: "email", usage: "email address, such as ana@example.com: required for --type ui, refused for programmatic"},
					{json: "allowed_cidrs", kind: list, usage: "networks the user's tokens may be used from, such as 10.0.0.0/8,2001:db8::/32 (default: anywhere)"},
					rateLimitField("default: none"),
				}},
			{name: "list", short: "List users, a page at a time", method: "GET", path: "/orgs/{org}/users",
				query: []field{
					{json: "type", usage: "only users of this type: programmatic or ui"},
					{json: "account", usage: "only users of this account (act-…)"},
					limitField, cursorField,
				}},
			{name: "get", short: "Show a user", method: "GET", path: "/orgs/{org}/users/{user}"},
			{name: "update", short: "Change a user; only the fields given change", method: "PATCH", path: "/orgs/{org}/users/{user}",
				example: "user update --org acme --user u-… --role editor\nuser update --org acme --user u-… --disabled=true\n" +
					"user update --org acme --user u-… --allowed-cidrs 10.0.0.0/8,2001:db8::/32\n" +
					"user update --org acme --user u-… --rate-limit 5000/1h\nuser update --org acme --user u-… --rate-limit none\n" +
					"user update --org acme --user u-… --proposed '{\"role\":\"viewer\"}'",
				changes: true,
				body: []field{
					{json: "name", usage: "name"},
					descriptionField,
					{json: "role", usage: "viewer, editor, admin, or policy"},
					{json: "accounts", kind: list, usage: "accounts (act-…), replacing the current list"},
					{json: "policies", kind: list, usage: "policies (pol-…), replacing the current list"},
					{json: "allowed_cidrs", kind: list, usage: `networks the user's tokens may be used from, replacing the current list ("" for anywhere)`},
					rateLimitField("replaces the current one, none removes it"),
					{json: "disabled", kind: boolean, usage: "disable (true) or enable (false) the user and its tokens"},
					{json: "proposed", kind: jsonObject, usage: `rights to try in report-only mode, as JSON: '{"role":"viewer","accounts":["act-…"]}'; none ends the trial`},
				}},
			{name: "delete", short: "Delete a user and all its tokens", method: "DELETE", path: "/orgs/{org}/users/{user}",
				done: "user {user} deleted"},
			{name: "usage", short: "Show what a user's requests through the gateway did, by hour and route", method: "GET",
				path:    "/orgs/{org}/users/{user}/usage",
				example: "user usage --org acme --user u-…\nuser usage --org acme --user u-… --from 2026-12-01T00:00:00Z --to 2026-12-02T00:00:00Z --output table",
				query:   []field{fromField, toField}, table: printUserUsage},
			{name: "advice", short: "Show the rights a user did not use, and narrower ones to give it (as user update bodies)", method: "GET",
				path:    "/orgs/{org}/users/{user}/advice",
				example: "user advice --org acme --user u-… --days 14 --output table",
				query:   []field{{json: "days", kind: number, usage: "how many days of usage to read, 1 to 31 (API default 30)"}}, table: printAdvice},
		},
	},
	{
		name:  "token",
		short: "Manages a tokengate user's tokens",
		long: "A token's secret is printed once, when it is created; only a hint of it is kept.\n" +
			"token report takes leaked tokens of anyone, one a line on standard input, and makes the live\n" +
			"ones stop working everywhere; it needs no token, with --address or --url.",
		actions: []action{
			{name: "create", short: "Create a token, or rotate one with --replaces", method: "POST", path: "/orgs/{org}/users/{user}/tokens",
				example: "token create --org acme --user u-… --name deploy --expires-in 720h\n" +
					"token create --org acme --user u-… --replaces tok-… --overlap 1h",
				secret: true,
				body: []field{
					{json: "name", usage: "name"},
					{json: "expires_in", usage: `lifetime, such as 720h or 90d (default: no expiry)`},
					{json: "replaces", usage: "token (tok-…) this one replaces"},
					{json: "overlap", usage: "how long the replaced token keeps working, such as 1h (default: stops at once)"},
				}},
			{name: "list", short: "List a user's tokens (never their secrets)", method: "GET", path: "/orgs/{org}/users/{user}/tokens"},
			{name: "revoke", short: "Revoke a token at once", method: "DELETE", path: "/orgs/{org}/users/{user}/tokens/{token}",
				done: "token {token} revoked"},
			{name: "report", short: "Report leaked tokens, read from standard input one a line: the live ones stop working",
				method: "POST", path: "/credentials/revoke", reportsStdin: true,
				example: "token report < leaked.txt\n" +
					"token report --url https://gw.example.com/admin < leaked.txt"},
		},
	},
	{
		name:  "policy",
		short: "Manages tokengate policies",
		long: "A policy allows or denies methods on paths; users with role policy get the union of theirs.\n" +
			"The statements are given as JSON with --statements, or in a file with --file (a list of\n" +
			"statements, or a whole policy document whose fields the flags override).",
		actions: []action{
			{name: "create", short: "Create a policy", method: "POST", path: "/orgs/{org}/policies",
				example: `policy create --org acme --name read --statements '[{"effect":"allow","methods":["GET"],"paths":["/api/**"]}]'` +
					"\npolicy create --org acme --file policy.json",
				body: policyBody, fileField: "statements"},
			{name: "list", short: "List policies", method: "GET", path: "/orgs/{org}/policies"},
			{name: "get", short: "Show a policy", method: "GET", path: "/orgs/{org}/policies/{policy}"},
			{name: "update", short: "Replace a policy's document", method: "PUT", path: "/orgs/{org}/policies/{policy}",
				body: policyBody, fileField: "statements"},
			{name: "delete", short: "Delete a policy (refused while users hold it)", method: "DELETE", path: "/orgs/{org}/policies/{policy}",
				done: "policy {policy} deleted"},
		},
	},
	{
		name:  "audit",
		short: "Shows a tokengate organization's audit trail",
		long:  "Every change is recorded: when, by whom (id and type), what, on which account. Newest first.",
		actions: []action{
			{name: "list", short: "List audit events, a page at a time", method: "GET", path: "/orgs/{org}/audit",
				example: "audit list --org acme --action token.revoke --since 2026-12-01T00:00:00Z\n" +
					"audit list --org acme --actor u-… --until 2026-12-05T12:00:00Z",
				query: []field{
					{json: "actor", usage: "only the events of this actor: a user id (u-…), operator, tokengate, or a reporter's IP"},
					{json: "action", usage: "only the events of this action, such as user.update or token.revoke"},
					{json: "since", usage: "only the events at or after this time (RFC 3339, such as 2026-12-01T00:00:00Z)"},
					{json: "until", usage: "only the events at or before this time (RFC 3339)"},
					limitField, cursorField,
				}},
		},
	},
	{
		name:  "webhook",
		short: "Manages an organization's webhooks",
		long: "A webhook receives the organization's audit events as they happen, signed as Standard Webhooks\n" +
			"sign them. Its signing secret is printed once, when it is created.",
		actions: []action{
			{name: "create", short: "Create a webhook", method: "POST", path: "/orgs/{org}/webhooks",
				example: "webhook create --org acme --webhook-url https://hooks.example.com/tokengate --events '*'\n" +
					"webhook create --org acme --webhook-url https://hooks.example.com/t --events token.create,token.revoke --description audit",
				secret: true,
				body: []field{
					{json: "url", flag: "webhook-url", required: true, usage: "where deliveries are POSTed (a public address unless webhook_allow_private; --url is the admin mount's)"},
					{json: "events", kind: list, required: true, usage: "audit actions delivered, such as user.create,token.revoke, or * for all"},
					descriptionField,
					{json: "disabled", kind: boolean, usage: "create it disabled: nothing is delivered until enabled"},
				}},
			{name: "list", short: "List webhooks (never their secrets)", method: "GET", path: "/orgs/{org}/webhooks"},
			{name: "get", short: "Show a webhook (never its secret)", method: "GET", path: "/orgs/{org}/webhooks/{webhook}"},
			{name: "update", short: "Change a webhook; only the fields given change", method: "PATCH", path: "/orgs/{org}/webhooks/{webhook}",
				example: "webhook update --org acme --webhook wh-… --disabled=true\nwebhook update --org acme --webhook wh-… --events '*'",
				changes: true,
				body: []field{
					{json: "url", flag: "webhook-url", usage: "where deliveries are POSTed"},
					{json: "events", kind: list, usage: "audit actions delivered, replacing the current list"},
					descriptionField,
					{json: "disabled", kind: boolean, usage: "disable (true) or enable (false) deliveries"},
				}},
			{name: "delete", short: "Delete a webhook", method: "DELETE", path: "/orgs/{org}/webhooks/{webhook}",
				done: "webhook {webhook} deleted"},
			{name: "deliveries", short: "List a webhook's latest delivery attempts, a page at a time", method: "GET",
				path: "/orgs/{org}/webhooks/{webhook}/deliveries", query: []field{limitField, cursorField}},
			{name: "rotate-secret", short: "Give a webhook a new signing secret, the old one signing beside it for --overlap",
				method: "POST", path: "/orgs/{org}/webhooks/{webhook}/rotate-secret",
				example: "webhook rotate-secret --org acme --webhook wh-… --overlap 24h",
				secret:  true,
				body: []field{
					{json: "overlap", usage: "how long the old secret still signs, such as 24h (default: it stops at once)"},
				}},
		},
	},
	{
		name:  "store",
		short: "Backs up and restores the token store",
		long: "snapshot asks a running gateway, on Caddy's admin endpoint, for etcd's snapshot of its store (the\n" +
			"embedded one or the external cluster's) and keeps it once its checksum is checked. restore\n" +
			"restores one for the embedded store while the gateway is stopped, with the embedded etcd's own\n" +
			"version; a cluster is restored with the etcdutl of its own etcd version (see the docs). upgrade\n" +
			"moves the store to this version's schema once every gateway of an older version is stopped for\n" +
			"good (it refuses while one is registered).",
		actions: []action{
			{name: "snapshot", short: "Write a snapshot of the store to a new file", args: []string{"FILE"},
				example: "store snapshot /var/backups/tokengate-$(date +%F).snapshot",
				local:   snapshotStore},
			{name: "upgrade", short: "Move the store to this version's schema, once no older gateway will write", method: "POST",
				path: "/store/upgrade", example: "store upgrade\nstore upgrade --address unix//run/tokengate/admin.sock", endpointOnly: true},
			{name: "restore", short: "Restore a snapshot for the embedded store (gateway stopped)", args: []string{"FILE"},
				example: "store restore backup.snapshot --embedded-dir /var/lib/caddy/tokengate/etcd\n" +
					"store restore backup.snapshot --embedded-dir /var/lib/caddy/tokengate/etcd --replace",
				local: restoreStore,
				flags: func(fs *pflag.FlagSet) {
					fs.String("embedded-dir", "", "the embedded store's directory: the embedded_dir global option (required)")
					fs.Bool("replace", false, "move the store already there aside (to data.before-restore-<time>) instead of refusing")
				}},
		},
	},
}

// statusAction is `tokengate status`: what an operator asks first in an
// incident, from Caddy's admin endpoint only (not a route of the API).
var statusAction = action{name: "status",
	short:  "Shows the gateway's state: readiness, etcd members, watch lag, cache, filter, webhook leader",
	method: "GET", path: "/status", example: "status\nstatus --address unix//run/tokengate/admin.sock", endpointOnly: true}
