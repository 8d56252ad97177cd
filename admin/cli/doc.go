// Package cli is the command line client of tokengate's admin API. It adds
// one command to Caddy, `tokengate`, whose subcommands are the admin
// commands (`caddy tokengate org|account|user|token|policy|audit …`), so
// that any Caddy build with the plugin has them and no generic name can
// collide with another plugin's. The tokengate binary also takes them
// without the word (see ShortForm) and has help of its own (RootHelp).
//
// By default a command talks to Caddy's admin endpoint (--address, the
// machine's operator). With --url it talks to a tokengate_admin mount
// instead, as the admin whose token is in the TOKENGATE_TOKEN environment
// variable: never a flag, so tokens stay out of shell history and process
// lists. Answers are printed as JSON on stdout; errors go to stderr, and
// the exit status is Caddy's: 0, or 1 (caddy.ExitCodeFailedStartup) for
// any failure.
package cli
