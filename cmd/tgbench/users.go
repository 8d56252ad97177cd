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

// benchUsers are the users of one run.
type benchUsers struct {
	// plain are the users whose tokens (b), (c) and (h) spread over.
	plain []user
	// limited are (i)'s users: like plain, each with limitedUserRate.
	limited []user
	// others are users no front end uses, each with otherUserRate: rate
	// limits configured for other users.
	others []user
	// oneAMinute is one more user, limited to a request a minute.
	oneAMinute user
}

// Rate limits of (i)'s users and of the other users. (i)'s never binds:
// each of its users gets a small share of the load, far below a million a
// second, so every request takes the rate-limited path and passes.
var (
	limitedUserRate = store.RateLimit{Requests: 1_000_000, Window: "1s"}
	otherUserRate   = store.RateLimit{Requests: 1_000_000, Window: "1s"}
	oneAMinuteRate  = store.RateLimit{Requests: 1, Window: "1m"}
)

// createUsers makes the run's users in one organization and account:
// n plain users, and with withLimits n more for (i), others that no front
// end uses and the one-a-minute user.
func createUsers(ctx context.Context, s *store.Store, n int, withLimits bool, others int) (benchUsers, error) {
	var bu benchUsers
	if _, err := s.CreateOrg(ctx, store.Org{ID: benchOrg, Name: "tgbench"}, operator); err != nil {
		return bu, fmt.Errorf("creating the organization: %w", err)
	}
	act, err := s.CreateAccount(ctx, store.Account{Org: benchOrg, Name: "tgbench"}, operator)
	if err != nil {
		return bu, fmt.Errorf("creating the account: %w", err)
	}
	if bu.plain, err = createUsersIn(ctx, s, act.ID, n, "bench", nil); err != nil {
		return bu, err
	}
	if !withLimits {
		return bu, nil
	}
	if bu.limited, err = createUsersIn(ctx, s, act.ID, n, "limited", &limitedUserRate); err != nil {
		return bu, err
	}
	if bu.others, err = createUsersIn(ctx, s, act.ID, others, "other", &otherUserRate); err != nil {
		return bu, err
	}
	one, err := createUsersIn(ctx, s, act.ID, 1, "one-a-minute", &oneAMinuteRate)
	if err != nil {
		return bu, err
	}
	bu.oneAMinute = one[0]
	return bu, nil
}

// createUsersIn makes n programmatic account-level viewers, each with one
// token and the given rate limit (nil: none): the common case of API
// clients reading their own account's resources. Creation runs a few at a
// time because each user is one etcd transaction (with an fsync on the
// embedded etcd).
func createUsersIn(ctx context.Context, s *store.Store, account string, n int, name string, limit *store.RateLimit) ([]user, error) {
	users := make([]user, n)
	errs := make(chan error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				u, err := createUser(ctx, s, store.User{
					Org:       benchOrg,
					Type:      store.TypeProgrammatic,
					Level:     store.LevelAccount,
					Account:   account,
					Role:      store.RoleViewer,
					Name:      fmt.Sprintf("%s-%d", name, i),
					RateLimit: limit,
				})
				if err != nil {
					errs <- fmt.Errorf("creating user %s-%d: %w", name, i, err)
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

// createUser creates one user with a token.
func createUser(ctx context.Context, s *store.Store, u store.User) (user, error) {
	secret, err := token.Generate(token.Programmatic)
	if err != nil {
		return user{}, fmt.Errorf("generating a token: %w", err)
	}
	nt := store.NewToken{Hash: token.Sum(secret), Token: store.Token{ID: store.NewTokenID(), Hint: token.Hint(secret)}}
	created, err := s.CreateUser(ctx, u, &nt, operator)
	if err != nil {
		return user{}, err
	}
	return user{id: created.ID, token: secret}, nil
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
