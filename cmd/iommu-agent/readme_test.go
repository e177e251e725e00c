//go:build !hwtests

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README points only at files the repository has: a newcomer follows
// every path it names.
func TestReadmeLinksStayInRepo(t *testing.T) {
	t.Parallel()
	const root = "../.."
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, bad := range []string{"../", "/work/", "shared/"} {
		if strings.Contains(text, bad) {
			t.Errorf("README mentions %q, outside the repository", bad)
		}
	}
	// Any file name ending in .md, and every backquoted path under one of
	// the repository's top-level directories.
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`[A-Za-z0-9_./-]+\.md\b`).FindAllString(text, -1) {
		seen[strings.TrimPrefix(m, "/usr/share/doc/iommu-agent/")] = true
	}
	tops, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("`([^`\\s]+)`").FindAllStringSubmatch(text, -1) {
		p := strings.TrimPrefix(m[1], "./")
		for _, top := range tops {
			if top.IsDir() && strings.HasPrefix(p, top.Name()+"/") {
				seen[strings.TrimSuffix(p, "/")] = true
			}
		}
	}
	if len(seen) < 10 {
		t.Fatalf("found only %d paths in the README: the test no longer reads it right", len(seen))
	}
	for p := range seen {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("README names %s, which the repository does not have", p)
		}
	}
}

// The README opens with the two commands, and says what the second needs;
// make test prepares the host itself when a tool is missing.
func TestReadmeFirstCommands(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "```sh\n")
	block, after, _ := strings.Cut(rest, "```")
	lines := strings.Split(strings.TrimSpace(block), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "go run ./cmd/iommu-agent demo") || !strings.HasPrefix(lines[1], "make test") {
		t.Errorf("the README's first commands are not demo and make test:\n%s", block)
	}
	para, _, _ := strings.Cut(after, "```")
	for _, want := range []string{"root", "Debian 12 (bookworm)", "Go module proxy", "Debian's mirror", "setup-host", "minutes"} {
		if !strings.Contains(para, want) {
			t.Errorf("what make test needs does not say %q", want)
		}
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^TEST_STEPS := host `).Match(mk) || !strings.Contains(string(mk), "bash hwtests/vm/setup-host") {
		t.Error("make test does not run the host setup first")
	}
}

// Neither the code nor its comments point at notes the repository does not
// ship (the README pointed at one).
func TestNoPointersOutsideRepo(t *testing.T) {
	t.Parallel()
	// Spelled in pieces, so this file does not match itself.
	bad := []string{"vm-" + "recipe", "vm-" + "guest-tools", "../" + "shared", "/work/" + "shared", "uapi" + ".md", "perf-" + "ebpf.md", "k8s-" + "recipe"}
	err := filepath.WalkDir("../..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err != nil || fi.Size() > 1<<20 { // a built binary, not a source
			return err
		}
		switch filepath.Ext(p) {
		case ".go", ".md", ".c", ".h", ".txtar", ".service", ".json", ".sh", "":
		default:
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, s := range bad {
			if strings.Contains(string(b), s) {
				t.Errorf("%s mentions %s, which the repository does not have", strings.TrimPrefix(p, "../../"), s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
