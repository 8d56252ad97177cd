package measure

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// InstanceConfig is one tokengate process to start. Its Caddyfile has
// Caddy's admin endpoint on a free loopback port, no autosaved config, and
// the tokengate app on the measurement's etcd.
type InstanceConfig struct {
	// Name says which instance in messages, e.g. "instance a".
	Name string
	// Dir is the instance's home, made if missing: its Caddyfile, its log
	// and Caddy's XDG data and config directories.
	Dir string
	// Prefix is where the tokengate app keeps its keys in etcd; a
	// measurement's own, so that a shared cluster's data is untouched.
	Prefix string
	// Options are more of the tokengate app's options, one a line.
	Options []string
	// Sites follow the global options in the Caddyfile; none by default.
	Sites string
	// Client makes the calls to the instance. Default: one with a 10 s
	// timeout.
	Client *http.Client
	// Ready reports whether the instance has started. Default: its admin
	// API answers GET /orgs.
	Ready func(*Instance) bool
}

// caddyfileFormat is an instance's config: its admin port, etcd endpoints,
// prefix, more tokengate options and sites.
const caddyfileFormat = `{
	admin 127.0.0.1:%d
	persist_config off
	tokengate {
		etcd {
			endpoints %s
			prefix %s
		}
%s	}
}
%s`

// caddyfile is the config of the instance cfg with its admin endpoint on
// adminPort and the tokengate app on the etcd at endpoints.
func (cfg InstanceConfig) caddyfile(adminPort int, endpoints []string) string {
	var options strings.Builder
	for _, o := range cfg.Options {
		fmt.Fprintf(&options, "\t\t%s\n", o)
	}
	sites := cfg.Sites
	if sites != "" {
		sites = "\n" + sites
	}
	return fmt.Sprintf(caddyfileFormat, adminPort, strings.Join(endpoints, " "), cfg.Prefix, options.String(), sites)
}

// startTimeout is how long an instance may take to become ready.
const startTimeout = 60 * time.Second

// Instance is a running tokengate process.
type Instance struct {
	Name string
	// AdminURL is the tokengate admin API on Caddy's admin endpoint.
	AdminURL string
	// LogPath is the file that holds the instance's output.
	LogPath string
	// Client is InstanceConfig.Client.
	Client *http.Client

	cmd  *exec.Cmd
	done chan error // how the process exited
}

// StartInstance starts an instance, this program run again with the tool's
// instance variable set, and waits until it is ready, for up to 60 s. The
// caller stops it with Stop.
func (s Setup) StartInstance(cfg InstanceConfig) (*Instance, error) {
	adminPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(cfg.Dir, "Caddyfile")
	if err := os.WriteFile(conf, []byte(cfg.caddyfile(adminPort, s.store.endpoints)), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(cfg.Dir, "log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(s.self[0], append(s.self[1:], "run", "--config", conf, "--adapter", "caddyfile")...)
	cmd.Env = append(os.Environ(), s.env+"=1", "XDG_DATA_HOME="+cfg.Dir, "XDG_CONFIG_HOME="+cfg.Dir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %v", cfg.Name, err)
	}
	in := &Instance{
		Name: cfg.Name, cmd: cmd, done: make(chan error, 1), LogPath: logPath,
		AdminURL: fmt.Sprintf("http://127.0.0.1:%d/tokengate", adminPort),
		Client:   cfg.Client,
	}
	if in.Client == nil {
		in.Client = &http.Client{Timeout: 10 * time.Second}
	}
	ready := cfg.Ready
	if ready == nil {
		ready = func(in *Instance) bool {
			_, err := in.Admin("GET", "/orgs", nil)
			return err == nil
		}
	}
	go func() { in.done <- cmd.Wait() }()
	deadline := time.Now().Add(startTimeout)
	for {
		if ready(in) {
			return in, nil
		}
		select {
		case err := <-in.done:
			return nil, fmt.Errorf("%s exited (%v); its log: %s", cfg.Name, err, logPath)
		default:
		}
		if time.Now().After(deadline) {
			in.Stop()
			return nil, fmt.Errorf("%s not ready after 60 s; its log: %s", cfg.Name, logPath)
		}
		time.Sleep(20 * time.Millisecond) // polling interval while it starts
	}
}

// Stop asks the instance to stop, then kills it if it lingers.
func (in *Instance) Stop() {
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		_ = in.cmd.Process.Kill()
		<-in.done
	}
}

// Get sends GET url with a bearer token (none if empty) on the instance's
// client, reads the answer whole and returns its status.
func (in *Instance) Get(url, tok string) (int, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := in.Client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Admin calls the instance's admin API with body (none if nil) as JSON and
// returns the JSON object it answers.
func (in *Instance) Admin(method, path string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, in.AdminURL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := in.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s on %s: %d %s", method, path, in.Name, resp.StatusCode, data)
	}
	out := map[string]any{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, fmt.Errorf("%s %s: %v", method, path, err)
		}
	}
	return out, nil
}
