package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/module/tokengate"
)

// TestSystemdUnitVerifies: systemd's own checker accepts the unit in
// packaging/ (where systemd-analyze is installed), with its binary path
// pointed at an executable that exists here.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	unit, err := os.ReadFile("../../packaging/tokengate.service")
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokengate.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/bin/tokengate", exe)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDockerfile checks what the Dockerfile promises that this machine
// can check without a Docker engine: it builds this binary with the Go
// version go.mod asks for, stamps the version into the variable that
// exists, and runs as an unprivileged user with its data on a volume.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(mod))
	if goVersion == nil {
		t.Fatal("no go directive in go.mod")
	}
	for _, want := range []string{
		"FROM golang:" + goVersion[1] + "-",
		"-X " + tokengate.ModulePath + "/module/tokengate.BuildVersion=${VERSION}",
		"./cmd/tokengate",
		"USER nonroot",
		"VOLUME /data",
		"XDG_DATA_HOME=/data",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
	if _, err := os.Stat("../../testdata/Caddyfile"); err != nil {
		t.Errorf("the Caddyfile the image copies: %v", err)
	}
}
