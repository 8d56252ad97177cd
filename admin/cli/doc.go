// Package cli is the command line client of tokengate's admin API: the
// `tokengate org|account|user|token|policy|audit …` subcommands of the
// tokengate binary, registered with Caddy's command machinery.
//
// By default a command talks to Caddy's admin endpoint (--address, the
// machine's operator). With --url it talks to a tokengate_admin mount
// instead, as the admin whose token is in the TOKENGATE_TOKEN environment
// variable: never a flag, so tokens stay out of shell history and process
// lists. Answers are printed as JSON on stdout; errors go to stderr with
// exit status 1, or 2 when the command itself was given wrongly.
package cli
