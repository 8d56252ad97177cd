package store

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/module/token"
)

// At schema 3 the key under a token's digest holds a copy of the token's
// record and of its user, and a gateway of this build rewrites it in the
// same transaction as either. So a reference is current when it was
// written at or after its record and its user: a user or record written
// later was written by a gateway that keeps no copies (an older one, paused
// or cut off from etcd when the operator upgraded).
//
// Lookups trust the copies only while the store is at schema 3 and, since
// this store last started reading the schema (ReadSchema: a watch that
// starts over, having maybe missed writes), every stale reference has
// been rewritten (SweepCopies). Between the two the watch finds what older
// gateways write (StaleCopies), and Recopy repairs it.

// noteSchema records the store's schema version as read or written.
func (s *Store) noteSchema(v int) {
	s.version.Store(int32(v))
	s.schemaKnown.Store(true)
}

// ReadSchema reads the schema key at revision rev (0: the latest) to
// learn whether the copies are trusted: for a watch that starts over and
// may have missed its changes. Until it succeeds the copies are not
// trusted (SchemaKnown is false), nor until a sweep that began after it
// has ended (SweepCopies).
func (s *Store) ReadSchema(ctx context.Context, rev int64) error {
	s.version.Store(0)
	s.schemaKnown.Store(false)
	s.sweeps.Add(1)
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	resp, err := s.get(ctx, opRead, s.schemaKey(), clientv3.WithRev(rev))
	if err != nil {
		return unavailable(err)
	}
	sc, _, err := s.schemaOf(resp.Kvs)
	if err != nil {
		return err
	}
	s.noteSchema(sc.Version)
	return nil
}

// schemaOf decodes the schema key as a read returned it, with its
// revision; no key is the zero Schema (version 0) at revision 0.
func (s *Store) schemaOf(kvs []*mvccpb.KeyValue) (Schema, int64, error) {
	var sc Schema
	if len(kvs) != 1 {
		return sc, 0, nil
	}
	if err := json.Unmarshal(kvs[0].Value, &sc); err != nil {
		return sc, 0, fmt.Errorf("decoding %s: %v", s.schemaKey(), err)
	}
	return sc, kvs[0].ModRevision, nil
}

// SchemaKnown reports whether the store knows its schema version as of the
// watch's start (ReadSchema, CheckSchema).
func (s *Store) SchemaKnown() bool { return s.schemaKnown.Load() }

// AtSchema reports whether the store is at this build's schema version as
// last seen: copies are kept current, and GuardCopies has work to do.
func (s *Store) AtSchema() bool { return s.version.Load() == SchemaVersion }

// NoteChange takes a change the watch delivered: a change of the schema
// key tells whether the copies are trusted now.
func (s *Store) NoteChange(ev *clientv3.Event) {
	if string(ev.Kv.Key) != s.schemaKey() {
		return
	}
	var sc Schema
	if ev.Type == mvccpb.PUT && json.Unmarshal(ev.Kv.Value, &sc) == nil {
		s.noteSchema(sc.Version)
		return
	}
	s.noteSchema(0)
}

// CopiesTrusted reports whether lookups read the copies under tokens'
// digests: the store is at schema 3 as last seen, and swept since.
func (s *Store) CopiesTrusted() bool {
	return s.AtSchema() && s.swept.Load() == s.sweeps.Load()
}

// SetCopyGate makes lookups answer from the copy of a user's token only
// while gate says so of the user, beside CopiesTrusted: a verifier allows
// it while its watch is in sync and the user is not among those it saw
// written without copies and has not repaired yet.
func (s *Store) SetCopyGate(gate func(org, user string) bool) { s.copyGate.Store(&gate) }

// copiesUsable reports whether a lookup may answer from the copy of one of
// the user's tokens now.
func (s *Store) copiesUsable(org, user string) bool {
	if !s.CopiesTrusted() {
		return false
	}
	gate := s.copyGate.Load()
	return gate == nil || (*gate)(org, user)
}

// Resweep stops lookups trusting copies until a sweep that begins from now
// on has ended: for a watch that saw more users written without their
// copies than it can repair one by one.
func (s *Store) Resweep() { s.sweeps.Add(1) }

// SweepDue reports whether the store is at schema 3 and not swept since
// the schema was last read: lookups read records and users until it is.
func (s *Store) SweepDue() bool {
	return s.AtSchema() && s.swept.Load() != s.sweeps.Load()
}

// SweepCopies rewrites the copies of every user one of whose tokens'
// references is stale (StaleUsers), and from then on lets lookups trust
// the copies, unless the schema was read again (or Resweep called)
// meanwhile. It returns how many users it rewrote, and the revision it
// looked at: whatever was written without copies up to it is repaired.
// On a store not at schema 3 it does nothing.
func (s *Store) SweepCopies(ctx context.Context) (int, int64, error) {
	if !s.AtSchema() {
		return 0, 0, nil
	}
	began := s.sweeps.Load()
	stale, rev, err := s.StaleUsers(ctx)
	if err != nil {
		return 0, 0, err
	}
	n, err := s.recopyEach(ctx, stale)
	if err != nil {
		return n, 0, err
	}
	s.noteSwept(began)
	return n, rev, nil
}

// noteSwept records that a sweep begun when the schema had been read
// began times has ended; a sweep ending late never undoes a later one's.
func (s *Store) noteSwept(began int64) {
	for {
		done := s.swept.Load()
		if done >= began || s.swept.CompareAndSwap(done, began) {
			return
		}
	}
}

// sweepPage is how many keys one read of a sweep returns: large, as etcd
// 3.4 walks the rest of a range to count it for every page. A variable for
// tests.
var sweepPage int64 = 10000

// StaleUsers reads, at one revision, the revision every user, token record
// and token reference was last written at, and returns the users that have
// a token whose reference is older than the token's record or than the
// user, by organization and ID, and the revision it read at. Tokens without a reference are not
// anyone's: they verify nowhere.
//
// It holds 16 bytes per token: the references' revisions, by the first 8
// bytes of their digests (in the order etcd lists them). Users and records
// are both listed in the order of their organization and user ID, so they
// are read side by side, a page of each at a time.
func (s *Store) StaleUsers(ctx context.Context) ([][2]string, int64, error) {
	var rev int64
	var refs refRevisions
	err := s.pages(ctx, s.TokenDigestsPrefix(), &rev, sweepPage, true, func(kv *mvccpb.KeyValue) error {
		if h, ok := s.TokenDigestOfKey(kv.Key); ok {
			refs = append(refs, refRevision{binary.BigEndian.Uint64(h[:8]), kv.ModRevision})
		}
		return nil
	})
	if err != nil || len(refs) == 0 {
		return nil, rev, err
	}
	users := s.cursor(ctx, s.usersRoot(), rev, sweepPage, true)
	records := s.cursor(ctx, s.userTokensRoot(), rev, sweepPage, false)
	var (
		stale    [][2]string
		last     string // the last stale user's "<org>/<user>"
		user     string // the user cursor's "<org>/<user>", "" before it
		userRev  int64
		finished bool
	)
	for {
		kv, err := records.next()
		if err != nil {
			return nil, 0, err
		}
		if kv == nil {
			return stale, rev, nil
		}
		org, id, ok := s.userOfTokenKey(string(kv.Key))
		owner := org + "/" + id
		if !ok || owner == last {
			continue
		}
		// The user cursor moves up to the record's owner.
		for !finished && user < owner {
			ukv, err := users.next()
			if err != nil {
				return nil, 0, err
			}
			if ukv == nil {
				finished, userRev = true, 0
				break
			}
			if o, u, ok := s.userOfKey(string(ukv.Key)); ok {
				user, userRev = o+"/"+u, ukv.ModRevision
			}
		}
		var t struct {
			Hash string `json:"hash"`
		}
		if json.Unmarshal(kv.Value, &t) != nil {
			continue // a damaged record verifies nowhere
		}
		digest, err := hex.DecodeString(t.Hash)
		if err != nil || len(digest) != len(token.Hash{}) {
			continue
		}
		refRev, ok := refs.of(binary.BigEndian.Uint64(digest[:8]))
		switch {
		case !ok:
			continue // no reference: not anyone's token
		case refRev < kv.ModRevision, user == owner && refRev < userRev, refRev == ambiguous:
			last = owner
			stale = append(stale, [2]string{org, id})
		}
	}
}

// refRevision is the revision a token's reference was written at, by the
// first 8 bytes of its digest.
type refRevision struct {
	prefix uint64
	rev    int64
}

// refRevisions are in the order of their digests, as etcd lists the keys.
type refRevisions []refRevision

// ambiguous is the revision of references two digests share the first 8
// bytes of: their users are recopied, as if stale.
const ambiguous = -1

// of returns the revision of the reference whose digest begins with
// prefix.
func (r refRevisions) of(prefix uint64) (int64, bool) {
	i := sort.Search(len(r), func(i int) bool { return r[i].prefix >= prefix })
	if i == len(r) || r[i].prefix != prefix {
		return 0, false
	}
	if i+1 < len(r) && r[i+1].prefix == prefix {
		return ambiguous, true
	}
	return r[i].rev, true
}

// keyCursor reads the keys under a prefix in order, limit to a request,
// at one revision: the first page's when rev is 0. afterPage runs after
// each page is read through.
type keyCursor struct {
	s        *Store
	ctx      context.Context
	from     string
	end      string
	rev      int64
	limit    int64
	keysOnly bool
	page     []*mvccpb.KeyValue
	fetched  bool // a page was read and not yet followed by afterPage
	done     bool
}

func (s *Store) cursor(ctx context.Context, prefix string, rev, limit int64, keysOnly bool) *keyCursor {
	return &keyCursor{s: s, ctx: ctx, from: prefix, end: clientv3.GetPrefixRangeEnd(prefix), rev: rev, limit: limit, keysOnly: keysOnly}
}

// next returns the next key, nil after the last.
func (c *keyCursor) next() (*mvccpb.KeyValue, error) {
	for len(c.page) == 0 {
		if c.fetched {
			c.fetched = false
			if afterPage != nil {
				afterPage()
			}
		}
		if c.done {
			return nil, nil
		}
		opts := []clientv3.OpOption{clientv3.WithRange(c.end), clientv3.WithRev(c.rev), clientv3.WithLimit(c.limit)}
		if c.keysOnly {
			opts = append(opts, clientv3.WithKeysOnly())
		}
		resp, err := c.s.get(c.ctx, opRead, c.from, opts...)
		if err != nil {
			return nil, unavailable(err)
		}
		if c.rev == 0 {
			c.rev = resp.Header.Revision
		}
		c.page, c.fetched, c.done = resp.Kvs, true, !resp.More || len(resp.Kvs) == 0
		if len(resp.Kvs) > 0 {
			c.from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
	kv := c.page[0]
	c.page = c.page[1:]
	return kv, nil
}

// recopyEach recopies the users named, and returns how many it rewrote.
func (s *Store) recopyEach(ctx context.Context, users [][2]string) (int, error) {
	return s.recopyFrom(ctx, func(ctx context.Context, send func(org, id string) error) error {
		for _, u := range users {
			if err := send(u[0], u[1]); err != nil {
				return err
			}
		}
		return nil
	})
}

// WrittenAlone is a user, or one of its token records, written without
// the copies under the user's tokens' digests, at Revision.
type WrittenAlone struct {
	Org, User string
	Revision  int64
}

// StaleCopies returns, of the changes one watch response delivered, the
// users written without their copies: a user, or one of its token records,
// changed at a revision at which no copy of it was written. A gateway of
// this build writes the two together, so such a change comes from an
// older gateway, or is a user without tokens; Recopy tells them apart and
// repairs the first. Nothing is returned on a store not at schema 3:
// lookups read the records there.
func (s *Store) StaleCopies(events []*clientv3.Event) []WrittenAlone {
	if !s.AtSchema() {
		return nil
	}
	var written []WrittenAlone
	for _, ev := range events {
		if ev.Type != mvccpb.PUT {
			continue
		}
		if org, id, ok := s.userOfKey(string(ev.Kv.Key)); ok {
			written = append(written, WrittenAlone{org, id, ev.Kv.ModRevision})
		} else if org, id, ok := s.userOfTokenKey(string(ev.Kv.Key)); ok {
			written = append(written, WrittenAlone{org, id, ev.Kv.ModRevision})
		}
	}
	if len(written) == 0 {
		return nil // the common case: no user or token written
	}
	copied := make(map[WrittenAlone]bool)
	for _, ev := range events {
		if _, ok := s.TokenDigestOfKey(ev.Kv.Key); ok && ev.Type == mvccpb.PUT {
			if ref, err := decodeRef(ev.Kv.Value); err == nil && ref.Copy != nil {
				copied[WrittenAlone{ref.Org, ref.User, ev.Kv.ModRevision}] = true
			}
		}
	}
	// One per user, at the latest of its writes.
	var out []WrittenAlone
	at := make(map[[2]string]int)
	for _, w := range written {
		if copied[w] {
			continue
		}
		if i, ok := at[[2]string{w.Org, w.User}]; ok {
			out[i].Revision = max(out[i].Revision, w.Revision)
			continue
		}
		at[[2]string{w.Org, w.User}] = len(out)
		out = append(out, w)
	}
	return out
}

// Recopy rewrites the copies of a user's tokens from the user and the
// records as stored now, in one transaction guarded as UpdateUser's, when
// one of them is stale: a reference older than its record or the user, or
// one without a copy. It reports whether it wrote; a user gone costs one
// read.
func (s *Store) Recopy(ctx context.Context, org, id string) (bool, error) {
	if !ValidOrgID(org) || !ValidUserID(id) {
		return false, &NotFoundError{"user " + id}
	}
	wrote := false
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		wrote = false
		kv, err := r.get(s.userKey(org, id))
		if err != nil || kv == nil {
			return nil, err
		}
		var u User
		if err := json.Unmarshal(kv.Value, &u); err != nil {
			return nil, fmt.Errorf("decoding %s: %v", kv.Key, err)
		}
		records, err := r.list(s.userTokensPrefix(org, id))
		if err != nil {
			return nil, err
		}
		tokens, err := decodeAll[Token](records)
		if err != nil {
			return nil, err
		}
		keys := make([]string, len(tokens))
		for i := range tokens {
			keys[i] = s.tokenKeyHex(tokens[i].Hash)
		}
		refs, err := r.getAll(keys)
		if err != nil {
			return nil, err
		}
		var w writes
		for i := range tokens {
			if refs[i] == nil {
				continue // not anyone's token: it verifies nowhere
			}
			if current(refs[i], records[i], kv) {
				continue
			}
			s.rewriteToken(&w, &tokens[i], &u, false)
		}
		wrote = len(w.ops) > 0
		return w.ops, w.err
	})
	return wrote, err
}

// current reports whether a token's reference holds a copy written at or
// after the token's record and its user.
func current(ref, record, user *mvccpb.KeyValue) bool {
	if ref.ModRevision < record.ModRevision || ref.ModRevision < user.ModRevision {
		return false
	}
	r, err := decodeRef(ref.Value)
	return err == nil && r.Copy != nil
}
