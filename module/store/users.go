package store

import (
	"context"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// CreateUser creates a user with a generated ID and, when first is not nil,
// its first token, in one transaction: a programmatic user never exists
// without the token the caller is about to show.
func (s *Store) CreateUser(ctx context.Context, u User, first *NewToken, by Actor) (*User, error) {
	return s.CreateUserChecked(ctx, u, first, nil, by)
}

// CreateUserChecked is CreateUser with a check of the caller's: when not
// nil, it decides whether the caller may create the user as it will be
// stored (validated, in canonical form). It runs inside the transaction
// that writes, once the organization is known to exist, on a copy, and
// again each time the transaction retries; its error is returned as is,
// with nothing written and no audit event.
func (s *Store) CreateUserChecked(ctx context.Context, u User, first *NewToken, check func(u *User) error, by Actor) (*User, error) {
	u.ID = NewUserID()
	if err := ValidateUser(&u); err != nil {
		return nil, err
	}
	u.CreatedAt, u.CreatedBy = s.Now().UTC(), by
	if first != nil {
		first.Token.Org, first.Token.User = u.Org, u.ID
		first.Token.CreatedAt, first.Token.CreatedBy = u.CreatedAt, by
	}
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		if err := r.mustExist(s.orgKey(u.Org), "organization "+u.Org); err != nil {
			return nil, err
		}
		if check != nil {
			if err := check(u.clone()); err != nil {
				return nil, callerError{err}
			}
		}
		if err := r.userRefsExist(&u); err != nil {
			return nil, err
		}
		if kv, err := r.get(s.userKey(u.Org, u.ID)); err != nil {
			return nil, err
		} else if kv != nil {
			return nil, &ConflictError{"user " + u.ID + " already exists"}
		}
		var w writes
		w.put(s.userKey(u.Org, u.ID), u)
		if first != nil {
			if err := r.putToken(&w, first, &u); err != nil {
				return nil, err
			}
		}
		return s.withEvent(&w, Event{Org: u.Org, Actor: by, Action: ActionUserCreate, Target: u.ID, Account: u.Account})
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// userRefsExist checks the accounts and policies a user names.
func (r *snapshot) userRefsExist(u *User) error {
	if shadow := u.WithProposed(); shadow != nil {
		if err := r.userRefsExist(shadow); err != nil {
			return proposedField(err)
		}
	}
	if u.Level == LevelAccount {
		if err := r.accountsExist("account", u.Org, []string{u.Account}); err != nil {
			return err
		}
	} else if err := r.accountsExist("accounts", u.Org, u.Accounts); err != nil {
		return err
	}
	return r.policiesFit(u.Org, u.Account, u.Policies)
}

// clone returns a copy of u that shares nothing with it.
func (u *User) clone() *User {
	c := *u
	c.Accounts = slices.Clone(u.Accounts)
	c.Policies = slices.Clone(u.Policies)
	c.AllowedCIDRs = slices.Clone(u.AllowedCIDRs)
	if u.Proposed != nil {
		p := *u.Proposed
		p.Accounts, p.Policies = slices.Clone(p.Accounts), slices.Clone(p.Policies)
		c.Proposed = &p
	}
	if u.RateLimit != nil {
		rl := *u.RateLimit
		c.RateLimit = &rl
	}
	return &c
}

// GetUser returns a user.
func (s *Store) GetUser(ctx context.Context, org, id string) (*User, error) {
	var u User
	if !ValidOrgID(org) || !ValidUserID(id) {
		return nil, &NotFoundError{"user " + id}
	}
	if err := s.getJSON(ctx, s.userKey(org, id), &u, "user "+id); err != nil {
		return nil, err
	}
	return &u, nil
}

// UserFilter narrows a user listing; empty fields match everything.
type UserFilter struct {
	Type    string
	Level   string
	Account string // users reaching this account
}

// ListUsers returns up to limit users in ID order, starting after cursor
// (the last ID of the previous page), and the cursor of the next page, or
// "" at the end. Listing by ID keeps pages stable while users are added:
// a page never repeats or skips a user that existed when listing began.
func (s *Store) ListUsers(ctx context.Context, org string, f UserFilter, limit int, cursor string) ([]User, string, error) {
	if _, err := s.GetOrg(ctx, org); err != nil {
		return nil, "", err
	}
	if cursor != "" && !ValidUserID(cursor) {
		return nil, "", &FieldError{"cursor", "is not a cursor this API returned"}
	}
	return page(ctx, s, s.usersPrefix(org), cursor, limit, func(_ string, u *User) bool {
		return (f.Type == "" || u.Type == f.Type) && (f.Level == "" || u.Level == f.Level) && (f.Account == "" || u.Reaches(f.Account))
	})
}

// UpdateUser applies change to a user and stores the result if it is still
// a valid user whose accounts and policies exist. change may run more than
// once (when another admin changed the user meanwhile) and must only set
// fields from its own inputs.
func (s *Store) UpdateUser(ctx context.Context, org, id string, change func(u *User) error, by Actor) (*User, error) {
	if !ValidOrgID(org) || !ValidUserID(id) {
		return nil, &NotFoundError{"user " + id}
	}
	var out User
	err := s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		var old User
		if found, err := r.getJSON(s.userKey(org, id), &old); err != nil {
			return nil, err
		} else if !found {
			return nil, &NotFoundError{"user " + id}
		}
		u := *old.clone()
		// Accounts deleted since (a deletion cut short) are no longer
		// the user's: the change starts from the accounts that exist.
		if u.Level == LevelOrganization {
			live, err := r.existingAccounts(org, u.Accounts)
			if err != nil {
				return nil, err
			}
			u.Accounts = live
		}
		// Proposed rights whose accounts or policies went away, or
		// moved, are a trial that cannot run: they end, rather than
		// block every change to the user (disabling it included).
		if shadow := u.WithProposed(); shadow != nil && r.userRefsExist(shadow) != nil {
			u.Proposed = nil
		}
		if err := change(&u); err != nil {
			return nil, callerError{err}
		}
		// Identity and history are not the change's to make.
		u.ID, u.Org, u.Type, u.CreatedAt, u.CreatedBy = old.ID, old.Org, old.Type, old.CreatedAt, old.CreatedBy
		if err := ValidateUser(&u); err != nil {
			return nil, err
		}
		if err := r.userRefsExist(&u); err != nil {
			return nil, err
		}
		u.UpdatedAt = s.Now().UTC()
		out = u
		var w writes
		w.put(s.userKey(org, id), u)
		if err := r.recopy(&w, &u); err != nil {
			return nil, err
		}
		return s.withEvent(&w, Event{Org: org, Actor: by, Action: ActionUserUpdate, Target: id, Account: u.Account})
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteUser deletes a user and every token of the user in one
// transaction: the tokens stop working at the same revision.
func (s *Store) DeleteUser(ctx context.Context, org, id string, by Actor) error {
	if !ValidOrgID(org) || !ValidUserID(id) {
		return &NotFoundError{"user " + id}
	}
	return s.update(ctx, func(r *snapshot) ([]clientv3.Op, error) {
		var u User
		if found, err := r.getJSON(s.userKey(org, id), &u); err != nil {
			return nil, err
		} else if !found {
			return nil, &NotFoundError{"user " + id}
		}
		tokens, err := r.userTokens(org, id)
		if err != nil {
			return nil, err
		}
		var w writes
		w.del(s.userKey(org, id))
		for _, t := range tokens {
			w.del(s.tokenKeyHex(t.Hash))
		}
		w.del(s.userTokensPrefix(org, id), clientv3.WithPrefix())
		w.del(s.lastUsedPrefix(org, id), clientv3.WithPrefix())
		w.del(s.lastClientPrefix(org, id), clientv3.WithPrefix())
		w.del(s.dormantKey(org, id))
		w.del(s.legacyLastUsedUserPrefix(org, id), clientv3.WithPrefix())
		w.del(s.expiringUserPrefix(org, id), clientv3.WithPrefix())
		return s.withEvent(&w, Event{Org: org, Actor: by, Action: ActionUserDelete, Target: id, Account: u.Account})
	})
}
