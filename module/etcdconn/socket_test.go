package etcdconn

import (
	"bufio"
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestOpenEmbeddedServesOnPrivateSocketOnly: the embedded etcd asks no
// credentials, so it must not be reachable by other local users: no TCP
// listener, only a unix socket in the 0700 data directory.
func TestOpenEmbeddedServesOnPrivateSocketOnly(t *testing.T) {
	before := tcpListeners(t)
	dir := t.TempDir()
	conn, err := Open(nil, dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	putGet(t, conn.Client, conn.Prefix+"/x")
	if conn.Prefix != DefaultPrefix {
		t.Fatalf("prefix %q", conn.Prefix)
	}

	for addr := range tcpListeners(t) {
		if !before[addr] {
			t.Errorf("the embedded etcd listens on TCP %s", addr)
		}
	}
	emb := conn.Embedded()
	for _, l := range emb.Server().Clients {
		if l.Addr().Network() != "unix" {
			t.Errorf("client listener on %s %s", l.Addr().Network(), l.Addr())
		}
	}
	if n := len(emb.Server().Peers); n != 0 {
		t.Errorf("%d peer listeners", n)
	}
	sock := filepath.Join(dir, socketName)
	if socketPath(t, emb) != sock {
		t.Errorf("client URL %s, want unix://%s", emb.ClientURL(), sock)
	}
	assertPrivate(t, dir, sock)
}

// TestEmbeddedDirMadePrivate: a data directory that others may enter is
// closed to them before the server starts. (Its name has characters that
// URLs and etcd's lists of URLs treat specially.)
func TestEmbeddedDirMadePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd, a=b %41 ü")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	emb := startEmbedded(t, dir)
	if socketPath(t, emb) != filepath.Join(dir, socketName) {
		t.Errorf("client URL %s", emb.ClientURL())
	}
	assertPrivate(t, dir, filepath.Join(dir, socketName))
	putGet(t, newTestClient(t, emb.ClientURL()), "/k")
}

// TestEmbeddedStaleSocket: the socket file a crashed run left behind does
// not keep the server from starting again.
func TestEmbeddedStaleSocket(t *testing.T) {
	dir := t.TempDir()
	startEmbedded(t, dir).Close()
	sock := filepath.Join(dir, socketName)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false) // as a crash leaves it
	l.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("no stale socket: %v", err)
	}
	emb := startEmbedded(t, dir)
	putGet(t, newTestClient(t, emb.ClientURL()), "/k")
}

// TestEmbeddedLongDir: a data directory whose path is too long for a socket
// address gets its socket in a private temporary directory, removed when
// the server stops; the data stays in the directory across restarts.
func TestEmbeddedLongDir(t *testing.T) {
	dir := t.TempDir()
	for len(dir) <= maxSocketPath {
		dir = filepath.Join(dir, "a-directory-with-a-long-name")
	}
	emb := startEmbedded(t, dir)
	sock := socketPath(t, emb)
	if !strings.HasPrefix(sock, os.TempDir()) || len(sock) > maxSocketPath {
		t.Fatalf("socket %s", sock)
	}
	assertPrivate(t, filepath.Dir(sock), sock)
	putGet(t, newTestClient(t, emb.ClientURL()), "/k")
	emb.Close()
	if _, err := os.Stat(filepath.Dir(sock)); !os.IsNotExist(err) {
		t.Fatalf("the socket's directory is left after close: %v", err)
	}

	again := startEmbedded(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := newTestClient(t, again.ClientURL()).Get(ctx, "/k")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("after restart: %v %v", resp, err)
	}
}

// TestEmbeddedFromTCPDir: a data directory made when the embedded etcd
// listened on loopback ports starts on the socket with its data.
func TestEmbeddedFromTCPDir(t *testing.T) {
	dir := t.TempDir()
	old, err := StartEmbedded(EmbeddedConfig{Dir: dir, ClientURL: "http://127.0.0.1:0", NoFsync: true}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	putGet(t, newTestClient(t, old.ClientURL()), "/k")
	old.Close()

	emb := startEmbedded(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := newTestClient(t, emb.ClientURL()).Get(ctx, "/k")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("after the move to a socket: %v %v", resp, err)
	}
}

// startEmbedded starts a server on dir, stopped when the test ends.
func startEmbedded(t *testing.T, dir string) *Embedded {
	t.Helper()
	emb, err := StartEmbedded(EmbeddedConfig{Dir: dir, NoFsync: true}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	return emb
}

// socketPath is the path of emb's client socket.
func socketPath(t *testing.T, emb *Embedded) string {
	t.Helper()
	u, err := url.Parse(emb.ClientURL())
	if err != nil || u.Scheme != "unix" {
		t.Fatalf("client URL %s: %v", emb.ClientURL(), err)
	}
	return u.Path
}

// newTestClient is a client of url, closed when the test ends.
func newTestClient(t *testing.T, url string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// putGet writes key and reads it back.
func putGet(t *testing.T, c *clientv3.Client, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, key, "v"); err != nil {
		t.Fatal(err)
	}
	if resp, err := c.Get(ctx, key); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %v %v", key, resp, err)
	}
}

// assertPrivate checks that dir has mode 0700 and that sock is a socket in
// it that no one else may open.
func assertPrivate(t *testing.T, dir, sock string) {
	t.Helper()
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o700 {
		t.Errorf("%s has mode %v, want 0700", dir, info.Mode().Perm())
	}
	info, err = os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Type() != os.ModeSocket || info.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s has mode %v, want a socket for its owner only", sock, info.Mode())
	}
}

// tcpListeners lists the local addresses of this process's listening TCP
// sockets: the sockets among its file descriptors that /proc/net lists in
// state LISTEN (0A).
func tcpListeners(t *testing.T) map[string]bool {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			mine[strings.TrimSuffix(inode, "]")] = true
		}
	}
	listening := map[string]bool{}
	for _, table := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue // no IPv6
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) > 9 && fields[3] == "0A" && mine[fields[9]] {
				listening[fields[1]] = true
			}
		}
		f.Close()
	}
	return listening
}
