package vm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHasBuildTag(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		body string
		want bool
	}{
		"tagged_test.go":    {"// Copyright\n\n//go:build hwtests\n\npackage x\n", true},
		"and_test.go":       {"//go:build linux && hwtests\n\npackage x\n", true},
		"negated_test.go":   {"//go:build !hwtests\n\npackage x\n", true}, // names the tag; go list with -tags hwtests never lists it
		"plain_test.go":     {"package x\n\n//go:build hwtests\n", false},
		"other_test.go":     {"//go:build linux\n\npackage x\n", false},
		"lookalike_test.go": {"//go:build hwtestsX\n\npackage x\n", false},
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := hasBuildTag(p, BuildTag); err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", name, got, err, tc.want)
		}
	}
}

func TestModulePackage(t *testing.T) {
	t.Parallel()
	m := Module{Path: "github.com/iommu-agent/iommu-agent", Dir: "/src"}
	for in, rel := range map[string]string{
		"./hwtests/vm/smoke": "hwtests/vm/smoke",
		"ioctl/vfio":         "ioctl/vfio",
		"github.com/iommu-agent/iommu-agent/ioctl/iommufd": "ioctl/iommufd",
	} {
		p, err := m.Package(in)
		if err != nil || p.Rel != rel || p.ImportPath != m.Path+"/"+rel {
			t.Errorf("Package(%q) = %+v, %v", in, p, err)
		}
	}
	for _, bad := range []string{"golang.org/x/sys/unix", "", "./"} {
		if p, err := m.Package(bad); err == nil {
			t.Errorf("Package(%q) = %+v, want an error", bad, p)
		}
	}
	if b := (TestPackage{Rel: "hwtests/vm/smoke"}).Binary(); b != "hwtests-vm-smoke.test" {
		t.Errorf("Binary = %q", b)
	}
	p1, p2 := TestPackage{Rel: "a"}, TestPackage{Rel: "b"}
	if got := dedupe([]TestPackage{p1, p2, p1}); !slices.Equal(got, []TestPackage{p1, p2}) {
		t.Errorf("dedupe = %v", got)
	}
}

func TestDiscoverTestPackages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"go.mod":              "module example.com/m\n\ngo 1.26\n",
		"a/a.go":              "package a\n",
		"a/a_test.go":         "//go:build hwtests\n\npackage a\n",
		"b/b.go":              "package b\n",
		"b/b_test.go":         "package b\n",
		"c/doc.go":            "package c\n",
		"c/x_test.go":         "//go:build hwtests\n\npackage c_test\n",
		"d/d.go":              "package d\n",
		"d/d_linux_test.go":   "//go:build hwtests\n\npackage d\n",
		"e/e.go":              "package e\n",
		"e/e_windows_test.go": "//go:build hwtests\n\npackage e\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	mod, err := findModule(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if mod.Path != "example.com/m" {
		t.Fatalf("module %+v", mod)
	}
	pkgs, err := discoverTestPackages(ctx, mod, Lanes()[0])
	if err != nil {
		t.Fatal(err)
	}
	var rels []string
	for _, p := range pkgs {
		rels = append(rels, p.Rel)
	}
	// e's test only builds on windows: the guest is linux.
	if want := []string{"a", "c", "d"}; !slices.Equal(rels, want) {
		t.Errorf("discovered %v, want %v", rels, want)
	}
}

func TestTestArgs(t *testing.T) {
	t.Parallel()
	got := TestArgs([]string{"-run", "TestX", "-count=2", "-v", "-test.short", "-bdf=0000:00:01.0", "--", "-x"})
	want := []string{"-test.run", "TestX", "-test.count=2", "-test.v", "-test.short", "-bdf=0000:00:01.0", "--", "-x"}
	if !slices.Equal(got, want) {
		t.Errorf("TestArgs = %v\nwant %v", got, want)
	}
}

func TestDefaultTestTimeout(t *testing.T) {
	t.Parallel()
	for in, want := range map[time.Duration]time.Duration{
		10 * time.Minute: 9 * time.Minute,
		4 * time.Minute:  3 * time.Minute,
		2 * time.Minute:  90 * time.Second,
	} {
		if got := defaultTestTimeout(in); got != want {
			t.Errorf("defaultTestTimeout(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestCoverageEnabled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want bool
	}{
		{Config{IoctlCoverage: "auto"}, true},
		{Config{IoctlCoverage: "auto", TestArgs: []string{"-test.run=X"}}, false},
		{Config{IoctlCoverage: "auto", Packages: []string{"ioctl/vfio"}}, false},
		{Config{IoctlCoverage: "auto", Variant: VariantCompat}, false},
		{Config{IoctlCoverage: "auto", Variant: VariantStd}, true},
		{Config{IoctlCoverage: "on", TestArgs: []string{"-test.run=X"}}, true},
		{Config{IoctlCoverage: "off"}, false},
	} {
		if got := coverageEnabled(tc.cfg); got != tc.want {
			t.Errorf("coverageEnabled(%+v) = %v", tc.cfg, got)
		}
	}
}

func TestBootError(t *testing.T) {
	t.Parallel()
	ok := BootResult{Stream: StreamResult{InitSeen: true, Verdict: "pass"}}
	if err := bootError(ok, time.Minute); err != nil {
		t.Errorf("clean boot: %v", err)
	}
	failedTests := BootResult{Stream: StreamResult{InitSeen: true, Verdict: "fail 1 of 1 test binaries failed", Counts: Counts{Failed: 1}}}
	if err := bootError(failedTests, time.Minute); err != nil {
		t.Errorf("failing tests are counted, not a boot error: %v", err)
	}
	for name, br := range map[string]BootResult{
		"timeout":    {TimedOut: true, Stream: StreamResult{InitSeen: true}},
		"qemu":       {QEMUErr: errors.New("exit status 1"), Stream: StreamResult{InitSeen: true, Verdict: "pass"}},
		"no init":    {},
		"init error": {Stream: StreamResult{InitSeen: true, Verdict: "fail mounts", InitErrors: []string{"mount 9p"}}},
		"verdict":    {Stream: StreamResult{InitSeen: true, Verdict: "fail rlimit"}},
		"problem":    {Stream: StreamResult{InitSeen: true, Verdict: "pass", Problems: []string{"x"}}},
	} {
		if err := bootError(br, time.Minute); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPhases(t *testing.T) {
	t.Parallel()
	p := newPhases()
	now := time.Unix(0, 0)
	p.now = func() time.Time { return now }
	stop := p.start("download")
	now = now.Add(3 * time.Second)
	stop()
	stop() // once
	if l := p.List(); len(l) != 1 || l[0] != (Phase{Name: "download", Dur: 3 * time.Second}) {
		t.Errorf("phases %+v", l)
	}
	var sb strings.Builder
	WriteTimings(&sb, p.List())
	if !strings.Contains(sb.String(), "download") || !strings.Contains(sb.String(), "3.00s") {
		t.Errorf("timings %q", sb.String())
	}
}

// TestSourceStamp: an edit to any file changes the stamp; .git, and a
// file rewritten with the same contents (a fresh clone), do not.
func TestSourceStamp(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, body string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stamp := func() string {
		t.Helper()
		s, err := sourceStamp(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	write("go.mod", "module m\n")
	write("a/a.go", "package a\n")
	s0 := stamp()
	write(".git/index", "x")
	if s := stamp(); s != s0 {
		t.Errorf("a write under .git changed the stamp")
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "a/a.go"), future, future); err != nil {
		t.Fatal(err)
	}
	if s := stamp(); s != s0 {
		t.Errorf("a new modification time alone changed the stamp")
	}
	write("a/a.go", "package a // edited\n")
	s1 := stamp()
	if s1 == s0 {
		t.Errorf("an edit left the stamp at %s", s0)
	}
	write("ebpf/x.o", "\x7fELF")
	if s := stamp(); s == s1 {
		t.Errorf("a new file left the stamp at %s", s1)
	}
}
