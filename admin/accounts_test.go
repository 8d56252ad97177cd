package admin_test

import (
	"slices"
	"testing"
)

// TestDeleteAccountListedByManyUsers: an account listed by more
// organization-level users than one etcd transaction may write (etcd's
// --max-txn-ops defaults to 128) is deleted: 204, the account leaves every
// user's accounts, and access through it ends by the time the answer
// arrives.
func TestDeleteAccountListedByManyUsers(t *testing.T) {
	e := startEnv(t)
	w := e.setup()
	o := "/orgs/" + w.org
	shared := e.must(e.call("", "POST", o+"/accounts", map[string]string{"name": "shared"}), 201).field(t, "id")
	const users = 300
	var tok string
	for range users {
		_, tok = e.programmatic(w.org, map[string]any{"level": "organization", "accounts": []string{w.a1, shared}, "role": "viewer"})
	}
	e.must(e.gateway(tok, "/api/x?accountId="+shared), 200)

	e.must(e.call(w.orgAdmin, "DELETE", o+"/accounts/"+shared, nil), 204)
	if r := e.gateway(tok, "/api/x?accountId="+shared); r.status != 403 || r.code != "account_forbidden" {
		t.Fatalf("the deleted account is still reached: %d %s", r.status, r.body)
	}
	e.must(e.gateway(tok, "/api/x?accountId="+w.a1), 200)

	var list struct {
		Users []struct {
			ID       string
			Level    string
			Accounts []string
		}
	}
	e.must(e.call("", "GET", o+"/users?limit=1000", nil), 200).json(t, &list)
	n := 0
	for _, u := range list.Users {
		if slices.Contains(u.Accounts, shared) {
			t.Fatalf("user %s still lists the deleted account: %v", u.ID, u.Accounts)
		}
		if u.Level == "organization" && slices.Equal(u.Accounts, []string{w.a1}) {
			n++
		}
	}
	if n < users {
		t.Fatalf("%d users list only %s, want at least %d", n, w.a1, users)
	}
	e.must(e.call(w.orgAdmin, "DELETE", o+"/accounts/"+shared, nil), 404)
	// Account-level users and policies still hold an account back.
	if r := e.call(w.orgAdmin, "DELETE", o+"/accounts/"+w.a1, nil); r.status != 409 || r.code != "conflict" {
		t.Fatalf("an account with account-level users: %d %s", r.status, r.body)
	}
}
