package token

import (
	"hash/crc32"
	"regexp"
	"strings"
	"testing"
)

// The rule the README gives secret scanners, written out independently of
// Parse: the regex, then the last 6 characters as a base-62 number, most
// significant digit first, equal to the CRC-32 (IEEE) of the rest.
var scannerPattern = regexp.MustCompile(`\b(tgp|tgu)_[0-9A-Za-z]{46}\b`)

func scannerAccepts(s string) bool {
	if m := scannerPattern.FindString(s); m != s {
		return false
	}
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var check uint64
	for _, c := range s[len(s)-6:] {
		check = check*62 + uint64(strings.IndexRune(digits, c))
	}
	return check == uint64(crc32.ChecksumIEEE([]byte(s[:len(s)-6])))
}

// TestScannerRule: the README's rule for secret scanners accepts exactly
// what Parse accepts, on generated tokens and on altered ones, and a
// vector computed with Python's zlib.crc32 (the README's snippet) holds.
func TestScannerRule(t *testing.T) {
	// Assembled here so that no whole token sits in the source for a
	// scanner to find.
	vector := "tgp_" + strings.Repeat("0123456789", 4) + "1xkdUB"
	if _, err := Parse(vector); err != nil || !scannerAccepts(vector) {
		t.Fatalf("the documented vector: Parse %v, rule %v", err, scannerAccepts(vector))
	}
	for i := 0; i < 2000; i++ {
		kind := Programmatic
		if i%2 == 1 {
			kind = Personal
		}
		tok, err := Generate(kind)
		if err != nil {
			t.Fatal(err)
		}
		altered := tok[:4+i%46] + string(rune('0'+(tok[4+i%46]-'0'+1)%10)) + tok[5+i%46:]
		for _, s := range []string{tok, altered, tok[:49], tok + "0", "tgx" + tok[3:]} {
			_, err := Parse(s)
			if (err == nil) != scannerAccepts(s) {
				t.Fatalf("%.8s…: Parse %v, the documented rule %v", s, err, scannerAccepts(s))
			}
		}
	}
}
