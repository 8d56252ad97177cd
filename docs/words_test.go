package docs_test

import (
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// doubled finds a word written twice in a row, one space or one line
// break between ("the the"): more space than that is layout (a flag's
// column, markup's indentation); a word joined to the next by "-" is a
// name (class="method method-get").
var doubled = regexp.MustCompile(`\b([A-Za-z]+)(?: |\n[ \t]*)([A-Za-z]+)\b([^-_$]|$)`)

func doubledWords(text string) []string {
	var found []string
	for i := 0; i < len(text); {
		m := doubled.FindStringSubmatchIndex(text[i:])
		if m == nil {
			break
		}
		a, b := text[i+m[2]:i+m[3]], text[i+m[4]:i+m[5]]
		// "--org ORG" names a flag's value; a doubled word is written
		// alike, or capitalized at the start of a sentence.
		if len(a) > 1 && strings.ToLower(a) == b || a == b && strings.ToUpper(a) != a {
			found = append(found, a+" "+b)
		}
		i += m[4] // the second word may begin the next pair
	}
	return found
}

var (
	codeBlock  = regexp.MustCompile("(?ms)^[ \t]*```.*?^[ \t]*```")
	codeSpan   = regexp.MustCompile("`[^`]*`")
	markup     = regexp.MustCompile(`(?s)<code>.*?</code>|<[^>]*>`)
	jsLiterals = regexp.MustCompile("\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|`[^`]*`")
)

// prose is what a reader of a file reads: Markdown without its code, HTML
// without its markup, the string literals of a script.
func prose(path, src string) string {
	switch filepath.Ext(path) {
	case ".md":
		return codeSpan.ReplaceAllString(codeBlock.ReplaceAllString(src, ""), "")
	case ".html":
		return markup.ReplaceAllString(src, " ")
	case ".js":
		return strings.Join(jsLiterals.FindAllString(src, -1), "\n")
	}
	return src
}

// TestNoDoubledWords: no message, page or document says a word twice in a
// row: the string literals of the Go code (what the gateway, the API and
// the command line say), the console's pages and scripts, and the
// documentation.
func TestNoDoubledWords(t *testing.T) {
	check := func(where, text string) {
		t.Helper()
		for _, d := range doubledWords(text) {
			t.Errorf("%s: %q", where, d)
		}
	}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == "node_modules" || name == "testdata" || (strings.HasPrefix(name, ".") && name != "..") {
				return filepath.SkipDir
			}
			return nil
		}
		switch ext := filepath.Ext(path); {
		case ext == ".go" && !strings.HasSuffix(path, "_test.go"):
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			fset := token.NewFileSet()
			var s scanner.Scanner
			s.Init(fset.AddFile(path, -1, len(src)), src, nil, 0)
			for {
				pos, tok, lit := s.Scan()
				if tok == token.EOF {
					break
				}
				if tok == token.STRING {
					check(fset.Position(pos).String(), lit)
				}
			}
		case ext == ".md" || strings.HasPrefix(path, "../admin/console/"):
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			check(path, prose(path, string(src)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
