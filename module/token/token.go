package token

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash"
	"hash/crc32"
	"math/big"
	"sync"
	"unsafe"
)

// Kind says which type of user a token belongs to; it is the token's prefix.
type Kind string

const (
	// Programmatic tokens belong to API-only users.
	Programmatic Kind = "tgp"
	// Personal tokens belong to UI users.
	Personal Kind = "tgu"
)

const (
	prefixLen = 3
	bodyLen   = 40
	checkLen  = 6
	// Len is the exact length of every well-formed token.
	Len = prefixLen + 1 + bodyLen + checkLen
	// MaxLen is the longest input the gateway looks at; anything longer is
	// refused before even being scanned.
	MaxLen = 128

	alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// Errors returned by Parse. They say why a token is malformed; callers that
// only need to know "malformed or not" test with errors.Is(err, ErrMalformed).
var (
	ErrMalformed = errors.New("malformed token")
	ErrTooLong   = wrapMalformed("token longer than 128 bytes")
	ErrLength    = wrapMalformed("token has the wrong length")
	ErrPrefix    = wrapMalformed("token has an unknown prefix")
	ErrCharset   = wrapMalformed("token contains a character outside base62")
	ErrChecksum  = wrapMalformed("token checksum does not match")
)

type malformedError string

func wrapMalformed(msg string) error     { return malformedError(msg) }
func (e malformedError) Error() string   { return string(e) }
func (e malformedError) Is(t error) bool { return t == ErrMalformed }

// digitOf maps an ASCII byte to its base62 value, or 0xff when it is not a
// base62 digit.
var digitOf = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// Generate returns a new random token of the given kind.
func Generate(kind Kind) (string, error) {
	if kind != Programmatic && kind != Personal {
		return "", errors.New("unknown token kind")
	}
	buf := make([]byte, Len)
	copy(buf, kind)
	buf[prefixLen] = '_'
	body := buf[prefixLen+1 : prefixLen+1+bodyLen]
	sixtyTwo := big.NewInt(int64(len(alphabet)))
	for i := range body {
		// rand.Int draws uniformly, so every character carries log2(62) bits.
		n, err := rand.Int(rand.Reader, sixtyTwo)
		if err != nil {
			return "", err
		}
		body[i] = alphabet[n.Int64()]
	}
	putCheck(buf[Len-checkLen:], crc32.ChecksumIEEE(buf[:Len-checkLen]))
	return string(buf), nil
}

// Parse checks that s is a well-formed token and returns its kind. It never
// allocates and never looks anything up: it is the gate in front of the cache.
func Parse(s string) (Kind, error) {
	if len(s) > MaxLen {
		return "", ErrTooLong
	}
	if len(s) != Len {
		return "", ErrLength
	}
	var kind Kind
	switch s[:prefixLen] {
	case string(Programmatic):
		kind = Programmatic
	case string(Personal):
		kind = Personal
	default:
		return "", ErrPrefix
	}
	if s[prefixLen] != '_' {
		return "", ErrPrefix
	}
	for i := prefixLen + 1; i < Len; i++ {
		if digitOf[s[i]] == 0xff {
			return "", ErrCharset
		}
	}
	var check uint64
	for i := Len - checkLen; i < Len; i++ {
		check = check*uint64(len(alphabet)) + uint64(digitOf[s[i]])
	}
	if check != uint64(crc32IEEEString(s[:Len-checkLen])) {
		return "", ErrChecksum
	}
	return kind, nil
}

// Hash is the SHA-256 digest of a token: the only form stored or cached.
type Hash [sha256.Size]byte

// Sum returns the digest of a token.
func Sum(s string) Hash {
	if len(s) > MaxLen {
		return sha256.Sum256([]byte(s))
	}
	// sha256.Sum256 allocates its digest state on every call; the request
	// path reuses pooled state instead so that verifying a token does not
	// allocate.
	st := hashers.Get().(*hashState)
	st.h.Reset()
	n := copy(st.in[:], s)
	st.h.Write(st.in[:n])
	var out Hash
	copy(out[:], st.h.Sum(st.out[:0]))
	hashers.Put(st)
	return out
}

type hashState struct {
	h   hash.Hash
	in  [MaxLen]byte
	out [sha256.Size]byte
}

var hashers = sync.Pool{New: func() any { return &hashState{h: sha256.New()} }}

// Hint is what a listing may show of a token: its prefix and last 4
// characters, enough for a person to tell tokens apart.
func Hint(s string) string {
	if len(s) < prefixLen+1+4 {
		return ""
	}
	return s[:prefixLen+1] + "…" + s[len(s)-4:]
}

// putCheck writes v as checkLen base62 digits, most significant first.
func putCheck(dst []byte, v uint32) {
	n := uint64(v)
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = alphabet[n%uint64(len(alphabet))]
		n /= uint64(len(alphabet))
	}
}

var ieeeTable = crc32.MakeTable(crc32.IEEE)

// crc32IEEEString computes the IEEE checksum of a string without copying
// it: Parse runs on every request and must not allocate. The bytes are only
// read.
func crc32IEEEString(s string) uint32 {
	return crc32.Update(0, ieeeTable, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// HintKind is the kind of the token a hint was made of (Hint keeps the
// prefix); ok is false for a hint of no known kind.
func HintKind(hint string) (kind Kind, ok bool) {
	if len(hint) <= prefixLen || hint[prefixLen] != '_' {
		return "", false
	}
	switch k := Kind(hint[:prefixLen]); k {
	case Programmatic, Personal:
		return k, true
	}
	return "", false
}
