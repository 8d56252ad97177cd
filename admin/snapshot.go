package admin

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/errcode"
)

// snapshotPath is where Caddy's admin endpoint serves a snapshot of the
// store, for `tokengate store snapshot`: the operator only, never on a
// tokengate_admin mount. It is etcd's own snapshot (the Maintenance API),
// of the embedded store or of the external cluster's member the client
// reaches, so `etcdutl snapshot restore` and `tokengate store restore`
// take it.
const snapshotPath = "/store/snapshot"

// serveSnapshot streams the snapshot. A failure before the first byte is
// the contract's JSON error; one after it cuts the stream short, which
// the command finds when it checks the file.
func (a *AdminEndpoint) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	api, ok := a.operatorAPI(w, r, http.MethodGet)
	if !ok {
		return
	}
	rc, err := api.store.Client().Snapshot(r.Context())
	if err != nil {
		writeError(w, &apiError{code: errcode.StoreUnavailable, msg: "etcd did not start a snapshot: " + err.Error()})
		return
	}
	defer rc.Close()
	// etcd sends the snapshot's header only with its first bytes: read
	// them before answering, so that a refusal is still an error answer.
	first := make([]byte, 32<<10)
	n, err := io.ReadFull(rc, first)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		writeError(w, &apiError{code: errcode.StoreUnavailable, msg: "etcd did not send a snapshot: " + err.Error()})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="tokengate-%s.snapshot"`, time.Now().UTC().Format("20060102T150405Z")))
	w.WriteHeader(http.StatusOK)
	start := time.Now()
	written, err := w.Write(first[:n])
	total := int64(written)
	if err == nil {
		var more int64
		more, err = io.Copy(w, rc)
		total += more
	}
	if err != nil {
		a.backend.logger.Error("store snapshot cut short", zap.Int64("bytes", total), zap.Error(err))
		return
	}
	a.backend.logger.Info("store snapshot sent", zap.Int64("bytes", total), zap.Duration("took", time.Since(start)))
}
