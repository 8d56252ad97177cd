package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The store knows its own layout: <prefix>/schema holds the version of
// the key layout and encodings it was written with. A gateway writes it
// when it first meets a store without one, refuses a store of a newer
// version (an older gateway would misread it, or write what a newer one
// cannot read), and brings an older one up to its own version, one
// migration at a time, each in transactions guarded by the version key.
//
// Versions:
//
//	1 — the layout of this release: orgs, accounts (with the store-wide
//	    account id index, built where missing on first use), policies,
//	    users, tokens by digest, audit events, webhooks, deliveries.
//
// A store written before the schema key existed is read as version 1: its
// layout is version 1's.

// SchemaVersion is the version this build reads and writes.
const SchemaVersion = 1

// ErrSchemaNewer says the store was written by a newer tokengate.
var ErrSchemaNewer = errors.New("the store's schema is newer than this tokengate")

// Schema is the value of the schema key.
type Schema struct {
	Version   int       `json:"version"`
	WrittenBy string    `json:"written_by,omitempty"`
	At        time.Time `json:"at"`
}

// SchemaCheck is what CheckSchema found.
type SchemaCheck struct {
	// Version is the store's schema version after the check.
	Version int
	// Created: the store had no schema key, and this check wrote it.
	Created bool
	// Orgs is how many organizations the store holds.
	Orgs int64
	// ClusterID is etcd's id of the cluster that answered: a restore or a
	// cluster built anew has another.
	ClusterID uint64
}

func (s *Store) schemaKey() string { return s.prefix + "/schema" }

// CheckSchema reads the store's schema version and the number of its
// organizations at one revision, writes the version when the store has
// none (guarded by its absence, so gateways starting together agree), and
// returns ErrSchemaNewer, naming both versions, for a store this build
// must not touch. writtenBy names this build in the key.
func (s *Store) CheckSchema(ctx context.Context, writtenBy string) (SchemaCheck, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	for range maxAttempts {
		resp, err := s.commit(opRead, s.client.Txn(ctx).Then(
			clientv3.OpGet(s.schemaKey()),
			clientv3.OpGet(s.prefix+"/orgs/", clientv3.WithPrefix(), clientv3.WithCountOnly()),
		))
		if err != nil {
			return SchemaCheck{}, unavailable(err)
		}
		check := SchemaCheck{ClusterID: resp.Header.ClusterId, Orgs: resp.Responses[1].GetResponseRange().Count}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 1 {
			var sc Schema
			if err := json.Unmarshal(kvs[0].Value, &sc); err != nil || sc.Version < 1 {
				return check, fmt.Errorf("the store's schema key %s holds %q, not a schema this tokengate wrote", s.schemaKey(), kvs[0].Value)
			}
			check.Version = sc.Version
			if sc.Version > SchemaVersion {
				return check, fmt.Errorf("%w: the store at %s is at schema version %d (written by %s), this tokengate reads version %d: run a tokengate at least as new as that one",
					ErrSchemaNewer, s.prefix, sc.Version, sc.WrittenBy, SchemaVersion)
			}
			// No migration exists yet: version 1 is the first.
			return check, nil
		}
		put, err := putJSON(s.schemaKey(), Schema{Version: SchemaVersion, WrittenBy: writtenBy, At: s.Now().UTC()})
		if err != nil {
			return check, err
		}
		txn, err := s.commit(opTxn, s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(s.schemaKey()), "=", 0)).Then(put))
		if err != nil {
			return check, unavailable(err)
		}
		if txn.Succeeded {
			check.Version, check.Created = SchemaVersion, true
			return check, nil
		}
		// Another gateway wrote it first: read what it wrote.
	}
	return SchemaCheck{}, errors.New("the store's schema key keeps changing")
}
