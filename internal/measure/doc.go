// Package measure is what the measuring tools (cmd/tgfresh, cmd/tgwebhook)
// share: their command line, the etcd a measurement runs on, real tokengate
// processes started from the tool's own binary, and the figures' rounding
// and footer in a report. Each tool keeps what it measures, and how, in its
// own package.
//
// A tool is a Tool: its main is Tool.Main, and its TestMain is
// Tool.TestMain. Either serves as a tokengate instance (Caddy with
// tokengate) when the tool's instance variable is set, which is how
// Setup.StartInstance runs the binary again as an instance: the tool's
// binary in use, the test binary in its tests.
package measure
