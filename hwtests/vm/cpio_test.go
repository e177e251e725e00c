package vm

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/hwtests/vm/wire"
)

// cpioEntry is one parsed newc record.
type cpioEntry struct {
	name                 string
	mode                 uint32
	uid, gid             uint32
	rdevMajor, rdevMinor uint32
	data                 []byte
}

// readNewc parses a newc archive independently of the writer, checking
// the magic and 4-byte alignment of every record.
func readNewc(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("header field %d at %d: %v", i, off, err)
		}
		return uint32(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off%4 != 0 {
			t.Fatalf("record at %d is not 4-byte aligned", off)
		}
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("bad magic %q at %d", b[off:off+6], off)
		}
		e := cpioEntry{mode: field(1), uid: field(2), gid: field(3), rdevMajor: field(9), rdevMinor: field(10)}
		size, namesize := int(field(6)), int(field(11))
		nameStart := off + 110
		e.name = string(b[nameStart : nameStart+namesize-1])
		if b[nameStart+namesize-1] != 0 {
			t.Fatalf("%s: name not NUL-terminated", e.name)
		}
		dataStart := align(nameStart + namesize)
		e.data = b[dataStart : dataStart+size]
		off = align(dataStart + size)
		if e.name == "TRAILER!!!" {
			if off != len(b) {
				t.Errorf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, e)
	}
}

func TestCPIOWriter(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	c.Dir("dev", 0o755)
	c.CharDev("/dev/console", 0o600, 5, 1)
	c.File("/lib/modules/u/kernel/a.ko.xz", 0o644, []byte("abc"))
	c.File("init", 0o755, []byte("1234"))
	c.Symlink("bin/sh", "/init")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got := readNewc(t, buf.Bytes())
	var names []string
	byName := map[string]cpioEntry{}
	for _, e := range got {
		names = append(names, e.name)
		byName[e.name] = e
		if e.uid != 0 || e.gid != 0 {
			t.Errorf("%s owned by %d:%d", e.name, e.uid, e.gid)
		}
	}
	want := "dev dev/console lib lib/modules lib/modules/u lib/modules/u/kernel lib/modules/u/kernel/a.ko.xz init bin bin/sh"
	if strings.Join(names, " ") != want {
		t.Errorf("entries %v\nwant %s (parents first, each once)", names, want)
	}
	if con := byName["dev/console"]; con.mode != 0o020600 || con.rdevMajor != 5 || con.rdevMinor != 1 {
		t.Errorf("dev/console = mode %o rdev %d:%d", con.mode, con.rdevMajor, con.rdevMinor)
	}
	if f := byName["init"]; f.mode != 0o100755 || string(f.data) != "1234" {
		t.Errorf("init = mode %o %q", f.mode, f.data)
	}
	if f := byName["lib/modules/u/kernel/a.ko.xz"]; string(f.data) != "abc" {
		t.Errorf("module data %q", f.data)
	}
	if l := byName["bin/sh"]; l.mode != 0o120777 || string(l.data) != "/init" {
		t.Errorf("symlink = mode %o -> %q", l.mode, l.data)
	}
	if d := byName["lib"]; d.mode != 0o040755 {
		t.Errorf("lib mode %o", d.mode)
	}

	// cpio(1) is there on hosts set up by setup-host: it must read the
	// archive the way the kernel will.
	if _, err := exec.LookPath("cpio"); err == nil {
		cmd := exec.Command("cpio", "-itv", "--quiet")
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cpio -t: %v", err)
		}
		if !strings.Contains(string(out), "crw-------") || !strings.Contains(string(out), "5,") || !strings.Contains(string(out), "lib/modules/u/kernel/a.ko.xz") {
			t.Errorf("cpio -itv:\n%s", out)
		}
	}
}

func TestWriteInitramfs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	spec := initramfsSpec{
		Init: write("init", "ELF-init"),
		Manifest: wire.Manifest{Lane: "x86_64-vtd", Uname: "U", Output: wire.OutputSerial, TestDevice: "/dev/ttyS1",
			Tests: []wire.Test{{Name: "hwtests/vm/smoke", Path: "/tests/hwtests-vm-smoke.test"}}},
		Tests:      map[string]string{"/tests/hwtests-vm-smoke.test": write("t", "ELF-test")},
		Modules:    map[string]string{"/modules/iommufd.ko": write("m", "ko"), "/lib/modules/U/kernel/virt/lib/irqbypass.ko.xz": write("x", "xz")},
		ModulesDep: write("dep", "kernel/virt/lib/irqbypass.ko.xz:\n"),
	}
	var buf bytes.Buffer
	if err := writeInitramfs(&buf, spec); err != nil {
		t.Fatal(err)
	}
	files := map[string]cpioEntry{}
	for _, e := range readNewc(t, buf.Bytes()) {
		files[e.name] = e
	}
	for name, body := range map[string]string{
		"init": "ELF-init", "tests/hwtests-vm-smoke.test": "ELF-test", "modules/iommufd.ko": "ko",
		"lib/modules/U/kernel/virt/lib/irqbypass.ko.xz": "xz", "lib/modules/U/modules.dep": "kernel/virt/lib/irqbypass.ko.xz:\n",
	} {
		if string(files[name].data) != body {
			t.Errorf("%s = %q, want %q", name, files[name].data, body)
		}
	}
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run", "host", "out"} {
		if files[d].mode != 0o040755 {
			t.Errorf("mount point %s: mode %o", d, files[d].mode)
		}
	}
	if files["init"].mode&0o111 == 0 || files["tests/hwtests-vm-smoke.test"].mode&0o111 == 0 {
		t.Error("binaries not executable")
	}
	if c := files["dev/console"]; c.rdevMajor != 5 || c.rdevMinor != 1 {
		t.Error("no /dev/console 5:1")
	}
	var m wire.Manifest
	if err := json.Unmarshal(files[strings.TrimPrefix(wire.ManifestPath, "/")].data, &m); err != nil || m.TestDevice != "/dev/ttyS1" {
		t.Errorf("manifest: %+v, %v", m, err)
	}
}
