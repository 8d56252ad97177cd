package upstreams

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
)

// Reading is what one upstream read from a request: the JSON every upstream
// answers with. Lists are never null; their order means nothing.
type Reading struct {
	// Parser names the upstream: php, rack, node, python or go.
	Parser string `json:"parser"`
	// Method is the request method as the server received it.
	Method string `json:"method"`
	// Methods are every method the app could dispatch on: Method and each
	// method override the framework would apply, as it upper-cases them.
	Methods []string `json:"methods"`
	// QueryAccounts are the values the app could read as accountId from the
	// query string: those of every parsed key equal to accountId when
	// compared in lower or in upper case (Unicode-aware, as a
	// case-insensitive binder compares), nested values flattened.
	QueryAccounts []string `json:"query_accounts"`
	// HeaderAccounts are the values of the X-Account-Id header as the
	// framework exposes them.
	HeaderAccounts []string `json:"header_accounts"`
	// CookieAccounts are as QueryAccounts, from the cookies as the
	// framework parses the Cookie header fields.
	CookieAccounts []string `json:"cookie_accounts"`
	// BodyAccounts are as QueryAccounts, from a form or JSON body where the
	// framework parses one.
	BodyAccounts []string `json:"body_accounts"`
	// Paths are the request path as the framework exposes it, raw and
	// decoded.
	Paths []string `json:"paths"`
	// Header holds the request's headers under the names the framework
	// gives them.
	Header map[string][]string `json:"header"`
}

// accountKey is the parameter every upstream looks for.
const accountKey = "accountId"

// isAccountKey reports whether a case-insensitive binder would bind the
// parameter name to accountId: equal in lower or in upper case.
func isAccountKey(name string) bool {
	return strings.ToLower(name) == strings.ToLower(accountKey) || strings.ToUpper(name) == strings.ToUpper(accountKey)
}

// accountValues are the values of every key in params that isAccountKey,
// in key order.
func accountValues(params map[string][]string) []string {
	var values []string
	for _, key := range slices.Sorted(maps.Keys(params)) {
		if isAccountKey(key) {
			values = append(values, params[key]...)
		}
	}
	return values
}

// jsonAccountValues is accountValues for a decoded JSON body: the string
// leaves under every matching key of the top-level object.
func jsonAccountValues(body any) []string {
	object, ok := body.(map[string]any)
	if !ok {
		return nil
	}
	var values []string
	for _, key := range slices.Sorted(maps.Keys(object)) {
		if isAccountKey(key) {
			values = append(values, jsonLeaves(object[key])...)
		}
	}
	return values
}

// jsonLeaves are the scalar leaves of a decoded JSON value, strings as they
// are and other scalars as their JSON text.
func jsonLeaves(value any) []string {
	switch v := value.(type) {
	case map[string]any:
		var leaves []string
		for _, key := range slices.Sorted(maps.Keys(v)) {
			leaves = append(leaves, jsonLeaves(v[key])...)
		}
		return leaves
	case []any:
		var leaves []string
		for _, item := range v {
			leaves = append(leaves, jsonLeaves(item)...)
		}
		return leaves
	case string:
		return []string{v}
	default:
		text, err := json.Marshal(v)
		if err != nil {
			return nil
		}
		return []string{string(text)}
	}
}

// unique returns list without repeats, in first-seen order, never nil.
func unique(list []string) []string {
	out := make([]string, 0, len(list))
	seen := make(map[string]bool, len(list))
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
