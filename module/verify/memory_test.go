package verify

import (
	"runtime"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
)

// BenchmarkEntryMemory says where a cached identity's memory goes, for
// 100 000 entries of account-level viewers (the common case; one token a
// user): the cache's own bookkeeping per item (a ristretto cache holding
// one shared value under 100 000 keys), and the entry with its identity
// (held in a slice), each in bytes an entry of the live heap.
//
//	go test -run X -bench EntryMemory -benchtime 1x ./module/verify
func BenchmarkEntryMemory(b *testing.B) {
	const n = 100_000
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for b.Loop() {
		v := &Verifier{cfg: Config{now: time.Now}}
		v.changes.init()

		before := heap()
		cache, err := ristretto.NewCache(&ristretto.Config[uint64, *entry]{
			NumCounters: n * 10, MaxCost: n, BufferItems: 64, IgnoreInternalCost: true,
		})
		if err != nil {
			b.Fatal(err)
		}
		empty := heap()
		shared := &entry{}
		for i := range uint64(n) {
			cache.SetWithTTL(i*0x9e3779b97f4a7c15, shared, 1, time.Hour)
			cache.Wait()
		}
		full := heap()
		held := cache.MaxCost() - cache.RemainingCost()

		entries := make([]*entry, n)
		base := heap()
		now := time.Now()
		for i := range entries {
			secret, _ := token.Generate(token.Programmatic)
			l := &store.Lookup{Revision: 100, Found: true,
				Token: store.Token{ID: store.NewTokenID(), Org: "acme", Hint: token.Hint(secret), CreatedAt: now},
				User: store.User{ID: store.NewUserID(), Org: "acme", Type: store.TypeProgrammatic, Level: store.LevelAccount,
					Account: "act-00000001", Role: store.RoleViewer, Name: "ci-bot-0001"},
				Accounts:      []string{"act-00000001"},
				Keys:          []string{"/tg/tokens/x", "/tg/usertokens/acme/u/t", "/tg/users/acme/u"},
				FromDirectory: true, DirectoryKeys: []string{"/tg/accounts/acme/act-00000001"},
			}
			l.User.Name = l.User.Name[:len(l.User.Name)-1] + string(rune('0'+i%10)) // a name of its own
			entries[i] = v.entryFrom(token.Sum(secret), token.Programmatic, l, readMark{applied: 100})
		}
		withEntries := heap()
		b.ReportMetric(float64(empty-before)/n, "cache-fixed-B/entry")
		b.ReportMetric(float64(full-empty)/float64(held), "cache-item-B/entry")
		b.ReportMetric(float64(withEntries-base)/n, "entry+identity-B/entry")
		runtime.KeepAlive(entries)
		cache.Close()
	}
}
