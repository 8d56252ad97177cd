package etcdcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Process is a child process owned by a test. Its stdout and stderr go to a
// log file (appended to, so a restarted process keeps one file), and it is
// killed if the test binary dies first, so no test leaves processes behind.
type Process struct {
	Name    string
	LogPath string

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // how it exited; set before exited closes
}

// StartProcess starts bin with args, its output appended to logPath, in
// the environment env (nil: the test's).
func StartProcess(name, logPath, bin string, args, env []string) (*Process, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child holds its own descriptor
	fmt.Fprintf(out, "=== %s: starting %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))

	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group, so a terminal's Ctrl-C reaches the test
		// binary, which then cleans up, rather than racing it.
		Setpgid: true,
		// Dies with the test binary, even when a test times out and the
		// binary exits without running cleanups.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %v", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Pid is the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Running reports whether the process has not exited (it may be stopped).
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// ExitError is how the process exited; nil while it runs.
func (p *Process) ExitError() error {
	if p.Running() {
		return nil
	}
	return p.err
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error {
	if !p.Running() {
		return fmt.Errorf("%s has exited: %v", p.Name, p.err)
	}
	err := syscall.Kill(p.Pid(), sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil // exited meanwhile
	}
	return err
}

// Kill sends SIGKILL and waits until the process is gone.
func (p *Process) Kill(timeout time.Duration) error {
	if !p.Running() {
		return nil
	}
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) still running %s after SIGKILL", p.Name, p.Pid(), timeout)
	}
}

// WaitStopped waits until the kernel reports the process stopped (after
// SIGSTOP) or, with stopped false, running again (after SIGCONT), so that
// a test acts only once the fault is in place. Where /proc is not
// available it returns at once.
func (p *Process) WaitStopped(stopped bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		state, ok := procState(p.Pid())
		if !ok || (state == 'T') == stopped || !p.Running() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) in state %c after %s", p.Name, p.Pid(), state, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// procState is the state letter of /proc/<pid>/stat (R, S, T, ...).
func procState(pid int) (byte, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name in parentheses may hold spaces; the state follows
	// the last closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, false
	}
	return b[i+2], true
}

// Environ is the test's environment without the variables whose names
// start with dropPrefix, plus add.
func Environ(dropPrefix string, add ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if dropPrefix == "" || !strings.HasPrefix(kv, dropPrefix) {
			env = append(env, kv)
		}
	}
	return append(env, add...)
}

// LogTail returns the last n lines of the process's log.
func (p *Process) LogTail(n int) string { return tail(p.LogPath, n) }

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
