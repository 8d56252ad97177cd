package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/module/token"
)

// Directory is an in-memory copy of every account and policy of the store,
// which a gateway's watch keeps current: a lookup then reads from etcd only
// the token and its user, and takes the user's accounts and policies from
// here (LookupTokenIn). Accounts and policies are few beside tokens and
// users, and the watch carries their changes anyway.
//
// A directory is ready once loaded at a revision; until then, and after a
// change it could not apply, lookups read everything from etcd.
type Directory struct {
	s *Store

	mu       sync.RWMutex
	ready    bool
	loading  bool                // a Reload is under way
	pending  []*clientv3.Event   // changes delivered while loading
	gen      uint64              // Load and Reset: a Reload begun before is void
	accounts map[string]struct{} // by key
	policies map[string]*Policy  // by key
}

// NewDirectory returns an empty directory of the store; Load fills it.
func (s *Store) NewDirectory() *Directory { return &Directory{s: s} }

// directoryPage is how many keys one read of a load takes.
var directoryPage int64 = 1000

// Load reads every account and policy at revision rev, in pages, and makes
// the directory ready: the watch applies every change after rev.
func (d *Directory) Load(ctx context.Context, rev int64) error {
	accounts, policies, err := d.read(ctx, &rev)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.accounts, d.policies, d.ready = accounts, policies, err == nil
	d.gen++
	return err
}

// Reload loads a directory that is not ready while the watch runs on: the
// changes it delivers meanwhile (Apply) are kept, and those after the
// revision read are applied on top of it. It does nothing when the
// directory is ready or a reload is under way.
func (d *Directory) Reload(ctx context.Context) error {
	d.mu.Lock()
	if d.ready || d.loading {
		d.mu.Unlock()
		return nil
	}
	d.loading, d.pending = true, nil
	gen := d.gen
	d.mu.Unlock()
	// Read at the revision of the first page, one after loading began: a
	// change after it reaches Apply after loading began, so it is kept.
	var rev int64
	accounts, policies, err := d.read(ctx, &rev)
	d.mu.Lock()
	defer d.mu.Unlock()
	pending := d.pending
	d.loading, d.pending = false, nil
	if err != nil || d.gen != gen {
		return err // failed, or the watch started over meanwhile
	}
	d.accounts, d.policies, d.ready = accounts, policies, true
	for _, ev := range pending {
		if ev.Kv.ModRevision > rev {
			d.applyLocked(ev)
		}
	}
	return nil
}

// read reads every account and policy at revision *rev (0: the latest,
// which it sets).
func (d *Directory) read(ctx context.Context, rev *int64) (map[string]struct{}, map[string]*Policy, error) {
	accounts := make(map[string]struct{})
	policies := make(map[string]*Policy)
	err := d.s.pages(ctx, d.s.prefix+"/accounts/", rev, directoryPage, true, func(kv *mvccpb.KeyValue) error {
		accounts[string(kv.Key)] = struct{}{}
		return nil
	})
	if err == nil {
		err = d.s.pages(ctx, d.s.prefix+"/policies/", rev, directoryPage, false, func(kv *mvccpb.KeyValue) error {
			var p Policy
			if err := json.Unmarshal(kv.Value, &p); err != nil {
				return err
			}
			policies[string(kv.Key)] = &p
			return nil
		})
	}
	return accounts, policies, err
}

// afterPage, when set (tests), runs after each page pages reads.
var afterPage func()

// pages calls fn for every key under prefix at revision *rev, page keys to
// a request; when *rev is 0, at the first page's revision, which it sets.
func (s *Store) pages(ctx context.Context, prefix string, rev *int64, page int64, keysOnly bool, fn func(*mvccpb.KeyValue) error) error {
	c := s.cursor(ctx, prefix, *rev, page, keysOnly)
	for {
		kv, err := c.next()
		*rev = c.rev
		if err != nil || kv == nil {
			return err
		}
		if err := fn(kv); err != nil {
			return err
		}
	}
}

// Reset makes the directory not ready: the watch lost its history, and
// lookups read everything until it is loaded again.
func (d *Directory) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ready, d.accounts, d.policies = false, nil, nil
	d.gen++
}

// Apply applies one change the watch delivered; changes to other keys are
// ignored. A policy it cannot decode makes the directory not ready.
func (d *Directory) Apply(ev *clientv3.Event) {
	key := string(ev.Kv.Key)
	isAccount := strings.HasPrefix(key, d.s.prefix+"/accounts/")
	isPolicy := strings.HasPrefix(key, d.s.prefix+"/policies/")
	if !isAccount && !isPolicy {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.loading {
		d.pending = append(d.pending, ev)
	}
	if d.ready {
		d.applyLocked(ev)
	}
}

// applyLocked applies an account's or a policy's change to a ready
// directory; d.mu is held.
func (d *Directory) applyLocked(ev *clientv3.Event) {
	key := string(ev.Kv.Key)
	isAccount := strings.HasPrefix(key, d.s.prefix+"/accounts/")
	var p *Policy
	if !isAccount && ev.Type == mvccpb.PUT {
		p = new(Policy)
		if err := json.Unmarshal(ev.Kv.Value, p); err != nil {
			p = nil
		}
	}
	switch {
	case isAccount && ev.Type == mvccpb.PUT:
		d.accounts[key] = struct{}{}
	case isAccount:
		delete(d.accounts, key)
	case ev.Type == mvccpb.DELETE:
		delete(d.policies, key)
	case p == nil:
		d.ready, d.accounts, d.policies = false, nil, nil
	default:
		d.policies[key] = p
	}
}

// Ready reports whether the directory is loaded.
func (d *Directory) Ready() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.ready
}

// LookupTokenIn is LookupToken taking the user's accounts and policies from
// d when it is ready: two etcd round trips (the token's reference, then
// its record and its user at that revision) instead of three, unless the
// directory lacks one of them. Those it holds are as it holds them, which
// may be of another revision than the rest (Lookup.FromDirectory,
// DirectoryKeys): the caller judges its cache entry by the older of the
// two, so a change the directory had not applied yet is news for it.
func (s *Store) LookupTokenIn(ctx context.Context, h token.Hash, d *Directory) (*Lookup, error) {
	s.lookups.Add(1)
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	l, err := s.lookupUser(ctx, h)
	if err != nil || !l.Found {
		return l, err
	}
	return s.complete(ctx, l, d)
}

// complete adds a found user's policies and accounts to l: from d where it
// holds them, the rest read at l's revision.
func (s *Store) complete(ctx context.Context, l *Lookup, d *Directory) (*Lookup, error) {
	if d == nil {
		return s.lookupRest(ctx, l)
	}
	u := &l.User
	policyIDs, accounts := u.refs()
	// What the verdict needs, in the user's order: policies, then
	// accounts. The directory answers for those it holds; one it lacks may
	// be new (written after the revision the directory reached) or gone,
	// and is read at the lookup's revision: a third round trip, rare.
	keys := make([]string, 0, len(policyIDs)+len(accounts))
	for _, id := range policyIDs {
		keys = append(keys, s.policyKey(u.Org, id))
	}
	for _, a := range accounts {
		keys = append(keys, s.accountKey(u.Org, a))
	}
	policies := make([]*Policy, len(policyIDs))
	exists := make([]bool, len(accounts))
	var missing []int
	d.mu.RLock()
	if !d.ready {
		d.mu.RUnlock()
		return s.lookupRest(ctx, l) // not loaded: everything at the revision
	}
	for i, key := range keys {
		var held bool
		if i < len(policies) {
			policies[i] = d.policies[key]
			held = policies[i] != nil
		} else {
			_, held = d.accounts[key]
			exists[i-len(policies)] = held
		}
		if held {
			l.DirectoryKeys = append(l.DirectoryKeys, key)
		} else {
			missing = append(missing, i)
		}
	}
	d.mu.RUnlock()
	if len(missing) > 0 {
		read := make([]string, len(missing))
		for j, i := range missing {
			read[j] = keys[i]
		}
		l.Keys = append(l.Keys, read...)
		kvs, err := s.readAt(ctx, l.Revision, read...)
		if err != nil {
			return nil, err
		}
		for j, i := range missing {
			if kvs[j] == nil {
				continue
			}
			if i < len(policies) {
				p := new(Policy)
				if err := json.Unmarshal(kvs[j].Value, p); err != nil {
					return nil, fmt.Errorf("decoding %s: %v", read[j], err)
				}
				policies[i] = p
			} else {
				exists[i-len(policies)] = true
			}
		}
	}
	for _, p := range policies {
		if p != nil {
			l.Policies = append(l.Policies, *p)
		}
	}
	for i, a := range accounts {
		if exists[i] {
			l.Accounts = append(l.Accounts, a)
		}
	}
	l.FromDirectory = len(l.DirectoryKeys) > 0
	return l, nil
}
