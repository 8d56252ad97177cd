package tokengate

import (
	"runtime/debug"
	"strings"
)

// ModulePath is this project's Go module.
const ModulePath = "github.com/tokengate/tokengate"

// BuildVersion, when set at build time, is the version Version reports:
//
//	go build -ldflags "-X github.com/tokengate/tokengate/module/tokengate.BuildVersion=v1.2.0" ./cmd/tokengate
//
// for builds from a source archive, which carries no repository for Go to
// read a tag from (the Dockerfile passes its VERSION build argument).
var BuildVersion string

// Version is the version of tokengate built into this binary: BuildVersion
// when set, else as Go's build information records it: the module version
// when tokengate is a dependency (an xcaddy build), or the version Go
// stamps from the repository when it is the main module (v1.2.0 on a
// tagged commit, else a pseudo-version such as
// v0.0.0-20261129204301-1971fba1c0de, "+dirty" with uncommitted changes).
// "(devel)" when no version was recorded.
func Version() string {
	if BuildVersion != "" {
		return BuildVersion
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	if bi.Main.Path == ModulePath {
		return moduleVersion(&bi.Main, bi.Settings)
	}
	for _, d := range bi.Deps {
		if d.Path == ModulePath {
			if d.Replace != nil {
				return moduleVersion(d.Replace, nil)
			}
			return moduleVersion(d, nil)
		}
	}
	return "(devel)"
}

func moduleVersion(m *debug.Module, settings []debug.BuildSetting) string {
	if m.Version != "" && m.Version != "(devel)" {
		return m.Version
	}
	var rev, modified string
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "(devel)"
	}
	v := "(devel) " + rev[:min(12, len(rev))]
	if modified == "true" {
		v += "+dirty"
	}
	return strings.TrimSpace(v)
}
