package token

import (
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"testing/quick"
)

func TestGenerateParses(t *testing.T) {
	for _, kind := range []Kind{Programmatic, Personal} {
		seen := map[string]bool{}
		for range 1000 {
			tok, err := Generate(kind)
			if err != nil {
				t.Fatal(err)
			}
			if len(tok) != Len {
				t.Fatalf("len(%q) = %d, want %d", tok, len(tok), Len)
			}
			if !strings.HasPrefix(tok, string(kind)+"_") {
				t.Fatalf("%q lacks prefix %s_", tok, kind)
			}
			got, err := Parse(tok)
			if err != nil || got != kind {
				t.Fatalf("Parse(%q) = %q, %v; want %q", tok, got, err, kind)
			}
			if seen[tok] {
				t.Fatalf("duplicate token %q", tok)
			}
			seen[tok] = true
		}
	}
}

func TestGenerateUnknownKind(t *testing.T) {
	if _, err := Generate("xyz"); err == nil {
		t.Fatal("Generate accepted an unknown kind")
	}
}

// TestBodyUsesWholeAlphabet guards against a generator that silently draws
// from a smaller set (for instance hex), which would cut the entropy.
func TestBodyUsesWholeAlphabet(t *testing.T) {
	counts := map[byte]int{}
	for range 2000 {
		tok, err := Generate(Programmatic)
		if err != nil {
			t.Fatal(err)
		}
		for i := prefixLen + 1; i < prefixLen+1+bodyLen; i++ {
			counts[tok[i]]++
		}
	}
	if len(counts) != len(alphabet) {
		t.Fatalf("body used %d distinct characters, want %d", len(counts), len(alphabet))
	}
	// 80 000 draws over 62 symbols: about 1290 each. A uniform source stays
	// far inside these bounds; a biased one (modulo bias on bytes) would not
	// put any symbol below half.
	for c, n := range counts {
		if n < 1290/2 || n > 1290*2 {
			t.Errorf("character %q drawn %d times, want about 1290", c, n)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good, err := Generate(Programmatic)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", ErrLength},
		{"short", good[:Len-1], ErrLength},
		{"long", good + "A", ErrLength},
		{"over 128 bytes", strings.Repeat("A", 129), ErrTooLong},
		{"unknown prefix", "tgx" + good[3:], ErrPrefix},
		{"uppercase prefix", "TGP" + good[3:], ErrPrefix},
		{"no separator", "tgp-" + good[4:], ErrPrefix},
		{"dash in body", good[:10] + "-" + good[11:], ErrCharset},
		{"space in body", good[:10] + " " + good[11:], ErrCharset},
		{"NUL in body", good[:10] + "\x00" + good[11:], ErrCharset},
		{"non-ASCII in body", good[:10] + "é" + good[12:], ErrCharset},
		{"body typo", flip(20), ErrChecksum},
		{"check typo", flip(Len - 1), ErrChecksum},
		{"other kind's prefix", "tgu" + good[3:], ErrChecksum},
		{"checksum overflow", good[:Len-checkLen] + "zzzzzz", ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %v, want %v", err, tt.want)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v is not ErrMalformed", err)
			}
		})
	}
}

// TestChecksumIsCRC32OfPrefixAndBody pins the format to the contract: an
// independent implementation computing CRC32 (IEEE) and base62 must agree.
func TestChecksumIsCRC32OfPrefixAndBody(t *testing.T) {
	prop := func(seed [40]byte) bool {
		body := make([]byte, bodyLen)
		for i := range body {
			body[i] = alphabet[int(seed[i])%len(alphabet)]
		}
		s := "tgp_" + string(body)
		crc := crc32.ChecksumIEEE([]byte(s))
		var check []byte
		for range checkLen {
			check = append([]byte{alphabet[crc%62]}, check...)
			crc /= 62
		}
		_, err := Parse(s + string(check))
		return err == nil
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 2000}); err != nil {
		t.Fatal(err)
	}
}

// TestSingleCharacterChangesAreCaught: every one-character substitution of a
// valid token is refused (CRC32 catches all single-symbol errors).
func TestSingleCharacterChangesAreCaught(t *testing.T) {
	tok, err := Generate(Personal)
	if err != nil {
		t.Fatal(err)
	}
	for i := prefixLen + 1; i < Len; i++ {
		for j := 0; j < len(alphabet); j++ {
			if alphabet[j] == tok[i] {
				continue
			}
			mutated := tok[:i] + string(alphabet[j]) + tok[i+1:]
			if _, err := Parse(mutated); err == nil {
				t.Fatalf("mutation at %d to %q accepted", i, alphabet[j])
			}
		}
	}
}

func TestSumAndHint(t *testing.T) {
	a, _ := Generate(Programmatic)
	b, _ := Generate(Programmatic)
	if Sum(a) == Sum(b) {
		t.Fatal("different tokens, same digest")
	}
	if Sum(a) != sha256.Sum256([]byte(a)) {
		t.Fatal("Sum is not SHA-256")
	}
	h := Hint(a)
	if !strings.HasPrefix(h, "tgp_") || !strings.HasSuffix(h, a[len(a)-4:]) || strings.Contains(h, a[4:len(a)-4]) {
		t.Fatalf("Hint(%q) = %q", a, h)
	}
	u, _ := Generate(Personal)
	for hint, want := range map[string]Kind{h: Programmatic, Hint(u): Personal, "": "", "tgp": "", "tgx_…abcd": "", "tgp-…abcd": ""} {
		if got, ok := HintKind(hint); got != want || ok != (want != "") {
			t.Errorf("HintKind(%q) = %q, %v; want %q", hint, got, ok, want)
		}
	}
}

func TestParseAndSumDoNotAllocate(t *testing.T) {
	tok, _ := Generate(Programmatic)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Parse(tok); err != nil {
			t.Fatal(err)
		}
		_ = Sum(tok)
	})
	if allocs != 0 {
		t.Fatalf("Parse+Sum allocate %v times per call", allocs)
	}
}

func FuzzParse(f *testing.F) {
	good, _ := Generate(Programmatic)
	for _, s := range []string{good, "", "tgp_", good[:Len-1], strings.Repeat("z", 200), "tgu_" + strings.Repeat("0", 46)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kind, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		// Whatever the fuzzer finds that parses must really be well formed.
		if len(s) != Len || !strings.HasPrefix(s, string(kind)+"_") {
			t.Fatalf("accepted %q", s)
		}
		crc := crc32.ChecksumIEEE([]byte(s[:Len-checkLen]))
		var want [checkLen]byte
		putCheck(want[:], crc)
		if s[Len-checkLen:] != string(want[:]) {
			t.Fatalf("accepted %q whose checksum should be %s", s, want)
		}
	})
}

func BenchmarkTokenParse(b *testing.B) {
	tok, _ := Generate(Programmatic)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTokenSum(b *testing.B) {
	tok, _ := Generate(Programmatic)
	b.ReportAllocs()
	for b.Loop() {
		_ = Sum(tok)
	}
}
