package admin_test

import (
	"encoding/json"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/tokengate/tokengate/module/store"
)

// TestAuditFilters: the audit list narrows to an actor, an action and a
// time range, all given at once; pages of a narrowed list go on with
// next_cursor; an account admin's filters never reach another account.
func TestAuditFilters(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	type event struct {
		ID     string
		Time   time.Time
		Action string
		Target string
		Actor  struct{ ID string }
		Acct   string `json:"account"`
	}
	list := func(tok, query string) []event {
		t.Helper()
		var out []event
		cursor := ""
		for {
			path := o + "/audit?limit=2&" + query
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			var page struct {
				Events     []event
				NextCursor string `json:"next_cursor"`
			}
			e.must(e.call(tok, "GET", path, nil), 200).json(t, &page)
			out = append(out, page.Events...)
			if page.NextCursor == "" {
				return out
			}
			cursor = page.NextCursor
		}
	}
	all := list("", "")
	if len(all) < 6 {
		t.Fatalf("%d events", len(all))
	}

	// By action: exactly the events of that action, in the same order.
	var want []event
	for _, ev := range all {
		if ev.Action == "user.create" {
			want = append(want, ev)
		}
	}
	got := list("", "action=user.create")
	if len(want) == 0 || !slices.EqualFunc(got, want, func(a, b event) bool { return a.ID == b.ID }) {
		t.Fatalf("action=user.create: %d events, want %d", len(got), len(want))
	}

	// By actor: the org admin's events only.
	made := e.must(e.call(w.orgAdmin, "POST", o+"/accounts", map[string]string{"name": "by the admin"}), 201).field(t, "id")
	got = list("", "actor="+w.orgAdminID)
	if len(got) != 1 || got[0].Target != made || got[0].Actor.ID != w.orgAdminID {
		t.Fatalf("actor=%s: %+v", w.orgAdminID, got)
	}
	got = list("", "actor="+w.orgAdminID+"&action=user.create")
	if len(got) != 0 {
		t.Fatalf("the admin's user.create events: %+v", got)
	}

	// By time: since and until are both included; a range before every
	// event is empty.
	all = list("", "")
	mid := all[len(all)/2]
	got = list("", "since="+mid.Time.Format(time.RFC3339Nano))
	if got[len(got)-1].ID != mid.ID || len(got) != len(all)/2+1 {
		t.Fatalf("since the middle event: %d events ending %s, want %d ending %s", len(got), got[len(got)-1].ID, len(all)/2+1, mid.ID)
	}
	got = list("", "until="+mid.Time.Format(time.RFC3339Nano))
	if got[0].ID != mid.ID || len(got) != len(all)-len(all)/2 {
		t.Fatalf("until the middle event: %d events starting %s", len(got), got[0].ID)
	}
	both := "since=" + url.QueryEscape(mid.Time.Format(time.RFC3339Nano)) + "&until=" + url.QueryEscape(mid.Time.Format(time.RFC3339Nano))
	if got = list("", both); len(got) != 1 || got[0].ID != mid.ID {
		t.Fatalf("since and until the middle event: %+v", got)
	}
	if got = list("", "until=2000-01-01T00:00:00Z"); len(got) != 0 {
		t.Fatalf("until 2000: %+v", got)
	}

	// An account admin filtering by an action sees its own account's.
	for _, ev := range list(w.acctAdminA1, "action=account.create") {
		if ev.Acct != w.a1 {
			t.Fatalf("account admin sees %+v", ev)
		}
	}
}

// TestOpenAPIListsEveryAuditAction: the audit list's action parameter
// names exactly the actions the store writes.
func TestOpenAPIListsEveryAuditAction(t *testing.T) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]struct {
			Get struct {
				Parameters []struct {
					Name   string
					Schema struct{ Enum []string }
				}
			}
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range doc.Paths["/orgs/{org}/audit"].Get.Parameters {
		if p.Name == "action" {
			if !slices.Equal(p.Schema.Enum, store.Actions) {
				t.Fatalf("the action parameter lists %v, the store writes %v", p.Schema.Enum, store.Actions)
			}
			return
		}
	}
	t.Fatal("no action parameter")
}
