package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// usageError is a mistake in how a command was given. It is found before
// anything is sent.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// apiError is an error answer of the API.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string {
	if e.code == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.message, e.status)
	}
	return fmt.Sprintf("%s: %s (HTTP %d)", e.code, e.message, e.status)
}

// errorFromAnswer reads an error answer. The API's own errors are
// {"error":{"code","message"}}; Caddy's admin endpoint answers with
// {"error":"message"} for requests that never reach the API (a refused
// Origin, say); anything else is shown as the text it is.
func errorFromAnswer(ans *answer) error {
	var structured struct {
		Error struct{ Code, Message string }
	}
	var plain struct{ Error string }
	switch {
	case ans.status >= 300 && ans.status < 400:
		return &apiError{status: ans.status, message: "redirected to " + ans.location +
			"; not followed, so the token goes nowhere else: give the mount's own URL as --url"}
	case json.Unmarshal(ans.body, &structured) == nil && structured.Error.Code != "":
		return &apiError{status: ans.status, code: structured.Error.Code, message: structured.Error.Message}
	case json.Unmarshal(ans.body, &plain) == nil && plain.Error != "":
		return &apiError{status: ans.status, message: plain.Error}
	}
	msg := strings.TrimSpace(string(ans.body))
	if msg == "" {
		msg = http.StatusText(ans.status)
	}
	const most = 500
	if len(msg) > most {
		msg = msg[:most] + "…"
	}
	return &apiError{status: ans.status, message: msg}
}

// printJSON writes a JSON answer indented, in the order the API gave its
// fields.
func printJSON(w io.Writer, body []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, body, "", "  "); err != nil {
		out.Reset()
		out.Write(body) // not JSON after all: show it as it came
	}
	if out.Len() > 0 && out.Bytes()[out.Len()-1] != '\n' {
		out.WriteByte('\n')
	}
	_, err := w.Write(out.Bytes())
	return err
}

// holdsSecret reports whether an answer carries a new secret: a token's or
// a webhook's own "secret", or the "token" of a new user.
func holdsSecret(body []byte) bool { return secretOf(body) != "" }

// secretOf is the new secret an answer carries (see holdsSecret), or "".
func secretOf(body []byte) string {
	var v struct {
		Secret string `json:"secret"`
		Token  *struct {
			Secret string `json:"secret"`
		} `json:"token"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	if v.Secret == "" && v.Token != nil {
		return v.Token.Secret
	}
	return v.Secret
}

// secretNotice is printed on stderr beside an answer holding a secret. It
// does not repeat the secret.
const secretNotice = `The "secret" (on stdout) is shown this once: store it now, it will not be shown again.`

// finish ends a command. Every failure exits as Caddy's own commands do:
// caddycmd.Main exits with caddy.ExitCodeFailedStartup (1) for any error a
// command returns, whether it was given wrongly, refused or could not reach
// its endpoint; Caddy's other codes (2, 3) say how a server process quit
// and are never used here. What failed is on stderr: the message is printed
// here, plainly, instead of by cobra or Caddy's logger, so that scripts and
// people see the API's code and message on one line of their own, and a
// usage mistake ends with a pointer to the help.
func finish(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	cmd.SilenceErrors = true
	stderr := cmd.ErrOrStderr()
	fmt.Fprintln(stderr, "Error:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "See '%s --help'.\n", displayPath(cmd.CommandPath()))
	}
	return err
}

// What --output prints.
const (
	outputJSON   = "json"
	outputID     = "id"
	outputSecret = "secret"
	outputTable  = "table"
)

// outputOf reads --output. id on an action whose answer holds a secret
// shown once would lose it, so it is refused there before anything is
// sent; secret is only for such actions.
func outputOf(fs *pflag.FlagSet, secret bool) (string, error) {
	out, _ := fs.GetString("output")
	switch {
	case out != outputJSON && out != outputID && out != outputSecret && out != outputTable:
		return "", usageErrorf("--output %q: want json, id, table or secret", out)
	case (out == outputID || out == outputTable) && secret:
		return "", usageErrorf("--output %s would lose the secret this answer shows once: use --output secret or json", out)
	case out == outputSecret && !secret:
		return "", usageErrorf("--output secret: this command's answer holds no secret")
	}
	return out, nil
}

// printOutput prints what --output id or secret asks of an answer: the
// object's id (a created user's, not its token's), each listed object's id
// a line, or the new secret.
func printOutput(w io.Writer, body []byte, out string) error {
	if out == outputTable {
		return printTable(w, body)
	}
	if out == outputSecret {
		s := secretOf(body)
		if s == "" {
			return errors.New("the answer holds no secret")
		}
		_, err := fmt.Fprintln(w, s)
		return err
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("the answer is not a JSON object: %v", err)
	}
	var ids []string
	switch {
	case v["id"] != nil:
		ids = append(ids, fmt.Sprint(v["id"]))
	case v["user"] != nil:
		u, _ := v["user"].(map[string]any)
		ids = append(ids, fmt.Sprint(u["id"]))
	case v["user_id"] != nil: // a user's usage or advice
		ids = append(ids, fmt.Sprint(v["user_id"]))
	default:
		for _, x := range v {
			list, ok := x.([]any)
			if !ok {
				continue
			}
			for _, item := range list {
				m, _ := item.(map[string]any)
				id := m["id"]
				if id == nil {
					id = m["event_id"] // deliveries
				}
				if id == nil {
					id = m["user_id"] // an organization's usage
				}
				if id != nil {
					ids = append(ids, fmt.Sprint(id))
				}
			}
		}
	}
	for _, id := range ids {
		if _, err := fmt.Fprintln(w, id); err != nil {
			return err
		}
	}
	return nil
}

// tableColumns are the fields a table shows first, in this order, when
// its rows have them; the rest of their plain fields follow by name.
var tableColumns = []string{"id", "event_id", "time", "name", "type", "level", "role", "account", "accounts", "policies",
	"actor", "action", "target", "user", "url", "events", "hint", "disabled", "expires_at", "last_used_at", "created_at"}

// printTable prints an answer as a table for people: one row per listed
// object (or the one object shown), one column per plain field, lists
// joined with commas, an actor by its id; nested objects are left to
// --output json.
func printTable(w io.Writer, body []byte) error {
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("the answer is not a JSON object: %v", err)
	}
	rows := []map[string]any{v}
	for _, x := range v {
		if list, ok := x.([]any); ok && len(v) <= 2 { // a list, and perhaps next_cursor
			rows = rows[:0]
			for _, item := range list {
				if m, ok := item.(map[string]any); ok {
					rows = append(rows, m)
				}
			}
		}
	}
	cell := func(x any) (string, bool) {
		switch x := x.(type) {
		case nil:
			return "", true
		case string, bool, float64:
			return fmt.Sprint(x), true
		case []any:
			parts := make([]string, 0, len(x))
			for _, p := range x {
				s, ok := p.(string)
				if !ok {
					return "", false
				}
				parts = append(parts, s)
			}
			return strings.Join(parts, ","), true
		case map[string]any:
			if id, ok := x["id"].(string); ok && len(x) <= 2 { // an actor
				return id, true
			}
		}
		return "", false
	}
	seen := map[string]bool{}
	var extra []string
	for _, r := range rows {
		for k, x := range r {
			if _, ok := cell(x); ok && !seen[k] && !slices.Contains(tableColumns, k) {
				extra = append(extra, k)
			}
			seen[k] = true
		}
	}
	slices.Sort(extra)
	var cols []string
	for _, k := range append(slices.Clone(tableColumns), extra...) {
		if !seen[k] {
			continue
		}
		for _, r := range rows {
			if s, ok := cell(r[k]); ok && s != "" {
				cols = append(cols, k)
				break
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = strings.ToUpper(c)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		line := make([]string, len(cols))
		for i, c := range cols {
			line[i], _ = cell(r[c])
			if line[i] == "" {
				line[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(line, "\t"))
	}
	return tw.Flush()
}
