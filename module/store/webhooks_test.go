package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tokengate/tokengate/module/token"
)

const testSecret = "whsec_dGVzdCBzZWNyZXQgb2YgMzIgYnl0ZXMgZm9yIHRoZSBob29r"

func TestWebhookValidation(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	tests := []struct {
		name  string
		hook  Webhook
		field string // "" when valid
	}{
		{"valid", Webhook{URL: "https://hooks.example.com/x", Events: []string{"*"}}, ""},
		{"some actions", Webhook{URL: "http://hooks.example.com", Events: []string{ActionTokenRevoke, ActionTokenExpiring}}, ""},
		{"no url", Webhook{Events: []string{"*"}}, "url"},
		{"ftp", Webhook{URL: "ftp://x.example/", Events: []string{"*"}}, "url"},
		{"credentials", Webhook{URL: "https://a:b@x.example/", Events: []string{"*"}}, "url"},
		{"long url", Webhook{URL: "https://x.example/" + strings.Repeat("a", MaxWebhookURLLen), Events: []string{"*"}}, "url"},
		{"no events", Webhook{URL: "https://x.example/"}, "events"},
		{"star and more", Webhook{URL: "https://x.example/", Events: []string{"*", ActionUserCreate}}, "events"},
		{"unknown action", Webhook{URL: "https://x.example/", Events: []string{"user.explode"}}, "events"},
		{"repeated action", Webhook{URL: "https://x.example/", Events: []string{ActionUserCreate, ActionUserCreate}}, "events"},
		{"long description", Webhook{URL: "https://x.example/", Events: []string{"*"}, Description: strings.Repeat("d", MaxDescriptionLen+1)}, "description"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.hook.Org, tt.hook.Secret = f.org, testSecret
			_, err := s.CreateWebhook(ctxT(t), tt.hook, operator)
			var fe *FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Fatal(err)
			case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
				t.Fatalf("got %v, want a refusal of %s", err, tt.field)
			}
		})
	}
}

func TestWebhookLifecycle(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	w, err := s.CreateWebhook(ctx, Webhook{Org: f.org, URL: "https://x.example/", Events: []string{"*"}, Secret: testSecret}, operator)
	if err != nil {
		t.Fatal(err)
	}
	if !ValidWebhookID(w.ID) {
		t.Fatalf("id %q", w.ID)
	}
	if _, err := s.CreateWebhook(ctx, Webhook{Org: "nope", URL: "https://x.example/", Events: []string{"*"}, Secret: testSecret}, operator); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a webhook of an unknown org: %v", err)
	}
	url, disabled := "https://y.example/hook", true
	got, err := s.UpdateWebhook(ctx, f.org, w.ID, WebhookChange{URL: &url, Disabled: &disabled, Events: []string{ActionUserDelete}}, operator)
	if err != nil || got.URL != url || !got.Disabled || got.Subscribes(ActionUserCreate) || !got.Subscribes(ActionUserDelete) || got.Secret != testSecret || got.UpdatedAt.IsZero() {
		t.Fatalf("updated: %+v %v", got, err)
	}
	bad := "gopher://x"
	if _, err := s.UpdateWebhook(ctx, f.org, w.ID, WebhookChange{URL: &bad}, operator); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a bad url: %v", err)
	}
	hooks, err := s.ListWebhooks(ctx, f.org)
	if err != nil || len(hooks) != 1 || hooks[0].URL != url {
		t.Fatalf("list: %+v %v", hooks, err)
	}
	events, _, err := s.ListEvents(ctx, f.org, "", 2, "")
	if err != nil || events[0].Action != ActionWebhookUpdate || events[1].Action != ActionWebhookCreate || events[0].Target != w.ID {
		t.Fatalf("audit: %+v %v", events, err)
	}
	if err := s.DeleteWebhook(ctx, f.org, w.ID, operator); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetWebhook(ctx, f.org, w.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.DeleteWebhook(ctx, f.org, w.ID, operator); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
}

// leadership makes an election-like key and returns it as a Leadership.
func leadership(t *testing.T, s *Store) Leadership {
	t.Helper()
	key := s.WebhookLeaderPrefix() + NewTokenID()
	resp, err := s.Client().Put(ctxT(t), key, "me")
	if err != nil {
		t.Fatal(err)
	}
	return Leadership{Key: key, Rev: resp.Header.Revision}
}

// TestRecordDelivery: the log keeps the newest MaxDeliveriesKept entries;
// the cursor moves with them; a lost leadership or a deleted webhook
// refuses the write.
func TestRecordDelivery(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	w, err := s.CreateWebhook(ctx, Webhook{Org: f.org, URL: "https://x.example/", Events: []string{"*"}, Secret: testSecret}, operator)
	if err != nil {
		t.Fatal(err)
	}
	hooks, _, err := s.AllWebhooks(ctx)
	if err != nil || len(hooks) != 1 || hooks[0].CreateRevision == 0 {
		t.Fatalf("all webhooks: %+v %v", hooks, err)
	}
	w = &hooks[0]
	if c, err := s.WebhookCursor(ctx, w); err != nil || c != w.CreateRevision-1 {
		t.Fatalf("a new webhook's cursor: %d %v", c, err)
	}
	lead := leadership(t, s)
	start := time.Now()
	for i := range MaxDeliveriesKept + 5 {
		d := &Delivery{EventID: fmt.Sprint("e", i), Type: ActionUserCreate, Attempt: 1, Status: DeliveryDelivered, Time: start.Add(time.Duration(i) * time.Millisecond)}
		if err := s.RecordDelivery(ctx, lead, w, d, int64(1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	ds, next, err := s.ListDeliveries(ctx, f.org, w.ID, 1000, "")
	if err != nil || next != "" || len(ds) != MaxDeliveriesKept || ds[0].EventID != fmt.Sprint("e", MaxDeliveriesKept+4) || ds[len(ds)-1].EventID != "e5" {
		t.Fatalf("%d deliveries, newest %+v, oldest %+v, %v", len(ds), ds[0], ds[len(ds)-1], err)
	}
	page, next, err := s.ListDeliveries(ctx, f.org, w.ID, 10, "")
	if err != nil || len(page) != 10 || next == "" {
		t.Fatalf("a page: %d %q %v", len(page), next, err)
	}
	if page2, _, err := s.ListDeliveries(ctx, f.org, w.ID, 10, next); err != nil || page2[0].EventID != ds[10].EventID {
		t.Fatalf("the next page: %+v %v", page2, err)
	}
	if c, err := s.WebhookCursor(ctx, w); err != nil || c != 1000+MaxDeliveriesKept+4 {
		t.Fatalf("cursor %d %v", c, err)
	}
	// Another leader now: the old one's writes are refused.
	if _, err := s.Client().Delete(ctx, lead.Key); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDelivery(ctx, lead, w, nil, 5000); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a deposed leader's write: %v", err)
	}
	lead = leadership(t, s)
	if err := s.DeleteWebhook(ctx, f.org, w.ID, operator); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDelivery(ctx, lead, w, nil, 5000); !errors.Is(err, ErrWebhookGone) {
		t.Fatalf("a deleted webhook's write: %v", err)
	}
	for _, p := range []string{s.deliveriesPrefix(f.org, w.ID), s.webhookCursorKey(f.org, w.ID)} {
		if resp, err := s.Client().Get(ctx, p, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Count != 0 {
			t.Fatalf("%s left behind: %d %v", p, resp.Count, err)
		}
	}
}

// TestWarnExpiring: once per token and window, with the wider windows;
// never for a changed expiry's old warnings; the warnings go with the
// token.
func TestWarnExpiring(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	u, _ := f.programmatic(t, nil)
	tokens, err := s.ListTokens(ctx, f.org, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	tok := tokens[0]
	if ok, err := s.WarnExpiring(ctx, leadership(t, s), &tok, "7d", nil); ok || err != nil {
		t.Fatalf("a token that never expires: %v %v", ok, err)
	}
	at := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	_, nt := newToken(t, token.Programmatic)
	nt.Token.Org, nt.Token.User, nt.Token.ExpiresAt = f.org, u.ID, &at
	created, err := s.CreateToken(ctx, nt, nil, operator)
	if err != nil {
		t.Fatal(err)
	}
	lead := leadership(t, s)
	for i, want := range []bool{true, false} {
		ok, err := s.WarnExpiring(ctx, lead, created, "1d", []string{"7d"})
		if ok != want || err != nil {
			t.Fatalf("warning %d: %v %v", i, ok, err)
		}
	}
	if ok, err := s.WarnExpiring(ctx, lead, created, "7d", nil); ok || err != nil {
		t.Fatalf("the wider window after the narrower: %v %v", ok, err)
	}
	marks, err := s.AllExpiryWarnings(ctx)
	if w := marks[f.org+"/"+u.ID+"/"+created.ID]; err != nil || !w.Has("1d", at) || !w.Has("7d", at) || w.Has("1d", at.Add(time.Hour)) {
		t.Fatalf("warnings recorded: %+v %v", w, err)
	}
	events, _, _ := s.ListEvents(ctx, f.org, "", 1, "")
	if e := events[0]; e.Action != ActionTokenExpiring || e.Window != "1d" || e.User != u.ID || e.Target != created.ID || e.Actor != System || !e.ExpiresAt.Equal(at) {
		t.Fatalf("event %+v", e)
	}
	if _, err := s.Client().Delete(ctx, lead.Key); err != nil {
		t.Fatal(err)
	}
	other := *created
	later := at.Add(time.Hour)
	other.ExpiresAt = &later
	if ok, err := s.WarnExpiring(ctx, lead, &other, "1d", nil); ok || !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a deposed leader's warning: %v %v", ok, err)
	}
	// A disabled user's token: the window is recorded, no event written.
	_, nt2 := newToken(t, token.Programmatic)
	nt2.Token.Org, nt2.Token.User, nt2.Token.ExpiresAt = f.org, u.ID, &at
	second, err := s.CreateToken(ctx, nt2, nil, operator)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(ctx, f.org, u.ID, func(u *User) error { u.Disabled = true; return nil }, operator); err != nil {
		t.Fatal(err)
	}
	lead = leadership(t, s)
	before, _, _ := s.ListEvents(ctx, f.org, "", 1, "")
	if ok, err := s.WarnExpiring(ctx, lead, second, "1d", nil); ok || err != nil {
		t.Fatalf("a disabled user's token warned: %v %v", ok, err)
	}
	after, _, _ := s.ListEvents(ctx, f.org, "", 1, "")
	marks, _ = s.AllExpiryWarnings(ctx)
	if after[0].Seq != before[0].Seq || !marks[f.org+"/"+u.ID+"/"+second.ID].Has("1d", at) {
		t.Fatalf("disabled user's token: event %+v, marks %+v", after[0], marks)
	}
	for _, id := range []string{created.ID, second.ID} {
		if err := s.RevokeToken(ctx, f.org, u.ID, id, operator); err != nil {
			t.Fatal(err)
		}
	}
	if marks, _ := s.AllExpiryWarnings(ctx); len(marks) != 0 {
		t.Fatalf("warnings outlive their token: %v", marks)
	}
}
