package main

import (
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"math/rand/v2"

	"github.com/tokengate/tokengate/module/token"
)

// credentials gives one connection's Authorization values, request after
// request ("" for none). Each connection has its own, so nothing is shared
// between workers on the request path.
type credentials func() string

// noCredentials is for the baseline.
func noCredentials() string { return "" }

// cycle hands out values in turn, starting at a different place for each
// connection so that together the connections spread over all of them.
func cycle(values []string, conn, conns int) credentials {
	i := conn * len(values) / max(conns, 1)
	return func() string {
		v := values[i%len(values)]
		i++
		return v
	}
}

// bearer turns tokens into Authorization values once, so the load generator
// does not concatenate strings per request.
func bearer(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = "Bearer " + t
	}
	return out
}

func basicAuthorization(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// unknownTokens yields distinct well-formed tokens that no user holds: a
// fresh one per request, so that every request of (e) is a cache miss.
//
// token.Generate draws each character from crypto/rand and costs about
// 6 µs; in the load generator that would be charged to (e) alone. This
// generator writes the same format (docs/security.md: prefix, "_", 40 base62
// characters, then the CRC32 of all that as 6 base62 digits) from a seeded
// ChaCha8 in well under a microsecond; checkGenerator proves at start that
// module/token accepts what it makes. With 238 random bits per token,
// repeats do not happen.
type unknownTokens struct {
	rng  *rand.Rand
	buf  [token.Len]byte
	sent int64 // tokens handed out, all distinct
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// checkDigits is how many base62 digits hold the CRC32 at the token's end.
const checkDigits = 6

func newUnknownTokens() *unknownTokens {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	g := &unknownTokens{rng: rand.New(rand.NewChaCha8(seed))}
	copy(g.buf[:], "tgp_")
	return g
}

func (g *unknownTokens) next() string {
	body := g.buf[4 : token.Len-checkDigits]
	for i := range body {
		body[i] = base62[g.rng.IntN(len(base62))]
	}
	sum := uint64(crc32.ChecksumIEEE(g.buf[:token.Len-checkDigits]))
	for i := token.Len - 1; i >= token.Len-checkDigits; i-- {
		g.buf[i] = base62[sum%62]
		sum /= 62
	}
	g.sent++
	return "Bearer " + string(g.buf[:])
}

// checkGenerator fails when the generator's tokens are not well-formed for
// module/token: (e) would then measure the malformed path instead.
func checkGenerator() error {
	g := newUnknownTokens()
	for range 100 {
		tok := g.next()[len("Bearer "):]
		if _, err := token.Parse(tok); err != nil {
			return fmt.Errorf("the unknown-token generator makes tokens module/token refuses (%q: %v); the token format changed", tok, err)
		}
	}
	return nil
}

// malformedTokens are tokens of the right shape whose last character is
// changed, so the checksum fails: the most work a malformed token can cost
// (the whole token is scanned) while still being refused offline.
func malformedTokens(n int) ([]string, error) {
	out := make([]string, 0, n)
	for range n {
		tok, err := token.Generate(token.Programmatic)
		if err != nil {
			return nil, fmt.Errorf("generating a token: %w", err)
		}
		b := []byte(tok)
		last := b[len(b)-1]
		b[len(b)-1] = base62[(indexOf(last)+1)%len(base62)]
		bad := string(b)
		if _, err := token.Parse(bad); err == nil {
			return nil, fmt.Errorf("token %q should be malformed but parses", bad)
		}
		out = append(out, bad)
	}
	return out, nil
}

func indexOf(c byte) int {
	for i := 0; i < len(base62); i++ {
		if base62[i] == c {
			return i
		}
	}
	return 0
}
