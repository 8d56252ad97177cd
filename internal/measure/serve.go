package measure

import (
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// What an instance runs: Caddy's standard modules and tokengate.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate"
)

// serve runs this program as a tokengate instance (Caddy, with its command
// line) and returns true when the environment variable env is set; when it
// is not, it returns false at once and the program goes on as the tool.
func serve(env string) bool {
	if os.Getenv(env) == "" {
		return false
	}
	caddycmd.Main()
	return true
}

// selfCommand is the command that runs this program again.
func selfCommand() []string {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return []string{exe}
}
