package store

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Free text is every name and description the store keeps (of
// organizations, accounts, users, policies, webhooks and tokens) and users'
// email addresses. Admins read it in listings, the console and the audit
// trail, and the gateway passes user names upstream (X-Tokengate-User-Name),
// so it must read as what it holds: checkText is the one rule every writer
// applies, refusing
//
//   - text that is not valid UTF-8 (a lone surrogate among it), and U+FFFD,
//     which is what a JSON decoder makes of either;
//   - control characters (Cc: C0, DEL, C1), line and paragraph separators;
//   - format characters (Cf): the bidirectional controls U+202A–U+202E and
//     U+2066–U+2069, the marks U+200E, U+200F and U+061C, zero-width
//     characters, U+FEFF, the soft hyphen, tag characters and the like;
//   - the other characters Unicode says to render as nothing (Hangul
//     fillers, the combining grapheme joiner, variation selectors other
//     than the emoji and text presentation selectors U+FE0E and U+FE0F);
//   - noncharacters;
//   - spaces other than the ASCII space (no-break, en quad, ideographic),
//     the braille blank, U+2D7F, U+FFFC and private-use characters, and
//     white space at either end: all ways to make two names that look
//     alike differ.
//
// A name written in a script that needs a zero-width joiner or non-joiner
// to render well is refused too: those characters are also how two names
// that look alike are made to differ.

// checkText checks the free text v of field: valid UTF-8, at most max
// characters, no hidden characters, and not blank when required.
func checkText(field, v string, max int, required bool) error {
	switch {
	case !utf8.ValidString(v):
		return &FieldError{field, "must be valid UTF-8 (no invalid bytes or lone surrogates)"}
	case required && strings.TrimSpace(v) == "":
		return &FieldError{field, "is required"}
	case utf8.RuneCountInString(v) > max:
		return &FieldError{field, fmt.Sprintf("must be at most %d characters", max)}
	}
	if v != strings.TrimFunc(v, unicode.IsSpace) {
		return &FieldError{field, "must not start or end with white space, which makes two names that look alike differ"}
	}
	if i := strings.IndexFunc(v, hiddenRune); i >= 0 {
		r, _ := utf8.DecodeRuneInString(v[i:])
		return &FieldError{field, fmt.Sprintf("must not contain %U: no control, format, bidirectional or invisible characters, which make text read as other than it is", r)}
	}
	return nil
}

// hiddenRune reports whether free text may not hold r (see checkText).
func hiddenRune(r rune) bool {
	switch r {
	case utf8.RuneError:
		return true
	case '\uFE0E', '\uFE0F':
		return false
	case '\u2800', '\u2D7F', '\uFFFC': // braille blank, a joiner that renders as nothing, object replacement
		return true
	}
	// Spaces other than the ASCII space (no-break, en quad, ideographic…)
	// look like it and make names that look alike differ; private-use
	// characters render as whatever a font makes of them.
	if unicode.Is(unicode.Zs, r) && r != ' ' {
		return true
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector, unicode.Noncharacter_Code_Point)
}
