// Package webhooktest is a webhook receiver for tests, written as a user
// of tokengate's webhooks would write one: it checks the Standard Webhooks
// signature with its own code (never the webhook package's Sign) and
// keeps what arrived.
package webhooktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Receiver is a webhook receiver on a loopback port.
type Receiver struct {
	t   testing.TB
	URL string
	srv *http.Server

	mu       sync.Mutex
	secrets  []string
	got      []Arrival
	bad      []string // deliveries that failed the checks
	answer   func(n int, a Arrival) int
	attempts int
}

// Arrival is one delivery the receiver got.
type Arrival struct {
	ID        string
	Timestamp int64
	At        time.Time
	// Signature is the webhook-signature header, Body the payload as sent.
	Signature string
	Body      []byte
	Payload   struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      struct {
			ID           string    `json:"id"`
			Time         time.Time `json:"time"`
			Actor        struct{ ID, Type string }
			Action       string     `json:"action"`
			Target       string     `json:"target"`
			Account      string     `json:"account"`
			User         string     `json:"user"`
			Reason       string     `json:"reason"`
			Window       string     `json:"window"`
			ExpiresAt    *time.Time `json:"expires_at"`
			LastActiveAt *time.Time `json:"last_active_at"`
		} `json:"data"`
	}
}

// Start starts a receiver on a free loopback port; it stops when the
// test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{t: t, URL: "http://" + ln.Addr().String() + "/hook"}
	r.serve(ln)
	t.Cleanup(r.Down)
	return r
}

func (r *Receiver) serve(ln net.Listener) {
	r.srv = &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(ln)
}

// Down stops the receiver: deliveries find nobody listening.
func (r *Receiver) Down() {
	if r.srv != nil {
		r.srv.Close()
		r.srv = nil
	}
}

// Up starts the receiver again on the same address.
func (r *Receiver) Up() {
	r.t.Helper()
	addr := strings.TrimSuffix(strings.TrimPrefix(r.URL, "http://"), "/hook")
	deadline := time.Now().Add(10 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			r.serve(ln)
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("listening again on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SetSecret gives the receiver the webhook's secret (whsec_…); a delivery
// passes when signed by it.
func (r *Receiver) SetSecret(s string) { r.AcceptSecrets(s) }

// AcceptSecrets makes the receiver take a delivery signed by any of the
// secrets, as a receiver moving to a rotated secret does.
func (r *Receiver) AcceptSecrets(secrets ...string) {
	r.mu.Lock()
	r.secrets = secrets
	r.mu.Unlock()
}

// Answer sets the status the receiver answers the n-th delivery (from 1)
// with, under its lock; nil: 204. Only 2xx answers count as arrivals.
func (r *Receiver) Answer(f func(n int, a Arrival) int) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

// Locked runs f under the receiver's lock, for state an Answer function
// shares with the test.
func (r *Receiver) Locked(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
}

// Verify checks a delivery as the specification says: the HMAC-SHA256 of
// "<id>.<timestamp>.<body>" keyed with the base64-decoded part of the
// secret after whsec_, against each "v1,<base64>" of the header.
func Verify(secret, id, timestamp string, body []byte, header string) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(header) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no valid v1 signature in %q", header)
}

func (r *Receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id, ts := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
	r.mu.Lock()
	defer r.mu.Unlock()
	err := errors.New("no secret set")
	for _, secret := range r.secrets {
		if err = Verify(secret, id, ts, body, req.Header.Get("webhook-signature")); err == nil {
			break
		}
	}
	if err != nil {
		r.bad = append(r.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var a Arrival
	a.ID, a.At = id, time.Now()
	a.Signature, a.Body = req.Header.Get("webhook-signature"), body
	a.Timestamp, _ = strconv.ParseInt(ts, 10, 64)
	if d := time.Since(time.Unix(a.Timestamp, 0)); d > 5*time.Minute || d < -5*time.Minute {
		r.bad = append(r.bad, "timestamp out of tolerance: "+ts)
	}
	if err := json.Unmarshal(body, &a.Payload); err != nil || req.Header.Get("Content-Type") != "application/json" {
		r.bad = append(r.bad, fmt.Sprintf("body %s: %v", body, err))
	}
	r.attempts++
	status := http.StatusNoContent
	if r.answer != nil {
		status = r.answer(r.attempts, a)
	}
	if status >= 200 && status < 300 {
		r.got = append(r.got, a)
	}
	w.WriteHeader(status)
}

// Arrivals returns the deliveries acknowledged so far, in order. A
// delivery that failed the receiver's checks fails the test.
func (r *Receiver) Arrivals() []Arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		r.t.Errorf("deliveries failed the receiver's checks: %v", r.bad)
		r.bad = nil
	}
	return append([]Arrival(nil), r.got...)
}

// WaitFor polls cond until it holds or timeout passes.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FirstOf returns the first arrival of each event ID, in arrival order,
// and the number of repeats.
func FirstOf(as []Arrival) ([]Arrival, int) {
	seen := map[string]bool{}
	var out []Arrival
	dups := 0
	for _, a := range as {
		if seen[a.ID] {
			dups++
			continue
		}
		seen[a.ID] = true
		out = append(out, a)
	}
	return out, dups
}

// Targets lists the targets of arrivals of one type, in order.
func Targets(as []Arrival, typ string) []string {
	var out []string
	for _, a := range as {
		if a.Payload.Type == typ {
			out = append(out, a.Payload.Data.Target)
		}
	}
	return out
}
