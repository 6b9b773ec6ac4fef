package fiberdb_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadmeSnippetsCompile keeps README.md's code in files that CI
// compiles (issue 13: the Quick start did not compile as written).
//
// Every ```go block of README.md must be in a .go file of this module:
//   - a block with a package clause is a whole file, byte for byte (the
//     Quick start is examples/quickstart/main.go, its test todos_test.go);
//   - any other block must appear, as consecutive lines, in some .go file
//     (an Example function in examples/snippets/example_test.go, a test, a
//     program in examples/…), indented as you like: leading whitespace is
//     ignored line by line.
//
// A ```yaml block whose first line is "# <name>" must equal a file called
// <name> under examples/ (the Quick start's examples/quickstart/fiberdb.yaml).
//
// To add a snippet: write it in README.md, put the same lines in a function
// that compiles (examples/snippets/example_test.go is the usual home), and
// run `go test -run ReadmeSnippets .`. Edit the README and that file
// together.
func TestReadmeSnippetsCompile(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	sources := moduleFiles(t, ".go")
	yamls := moduleFiles(t, ".yaml")

	blocks := fencedBlocks(string(readme))
	require.NotEmpty(t, blocks)
	var goBlocks int
	for _, b := range blocks {
		switch b.lang {
		case "go":
			goBlocks++
			if isWholeFile(b.text) {
				if !hasWholeFile(sources, b.text) {
					t.Errorf("README.md:%d: this file is not byte-identical to any .go file of the module (the Quick start is examples/quickstart/main.go)", b.line)
				}
				continue
			}
			if !containsLines(sources, b.text) {
				t.Errorf("README.md:%d: this ```go block is in no .go file of the module; put the same lines in a function that compiles, e.g. in examples/snippets/example_test.go:\n%s", b.line, b.text)
			}
		case "yaml":
			first, _, _ := strings.Cut(b.text, "\n")
			name, ok := strings.CutPrefix(first, "# ")
			if !ok || strings.ContainsAny(name, " :") {
				continue
			}
			var found bool
			for path, text := range yamls {
				found = found || (strings.HasPrefix(path, "examples/") && filepath.Base(path) == name && text == b.text)
			}
			if !found {
				t.Errorf("README.md:%d: this block differs from examples/…/%s", b.line, name)
			}
		}
	}
	require.GreaterOrEqual(t, goBlocks, 5, "the README's Go blocks were found")
}

type fenced struct {
	lang, text string
	line       int // of the opening fence, 1-based
}

var fence = regexp.MustCompile("^([ \t]*)```(\\w*)\\s*$")

// fencedBlocks returns the fenced code blocks of markdown, each with the
// indentation of its fence removed from its lines.
func fencedBlocks(markdown string) []fenced {
	var (
		blocks []fenced
		cur    *fenced
		indent string
		body   strings.Builder
	)
	for i, line := range strings.Split(markdown, "\n") {
		m := fence.FindStringSubmatch(line)
		switch {
		case cur == nil && m != nil:
			cur, indent = &fenced{lang: m[2], line: i + 1}, m[1]
			body.Reset()
		case cur != nil && m != nil && m[2] == "":
			cur.text = body.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(strings.TrimPrefix(line, indent) + "\n")
		}
	}
	return blocks
}

// moduleFiles reads the module's files ending in ext, by slash path.
func moduleFiles(t *testing.T, ext string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ext) {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files[filepath.ToSlash(path)] = string(b)
		}
		return nil
	})
	require.NoError(t, err)
	return files
}

// isWholeFile reports whether a Go block holds a package clause: its first
// line that is neither blank nor a comment starts with "package ".
func isWholeFile(text string) bool {
	for line := range strings.Lines(text) {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		return strings.HasPrefix(line, "package ")
	}
	return false
}

func hasWholeFile(sources map[string]string, text string) bool {
	for _, src := range sources {
		if src == text {
			return true
		}
	}
	return false
}

// containsLines reports whether some source holds text's lines
// consecutively, ignoring each line's leading and trailing whitespace.
func containsLines(sources map[string]string, text string) bool {
	want := trimmedLines(text)
	for _, src := range sources {
		if bytes.Contains([]byte(trimmedLines(src)), []byte(want)) {
			return true
		}
	}
	return false
}

func trimmedLines(s string) string {
	var b strings.Builder
	b.WriteByte('\n')
	for line := range strings.Lines(s) {
		b.WriteString(strings.TrimSpace(line))
		b.WriteByte('\n')
	}
	return b.String()
}
