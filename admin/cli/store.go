package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/etcdconn"
)

// The store's backup and restore: `store snapshot FILE` asks a running
// gateway, through Caddy's admin endpoint, for etcd's snapshot of its
// store (embedded or external) and checks it before keeping it;
// `store restore FILE --embedded-dir DIR` restores one for the embedded
// store, with the embedded etcd's own version, while the gateway is
// stopped. A cluster is restored with the etcdutl of its etcd's version.

// snapshotStatus is what both commands print of a snapshot.
type snapshotStatus struct {
	File     string `json:"file"`
	Bytes    int64  `json:"bytes"`
	Revision int64  `json:"revision"`
	Keys     int    `json:"keys"`
	Version  string `json:"storage_version,omitempty"`
	DataDir  string `json:"data_dir,omitempty"`
	Aside    string `json:"moved_aside,omitempty"`
}

// snapshotStore is `store snapshot FILE`.
func snapshotStore(cmd *cobra.Command, args []string) error {
	fs := cmd.Flags()
	if fs.Changed("url") {
		return usageErrorf("store snapshot talks to Caddy's admin endpoint only (--address), not to a tokengate_admin mount")
	}
	tgt, err := endpointFrom(fs)
	if err != nil {
		return err
	}
	file, err := filepath.Abs(args[0])
	if err != nil {
		return err
	}
	if _, err := os.Stat(file); err == nil {
		return usageErrorf("%s exists: choose a new file (a snapshot is never written over another)", file)
	}
	// Written beside its final place, and renamed only once checked.
	part, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".part-*")
	if err != nil {
		return fmt.Errorf("creating the snapshot file: %w", err)
	}
	defer os.Remove(part.Name())
	n, err := tgt.download(cmd.Context(), "/store/snapshot", part)
	if cerr := part.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	st, err := checkSnapshot(part.Name())
	if err != nil {
		return fmt.Errorf("the snapshot received (%d bytes) is not whole: %w; nothing was kept", n, err)
	}
	if err := os.Rename(part.Name(), file); err != nil {
		return fmt.Errorf("keeping the snapshot: %w", err)
	}
	st.File = file
	return printStatus(cmd, st)
}

// restoreStore is `store restore FILE --embedded-dir DIR [--replace]`.
func restoreStore(cmd *cobra.Command, args []string) error {
	fs := cmd.Flags()
	dir, _ := fs.GetString("embedded-dir")
	if dir == "" {
		return usageErrorf("--embedded-dir is required: the embedded store's directory (the embedded_dir global option, by default the etcd folder under Caddy's data directory)")
	}
	replace, _ := fs.GetBool("replace")
	st, err := checkSnapshot(args[0])
	if err != nil {
		return fmt.Errorf("%s is not a whole etcd snapshot: %w", args[0], err)
	}
	dataDir, aside, err := etcdconn.RestoreEmbedded(etcdconn.RestoreConfig{Snapshot: args[0], Dir: dir, Replace: replace}, zap.NewNop())
	if err != nil {
		return err
	}
	st.File, st.DataDir, st.Aside = args[0], dataDir, aside
	return printStatus(cmd, st)
}

// checkSnapshot checks the SHA-256 etcd appends to a snapshot and reads
// its revision and keys.
func checkSnapshot(path string) (snapshotStatus, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return snapshotStatus{}, err
	}
	n := len(data) - sha256.Size
	if n <= 0 || n%512 != 0 {
		return snapshotStatus{}, fmt.Errorf("%d bytes is not the size of a snapshot with its checksum", len(data))
	}
	if sum := sha256.Sum256(data[:n]); !bytes.Equal(sum[:], data[n:]) {
		return snapshotStatus{}, fmt.Errorf("its SHA-256 does not match the one etcd appended")
	}
	st, err := snapshot.NewV3(zap.NewNop()).Status(path)
	if err != nil {
		return snapshotStatus{}, err
	}
	return snapshotStatus{Bytes: int64(len(data)), Revision: st.Revision, Keys: st.TotalKey, Version: st.Version}, nil
}

func printStatus(cmd *cobra.Command, st snapshotStatus) error {
	body, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return printJSON(cmd.OutOrStdout(), body)
}

// download streams the answer of a GET on Caddy's admin endpoint to w,
// without the size limit of the API's answers; an error answer is the
// API's error.
func (t target) download(ctx context.Context, path string, w io.Writer) (int64, error) {
	req, client, err := t.adminRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return 0, err
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("reaching %s (is tokengate running, with its admin endpoint there?): %w", t.describe(), unwrapURLError(err))
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
		return 0, errorFromAnswer(&answer{status: res.StatusCode, body: body})
	}
	n, err := io.Copy(w, res.Body)
	if err != nil {
		return n, fmt.Errorf("receiving the snapshot from %s after %d bytes: %w", t.describe(), n, err)
	}
	return n, nil
}
