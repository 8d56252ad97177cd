package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokengate/tokengate/module/token"
)

// reportBatch is the most tokens one request of `token report` carries:
// the most the API takes in one report.
const reportBatch = 1000

// reportTokens is `token report`: it reads tokens from standard input, one
// a line, and sends them to path (POST /credentials/revoke) in batches,
// without a token of its own: the route is public on both mounts. Tokens
// never come from flags or arguments, which shell history and process
// lists keep, and are never printed. Lines that are not well-formed
// tokens are skipped here (the API would ignore them) and only counted.
func reportTokens(cmd *cobra.Command, path string) error {
	tgt, err := endpointFrom(cmd.Flags())
	if err != nil {
		return err
	}
	in := cmd.InOrStdin()
	if isTerminal(in) {
		fmt.Fprintln(cmd.ErrOrStderr(), "Reading tokens from standard input, one a line; end with Ctrl-D.")
	}
	tokens, skipped, err := readTokens(in)
	if err != nil {
		return fmt.Errorf("reading standard input: %w", err)
	}
	stderr := cmd.ErrOrStderr()
	if skipped > 0 {
		fmt.Fprintf(stderr, "Skipped %d %s that %s not a tokengate token (tgp_… or tgu_…, with a valid checksum).\n",
			skipped, plural(skipped, "line", "lines"), plural(skipped, "is", "are"))
	}
	if len(tokens) == 0 {
		return usageErrorf("no tokens on standard input: give them one a line, such as %s token report < leaked.txt", invocation())
	}
	sent := 0
	for start := 0; start < len(tokens); start += reportBatch {
		batch := tokens[start:min(start+reportBatch, len(tokens))]
		body, err := json.Marshal(map[string][]string{"credentials": batch})
		if err != nil {
			return fmt.Errorf("encoding the report: %w", err)
		}
		ans, err := tgt.send(cmd.Context(), "POST", path, body)
		if err == nil && (ans.status < 200 || ans.status >= 300) {
			err = errorFromAnswer(ans)
		}
		if err != nil {
			if sent > 0 {
				fmt.Fprintf(stderr, "%d of %d tokens were reported before this failure; send the rest again.\n", sent, len(tokens))
			}
			return err
		}
		if err := printJSON(cmd.OutOrStdout(), ans.body); err != nil {
			return fmt.Errorf("printing the answer: %w", err)
		}
		sent += len(batch)
	}
	fmt.Fprintf(stderr, "Reported %d %s. Those that are live stop working at once, on every gateway; "+
		"the answer does not say which were.\n", sent, plural(sent, "token", "tokens"))
	return nil
}

// readTokens reads one token a line, surrounding blanks trimmed and blank
// lines skipped; it returns the well-formed tokens and counts the other
// lines. A line of any length is read without holding it all.
func readTokens(r io.Reader) (tokens []string, skipped int, err error) {
	br := bufio.NewReaderSize(r, 4096)
	for {
		line, err := br.ReadSlice('\n')
		tooLong := false
		for errors.Is(err, bufio.ErrBufferFull) {
			tooLong = true
			_, err = br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, 0, err
		}
		if tooLong {
			skipped++
		} else if s := strings.TrimSpace(strings.TrimPrefix(string(line), "\ufeff")); s != "" {
			// A byte order mark (Windows editors, PowerShell) starts
			// the first line; it is not part of the token.
			if _, perr := token.Parse(s); perr != nil {
				skipped++
			} else {
				tokens = append(tokens, s)
			}
		}
		if err == io.EOF {
			return tokens, skipped, nil
		}
	}
}

// isTerminal reports whether r is a terminal, where a person types.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
