package store

import (
	"testing"
	"time"
)

// TestPruneAudit: the events older than the moment go, in every
// organization, newer ones stay; a writer that no longer leads deletes
// nothing.
func TestPruneAudit(t *testing.T) {
	s, srv := newStore(t)
	ctx := ctxT(t)
	for _, org := range []string{"acme", "globex"} {
		if _, err := s.CreateOrg(ctx, Org{ID: org, Name: org}, operator); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := s.CreateAccount(ctx, Account{Org: org, Name: "old"}, operator); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(2 * time.Millisecond) // two moments apart, not a synchronisation
	mid := time.Now()
	time.Sleep(2 * time.Millisecond)
	if _, err := s.CreateAccount(ctx, Account{Org: "acme", Name: "new"}, operator); err != nil {
		t.Fatal(err)
	}
	put, err := srv.Client().Put(ctx, s.WebhookLeaderPrefix()+"me", "x")
	if err != nil {
		t.Fatal(err)
	}
	lead := Leadership{Key: s.WebhookLeaderPrefix() + "me", Rev: put.Header.Revision}

	if _, err := s.PruneAudit(ctx, Leadership{Key: lead.Key, Rev: lead.Rev + 1}, mid); err != ErrNotLeader {
		t.Fatalf("pruning without the leadership: %v", err)
	}
	n, err := s.PruneAudit(ctx, lead, mid)
	if err != nil || n != 8 { // per org: org.create and 3 account.create
		t.Fatalf("pruned %d: %v", n, err)
	}
	for org, want := range map[string]int{"acme": 1, "globex": 0} {
		events, _, err := s.ListEvents(ctx, org, "", 100, "")
		if err != nil || len(events) != want {
			t.Fatalf("%s: %d events left (%v), want %d", org, len(events), err, want)
		}
	}
}
