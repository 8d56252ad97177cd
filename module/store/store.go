package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Store reads and writes tokengate's data under a key prefix.
type Store struct {
	client *clientv3.Client
	prefix string

	// Now is the clock; tests may replace it before first use.
	Now func() time.Time
	// Writer names the tokengate writing ("tokengate v1.2.3"), for the
	// schema key's written_by; set before first use. Default: "tokengate".
	Writer string

	accountIDs accountIndex

	rangeRPCs   atomic.Int64
	lookups     atomic.Int64
	copyLookups atomic.Int64
	usageTxns   atomic.Int64
	lastCommit  atomic.Int64
	// version is the store's schema version as last seen (0: unknown).
	version     atomic.Int32
	schemaKnown atomic.Bool
	// sweeps counts the times the schema was read anew (ReadSchema);
	// swept is the count as of the start of the last sweep that ended
	// (SweepCopies). Copies are trusted only when the two agree.
	sweeps, swept atomic.Int64
	// copyGate, when set (SetCopyGate), must also allow a lookup to
	// answer from a copy.
	copyGate atomic.Pointer[func(org, user string) bool]
}

// New returns a store keeping its keys under prefix (e.g. "/tokengate").
func New(client *clientv3.Client, prefix string) *Store {
	return &Store{client: client, prefix: prefix, Now: time.Now}
}

// Client is the etcd client the store uses.
func (s *Store) Client() *clientv3.Client { return s.client }

// Prefix is the key prefix, without a trailing slash.
func (s *Store) Prefix() string { return s.prefix }

// Stats counts what the store asked of etcd.
type Stats struct {
	// RangeRPCs counts read requests sent to etcd (each Get, or each
	// transaction made only of reads).
	RangeRPCs int64
	// Lookups counts token lookups (LookupToken calls), each one read of
	// the data behind a token at a single revision.
	Lookups int64
	// CopyLookups counts the lookups of found tokens answered from the
	// copy under the digest, in one round trip.
	CopyLookups int64
	// UsageWrites counts the etcd requests that recorded token use.
	UsageWrites int64
}

// Stats returns the counters since the store was made.
func (s *Store) Stats() Stats {
	return Stats{RangeRPCs: s.rangeRPCs.Load(), Lookups: s.lookups.Load(), CopyLookups: s.copyLookups.Load(), UsageWrites: s.usageTxns.Load()}
}

// LastCommit is the highest etcd revision a change made through this store
// committed at. Waiting for a cache to reach it makes the cache reflect
// every change made here so far.
func (s *Store) LastCommit() int64 { return s.lastCommit.Load() }

// ForgetCommits forgets the revisions committed so far: for a store whose
// revisions went back (restored from a snapshot without a bump), where
// they will not be reached again soon.
func (s *Store) ForgetCommits() { s.lastCommit.Store(0) }

func (s *Store) noteCommit(rev int64) {
	for {
		cur := s.lastCommit.Load()
		if rev <= cur || s.lastCommit.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// Errors. Test with errors.Is; the concrete errors carry a message meant
// for the caller.
var (
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("conflict")
	ErrInvalid     = errors.New("invalid")
	ErrUnavailable = errors.New("store unavailable")
)

// NotFoundError says which thing does not exist.
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string        { return e.What + " not found" }
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ConflictError says why a change cannot be made in the current state.
type ConflictError struct{ Message string }

func (e *ConflictError) Error() string        { return e.Message }
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// FieldError says which field of a request is wrong.
type FieldError struct{ Field, Message string }

func (e *FieldError) Error() string        { return e.Field + ": " + e.Message }
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// UnavailableError wraps what etcd said when it could not answer.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string        { return "store unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error        { return e.Err }
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var u *UnavailableError
	if errors.As(err, &u) {
		return err
	}
	return &UnavailableError{Err: err}
}

// defaultTimeout bounds a store call whose context has no deadline, so
// that an unreachable etcd turns into an error instead of a hang. A
// variable for tests.
var defaultTimeout = 5 * time.Second

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultTimeout)
}

// attemptTimeout bounds one attempt of an optimistic transaction: its
// reads and its commit, each a round trip of a few milliseconds to a
// healthy cluster.
const attemptTimeout = 1500 * time.Millisecond

// maxAttempts bounds the retries of an optimistic transaction. Each failed
// attempt means another writer committed in between, so the bound is only
// reached under extreme contention on one object.
const maxAttempts = 200

// snapshot reads keys at one revision and records a guard for each, so that
// the transaction built from what it read commits only if none of it
// changed in between.
type snapshot struct {
	s    *Store
	ctx  context.Context
	rev  int64
	cmps []clientv3.Cmp
	// guarded holds the keys (and, with a trailing "*", the prefixes)
	// already guarded: a key read twice needs one guard, and etcd counts
	// guards against --max-txn-ops.
	guarded map[string]bool
}

// guard adds c, the guard of key, unless key is guarded already.
func (r *snapshot) guard(key string, c clientv3.Cmp) {
	if r.guarded[key] {
		return
	}
	if r.guarded == nil {
		r.guarded = make(map[string]bool)
	}
	r.guarded[key] = true
	r.cmps = append(r.cmps, c)
}

func (r *snapshot) readOpts(opts ...clientv3.OpOption) []clientv3.OpOption {
	if r.rev != 0 {
		opts = append(opts, clientv3.WithRev(r.rev))
	}
	return opts
}

// get reads one key; it returns nil when the key does not exist.
func (r *snapshot) get(key string) (*mvccpb.KeyValue, error) {
	resp, err := r.s.get(r.ctx, opTxn, key, r.readOpts()...)
	if err != nil {
		return nil, err
	}
	if r.rev == 0 {
		r.rev = resp.Header.Revision
	}
	if len(resp.Kvs) == 0 {
		r.guard(key, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
		return nil, nil
	}
	kv := resp.Kvs[0]
	r.guard(key, clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision))
	return kv, nil
}

// getAll reads keys in one request and guards each as get does; absent
// keys come back as nil.
func (r *snapshot) getAll(keys []string) ([]*mvccpb.KeyValue, error) {
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		ops[i] = clientv3.OpGet(k, r.readOpts()...)
	}
	r.s.rangeRPCs.Add(1)
	resp, err := r.s.commit(opTxn, r.s.client.Txn(r.ctx).Then(ops...))
	if err != nil {
		return nil, err
	}
	if r.rev == 0 {
		r.rev = resp.Header.Revision
	}
	out := make([]*mvccpb.KeyValue, len(keys))
	for i, rr := range resp.Responses {
		if kvs := rr.GetResponseRange().GetKvs(); len(kvs) > 0 {
			out[i] = kvs[0]
			r.guard(keys[i], clientv3.Compare(clientv3.ModRevision(keys[i]), "=", kvs[0].ModRevision))
		} else {
			r.guard(keys[i], clientv3.Compare(clientv3.CreateRevision(keys[i]), "=", 0))
		}
	}
	return out, nil
}

// getJSON reads one key into v and reports whether it existed.
func (r *snapshot) getJSON(key string, v any) (bool, error) {
	kv, err := r.get(key)
	if err != nil || kv == nil {
		return false, err
	}
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return false, fmt.Errorf("decoding %s: %v", key, err)
	}
	return true, nil
}

// list reads every key under prefix and guards against any of them being
// created or changed (deletions of keys in the range are not guarded).
func (r *snapshot) list(prefix string) ([]*mvccpb.KeyValue, error) {
	resp, err := r.s.get(r.ctx, opTxn, prefix, r.readOpts(clientv3.WithPrefix())...)
	if err != nil {
		return nil, err
	}
	if r.rev == 0 {
		r.rev = resp.Header.Revision
	}
	r.guard(prefix+"*", clientv3.Compare(clientv3.ModRevision(prefix), "<", r.rev+1).WithPrefix())
	return resp.Kvs, nil
}

// update runs an optimistic transaction: build reads through a snapshot and
// returns the writes; they commit only if nothing read has changed, else
// build runs again on fresh data. An error from build ends the attempt.
func (s *Store) update(ctx context.Context, build func(r *snapshot) ([]clientv3.Op, error)) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	for attempt := 0; ; attempt++ {
		// Each attempt's reads and commit have a deadline of their own,
		// well below the whole call's: in the first moments of an
		// outage, before anything knows etcd is gone, a write fails
		// within attemptTimeout rather than waiting out the call.
		actx, acancel := context.WithTimeout(ctx, attemptTimeout)
		r := &snapshot{s: s, ctx: actx}
		ops, err := build(r)
		if err != nil {
			acancel()
			return storeError(err)
		}
		if len(ops) == 0 {
			acancel()
			return nil
		}
		resp, err := s.commit(opTxn, s.client.Txn(actx).If(r.cmps...).Then(ops...))
		acancel()
		if err != nil {
			return storeError(err)
		}
		if resp.Succeeded {
			s.noteCommit(resp.Header.Revision)
			return nil
		}
		if attempt+1 >= maxAttempts {
			return &ConflictError{Message: "too many concurrent changes; try again"}
		}
		// Back off with jitter so that writers racing on one object spread
		// out instead of colliding again in lockstep.
		wait := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 5)))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return unavailable(ctx.Err())
		}
	}
}

// callerError carries an error of the caller's own function run inside a
// transaction (a check, a change) out of update as it was: it is the
// caller's answer, not something etcd said.
type callerError struct{ err error }

func (e callerError) Error() string { return e.err.Error() }
func (e callerError) Unwrap() error { return e.err }

// storeError passes the store's own errors and the caller's through and
// turns everything that came from etcd into ErrUnavailable, except requests
// etcd refused as too large, which no retry will fix.
func storeError(err error) error {
	var ce callerError
	switch {
	case errors.As(err, &ce):
		return ce.err
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrInvalid), errors.Is(err, ErrUnavailable):
		return err
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return &ConflictError{Message: "change too large for one etcd transaction (raise etcd's --max-txn-ops)"}
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return &ConflictError{Message: "change too large for one etcd request"}
	}
	return unavailable(err)
}

// etcdOp is one kind of etcd request, as RequestHook hears it.
type etcdOp string

// The kinds of etcd request the store sends.
const (
	opLookup etcdOp = "lookup" // reading a token for a verification
	opRead   etcdOp = "read"   // admin reads
	opTxn    etcdOp = "txn"    // admin changes
	opUsage  etcdOp = "usage"  // recording last use and request counts
	opScan   etcdOp = "scan"   // reading every token digest, for the filter of issued tokens
)

// RequestHook hears of every etcd request the store sends: its kind
// ("lookup", "read", "txn", "usage" or "scan"), how long it took, and
// whether it failed. The gateway's metrics set it (module/tokengate); nil:
// nobody listens.
type RequestHook func(op string, took time.Duration, failed bool)

var requestHook atomic.Pointer[RequestHook]

// SetRequestHook makes f hear of every etcd request of every store.
func SetRequestHook(f RequestHook) { requestHook.Store(&f) }

func (o etcdOp) done(start time.Time, err error) {
	if f := requestHook.Load(); f != nil && *f != nil {
		(*f)(string(o), time.Since(start), err != nil)
	}
}

// get is every read the store sends to etcd: counted and timed.
func (s *Store) get(ctx context.Context, op etcdOp, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	s.rangeRPCs.Add(1)
	start := time.Now()
	resp, err := s.client.Get(ctx, key, opts...)
	op.done(start, err)
	return resp, err
}

// commit is every transaction the store sends to etcd: timed.
func (s *Store) commit(op etcdOp, txn clientv3.Txn) (*clientv3.TxnResponse, error) {
	start := time.Now()
	resp, err := txn.Commit()
	op.done(start, err)
	return resp, err
}

// putJSON is an etcd Put of v encoded as JSON.
func putJSON(key string, v any) (clientv3.Op, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return clientv3.Op{}, err
	}
	return clientv3.OpPut(key, string(b)), nil
}

// decodeAll decodes the values of kvs into a slice of T, skipping none: a
// value that does not decode is an error, never silently dropped.
func decodeAll[T any](kvs []*mvccpb.KeyValue) ([]T, error) {
	out := make([]T, 0, len(kvs))
	for _, kv := range kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("decoding %s: %v", kv.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}
