package etcdconn

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
)

// The embedded etcd serves its clients on a unix socket, never on TCP. etcd
// asks no credentials of its clients, and a loopback port is open to every
// process on the host; a socket in a directory that only the gateway's user
// may enter is open to that user alone.

// socketName is the client socket's name in its directory.
const socketName = "client.sock"

// maxSocketPath is the longest socket path every unix accepts: a socket
// address holds 108 bytes on Linux and 104 on the BSDs and macOS, the
// terminating NUL included.
const maxSocketPath = 103

// noPeers is the peer URL the member advertises. etcd names a member by its
// peer URLs, so it needs one; but a single member never hears from a peer,
// so nothing listens there. (etcd binds a unix peer URL to the URL's host,
// a path relative to the working directory, so a socket could not be kept
// in the private directory anyway.)
const noPeers = "unix://no-peers"

// socketDir picks the directory of the client socket: dir itself when the
// path is short enough, else a new private directory under the system's
// temporary directory (temporary is then true, and the caller removes it
// when the server stops). os.MkdirTemp names it unpredictably and makes it
// 0700, and the temporary directory's sticky bit keeps other users from
// replacing it.
func socketDir(dir string) (sockDir string, temporary bool, err error) {
	if len(filepath.Join(dir, socketName)) <= maxSocketPath {
		return dir, false, nil
	}
	tmp, err := os.MkdirTemp("", "tokengate-etcd-")
	if err != nil {
		return "", false, fmt.Errorf("making a directory for the embedded etcd's socket: %v", err)
	}
	if len(filepath.Join(tmp, socketName)) > maxSocketPath {
		os.Remove(tmp)
		return "", false, fmt.Errorf("the paths of %s and of the temporary directory %s are too long for a unix socket (at most %d bytes): choose a shorter embedded_dir",
			dir, os.TempDir(), maxSocketPath)
	}
	return tmp, true, nil
}

// socketURL is the client URL of the socket in sockDir.
func socketURL(sockDir string) url.URL {
	return url.URL{Scheme: "unix", Path: filepath.Join(sockDir, socketName)}
}

// makePrivate creates dir if missing and gives it mode 0700, whatever mode
// it had: it holds the data and, usually, the socket.
func makePrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	info, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if info.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}
