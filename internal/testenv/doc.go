// Package testenv gives a test binary a home of its own, so that running the
// tests leaves the machine as they found it: no test config autosaved to the
// real ~/.config/caddy (where a later `caddy run --resume` would load it), no
// certificates, locks or instance IDs in ~/.local/share/caddy, no browser or
// tool state anywhere under the user's home.
//
// Every package with tests calls it from its TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Before any test runs, Main makes a fresh temporary directory and points
// HOME, XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_CACHE_HOME and XDG_STATE_HOME
// into it; after the tests it restores them and removes the directory.
// Processes the tests start inherit the environment, so a Caddy, etcd or
// Chromium child writes there too. TMPDIR is left alone: t.TempDir and
// os.MkdirTemp keep using it, and each test cleans up its own.
//
// Caddy reads these variables when caddy.AppConfigDir and caddy.AppDataDir
// are called, but it computes caddy.ConfigAutosavePath and
// caddy.DefaultStorage once, when the caddy package is initialized, which is
// before TestMain runs. Main recomputes both, as Caddy's own command does
// after loading an environment file.
//
// The Go toolchain keeps working: GOCACHE, GOMODCACHE, GOPATH, GOFLAGS and
// GOENV are set explicitly to the values `go env` reported before HOME
// changed, so a test that runs `go build` uses the usual build and module
// caches and settings. Go's telemetry is off in the temporary home, since
// the go command may leave a process behind that writes its counters there
// after the tests end. Nothing else about lookups changes: node resolves
// modules from the script's directory up (internal/upstreams' node_modules is
// in the repository), and internal/upstreams gives its servers their own
// HOME already.
package testenv
