package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeMaxLines is the README's budget: one screen a newcomer reads top to bottom; everything else
// goes to docs/.
const readmeMaxLines = 150

// root is the repository root, two folders above this package.
const root = "../.."

// linkRE matches inline Markdown links and images: [text](target) and ![alt](target). The target
// ends at the first space or closing parenthesis (an optional "title" after a space is ignored).
var linkRE = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// codeSpanRE matches inline code, whose text is not Markdown.
var codeSpanRE = regexp.MustCompile("`[^`]*`")

// links returns the link targets of a Markdown text with their line numbers, skipping fenced code
// blocks and inline code spans.
func links(text string) (targets []string, lines []int) {
	fenced := false
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		line = codeSpanRE.ReplaceAllString(line, "")
		for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
			targets = append(targets, m[1])
			lines = append(lines, i+1)
		}
	}
	return targets, lines
}

// slug is GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors returns the heading anchors of a Markdown file (outside fenced code).
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if !fenced && strings.HasPrefix(line, "#") {
			out[slug(strings.TrimLeft(line, "#"))] = true
		}
	}
	return out
}

// brokenLinks returns one message per relative link of the Markdown file path that does not
// resolve: a missing file or folder, or a "#fragment" that names no heading of its Markdown target.
func brokenLinks(path string) ([]string, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var bad []string
	targets, lines := links(string(text))
	for i, t := range targets {
		if strings.Contains(t, "://") || strings.HasPrefix(t, "mailto:") {
			continue
		}
		file, frag, _ := strings.Cut(t, "#")
		target := path
		if file != "" {
			target = filepath.Join(filepath.Dir(path), filepath.FromSlash(file))
			if _, err := os.Stat(target); err != nil {
				bad = append(bad, fmt.Sprintf("%s:%d: %s: no such file", path, lines[i], t))
				continue
			}
		}
		if frag == "" || !strings.HasSuffix(target, ".md") {
			continue
		}
		body, err := os.ReadFile(target)
		if err != nil {
			return nil, err
		}
		if !anchors(string(body))[frag] {
			bad = append(bad, fmt.Sprintf("%s:%d: %s: no heading #%s in %s", path, lines[i], t, frag, target))
		}
	}
	return bad, nil
}

// markdownFiles returns README.md and every docs/*.md of the repository.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no docs/*.md under %s", root)
	}
	return append([]string{filepath.Join(root, "README.md")}, files...)
}

func TestRelativeLinksResolve(t *testing.T) {
	checked := 0
	for _, f := range markdownFiles(t) {
		bad, err := brokenLinks(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bad {
			t.Error(b)
		}
		checked++
	}
	t.Logf("%d Markdown files checked", checked)
}

func TestReadmeIsOneScreen(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(string(text), "\n")
	if n > readmeMaxLines {
		t.Errorf("README.md has %d lines, more than %d: move the detail into docs/ and link it", n, readmeMaxLines)
	}
}

// TestReadmeLinksEveryDocsPage keeps docs/ reachable: a page nobody links to is a page nobody reads.
func TestReadmeLinksEveryDocsPage(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	targets, _ := links(string(readme))
	linked := map[string]bool{}
	for _, tg := range targets {
		file, _, _ := strings.Cut(tg, "#")
		linked[filepath.Clean(file)] = true
	}
	for _, f := range markdownFiles(t)[1:] {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			t.Fatal(err)
		}
		if !linked[filepath.ToSlash(rel)] {
			t.Errorf("README.md does not link %s", filepath.ToSlash(rel))
		}
	}
}

// The checker itself: a broken file link, a broken anchor and a link inside code must be told apart
// from good ones, or the tests above could pass by finding nothing.
func TestBrokenLinksFindsBrokenOnes(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "other.md"), []byte("# Other page\n\n## Data-parallel scaling (CPU)\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "pic.png"), nil, 0o644))
	page := strings.Join([]string{
		"# Page",
		"[good](other.md) ![img](pic.png) [anchor](other.md#data-parallel-scaling-cpu) [self](#page)",
		"[web](https://example.com/x) `[in code](missing-in-span.md)`",
		"```",
		"[in a fence](missing-in-fence.md)",
		"```",
		"[gone](missing.md) [bad anchor](other.md#nowhere) ![gone img](nope.png)",
	}, "\n")
	path := filepath.Join(dir, "page.md")
	must(os.WriteFile(path, []byte(page), 0o644))
	bad, err := brokenLinks(path)
	must(err)
	want := []string{"missing.md", "other.md#nowhere", "nope.png"}
	if len(bad) != len(want) {
		t.Fatalf("broken links: got %q, want one each for %q", bad, want)
	}
	for i, w := range want {
		if !strings.Contains(bad[i], ":7: "+w+":") {
			t.Errorf("broken link %d: got %q, want line 7, %s", i, bad[i], w)
		}
	}
}
