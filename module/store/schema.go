package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
//	1 — orgs, accounts (with the store-wide account id index, built
//	    where missing on first use), policies, users, tokens by digest,
//	    audit events, webhooks, deliveries; last-use times under
//	    /lastused/ and rate-limit budgets under /ratelimit/.
//	2 — last-use times under /_lastused/ and rate-limit budgets under
//	    /_ratelimit/, outside the range the identity cache watches
//	    (VerdictRange). The migration moves the last-use times; the
//	    budgets are leased and go with the gateways that wrote them.
//	3 — the key under a token's digest holds, beside where the token's
//	    record is, a copy of the record and of its user (tokenRef), kept
//	    current by every write of either: a cold lookup reads one key.
//	    A gateway of version 3 writes the copies on a store of version 2
//	    as well, but trusts them only once the store is at 3; the store
//	    moves to 3 when the operator says every older gateway is gone
//	    (Upgrade).
//
// A store written before the schema key existed is read as version 1: its
// layout is version 1's.

// SchemaVersion is the version this build reads and writes.
const SchemaVersion = 3

// startVersion is the newest version a gateway brings a store to by
// itself as it starts. Later versions change what every writer must do,
// so they wait until no gateway of an older version is live (Upgrade).
const startVersion = 2

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
	// MigratedFrom is the version the store had before this check
	// migrated it; 0 when it did not.
	MigratedFrom int
	// UpgradePending: the store is older than this build's version and
	// waits for Upgrade.
	UpgradePending bool
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
	migrated := 0
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
			if sc.Version < startVersion {
				if err := s.migrate(ctx, sc.Version, kvs[0].ModRevision, writtenBy); err != nil {
					return check, fmt.Errorf("migrating the store at %s from schema version %d: %w", s.prefix, sc.Version, err)
				}
				if migrated == 0 {
					migrated = sc.Version
				}
				continue // read what the migration (or another gateway) left
			}
			check.MigratedFrom = migrated
			check.UpgradePending = sc.Version < SchemaVersion
			s.noteSchema(sc.Version)
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
			s.noteSchema(SchemaVersion)
			return check, nil
		}
		// Another gateway wrote it first: read what it wrote.
	}
	return SchemaCheck{}, errors.New("the store's schema key keeps changing")
}

// migrationBatch bounds the keys one migration transaction moves (etcd
// allows 128 operations per transaction by default).
const migrationBatch = 50

// migrate brings the store from version from to from+1. Every transaction
// it makes is guarded by the schema key's revision as read (schemaRev):
// gateways migrating together each move what is left, and none acts on a
// store another has moved on. Each step can be run again.
func (s *Store) migrate(ctx context.Context, from int, schemaRev int64, writtenBy string) error {
	switch from {
	case 1:
		if err := s.moveKeys(ctx, schemaRev, s.legacyLastUsedPrefix(), s.lastUsedRoot()); err != nil {
			return err
		}
	default:
		return fmt.Errorf("no migration from schema version %d", from)
	}
	put, err := putJSON(s.schemaKey(), Schema{Version: from + 1, WrittenBy: writtenBy, At: s.Now().UTC()})
	if err != nil {
		return err
	}
	_, err = s.commit(opTxn, s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(s.schemaKey()), "=", schemaRev)).Then(put))
	return unavailable(err)
}

// moveKeys moves every key under from to the same name under to, a batch
// per transaction: a key already at to (written by a newer gateway) is
// kept; the old one goes either way. A batch whose keys changed meanwhile
// (an older gateway still writing) is read again.
func (s *Store) moveKeys(ctx context.Context, schemaRev int64, from, to string) error {
	for range maxAttempts {
		resp, err := s.get(ctx, opRead, from, clientv3.WithPrefix(), clientv3.WithLimit(migrationBatch))
		if err != nil {
			return unavailable(err)
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.schemaKey()), "=", schemaRev)}
		var ops []clientv3.Op
		for _, kv := range resp.Kvs {
			key := string(kv.Key)
			moved := to + strings.TrimPrefix(key, from)
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision))
			ops = append(ops,
				clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(moved), "=", 0)},
					[]clientv3.Op{clientv3.OpPut(moved, string(kv.Value))}, nil),
				clientv3.OpDelete(key))
		}
		txn, err := s.commit(opTxn, s.client.Txn(ctx).If(cmps...).Then(ops...))
		if err != nil {
			return unavailable(err)
		}
		if !txn.Succeeded {
			// Another gateway moved them, or the schema moved on: the
			// next read tells.
			check, err := s.get(ctx, opRead, s.schemaKey())
			if err != nil {
				return unavailable(err)
			}
			if len(check.Kvs) != 1 || check.Kvs[0].ModRevision != schemaRev {
				return nil // migrated by another; the caller reads it again
			}
		}
	}
	return errors.New("the keys to move keep changing")
}
