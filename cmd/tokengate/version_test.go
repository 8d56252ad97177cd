package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionLabelsBoth: `tokengate version` names tokengate's version and
// Caddy's, each on a line of its own; a version given at build time (a
// build from a source archive) and one Go reads from a tagged commit are
// the version reported.
func TestVersionLabelsBoth(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary twice")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	versionOf := func(dir string, args ...string) []string {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "tokengate")
		build := exec.Command("go", append(append([]string{"build", "-o", bin}, args...), "./cmd/tokengate")...)
		build.Dir = dir
		build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=true")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", args, err, out)
		}
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatalf("tokengate version: %v", err)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	check := func(lines []string, want string) {
		t.Helper()
		if len(lines) != 2 || lines[0] != "tokengate "+want || !strings.HasPrefix(lines[1], "caddy v2.") {
			t.Fatalf("tokengate version printed %q, want tokengate %s and caddy v2.…", lines, want)
		}
	}
	check(versionOf(root, "-ldflags", "-X github.com/tokengate/tokengate/module/tokengate.BuildVersion=v9.8.7"), "v9.8.7")

	clone := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = clone
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	// A tagged commit of a clean clone (of the last commit: the version
	// Go reads, not this working tree's code, is what is checked here).
	git("clone", "--quiet", "--no-hardlinks", root, ".")
	git("tag", "v1.2.3")
	if lines := versionOf(clone); lines[0] != "tokengate v1.2.3" {
		t.Fatalf("built from a tagged commit, tokengate version printed %q", lines)
	}
}
