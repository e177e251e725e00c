package vm

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeModule writes a small module with ioctl wrappers in the shapes the
// real packages use: direct raw calls, a request-passing helper (method
// and function), a helper chain, a closure, an escape hatch, a shadowing
// parameter, a non-linux file and a test file.
func fakeModule(t *testing.T) Module {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.26\n",
		"ioctl/iommufd/fd.go": `//go:build linux

package iommufd

import (
	"fmt"
	"unsafe"

	"example.com/m/ioctl/internal/raw"
	"example.com/m/ioctl/uapi"
)

type FD struct{ raw *raw.FD }

// call is the helper every typed method goes through.
func (fd *FD) call(req uintptr, arg unsafe.Pointer) error {
	return raw.Ioctl(fd.raw, req, arg)
}

// Ioctl is the escape hatch: the request is the caller's.
func (fd *FD) Ioctl(req uintptr, arg []byte) error {
	return raw.Ioctl(fd.raw, req, unsafe.Pointer(&arg[0]))
}

func (fd *FD) Map() error {
	var a uapi.Map
	return fd.call(uapi.IOMMU_IOAS_MAP, unsafe.Pointer(&a))
}

func (fd *FD) MapFile() error {
	var a uapi.Map
	if err := fd.call(uapi.IOMMU_IOAS_MAP_FILE, unsafe.Pointer(&a)); err != nil {
		return err
	}
	return nil
}

func (fd *FD) Destroy(id uint32) error {
	return raw.Ioctl(fd.raw, uapi.IOMMU_DESTROY, unsafe.Pointer(&id))
}

func (fd *FD) hwInfo() error {
	return info(func(p unsafe.Pointer) error {
		return fd.call(uapi.IOMMU_GET_HW_INFO, p)
	})
}

// info takes a function named like the helper method: not an ioctl.
func info(call func(unsafe.Pointer) error) error {
	var x int
	return call(unsafe.Pointer(&x))
}
`,
		"ioctl/iommufd/other_windows.go": `package iommufd

import "example.com/m/ioctl/internal/raw"

func (fd *FD) WindowsOnly() { _ = raw.Ioctl(nil, 1, nil) }
`,
		"ioctl/iommufd/fd_test.go": `package iommufd

import "example.com/m/ioctl/internal/raw"

func helperInTest() { _, _ = raw.IoctlRet(nil, 2, nil) }
`,
		"ioctl/vfio/call.go": `package vfio

import (
	"fmt"
	r "example.com/m/ioctl/internal/raw"
	"example.com/m/ioctl/uapi"
)

func ioctlBuf(fd *r.FD, req uintptr, buf []byte) (int, error) { return r.IoctlRet(fd, req, nil) }

func escapeHatch(fd *r.FD, req uintptr, arg []byte) (int, error) { return ioctlBuf(fd, req, arg) }

type Container struct{ fd *r.FD }

func (c *Container) Ioctl(req uintptr, arg []byte) (int, error) { return escapeHatch(c.fd, req, arg) }

func (c *Container) APIVersion() (int, error) { return r.IoctlValue(c.fd, uapi.VFIO_GET_API_VERSION, 0) }

func (c *Container) SetIOMMU(t uintptr) error {
	_, err := ioctlBuf(c.fd, uapi.VFIO_SET_IOMMU, nil)
	return err
}

type Group[T any] struct{ fd *r.FD }

func (g Group[T]) Status() error {
	_, err := r.IoctlRet(g.fd, uapi.VFIO_GROUP_GET_STATUS, nil)
	return err
}

func NotAnIoctl() int { return len("x") }
`,
		"ioctl/vfio/testdata/ignored.go": `package ignored

import "example.com/m/ioctl/internal/raw"

func X() { _ = raw.Ioctl(nil, 3, nil) }
`,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Module{Path: "example.com/m", Dir: dir}
}

func TestScanIoctlWrappers(t *testing.T) {
	t.Parallel()
	mod := fakeModule(t)
	ws, err := ScanIoctlWrappers(mod, "amd64", append(coverageDirs(), "ioctl/missing"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, w := range ws {
		for _, c := range w.Calls {
			got[w.Name()] = append(got[w.Name()], c.Request)
			if !strings.HasPrefix(c.File, w.ImportPath+"/") || c.Line == 0 {
				t.Errorf("%s: call position %+v", w.Name(), c)
			}
		}
	}
	want := map[string][]string{
		"iommufd.(*FD).Map":            {"IOMMU_IOAS_MAP"},
		"iommufd.(*FD).MapFile":        {"IOMMU_IOAS_MAP_FILE"},
		"iommufd.(*FD).Destroy":        {"IOMMU_DESTROY"},
		"iommufd.(*FD).hwInfo":         {"IOMMU_GET_HW_INFO"},
		"vfio.(*Container).APIVersion": {"VFIO_GET_API_VERSION"},
		"vfio.(*Container).SetIOMMU":   {"VFIO_SET_IOMMU"},
		"vfio.Group.Status":            {"VFIO_GROUP_GET_STATUS"},
	}
	if len(got) != len(want) {
		t.Errorf("wrappers %v\nwant %v", got, want)
	}
	for name, reqs := range want {
		if !slices.Equal(got[name], reqs) {
			t.Errorf("%s: requests %v, want %v", name, got[name], reqs)
		}
	}
	if ws, err := ScanIoctlWrappers(Module{Path: "example.com/none", Dir: t.TempDir()}, "amd64", coverageDirs()); err != nil || len(ws) != 0 {
		t.Errorf("no ioctl packages: %v, %v (want nothing to check)", ws, err)
	}
}

func TestIoctlcoverageCheck(t *testing.T) {
	t.Parallel()
	mod := fakeModule(t)
	ws, err := ScanIoctlWrappers(mod, "amd64", coverageDirs())
	if err != nil {
		t.Fatal(err)
	}
	find := func(name string) IoctlCall {
		for _, w := range ws {
			if w.Name() == name {
				return w.Calls[0]
			}
		}
		t.Fatalf("no wrapper %s", name)
		return IoctlCall{}
	}
	m := find("iommufd.(*FD).Map")
	d := find("iommufd.(*FD).Destroy")
	mf := find("iommufd.(*FD).MapFile")
	var prof strings.Builder
	prof.WriteString("mode: set\n")
	// Map's block ran; Destroy's block is listed twice (two binaries),
	// once with a count; MapFile's block did not run.
	for _, l := range []string{
		blockLine(m.File, m.Line-1, 1, m.Line+1, 2, 1),
		blockLine(d.File, d.Line, 2, d.Line, 60, 0),
		blockLine(d.File, d.Line, 2, d.Line, 60, 3),
		blockLine(mf.File, mf.Line, 2, mf.Line, 70, 0),
	} {
		prof.WriteString(l)
	}
	blocks, err := parseProfile(strings.NewReader(prof.String()))
	if err != nil {
		t.Fatal(err)
	}
	issued := map[string]bool{}
	for _, c := range checkIoctlCoverage(ws, blocks) {
		issued[c.Wrapper.Name()] = c.Issued
	}
	for name, want := range map[string]bool{"iommufd.(*FD).Map": true, "iommufd.(*FD).Destroy": true,
		"iommufd.(*FD).MapFile": false, "vfio.Group.Status": false} {
		if issued[name] != want {
			t.Errorf("%s issued = %v, want %v", name, issued[name], want)
		}
	}
	var out strings.Builder
	writeCoverageTest(&out, checkIoctlCoverage(ws, blocks))
	var c Counts
	for _, line := range strings.Split(out.String(), "\n") {
		countLine(&c, line)
	}
	if c.Passed != 2 || c.Failed != len(ws)-2+1 {
		t.Errorf("counts %+v for %d wrappers:\n%s", c, len(ws), out.String())
	}
	for _, want := range []string{
		"    --- FAIL: TestIoctlCoverage/iommufd.(*FD).MapFile (IOMMU_IOAS_MAP_FILE never issued in the guest)\n",
		"    --- PASS: TestIoctlCoverage/iommufd.(*FD).Map (0.00s)\n",
		"--- FAIL: TestIoctlCoverage (0.00s)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	var none strings.Builder
	writeCoverageTest(&none, nil)
	if none.String() != "=== RUN   TestIoctlCoverage\n--- PASS: TestIoctlCoverage (0.00s)\n" {
		t.Errorf("nothing to check: %q", none.String())
	}
}

func blockLine(file string, l1, c1, l2, c2, count int) string {
	return fmt.Sprintf("%s:%d.%d,%d.%d 1 %d\n", file, l1, c1, l2, c2, count)
}

func TestParseProfileErrors(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"nocolon 1 2\n", "f.go:1.2,3 1 1\n"} {
		if _, err := parseProfile(strings.NewReader(bad)); err == nil {
			t.Errorf("parseProfile(%q) succeeded", bad)
		}
	}
}
