package measure

import (
	"strings"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/module/etcdconn"
)

// store is the etcd that the instances of one measurement share.
type store struct {
	endpoints   []string // its client URLs
	description string   // what it is, for the report

	embedded *etcdconn.Embedded // nil: an etcd the tool was given
}

// openStore uses the etcd at endpoints or, when there are none, starts an
// embedded one in this process with its data in dir. The caller closes it
// after stopping the instances.
//
// The instances are other processes whose Caddyfile reaches etcd by http
// URL, so the embedded etcd listens on a loopback port, open to every local
// user, rather than on a gateway's private socket: it holds only the
// measurement's own made-up data, for the length of the measurement.
func openStore(endpoints []string, dir string) (*store, error) {
	if len(endpoints) > 0 {
		return &store{endpoints: endpoints, description: "etcd at " + strings.Join(endpoints, ",")}, nil
	}
	emb, err := etcdconn.StartEmbedded(etcdconn.EmbeddedConfig{Dir: dir, ClientURL: "http://127.0.0.1:0"}, zap.NewNop())
	if err != nil {
		return nil, err
	}
	return &store{endpoints: []string{emb.ClientURL()}, description: "embedded etcd (in the measuring process)",
		embedded: emb}, nil
}

// close stops the embedded etcd, if there is one.
func (s *store) close() {
	if s.embedded != nil {
		s.embedded.Close()
	}
}
