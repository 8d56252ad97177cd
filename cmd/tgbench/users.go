package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/tokengate/tokengate/module/store"
	"github.com/tokengate/tokengate/module/token"
	"github.com/tokengate/tokengate/module/tokengate"
)

var operator = store.Actor{ID: "tgbench", Type: store.ActorOperator}

// benchOrg is the organization every benchmark user belongs to.
const benchOrg = "bench"

// user is one benchmark user and the secret of its token.
type user struct {
	id, token string
}

// createUsers makes n programmatic account-level viewers, each with one
// token, in one account: the common case of API clients reading their own
// account's resources. Creation runs a few at a time because each user is
// one etcd transaction (with an fsync on the embedded etcd).
func createUsers(ctx context.Context, s *store.Store, n int) ([]user, error) {
	if _, err := s.CreateOrg(ctx, store.Org{ID: benchOrg, Name: "tgbench"}, operator); err != nil {
		return nil, fmt.Errorf("creating the organization: %w", err)
	}
	act, err := s.CreateAccount(ctx, store.Account{Org: benchOrg, Name: "tgbench"}, operator)
	if err != nil {
		return nil, fmt.Errorf("creating the account: %w", err)
	}
	users := make([]user, n)
	errs := make(chan error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				u, err := createUser(ctx, s, act.ID, i)
				if err != nil {
					errs <- err
					continue
				}
				users[i] = u
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return users, nil
}

func createUser(ctx context.Context, s *store.Store, account string, i int) (user, error) {
	secret, err := token.Generate(token.Programmatic)
	if err != nil {
		return user{}, fmt.Errorf("generating a token: %w", err)
	}
	nt := store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID(), Hint: token.Hint(secret)}}
	u, err := s.CreateUser(ctx, store.User{
		Org:     benchOrg,
		Type:    store.TypeProgrammatic,
		Level:   store.LevelAccount,
		Account: account,
		Role:    store.RoleViewer,
		Name:    fmt.Sprintf("bench-%d", i),
	}, &nt, operator)
	if err != nil {
		return user{}, fmt.Errorf("creating user %d: %w", i, err)
	}
	return user{id: u.ID, token: secret}, nil
}

// warm sends every token once through front end (b), so that its rounds
// measure cached tokens, and returns the etcd lookups a second pass still
// needed (0 when everything is cached). It first waits until the cache has
// applied the users' creation: an entry read before the watch delivered
// its own keys would be read again.
func warm(ctx context.Context, app *tokengate.App, url string, users []user) (int64, error) {
	if err := app.Verifier().WaitForRevision(ctx, app.Store().LastCommit()); err != nil {
		return 0, fmt.Errorf("waiting for the cache to see the new users: %w", err)
	}
	if err := sendAll(ctx, url, users); err != nil {
		return 0, err
	}
	before := app.Verifier().Stats().Lookups
	if err := sendAll(ctx, url, users); err != nil {
		return 0, err
	}
	return app.Verifier().Stats().Lookups - before, nil
}

// sendAll sends one request per user's token, a few at a time, and wants
// every one answered 200 with the user's own ID seen upstream.
func sendAll(ctx context.Context, url string, users []user) error {
	const conns = 4
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for c := range conns {
		client := newClient()
		wg.Go(func() {
			defer client.CloseIdleConnections()
			for i := c; i < len(users); i += conns {
				if err := expectUser(ctx, client, url, users[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func expectUser(ctx context.Context, client *http.Client, url string, u user) error {
	status, seen, err := get(ctx, client, url, "Bearer "+u.token)
	switch {
	case err != nil:
		return err
	case status != http.StatusOK:
		return fmt.Errorf("warming the cache: %s answered %d for user %s", url, status, u.id)
	case seen != u.id:
		return fmt.Errorf("warming the cache: upstream saw user %q, want %q", seen, u.id)
	}
	return nil
}
