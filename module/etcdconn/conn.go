package etcdconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Conn is an etcd client together with the prefix tokengate's keys live
// under and, in the embedded case, the server it talks to.
type Conn struct {
	Client *clientv3.Client
	Prefix string

	// Where the data is: "embedded etcd at <dir>" or the endpoints.
	Description string

	embedded *Embedded
}

// Open connects to the cluster described by cfg or, when cfg is nil, starts
// an embedded etcd keeping its data in embeddedDir (default: tokengate/etcd
// under Caddy's data directory) and connects to it.
func Open(cfg *Config, embeddedDir string, logger *zap.Logger) (*Conn, error) {
	repl := caddy.NewReplacer()
	if cfg == nil {
		dir, err := EmbeddedDir(embeddedDir)
		if err != nil {
			return nil, err
		}
		emb, err := StartEmbedded(EmbeddedConfig{Dir: dir}, logger.Named("embedded"))
		if err != nil {
			return nil, err
		}
		client, err := newClient(resolved{
			endpoints:   []string{emb.ClientURL()},
			dialTimeout: DefaultDialTimeout,
		}, logger)
		if err != nil {
			emb.Close()
			return nil, err
		}
		logger.Info("using embedded etcd", zap.String("dir", emb.Dir()), zap.String("client_url", emb.ClientURL()))
		return &Conn{
			Client:      client,
			Prefix:      DefaultPrefix,
			Description: "embedded etcd at " + emb.Dir() + " (" + emb.ClientURL() + ")",
			embedded:    emb,
		}, nil
	}
	r, err := cfg.resolve(repl)
	if err != nil {
		return nil, fmt.Errorf("etcd config: %v", err)
	}
	client, err := newClient(r, logger)
	if err != nil {
		return nil, err
	}
	logger.Info("using etcd cluster",
		zap.Strings("endpoints", r.endpoints),
		zap.String("prefix", r.prefix),
		zap.Bool("tls", r.usesTLS()),
		zap.Bool("auth", r.username != ""))
	return &Conn{
		Client:      client,
		Prefix:      r.prefix,
		Description: fmt.Sprintf("etcd at %s (dial timeout %s)", strings.Join(r.endpoints, ","), r.dialTimeout),
	}, nil
}

// Embedded returns the embedded server, or nil for an external cluster.
func (c *Conn) Embedded() *Embedded { return c.embedded }

// Close closes the client and stops the embedded server, if any.
func (c *Conn) Close() error {
	err := c.Client.Close()
	if c.embedded != nil {
		c.embedded.Close()
	}
	return err
}

func newClient(r resolved, logger *zap.Logger) (*clientv3.Client, error) {
	tlsCfg, err := r.tlsConfig()
	if err != nil {
		return nil, err
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   r.endpoints,
		DialTimeout: r.dialTimeout,
		// Keepalives detect a dead member quickly so the client fails over
		// to another one instead of waiting for TCP to give up.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		PermitWithoutStream:  true,
		// gRPC waits up to two minutes between attempts to reach a member
		// that was down a while; a member that is back should be used
		// again within seconds, for the watch above all.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: r.dialTimeout,
		})},
		TLS:      tlsCfg,
		Username: r.username,
		Password: r.password,
		// The client retries internally and logs every retry as a warning;
		// tokengate reports store trouble itself, so only errors get through.
		Logger: logger.Named("client").WithOptions(zap.IncreaseLevel(zapcore.ErrorLevel)),
	})
	if err != nil {
		where := strings.Join(r.endpoints, ",")
		if errors.Is(err, context.DeadlineExceeded) {
			// With a username the client signs in as it is made; a member
			// that refuses the TLS handshake looks like one that is down.
			return nil, fmt.Errorf("connecting to etcd at %s: no member answered within dial_timeout %s: check that etcd runs there, "+
				"that it trusts this client's certificate (tls_cert, tls_key) and that tls_ca names its CA", where, r.dialTimeout)
		}
		return nil, fmt.Errorf("connecting to etcd at %s: %v", where, err)
	}
	return client, nil
}
