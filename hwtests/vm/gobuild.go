package vm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"go/build/constraint"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// BuildTag marks test files that need the real kernel.
const BuildTag = "hwtests"

// goEnv is the environment for building guest binaries: static, for the
// lane's architecture.
func goEnv(lane Lane) []string {
	return append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+lane.GOARCH)
}

// TestPackage is a package whose hwtests-tagged tests run in the guest.
type TestPackage struct {
	ImportPath string
	Rel        string // relative to the module root, e.g. hwtests/vm/smoke
}

// Binary is the test binary's file name: the relative path with / → -.
func (p TestPackage) Binary() string {
	return strings.ReplaceAll(p.Rel, "/", "-") + ".test"
}

// discoverTestPackages lists the module's packages that have _test.go
// files carrying the hwtests build tag.
func discoverTestPackages(ctx context.Context, mod Module, lane Lane) ([]TestPackage, error) {
	out, err := goCommand(ctx, mod.Dir, goEnv(lane), "list", "-tags", BuildTag,
		"-f", `{{.ImportPath}}{{"\t"}}{{.Dir}}{{"\t"}}{{join .TestGoFiles ","}},{{join .XTestGoFiles ","}}`, "./...")
	if err != nil {
		return nil, err
	}
	var pkgs []TestPackage
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		tagged := false
		for _, name := range strings.Split(f[2], ",") {
			if name == "" {
				continue
			}
			ok, err := hasBuildTag(filepath.Join(f[1], name), BuildTag)
			if err != nil {
				return nil, err
			}
			tagged = tagged || ok
		}
		if tagged {
			p, err := mod.Package(f[0])
			if err != nil {
				return nil, err
			}
			pkgs = append(pkgs, p)
		}
	}
	return pkgs, nil
}

// hasBuildTag reports whether file's //go:build line names tag.
func hasBuildTag(file, tag string) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "package ") {
			return false, nil // constraints only come before the package clause
		}
		if !constraint.IsGoBuild(line) {
			continue
		}
		expr, err := constraint.Parse(line)
		if err != nil {
			return false, fmt.Errorf("%s: %w", file, err)
		}
		found := false
		expr.Eval(func(t string) bool {
			found = found || t == tag
			return true
		})
		return found, nil
	}
	return false, sc.Err()
}

// Module is the Go module under test.
type Module struct {
	Path string // github.com/iommu-agent/iommu-agent
	Dir  string // its root directory
}

// findModule asks the go command for the main module.
func findModule(ctx context.Context, dir string) (Module, error) {
	out, err := goCommand(ctx, dir, nil, "list", "-m", "-f", "{{.Path}}\t{{.Dir}}")
	if err != nil {
		return Module{}, err
	}
	path, d, ok := strings.Cut(strings.TrimSpace(string(out)), "\t")
	if !ok || strings.Contains(d, "\n") {
		return Module{}, fmt.Errorf("go list -m: unexpected output %q (run inside the module)", out)
	}
	return Module{Path: path, Dir: d}, nil
}

// Package resolves an import path or a module-relative path ("./ioctl/x",
// "ioctl/x") to a TestPackage.
func (m Module) Package(p string) (TestPackage, error) {
	p = strings.TrimPrefix(filepath.ToSlash(p), "./")
	rel, ok := strings.CutPrefix(p, m.Path+"/")
	if !ok {
		if strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
			return TestPackage{}, fmt.Errorf("package %s is not in module %s", p, m.Path)
		}
		rel = p
	}
	if rel == "" || rel == m.Path {
		return TestPackage{}, errors.New("the module root has no test package name")
	}
	return TestPackage{ImportPath: m.Path + "/" + rel, Rel: rel}, nil
}

// buildGuestBinaries builds /init and the test binaries into dir.
func buildGuestBinaries(ctx context.Context, mod Module, lane Lane, pkgs []TestPackage, dir string) error {
	env := goEnv(lane)
	if _, err := goCommand(ctx, mod.Dir, env, "build", "-trimpath", "-ldflags=-s -w",
		"-o", filepath.Join(dir, "init"), mod.Path+"/hwtests/vm/init"); err != nil {
		return fmt.Errorf("build guest /init: %w", err)
	}
	for _, p := range pkgs {
		if _, err := goCommand(ctx, mod.Dir, env, "test", "-c", "-tags", BuildTag,
			"-cover", "-coverpkg="+mod.Path+"/ioctl/...",
			"-o", filepath.Join(dir, p.Binary()), p.ImportPath); err != nil {
			return fmt.Errorf("build test binary %s: %w", p.Rel, err)
		}
		if _, err := os.Stat(filepath.Join(dir, p.Binary())); err != nil {
			return fmt.Errorf("%s has no tests to build: %w", p.Rel, err)
		}
	}
	return nil
}

// goCommand runs the go tool that runs us.
func goCommand(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	return commandEnv(ctx, dir, env, goTool(), args...)
}

// goTool finds the go command: $GOROOT/bin/go of the toolchain that
// `go run` used, else the one on PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// dedupe keeps the first of equal packages.
func dedupe(pkgs []TestPackage) []TestPackage {
	var out []TestPackage
	for _, p := range pkgs {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
