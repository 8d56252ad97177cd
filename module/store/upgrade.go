package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Moving a store from schema 2 to 3 changes what every writer must do:
// a gateway of version 2 writes users and tokens without the copies under
// the tokens' digests, so copies are trusted only once none can write.
// Gateways of version 3 write the copies on a store at 2 as well, and read
// records and users there. Each gateway says which schema it writes in its
// rate-limit registration (Announcement). The operator moves the store on
// (Upgrade, `tokengate store upgrade`) once every gateway of version 2 is
// stopped for good — paused ones and ones cut off from etcd included: the
// registrations are checked, but a gateway whose lease lapsed is not
// among them. Upgrade rewrites every copy (those a version-2 gateway left
// stale or missing), then writes the version, guarded by no gateway having
// registered since it looked.
//
// Should a gateway of version 2 write all the same, three things answer
// it. Every running gateway's watch finds the users and token records it
// writes without their copies (StaleCopies) and rewrites the copies at
// once (Recopy). Every gateway on a store at 3 looks at the registrations
// every few seconds (GuardCopies): one of version 2 registered moves the
// store back to 2 — every gateway stops trusting copies and forgets the
// verdicts read from them, which depend on the schema key — until the
// operator upgrades again. And what it wrote while no gateway of version 3
// watched is found by the sweep each gateway makes before it trusts
// copies (SweepCopies).

// Announcement is what a gateway of this build says in its rate-limit
// registration: the schema version it writes.
const Announcement = "schema=3"

// announcedSchema is the version a registration's value announces: 0 for
// a gateway that announces none (version 2 or older).
func announcedSchema(v []byte) int {
	n, err := strconv.Atoi(strings.TrimPrefix(string(v), "schema="))
	if err != nil || !strings.HasPrefix(string(v), "schema=") {
		return 0
	}
	return n
}

// UpgradeResult says what Upgrade found and did.
type UpgradeResult struct {
	// Version is the store's schema version afterwards.
	Version int
	// Upgraded: this call moved the store to SchemaVersion.
	Upgraded bool
	// Downgraded: GuardCopies moved the store back to startVersion, since a
	// registered gateway does not write its version (Holdouts).
	Downgraded bool
	// Holdouts are the registered gateways that write an older schema.
	Holdouts []string
	// Copies is how many users' copies were rewritten.
	Copies int
}

func (s *Store) gatewaysPrefix() string { return s.RateLimitPrefix() + "gateways/" }

// readUpgrade reads the schema key and the registrations at one revision.
func (s *Store) readUpgrade(ctx context.Context) (res UpgradeResult, schemaRev, rev int64, err error) {
	rctx, cancel := withTimeout(ctx)
	defer cancel()
	resp, err := s.commit(opRead, s.client.Txn(rctx).Then(
		clientv3.OpGet(s.schemaKey()),
		clientv3.OpGet(s.gatewaysPrefix(), clientv3.WithPrefix())))
	if err != nil {
		return res, 0, 0, unavailable(err)
	}
	sc, schemaRev, err := s.schemaOf(resp.Responses[0].GetResponseRange().Kvs)
	if err != nil {
		return res, 0, 0, err
	}
	res.Version = sc.Version
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		if announcedSchema(kv.Value) < SchemaVersion {
			res.Holdouts = append(res.Holdouts, strings.TrimPrefix(string(kv.Key), s.gatewaysPrefix()))
		}
	}
	return res, schemaRev, resp.Header.Revision, nil
}

// Upgrade moves a store at version 2 to SchemaVersion: the operator's
// statement that no gateway of version 2 will write again. It refuses
// (ConflictError, naming them) while such a gateway is registered, and
// when one registers while it rewrites the copies; a store already at
// SchemaVersion is left as it is.
func (s *Store) Upgrade(ctx context.Context) (UpgradeResult, error) {
	res, schemaRev, _, err := s.readUpgrade(ctx)
	switch {
	case err != nil:
		return res, err
	case res.Version == SchemaVersion:
		return res, nil
	case res.Version != startVersion:
		return res, &ConflictError{fmt.Sprintf("the store is at schema version %d; a gateway of this version brings it to %d as it starts", res.Version, startVersion)}
	case len(res.Holdouts) > 0:
		return res, &ConflictError{"gateways of an older version are registered: " + strings.Join(res.Holdouts, ", ") + "; stop them first"}
	}
	if res.Copies, err = s.recopyAll(ctx); err != nil {
		return res, err
	}
	// Gateways may have registered while the copies were rewritten: look
	// again, and write the version only if none has registered since.
	for range 5 {
		again, _, rev, err := s.readUpgrade(ctx)
		switch {
		case err != nil:
			return res, err
		case again.Version != startVersion:
			return res, &ConflictError{fmt.Sprintf("the store's schema moved to version %d meanwhile", again.Version)}
		case len(again.Holdouts) > 0:
			res.Holdouts = again.Holdouts
			return res, &ConflictError{"gateways of an older version registered meanwhile: " + strings.Join(again.Holdouts, ", ") + "; stop them, then upgrade again"}
		}
		ok, err := s.writeSchema(ctx, SchemaVersion, schemaRev, rev, "upgrade")
		if err != nil {
			return res, err
		}
		if ok {
			res.Version, res.Upgraded = SchemaVersion, true
			s.noteSchema(SchemaVersion)
			return res, nil
		}
	}
	return res, &ConflictError{"gateways keep registering: run the upgrade again"}
}

// GuardCopies moves a store at SchemaVersion back to startVersion when a
// gateway of an older version is registered: it would write users without
// their copies.
func (s *Store) GuardCopies(ctx context.Context) (UpgradeResult, error) {
	res, schemaRev, _, err := s.readUpgrade(ctx)
	if err != nil || res.Version != SchemaVersion || len(res.Holdouts) == 0 {
		return res, err
	}
	ok, err := s.writeSchema(ctx, startVersion, schemaRev, 0, "moved back: a gateway of an older version registered")
	if ok {
		res.Version, res.Downgraded = startVersion, true
		s.noteSchema(startVersion)
	}
	return res, err
}

// writeSchema writes version v to the schema key if it is still at
// revision schemaRev and, when since is not 0, no gateway has registered
// after revision since; the key says which tokengate wrote it, and why.
func (s *Store) writeSchema(ctx context.Context, v int, schemaRev, since int64, why string) (bool, error) {
	put, err := putJSON(s.schemaKey(), Schema{Version: v, WrittenBy: cmp.Or(s.Writer, "tokengate") + " (" + why + ")", At: s.Now().UTC()})
	if err != nil {
		return false, err
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.schemaKey()), "=", schemaRev)}
	if since != 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.gatewaysPrefix()), "<", since+1).WithPrefix())
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	txn, err := s.commit(opTxn, s.client.Txn(ctx).If(cmps...).Then(put))
	if err != nil {
		return false, unavailable(err)
	}
	return txn.Succeeded, nil
}

// recopyWorkers is how many users' copies Upgrade rewrites at once.
const recopyWorkers = 4

// recopyAll recopies every user (Recopy), and returns how many it
// rewrote.
func (s *Store) recopyAll(ctx context.Context) (int, error) {
	return s.recopyFrom(ctx, func(ctx context.Context, send func(org, id string) error) error {
		var rev int64
		return s.pages(ctx, s.usersRoot(), &rev, sweepPage, true, func(kv *mvccpb.KeyValue) error {
			if org, id, ok := s.userOfKey(string(kv.Key)); ok {
				return send(org, id)
			}
			return nil
		})
	})
}

// recopyFrom recopies the users feed names, recopyWorkers at a time, each
// in a transaction guarded as UpdateUser's, and returns how many it
// rewrote. The first failure ends it.
func (s *Store) recopyFrom(ctx context.Context, feed func(ctx context.Context, send func(org, id string) error) error) (int, error) {
	users := make(chan [2]string)
	var (
		mu    sync.Mutex
		n     int
		first error
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range recopyWorkers {
		wg.Go(func() {
			for u := range users {
				wrote, err := s.Recopy(ctx, u[0], u[1])
				if errors.Is(err, ErrNotFound) {
					err = nil // gone meanwhile
				}
				mu.Lock()
				switch {
				case err == nil && wrote:
					n++
				case err != nil && first == nil:
					first = err
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	err := feed(ctx, func(org, id string) error {
		select {
		case users <- [2]string{org, id}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(users)
	wg.Wait()
	if first != nil {
		return n, first
	}
	return n, err
}
