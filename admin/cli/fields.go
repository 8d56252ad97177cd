package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// kind is how a flag's text becomes a JSON value.
type kind int

const (
	text       kind = iota // a JSON string
	list                   // comma-separated and repeatable: a JSON list of strings
	boolean                // --disabled=true|false: a JSON boolean
	number                 // an integer (query parameters such as --limit)
	jsonList               // a JSON list given verbatim, such as policy statements
	rateLimit              // REQUESTS/WINDOW, such as 100/1m: a rate_limit object; none: null
	jsonObject             // a JSON object given verbatim; none: null
)

// field is one flag of a command that becomes a JSON field of the request
// body or a query parameter. Flags are named after the JSON fields, with
// dashes where JSON has underscores (both spellings are accepted), except
// that an id is named after what it identifies: org create takes --org and
// account create --account, as every other command naming one does.
type field struct {
	json     string
	kind     kind
	required bool
	usage    string
	// flag, when set, names the flag instead of json.
	flag string
	// alias is a deprecated name the flag still answers to.
	alias string
}

func (f field) flagName() string {
	if f.flag != "" {
		return f.flag
	}
	return strings.ReplaceAll(f.json, "_", "-")
}

// define adds the field's flag to fs, and its deprecated alias. Defaults
// are zero values: whether a flag counts is decided by whether it was
// given, never by its value.
func (f field) define(fs *pflag.FlagSet) {
	usage := f.usage
	if f.required {
		usage += " (required)"
	}
	if f.alias == "" {
		f.defineAs(fs, f.flagName(), usage)
		return
	}
	f.defineAs(fs, f.flagName(), usage+"; --"+f.alias+" is a deprecated alias")
	f.defineAs(fs, f.alias, usage)
	// Hidden from the flag list; using it prints a notice on stderr.
	_ = fs.MarkDeprecated(f.alias, "use --"+f.flagName()+" instead")
}

func (f field) defineAs(fs *pflag.FlagSet, name, usage string) {
	switch f.kind {
	case list:
		fs.StringSlice(name, nil, usage+"; comma-separated, may be repeated")
	case boolean:
		fs.Bool(name, false, usage)
	case number:
		fs.Int(name, 0, usage)
	default:
		fs.String(name, "", usage)
	}
}

// given reports whether the user gave the flag, under either name.
func (f field) given(fs *pflag.FlagSet) bool {
	return fs.Changed(f.flagName()) || (f.alias != "" && fs.Changed(f.alias))
}

// givenName is the name the flag was given under: its own, or its
// deprecated alias. Giving both is a usage error.
func (f field) givenName(fs *pflag.FlagSet) (string, error) {
	if f.alias == "" || !fs.Changed(f.alias) {
		return f.flagName(), nil
	}
	if fs.Changed(f.flagName()) {
		return "", usageErrorf("give --%s once: --%s is its deprecated alias", f.flagName(), f.alias)
	}
	return f.alias, nil
}

// value reads the flag as the JSON value it stands for.
func (f field) value(fs *pflag.FlagSet) (any, error) {
	name, err := f.givenName(fs)
	if err != nil {
		return nil, err
	}
	switch f.kind {
	case list:
		items, err := fs.GetStringSlice(name)
		return cleanList(items), err
	case boolean:
		return fs.GetBool(name)
	case number:
		return fs.GetInt(name)
	case jsonList:
		raw, err := fs.GetString(name)
		if err != nil {
			return nil, err
		}
		return parseJSONList(name, []byte(raw))
	case rateLimit:
		raw, err := fs.GetString(name)
		if err != nil {
			return nil, err
		}
		return parseRateLimit(name, raw)
	case jsonObject:
		raw, err := fs.GetString(name)
		if err != nil {
			return nil, err
		}
		return parseJSONObject(name, raw)
	}
	return fs.GetString(name)
}

// cleanList trims the items of a comma-separated list and drops empty
// ones, so "a, b" and "a,,b" mean what they look like. An empty flag value
// gives an empty (not absent) list, which is how a list is cleared.
func cleanList(items []string) []string {
	out := []string{}
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

// parseJSONList checks that raw is a JSON list before it is sent, so a
// quoting mistake in the shell is reported as a usage error, not as a
// request the API refuses.
func parseJSONList(what string, raw []byte) (json.RawMessage, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, usageErrorf("--%s must be a JSON list such as "+
			`'[{"effect":"allow","methods":["GET"],"paths":["/api/*"]}]'`, what)
	}
	return json.RawMessage(raw), nil
}

// parseJSONObject checks that raw is a JSON object before it is sent, and
// reads none as null.
func parseJSONObject(what, raw string) (any, error) {
	if strings.TrimSpace(raw) == "none" {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &obj); err != nil || obj == nil {
		return nil, usageErrorf(`--%s must be a JSON object such as '{"role":"viewer"}', or none`, what)
	}
	return json.RawMessage(raw), nil
}

// rateLimitBody is a rate_limit as the API takes it.
type rateLimitBody struct {
	Requests int64  `json:"requests"`
	Window   string `json:"window"`
}

// parseRateLimit reads REQUESTS/WINDOW (100/1m) as a rate_limit, and none
// as null: no limit, which removes one on update. Only the shape is checked
// here; the API judges the numbers (1 to 1e9 requests, a window from 1s to
// 24h) and says what is wrong with them.
func parseRateLimit(what, raw string) (any, error) {
	raw = strings.TrimSpace(raw)
	if raw == "none" {
		return nil, nil
	}
	requests, window, ok := strings.Cut(raw, "/")
	n, err := strconv.ParseInt(strings.TrimSpace(requests), 10, 64)
	window = strings.TrimSpace(window)
	if !ok || err != nil || window == "" {
		return nil, usageErrorf("--%s must be REQUESTS/WINDOW, such as 100/1m or 5000/1h, or none", what)
	}
	return rateLimitBody{Requests: n, Window: window}, nil
}

// queryText is a field's value as a query parameter.
func (f field) queryText(fs *pflag.FlagSet) (string, error) {
	v, err := f.value(fs)
	if err != nil {
		return "", err
	}
	return fmt.Sprint(v), nil
}

// dashes lets every flag be spelled with underscores, like the JSON field
// it is named after: --expires_in is --expires-in.
func dashes(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
}
