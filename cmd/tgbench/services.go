package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// identityHeader is the header tokengate (and, renamed by forward_auth's
// copy_headers, the token service) sets upstream for the user's ID.
const identityHeader = "X-Tokengate-User-Id"

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
