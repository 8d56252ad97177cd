package store

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/tokengate/tokengate/module/token"
)

// putDigests stores n token keys with random digests and returns the
// digests. The scan reads keys only, so the values do not matter.
func putDigests(t *testing.T, s *Store, n int) map[token.Hash]bool {
	t.Helper()
	out := map[token.Hash]bool{}
	for range n {
		secret, err := token.Generate(token.Programmatic)
		if err != nil {
			t.Fatal(err)
		}
		h := token.Sum(secret)
		if _, err := s.client.Put(ctxT(t), s.tokenKey(h), "{}"); err != nil {
			t.Fatal(err)
		}
		out[h] = true
	}
	return out
}

// smallPages makes scans read a few keys at a time, so that a handful of
// tokens spans several pages.
func smallPages(t *testing.T, n int64) {
	old := digestPage
	digestPage = n
	t.Cleanup(func() { digestPage = old })
}

// TestScanTokenDigests: every digest, once, in pages, at the revision of
// the first page: a token created and one deleted during the scan are seen
// as they were when it began; keys that are not digests are skipped.
func TestScanTokenDigests(t *testing.T) {
	s, _ := newStore(t)
	smallPages(t, 7)
	want := putDigests(t, s, 25)
	ctx := ctxT(t)
	// Ten more under the first hex digit 0: one part of several pages.
	for i := range 10 {
		h := token.Sum(fmt.Sprint("crafted ", i))
		h[0] = byte(i)
		if _, err := s.client.Put(ctx, s.tokenKey(h), "{}"); err != nil {
			t.Fatal(err)
		}
		want[h] = true
	}
	for _, k := range []string{"/tg/tokens/not-a-digest", "/tg/tokensx", "/tg/tokenz/00"} {
		if _, err := s.client.Put(ctx, k, "{}"); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := s.client.Get(ctx, "/tg/")
	if err != nil {
		t.Fatal(err)
	}
	atStart := resp.Header.Revision
	victim := slices.MaxFunc(slices.Collect(maps.Keys(want)), func(a, b token.Hash) int { return slices.Compare(a[:], b[:]) })

	got := map[token.Hash]int{}
	var added map[token.Hash]bool
	before := s.Stats().RangeRPCs
	rev, err := s.ScanTokenDigests(ctx, func(h token.Hash) {
		if len(got) == 0 {
			// The first page is read: change what later pages would see.
			added = putDigests(t, s, 1)
			if _, err := s.client.Delete(ctx, s.tokenKey(victim)); err != nil {
				t.Fatal(err)
			}
		}
		got[h]++
	})
	if err != nil {
		t.Fatal(err)
	}
	if rev != atStart {
		t.Errorf("scan at revision %d, want %d (the revision when it began)", rev, atStart)
	}
	if len(got) != len(want) {
		t.Errorf("%d digests, want %d", len(got), len(want))
	}
	for h, n := range got {
		if !want[h] || n != 1 {
			t.Errorf("digest %x seen %d times, stored before the scan: %v", h[:4], n, want[h])
		}
	}
	for h := range added {
		if got[h] != 0 {
			t.Error("a token created during the scan was seen")
		}
	}
	// 36 keys under the prefix, 7 a page: a count, then 16 parts by the
	// first hex digit, each of as many pages as it needs, at least one.
	perPart := map[byte]int{}
	for h := range want {
		perPart[hex.EncodeToString(h[:1])[0]]++
	}
	reads := int64(1)
	for _, d := range []byte("0123456789abcdef") {
		reads += int64(max(1, (perPart[d]+6)/7))
	}
	if got := s.Stats().RangeRPCs - before; got != reads {
		t.Errorf("%d reads, want %d", got, reads)
	}
}

func TestScanTokenDigestsEmpty(t *testing.T) {
	s, _ := newStore(t)
	calls := 0
	rev, err := s.ScanTokenDigests(ctxT(t), func(token.Hash) { calls++ })
	if err != nil || rev == 0 || calls != 0 {
		t.Fatalf("empty store: revision %d, %d digests, %v", rev, calls, err)
	}
}

// TestScanTokenDigestsCompacted: history compacted past the scan's revision
// between pages fails the scan, as a compaction, not as an outage.
func TestScanTokenDigestsCompacted(t *testing.T) {
	s, srv := newStore(t)
	smallPages(t, 3)
	putDigests(t, s, 10)
	ctx := ctxT(t)
	compacted := false
	_, err := s.ScanTokenDigests(ctx, func(token.Hash) {
		if !compacted {
			compacted = true
			putDigests(t, s, 1)
			srv.Compact(ctx)
		}
	})
	if !errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("scan across a compaction: %v", err)
	}
}

func TestTokenDigestOfKey(t *testing.T) {
	s := New(nil, "/tg")
	secret, err := token.Generate(token.Programmatic)
	if err != nil {
		t.Fatal(err)
	}
	h := token.Sum(secret)
	key := s.tokenKey(h)
	for _, tt := range []struct {
		key  string
		want bool
	}{
		{key, true},
		{"/other" + key[3:], false},
		{key[:len(key)-1], false},
		{key + "0", false},
		{key[:len(key)-1] + "g", false},
		{key[:len(key)-1] + "A", false}, // tokenKey writes lowercase
		{"/tg/tokens/", false},
		{"/tg/usertokens/acme/u-000000000000/tok-000000000000", false},
	} {
		got, ok := s.TokenDigestOfKey([]byte(tt.key))
		if ok != tt.want || ok && got != h {
			t.Errorf("TokenDigestOfKey(%q) = %x, %v", tt.key, got[:4], ok)
		}
	}
}
