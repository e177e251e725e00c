package vm

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"go/build/constraint"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
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

// binKeep is how many source states' binaries bin/ keeps: the current
// one and the few before it (another checkout's run, an edit mid-run).
const binKeep = 3

// buildGuestBinaries puts /init and the test binaries into dir, taking
// them from the cache's bin/ entries and building only what is missing.
// make guest boots fifteen times over two architectures, and each boot
// used to relink its binaries (6-13 s of CPU a boot, the go build cache
// keeping only the compiled packages). An entry's key holds the module's
// source stamp and directory, the toolchain, the architecture and the
// build command, so a binary is never older than the sources it is used
// for; lanes that need the same missing binary take turns on its lock.
func buildGuestBinaries(ctx context.Context, cache Cache, mod Module, lane Lane, pkgs []TestPackage, dir string) error {
	env := goEnv(lane)
	stamp, err := sourceStamp(mod.Dir)
	if err != nil {
		return fmt.Errorf("source stamp: %w", err)
	}
	toolchain, err := goCommand(ctx, mod.Dir, env, "env", "GOVERSION", "GOFLAGS", "GOEXPERIMENT", "GOAMD64", "GOARM64")
	if err != nil {
		return err
	}
	type binary struct {
		name, what string
		args       []string // the go command; the output path follows -o
	}
	bins := []binary{{name: "init", what: "guest /init",
		args: []string{"build", "-trimpath", "-ldflags=-s -w", "-o", "", mod.Path + "/hwtests/vm/init"}}}
	for _, p := range pkgs {
		bins = append(bins, binary{name: p.Binary(), what: "test binary " + p.Rel,
			args: []string{"test", "-c", "-tags", BuildTag, "-cover", "-coverpkg=" + mod.Path + "/ioctl/...", "-o", "", p.ImportPath}})
	}
	kind := filepath.Join("bin", stamp)
	errs := make([]error, len(bins))
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i, b := range bins {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			// The module's directory too: the binaries carry its paths.
			key := Key(b.name, mod.Dir, lane.GOARCH, string(toolchain), strings.Join(b.args, " "))
			entry, _, err := cache.Fill(kind, key, func(staging string) error {
				out := filepath.Join(staging, b.name)
				args := slices.Clone(b.args)
				args[slices.Index(args, "-o")+1] = out
				if _, err := goCommand(ctx, mod.Dir, env, args...); err != nil {
					return err
				}
				if _, err := os.Stat(out); err != nil {
					return fmt.Errorf("no tests to build: %w", err)
				}
				return nil
			})
			if err == nil {
				err = linkOrCopy(filepath.Join(entry, b.name), filepath.Join(dir, b.name))
			}
			if err != nil {
				errs[i] = fmt.Errorf("build %s: %w", b.what, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return pruneBinaries(cache, stamp)
}

// sourceStamp names the state of the module's files: a hash of the path,
// mode and contents of every file under dir (dot directories such as .git
// aside). Contents, not modification times: a fresh clone of the same
// commit (what CI builds) finds the binaries the last one linked.
func sourceStamp(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(h, "%d:%s %o;", len(rel), rel, d.Type())
		n, err := io.Copy(h, f)
		fmt.Fprintf(h, ";%d;", n)
		return err
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// pruneBinaries marks bin/<stamp> as used now and removes all but the
// binKeep most recently used source states' binaries.
func pruneBinaries(cache Cache, stamp string) error {
	root := filepath.Join(cache.Dir, "bin")
	now := time.Now()
	if err := os.Chtimes(filepath.Join(root, stamp), now, now); err != nil {
		return err
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	type state struct {
		name string
		used time.Time
	}
	var states []state
	for _, e := range ents {
		if info, err := e.Info(); err == nil && e.IsDir() {
			states = append(states, state{e.Name(), info.ModTime()})
		}
	}
	slices.SortFunc(states, func(a, b state) int { return b.used.Compare(a.used) })
	var errs []error
	for _, st := range states[min(binKeep, len(states)):] {
		errs = append(errs, os.RemoveAll(filepath.Join(root, st.name)))
		locks, _ := filepath.Glob(filepath.Join(cache.Dir, "locks", sanitize("bin/"+st.name)+"-*.lock"))
		for _, l := range locks {
			// Lanes side by side prune the same states.
			if err := os.Remove(l); !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// linkOrCopy makes dst a hard link to src, or a copy where the two
// cannot share an inode.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
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
