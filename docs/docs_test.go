// Package docs_test checks the documentation: every relative link leads to
// a file that exists (and to a heading it has), and every code block
// fenced as caddyfile adapts. Fragments of a Caddyfile are fenced as
// caddy-d, as Caddy's own documentation does. It also reads what the
// product says — documents, console pages, the code's messages — for a
// word written twice (words_test.go).
package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/tokengate"
)

// pages are the documentation's Markdown files, from the repository root.
func pages(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"../README.md", "../CHANGELOG.md"}, docs...)
}

var (
	link    = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	fence   = regexp.MustCompile("(?ms)^[ \t]*```([a-z-]*)\n(.*?)^[ \t]*```")
)

// slug is a heading's anchor as GitHub makes it.
func slug(h string) string {
	h = strings.ToLower(strings.ReplaceAll(h, "`", ""))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func anchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(string(body), -1) {
		out[slug(m[1])] = true
	}
	return out
}

// TestRelativeLinks: every relative link names a file that exists, and an
// anchor names a heading of the page it leads to.
func TestRelativeLinks(t *testing.T) {
	checked := 0
	for _, page := range pages(t) {
		body, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		text := fence.ReplaceAllString(string(body), "") // code is not links
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			file := page
			if path != "" {
				file = filepath.Join(filepath.Dir(page), path)
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s: link to %s: %v", page, target, err)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(file, ".md") && !anchors(t, file)[anchor] {
				t.Errorf("%s: link to %s: no such heading", page, target)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Fatalf("only %d links checked", checked)
	}
}

// TestCaddyfilesAdapt: every block fenced as caddyfile adapts.
func TestCaddyfilesAdapt(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	checked := 0
	for _, page := range pages(t) {
		body, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range fence.FindAllStringSubmatch(string(body), -1) {
			if m[1] != "caddyfile" {
				continue
			}
			if _, _, err := adapter.Adapt([]byte(m[2]), map[string]any{"filename": page}); err != nil {
				t.Errorf("%s: a Caddyfile that does not adapt: %v\n%s", page, err, m[2])
			}
			checked++
		}
	}
	if checked < 3 {
		t.Fatalf("only %d Caddyfiles checked", checked)
	}
}
