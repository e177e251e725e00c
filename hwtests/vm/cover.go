package vm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ioctlCallNames are the raw package's call sites; a function calling one
// of them issues an ioctl.
func ioctlCallNames() []string { return []string{"Ioctl", "IoctlRet", "IoctlValue"} }

// IoctlWrapper is a function or method that issues an ioctl.
type IoctlWrapper struct {
	Pkg        string // package name, e.g. iommufd
	ImportPath string
	Func       string // "(*FD).MapFile", "Open"
	Calls      []IoctlCall
}

// Name is how failures name the wrapper: iommufd.(*FD).MapFile.
func (w IoctlWrapper) Name() string { return w.Pkg + "." + w.Func }

// IoctlCall is one raw.Ioctl* call (or a call to a same-package helper
// that passes its request argument on to one).
type IoctlCall struct {
	Request string // the request expression, e.g. IOMMU_IOAS_MAP_FILE
	File    string // import-path form, as in coverage profiles
	Line    int
	Col     int
}

// ScanIoctlWrappers finds, in the packages under dirs (relative to the
// module root, subdirectories included), every function whose body calls
// raw.Ioctl, raw.IoctlRet or raw.IoctlValue. A function that passes one of
// its own parameters as the request is a helper: its callers in the same
// package count as wrappers instead, with the request they pass. Files are
// selected as a linux/goarch, cgo-less build would select them; tests are
// skipped. Missing dirs are fine: nothing to check.
func ScanIoctlWrappers(mod Module, goarch string, dirs []string) ([]IoctlWrapper, error) {
	bctx := build.Default
	bctx.GOOS, bctx.GOARCH, bctx.CgoEnabled = "linux", goarch, false
	rawPath := mod.Path + "/ioctl/internal/raw"
	var out []IoctlWrapper
	for _, d := range dirs {
		root := filepath.Join(mod.Dir, d)
		if _, err := os.Stat(root); os.IsNotExist(err) {
			continue
		}
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.IsDir() {
				return nil
			}
			if p != root && (e.Name() == "testdata" || strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "_")) {
				return filepath.SkipDir
			}
			rel, err := filepath.Rel(mod.Dir, p)
			if err != nil {
				return err
			}
			ws, err := scanPackage(bctx, p, mod.Path+"/"+filepath.ToSlash(rel), rawPath)
			out = append(out, ws...)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func scanPackage(bctx build.Context, dir, importPath, rawPath string) ([]IoctlWrapper, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	type fn struct {
		decl    *ast.FuncDecl
		pkg     string          // package clause name
		file    string          // import-path form
		rawName string          // local name of the raw package in its file
		imports map[string]bool // package names imported by its file
	}
	var fns []fn
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		if ok, err := bctx.MatchFile(dir, n); err != nil || !ok {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		imports := map[string]bool{}
		for _, im := range f.Imports {
			if p, err := strconv.Unquote(im.Path.Value); err == nil {
				imports[importName(f, p)] = true
			}
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
				fns = append(fns, fn{decl: fd, pkg: f.Name.Name, file: importPath + "/" + n, rawName: importName(f, rawPath), imports: imports})
			}
		}
	}

	// helpers maps a helper (key from helperKey) to the index of the
	// parameter it passes on as the request.
	helpers := map[string]int{}
	// requestArg returns the request argument of call if it issues an
	// ioctl: raw.Ioctl* directly, or a same-package helper. caller's
	// parameters shadow same-named helper functions.
	requestArg := func(x fn, params []string, call *ast.CallExpr) (ast.Expr, bool) {
		if x.rawName != "" && isPkgCall(call, x.rawName, ioctlCallNames()) {
			if len(call.Args) >= 2 {
				return call.Args[1], true
			}
			return nil, false
		}
		var key string
		switch f := call.Fun.(type) {
		case *ast.Ident:
			if slices.Contains(params, f.Name) {
				return nil, false
			}
			key = helperKey(false, f.Name)
		case *ast.SelectorExpr:
			if id, ok := f.X.(*ast.Ident); ok && x.imports[id.Name] {
				return nil, false // another package's function
			}
			key = helperKey(true, f.Sel.Name)
		default:
			return nil, false
		}
		idx, ok := helpers[key]
		if !ok || idx >= len(call.Args) {
			return nil, false
		}
		return call.Args[idx], true
	}
	// A function that passes one of its parameters as the request (to raw
	// or to a helper) is a helper itself; iterate until nothing changes.
	for changed := true; changed; {
		changed = false
		for _, x := range fns {
			key := helperKey(x.decl.Recv != nil, x.decl.Name.Name)
			if _, done := helpers[key]; done {
				continue
			}
			params := paramNames(x.decl)
			ast.Inspect(x.decl.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				req, ok := requestArg(x, params, call)
				if id, isIdent := req.(*ast.Ident); ok && isIdent && slices.Contains(params, id.Name) {
					if _, done := helpers[key]; !done {
						helpers[key] = slices.Index(params, id.Name)
						changed = true
					}
				}
				return true
			})
		}
	}
	var out []IoctlWrapper
	for _, x := range fns {
		if _, isHelper := helpers[helperKey(x.decl.Recv != nil, x.decl.Name.Name)]; isHelper {
			// Plumbing: its callers are checked with the request they
			// pass, and it runs whenever one of them does.
			continue
		}
		w := IoctlWrapper{Pkg: x.pkg, ImportPath: importPath, Func: funcName(x.decl)}
		params := paramNames(x.decl)
		ast.Inspect(x.decl.Body, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if req, ok := requestArg(x, params, call); ok {
					w.Calls = append(w.Calls, newCall(fset, x.file, call, req))
				}
			}
			return true
		})
		if len(w.Calls) > 0 {
			out = append(out, w)
		}
	}
	return out, nil
}

// helperKey names a helper: methods and functions are kept apart, so a
// method call x.call(...) never matches a function call(...).
func helperKey(method bool, name string) string {
	if method {
		return "." + name
	}
	return name
}

func newCall(fset *token.FileSet, file string, call *ast.CallExpr, req ast.Expr) IoctlCall {
	pos := fset.Position(call.Pos())
	r := types.ExprString(req)
	if sel, ok := req.(*ast.SelectorExpr); ok {
		r = sel.Sel.Name // uapi.IOMMU_IOAS_MAP → IOMMU_IOAS_MAP
	}
	return IoctlCall{Request: r, File: file, Line: pos.Line, Col: pos.Column}
}

// importName is the local name of path in f ("" if not imported).
func importName(f *ast.File, path string) string {
	for _, im := range f.Imports {
		p, err := strconv.Unquote(im.Path.Value)
		if err != nil || p != path {
			continue
		}
		if im.Name != nil {
			return im.Name.Name
		}
		return path[strings.LastIndex(path, "/")+1:]
	}
	return ""
}

func isPkgCall(call *ast.CallExpr, pkg string, names []string) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg && slices.Contains(names, sel.Sel.Name)
}

func paramNames(fd *ast.FuncDecl) []string {
	var names []string
	for _, field := range fd.Type.Params.List {
		if len(field.Names) == 0 {
			names = append(names, "_")
		}
		for _, n := range field.Names {
			names = append(names, n.Name)
		}
	}
	return names
}

// funcName gives Open, (*FD).Map or FD.String; type parameters are dropped.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	ptr := false
	if s, ok := t.(*ast.StarExpr); ok {
		ptr, t = true, s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	name := types.ExprString(t)
	if ptr {
		return "(*" + name + ")." + fd.Name.Name
	}
	return name + "." + fd.Name.Name
}

// coverBlock is one line of a text coverage profile.
type coverBlock struct {
	file                                 string
	startLine, startCol, endLine, endCol int
	count                                int
}

// parseProfile reads `go tool covdata textfmt` output.
func parseProfile(r io.Reader) ([]coverBlock, error) {
	var blocks []coverBlock
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "mode:") {
			continue
		}
		// file:l1.c1,l2.c2 nstmt count; the file may contain ':'.
		i := strings.LastIndex(line, ":")
		if i < 0 {
			return nil, fmt.Errorf("bad profile line %q", line)
		}
		var b coverBlock
		var nstmt int
		b.file = line[:i]
		if _, err := fmt.Sscanf(line[i+1:], "%d.%d,%d.%d %d %d", &b.startLine, &b.startCol, &b.endLine, &b.endCol, &nstmt, &b.count); err != nil {
			return nil, fmt.Errorf("bad profile line %q: %w", line, err)
		}
		blocks = append(blocks, b)
	}
	return blocks, sc.Err()
}

// executed reports whether the coverage block holding the call ran.
// Blocks from several binaries may repeat; any positive count wins.
func executed(blocks []coverBlock, c IoctlCall) bool {
	for _, b := range blocks {
		if b.file != c.File || b.count == 0 {
			continue
		}
		after := c.Line > b.startLine || (c.Line == b.startLine && c.Col >= b.startCol)
		before := c.Line < b.endLine || (c.Line == b.endLine && c.Col <= b.endCol)
		if after && before {
			return true
		}
	}
	return false
}

// coverageCheck is the ioctl coverage verdict per wrapper.
type coverageCheck struct {
	Wrapper IoctlWrapper
	Issued  bool
}

// checkIoctlCoverage says, for each wrapper, whether any of its ioctl
// calls ran in the guest.
func checkIoctlCoverage(ws []IoctlWrapper, blocks []coverBlock) []coverageCheck {
	var out []coverageCheck
	for _, w := range ws {
		ok := slices.ContainsFunc(w.Calls, func(c IoctlCall) bool { return executed(blocks, c) })
		out = append(out, coverageCheck{Wrapper: w, Issued: ok})
	}
	return out
}

// writeCoverageTest reports the checks as go test -v output of one test,
// TestIoctlCoverage, with a subtest per wrapper.
func writeCoverageTest(w io.Writer, checks []coverageCheck) {
	const name = "TestIoctlCoverage"
	fmt.Fprintf(w, "=== RUN   %s\n", name)
	failed := false
	for _, c := range checks {
		sub := name + "/" + c.Wrapper.Name()
		fmt.Fprintf(w, "=== RUN   %s\n", sub)
		if c.Issued {
			fmt.Fprintf(w, "    --- PASS: %s (0.00s)\n", sub)
			continue
		}
		failed = true
		var reqs []string
		for _, call := range c.Wrapper.Calls {
			if !slices.Contains(reqs, call.Request) {
				reqs = append(reqs, call.Request)
			}
		}
		fmt.Fprintf(w, "    --- FAIL: %s (%s never issued in the guest)\n", sub, strings.Join(reqs, ", "))
	}
	status := "PASS"
	if failed {
		status = "FAIL"
	}
	fmt.Fprintf(w, "--- %s: %s (0.00s)\n", status, name)
}

// coverageDirs are the packages whose ioctls must all run in the guest.
func coverageDirs() []string { return []string{"ioctl/iommufd", "ioctl/vfio"} }

// mergeCoverage turns the guest's GOCOVERDIR into a text profile. An
// empty or missing directory gives an empty profile.
func mergeCoverage(ctx context.Context, coverDir, outFile string) ([]coverBlock, error) {
	ents, err := os.ReadDir(coverDir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(ents) == 0) {
		return nil, nil // no data: nothing ran, every wrapper fails
	}
	if err != nil {
		return nil, err
	}
	if _, err := goCommand(ctx, "", nil, "tool", "covdata", "textfmt", "-i="+coverDir, "-o="+outFile); err != nil {
		return nil, err
	}
	f, err := os.Open(outFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseProfile(f)
}
