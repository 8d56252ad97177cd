package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// identityPrefix starts the identity headers tokengate sets upstream;
// identityHeader is the one for the user's ID, which the token service's
// answer is also renamed to by forward_auth's copy_headers.
const (
	identityPrefix = "X-Tokengate-"
	identityHeader = identityPrefix + "User-Id"
)

// itemsPath is what the load generator requests of every front end.
// probePath is answered by the upstream with the names of the identity
// headers it got, in seenNamesHeader: only preflight requests it, so the
// measured requests cost the upstream one string comparison more.
const (
	itemsPath       = "/api/items"
	probePath       = "/api/probe"
	seenNamesHeader = "X-Bench-Seen-Identity"
)

// seenHeader is how the upstream tells the load generator which user it
// saw, so every measured request of (b) and (c) can be checked for its tag.
const seenHeader = "X-Bench-Seen-User"

// server is an HTTP server of the tool's own on a loopback port. It listens
// as soon as it is made, so its address can go into the Caddy config, and
// serves once start is called.
type server struct {
	l    net.Listener
	srv  *http.Server
	addr string // host:port
}

func listen(name string) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the %s: %w", name, err)
	}
	return &server{l: l, addr: l.Addr().String()}, nil
}

func (s *server) start(h http.Handler) {
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(s.l) }()
}

func (s *server) close() error {
	if s.srv == nil {
		return s.l.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// upstream is the API every front end proxies to. It answers at once with
// a tiny body so that what is measured is the front end, and echoes the
// identity it was given.
func upstream() http.Handler {
	body := []byte("ok\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header[identityHeader]; len(id) == 1 {
			w.Header()[seenHeader] = id
		}
		if r.URL.Path == probePath {
			w.Header()[seenNamesHeader] = []string{identityNames(r.Header)}
		}
		w.Header()["Content-Type"] = []string{"text/plain"}
		_, _ = w.Write(body)
	})
}

// tokenService is what forward_auth (c) asks: the best case for that
// design, a lookup of the whole Authorization value in an in-memory map,
// answering 200 with the user's ID or 401. It is read-only once serving.
type tokenService map[string]string

func (ts tokenService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := ts[r.Header.Get("Authorization")]
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header()["X-User-Id"] = []string{id}
	w.WriteHeader(http.StatusOK)
}

// identityNames lists the identity headers in hdr, sorted and
// space-separated.
func identityNames(hdr http.Header) string {
	var names []string
	for name := range hdr {
		if strings.HasPrefix(name, identityPrefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}
