package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokengate/tokengate/module/store"
)

// Headers of a delivery (Standard Webhooks).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// userAgent names the sender to receivers.
const userAgent = "tokengate-webhooks/1"

// maxAnswer is how much of a receiver's answer is read (and dropped), so
// that the connection can be reused.
const maxAnswer = 64 << 10

// Payload is the body of a delivery: the event's action, its time, and the
// event as the audit API shows it.
type Payload struct {
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      store.EventView `json:"data"`
}

// NewPayload is the body delivering an audit event. It is the same for
// every attempt.
func NewPayload(ev *store.Event) ([]byte, error) {
	return json.Marshal(Payload{Type: ev.Action, Timestamp: ev.Time.UTC(), Data: ev.View()})
}

// deliver makes one attempt to deliver an event: a POST to the webhook's
// URL, signed with its secret. It returns the receiver's status (0 when
// there was no answer) and, unless that was 2xx, why the attempt failed.
// The error never holds the URL or the secret.
func (e *Engine) deliver(ctx context.Context, h *store.Webhook, ev *store.Event) (int, error) {
	body, err := NewPayload(ev)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	ts := now.Unix()
	// After a rotation with an overlap, the previous secret signs too:
	// receivers check each signature of the header.
	var sigs []string
	for _, secret := range h.Secrets(now) {
		sig, err := Sign(secret, ev.Seq, ts, body)
		if err != nil {
			return 0, err
		}
		sigs = append(sigs, sig)
	}
	sig := strings.Join(sigs, " ")
	ctx, cancel := context.WithTimeout(ctx, e.cfg.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("the webhook's URL cannot be requested")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderID, ev.Seq)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := e.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("no answer within %s", e.cfg.AttemptTimeout)
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the receiver answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return resp.StatusCode, nil
}
