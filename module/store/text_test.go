package store

import (
	"errors"
	"testing"

	"github.com/tokengate/tokengate/module/token"
)

// hiddenText are texts that would show one thing and hold another: each
// is refused in every name, description and email the store keeps.
var hiddenText = []struct{ name, text string }{
	{"right-to-left override U+202E", "invoice\u202Efdp.exe"},
	{"left-to-right embedding U+202A", "a\u202Ab"},
	{"pop directional formatting U+202C", "a\u202Cb"},
	{"left-to-right isolate U+2066", "a\u2066b"},
	{"pop directional isolate U+2069", "a\u2069b"},
	{"left-to-right mark U+200E", "a\u200Eb"},
	{"right-to-left mark U+200F", "a\u200Fb"},
	{"Arabic letter mark U+061C", "a\u061Cb"},
	{"zero-width space U+200B", "ad\u200Bmin"},
	{"zero-width non-joiner U+200C", "a\u200Cb"},
	{"zero-width joiner U+200D", "a\u200Db"},
	{"word joiner U+2060", "a\u2060b"},
	{"byte order mark U+FEFF", "\uFEFFadmin"},
	{"soft hyphen U+00AD", "ad\u00ADmin"},
	{"tag character U+E0041", "a\U000E0041b"},
	{"Mongolian vowel separator U+180E", "a\u180Eb"},
	{"interlinear annotation U+FFF9", "a\uFFF9b"},
	{"Hangul filler U+3164", "\u3164"},
	{"combining grapheme joiner U+034F", "a\u034Fb"},
	{"variation selector U+E0100", "a\U000E0100b"},
	{"line separator U+2028", "a\u2028b"},
	{"paragraph separator U+2029", "a\u2029b"},
	{"newline", "a\nb"},
	{"tab", "a\tb"},
	{"NUL", "a\x00b"},
	{"escape", "a\x1b[31mb"},
	{"DEL", "a\x7fb"},
	{"C1 control U+0085", "a\u0085b"},
	{"C1 control U+009B", "a\u009Bb"},
	{"invalid UTF-8", "a\xffb"},
	{"lone surrogate", "a\xed\xa0\x80b"},
	{"replacement character (a lone surrogate through JSON)", "a\uFFFDb"},
	{"noncharacter U+FFFF", "a\uFFFFb"},
	// Found by black-box attack: look-alike blanks and white space.
	{"no-break space U+00A0", "admin\u00A0B"},
	{"en quad U+2000", "a\u2000b"},
	{"ideographic space U+3000", "a\u3000b"},
	{"braille blank U+2800", "a\u2800b"},
	{"Tifinagh consonant joiner U+2D7F", "a\u2D7Fb"},
	{"object replacement U+FFFC", "a\uFFFCb"},
	{"private use U+E000", "a\uE000b"},
	{"trailing space", "adminB "},
	{"leading space", " adminB"},
}

// fineText is what names may hold: letters of any script, punctuation,
// spaces, emoji with their presentation selector.
const fineText = "Ana María · 日本 · Straße · O'Brien — prod (EU) 🚀 ❤️"

// TestTextRefusesHiddenCharacters: every writer of a name, description or
// email refuses bidi controls, invisible and format characters, control
// characters and text that is not valid UTF-8, naming the field, and
// accepts ordinary text of any script.
func TestTextRefusesHiddenCharacters(t *testing.T) {
	s, _ := newStore(t)
	f := newFixture(t, s)
	ctx := ctxT(t)
	stmts := []Statement{{Effect: "allow", Methods: []string{"GET"}, Paths: []string{"/api/*"}}}
	user := func(mutate func(u *User)) User {
		u := User{Org: f.org, Type: TypeProgrammatic, Level: LevelAccount, Account: f.act1, Role: RoleViewer, Name: "bot"}
		mutate(&u)
		return u
	}
	existing, _ := f.programmatic(t, nil)
	hook, err := s.CreateWebhook(ctx, Webhook{Org: f.org, URL: "https://x.example/", Events: []string{"*"}, Secret: testSecret}, operator)
	if err != nil {
		t.Fatal(err)
	}
	createUser := func(mutate func(u *User)) error {
		_, err := s.CreateUser(ctx, user(mutate), nil, operator)
		return err
	}
	writers := []struct {
		name, field string
		write       func(v string) error
	}{
		{"organization name", "name", func(v string) error { _, err := s.CreateOrg(ctx, Org{Name: v}, operator); return err }},
		{"account name", "name", func(v string) error {
			_, err := s.CreateAccount(ctx, Account{Org: f.org, Name: v}, operator)
			return err
		}},
		{"user name", "name", func(v string) error { return createUser(func(u *User) { u.Name = v }) }},
		{"user description", "description", func(v string) error { return createUser(func(u *User) { u.Description = v }) }},
		{"UI user email", "email", func(v string) error {
			return createUser(func(u *User) { u.Type, u.Email = TypeUI, "ana"+v+"@example.com" })
		}},
		{"user name, changed", "name", func(v string) error {
			_, err := s.UpdateUser(ctx, f.org, existing.ID, func(u *User) error { u.Name = v; return nil }, operator)
			return err
		}},
		{"user description, changed", "description", func(v string) error {
			_, err := s.UpdateUser(ctx, f.org, existing.ID, func(u *User) error { u.Description = v; return nil }, operator)
			return err
		}},
		{"policy name", "name", func(v string) error {
			_, err := s.CreatePolicy(ctx, Policy{Org: f.org, Name: v, Statements: stmts}, operator)
			return err
		}},
		{"policy description", "description", func(v string) error {
			_, err := s.CreatePolicy(ctx, Policy{Org: f.org, Name: "p", Description: v, Statements: stmts}, operator)
			return err
		}},
		{"policy description, replaced", "description", func(v string) error {
			_, err := s.ReplacePolicy(ctx, f.org, f.polOrg, Policy{Name: "p", Description: v, Statements: stmts}, nil, operator)
			return err
		}},
		{"webhook description", "description", func(v string) error {
			_, err := s.CreateWebhook(ctx, Webhook{Org: f.org, URL: "https://x.example/", Events: []string{"*"}, Description: v, Secret: testSecret}, operator)
			return err
		}},
		{"webhook description, changed", "description", func(v string) error {
			_, err := s.UpdateWebhook(ctx, f.org, hook.ID, WebhookChange{Description: &v}, operator)
			return err
		}},
		{"token name", "name", func(v string) error {
			_, nt := newToken(t, token.Programmatic)
			nt.Token.Org, nt.Token.User, nt.Token.Name = f.org, existing.ID, v
			_, err := s.CreateToken(ctx, nt, nil, operator)
			return err
		}},
		{"imported user name", "name", func(v string) error {
			return s.Import(ctx, []User{user(func(u *User) { u.ID, u.Name = NewUserID(), v })}, nil)
		}},
		{"imported token name", "tokens[0].name", func(v string) error {
			_, nt := newToken(t, token.Programmatic)
			nt.Token.ID, nt.Token.Org, nt.Token.User, nt.Token.Name = NewTokenID(), f.org, existing.ID, v
			return s.Import(ctx, nil, []NewToken{nt})
		}},
	}
	for _, w := range writers {
		t.Run(w.name, func(t *testing.T) {
			for _, bad := range hiddenText {
				err := w.write(bad.text)
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != w.field {
					t.Errorf("%s: got %v, want a refusal naming %s", bad.name, err, w.field)
				}
			}
			fine := fineText
			if w.field == "email" {
				fine = "" // the address is checked as an address
			}
			if err := w.write(fine); err != nil {
				t.Errorf("%q refused: %v", fine, err)
			}
		})
	}
}
