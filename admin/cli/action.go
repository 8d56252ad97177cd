package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// action is one subcommand: one route of the admin API. Everything it
// sends comes from flags: the ids in the path, the body's fields and the
// query parameters.
type action struct {
	name  string
	short string
	// example holds command lines, one a line, without what starts them
	// (see invocation).
	example string
	method  string
	// path is the API route; each {name} in it is filled from the
	// required flag --name (see idFlags).
	path  string
	body  []field
	query []field
	// fileField, when set, adds --file: a JSON file holding the body's
	// fields, or a list that is the value of this field.
	fileField string
	// changes says at least one body field must be given (a PATCH).
	changes bool
	// secret says the answer may carry a secret shown this once.
	secret bool
	// done confirms an answer without a body; {name}s are filled as in
	// path.
	done string
	// reportsStdin makes the action `token report`: it sends the tokens
	// read from standard input (see report.go), never from flags or
	// arguments.
	reportsStdin bool
	// endpointOnly: the route is Caddy's admin endpoint's only (the
	// operator's), never a tokengate_admin mount's: --url is refused.
	endpointOnly bool
	// local, when set, makes the action a command of its own rather than
	// one route of the API (store snapshot and restore): it takes the
	// arguments named in args, the flags flags defines, and runs local.
	local func(cmd *cobra.Command, args []string) error
	args  []string
	flags func(fs *pflag.FlagSet)
	// table, when set, prints the answer for --output table instead of
	// the generic table of printTable (answers that are no list of plain
	// objects, such as usage reports).
	table func(w io.Writer, body []byte) error
}

// idFlags describes the flags that fill a route's {name}s.
var idFlags = map[string]string{
	"org":     "organization id",
	"account": "account id (act-…)",
	"user":    "user id (u-…)",
	"token":   "token id (tok-…)",
	"policy":  "policy id (pol-…)",
	"webhook": "webhook id (wh-…)",
}

// pathParams lists the {name}s of the action's route, in order.
func (a action) pathParams() []string {
	var names []string
	for _, seg := range strings.Split(a.path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			names = append(names, seg[1:len(seg)-1])
		}
	}
	return names
}

// command is the action as a cobra command.
func (a action) command() *cobra.Command {
	if a.local != nil {
		return a.localCommand()
	}
	cmd := &cobra.Command{
		Use:     a.name,
		Short:   a.short,
		Example: a.examples(),
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && a.reportsStdin {
				// Never echoed: it may be a token.
				return finish(cmd, usageErrorf("tokens are not taken as arguments (they would stay in shell history "+
					"and process lists): give them on standard input, one a line"))
			}
			if len(args) > 0 {
				return finish(cmd, usageErrorf("unexpected argument %q: every value is given as a flag", args[0]))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.reportsStdin {
				return finish(cmd, reportTokens(cmd, a.path))
			}
			return finish(cmd, a.run(cmd))
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false // in the order of the API's fields, required first
	for _, name := range a.pathParams() {
		fs.String(name, "", idFlags[name]+" (required)")
	}
	for _, f := range a.body {
		f.define(fs)
	}
	for _, f := range a.query {
		f.define(fs)
	}
	if a.fileField != "" {
		fs.String("file", "", fmt.Sprintf("JSON file (- for stdin) holding the request's fields, or the list of %s; flags override it", a.fileField))
	}
	return cmd
}

// examples are the action's example lines as the user would type them
// in this binary.
func (a action) examples() string {
	if a.example == "" {
		return ""
	}
	lines := strings.Split(a.example, "\n")
	for i, l := range lines {
		lines[i] = "  " + invocation() + " " + l
	}
	return strings.Join(lines, "\n")
}

// run checks the flags, sends the request and prints the answer.
func (a action) run(cmd *cobra.Command) error {
	fs := cmd.Flags()
	if a.endpointOnly && fs.Changed("url") {
		return usageErrorf("%s talks to Caddy's admin endpoint only (--address), not to a tokengate_admin mount", displayPath(cmd.CommandPath()))
	}
	out, err := outputOf(fs, a.secret)
	if err != nil {
		return err
	}
	path, body, err := a.request(fs)
	if err != nil {
		return err
	}
	tgt, err := targetFrom(fs)
	if err != nil {
		return err
	}
	ans, err := tgt.send(cmd.Context(), a.method, path, body)
	if err != nil {
		return err
	}
	return a.report(cmd, fs, ans, out)
}

// request builds what the action sends: the path with its query, and the
// JSON body (nil for none). Every usage mistake is found here, before
// anything is sent.
func (a action) request(fs *pflag.FlagSet) (string, []byte, error) {
	path, missingIDs := a.resolvePath(fs)
	body, missingFields, err := a.requestBody(fs)
	if err != nil {
		return "", nil, err
	}
	if missing := append(missingIDs, missingFields...); len(missing) > 0 {
		return "", nil, missingFlags(missing)
	}
	if a.changes && len(body) == 0 {
		return "", nil, usageErrorf("nothing to change: give at least one of %s", a.bodyFlags())
	}
	query, err := a.queryString(fs)
	if err != nil {
		return "", nil, err
	}
	if body == nil {
		return path + query, nil, nil
	}
	data, err := json.Marshal(body)
	if err != nil {
		return "", nil, fmt.Errorf("encoding the request: %w", err)
	}
	return path + query, data, nil
}

// resolvePath fills the route's {name}s, each escaped as one path segment,
// and names the flags that are missing.
func (a action) resolvePath(fs *pflag.FlagSet) (string, []string) {
	var missing []string
	for _, name := range a.pathParams() {
		if v, _ := fs.GetString(name); v == "" {
			missing = append(missing, "--"+name)
		}
	}
	return a.fillIDs(a.path, fs, url.PathEscape), missing
}

// fillIDs replaces the {name}s of template with the values of their flags,
// passed through escape.
func (a action) fillIDs(template string, fs *pflag.FlagSet, escape func(string) string) string {
	for _, name := range a.pathParams() {
		v, _ := fs.GetString(name)
		template = strings.ReplaceAll(template, "{"+name+"}", escape(v))
	}
	return template
}

// requestBody builds the JSON body from the flags that were given, and only
// those: an optional field never goes out as an empty value the user did
// not ask for. It names the required fields that are missing. Methods
// without a body return nil.
func (a action) requestBody(fs *pflag.FlagSet) (map[string]any, []string, error) {
	if a.method == http.MethodGet || a.method == http.MethodDelete {
		return nil, nil, nil
	}
	body, err := a.fileBody(fs)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range a.body {
		if !f.given(fs) {
			continue
		}
		if body[f.json], err = f.value(fs); err != nil {
			return nil, nil, err
		}
	}
	var missing []string
	for _, f := range a.body {
		if _, ok := body[f.json]; f.required && !ok {
			name := "--" + f.flagName()
			if a.fileField == f.json {
				name += " (or --file)"
			}
			missing = append(missing, name)
		}
	}
	return body, missing, nil
}

func (a action) bodyFlags() string {
	var names []string
	for _, f := range a.body {
		names = append(names, "--"+f.flagName())
	}
	return strings.Join(names, ", ")
}

func missingFlags(names []string) error {
	if len(names) == 1 {
		return usageErrorf("missing required flag %s", names[0])
	}
	return usageErrorf("missing required flags %s", strings.Join(names, ", "))
}

// queryString builds the query from the flags that were given.
func (a action) queryString(fs *pflag.FlagSet) (string, error) {
	q := url.Values{}
	for _, f := range a.query {
		if !f.given(fs) {
			continue
		}
		v, err := f.queryText(fs)
		if err != nil {
			return "", err
		}
		q.Set(f.json, v)
	}
	if len(q) == 0 {
		return "", nil
	}
	return "?" + q.Encode(), nil
}

// report prints the answer: JSON on stdout, a confirmation on stderr when
// there is no body, a notice beside a secret, an error otherwise.
func (a action) report(cmd *cobra.Command, fs *pflag.FlagSet, ans *answer, out string) error {
	if ans.status < 200 || ans.status >= 300 {
		return errorFromAnswer(ans)
	}
	if len(ans.body) == 0 {
		if a.done != "" {
			fmt.Fprintln(cmd.ErrOrStderr(), a.fillIDs(a.done, fs, func(v string) string { return v }))
		}
		return nil
	}
	if out == outputTable && a.table != nil {
		return a.table(cmd.OutOrStdout(), ans.body)
	}
	if out != outputJSON {
		if err := printOutput(cmd.OutOrStdout(), ans.body, out); err != nil {
			return err
		}
		if out == outputSecret {
			fmt.Fprintln(cmd.ErrOrStderr(), secretNotice)
		}
		return nil
	}
	if err := printJSON(cmd.OutOrStdout(), ans.body); err != nil {
		if a.secret {
			return fmt.Errorf("printing the answer: %w; a secret it held is lost: revoke that token and create another", err)
		}
		return fmt.Errorf("printing the answer: %w", err)
	}
	if a.secret && holdsSecret(ans.body) {
		fmt.Fprintln(cmd.ErrOrStderr(), secretNotice)
	}
	return nil
}

// localCommand is an action that is no route of the API.
func (a action) localCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     a.name + " " + strings.Join(a.args, " "),
		Short:   a.short,
		Example: a.examples(),
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != len(a.args) {
				return finish(cmd, usageErrorf("want %d %s (%s), got %d", len(a.args), plural(len(a.args), "argument", "arguments"),
					strings.Join(a.args, " "), len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return finish(cmd, a.local(cmd, args)) },
	}
	if a.flags != nil {
		a.flags(cmd.Flags())
	}
	return cmd
}
