package vm

import (
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestParseCPrograms(t *testing.T) {
	t.Parallel()
	got, err := ParseCPrograms(" agent/bench/cloop/cloop.c:/bin/cloop, /abs/x.c:/usr/bin/x ,")
	if err != nil {
		t.Fatal(err)
	}
	want := []CProgram{{Src: "agent/bench/cloop/cloop.c", Guest: "/bin/cloop"}, {Src: "/abs/x.c", Guest: "/usr/bin/x"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ParseCPrograms = %+v, want %+v", got, want)
	}
	if got, err := ParseCPrograms(""); err != nil || len(got) != 0 {
		t.Errorf("ParseCPrograms(\"\") = %v, %v", got, err)
	}
	for _, bad := range []string{"x.c", "x.c:bin/x", "x.c:/", "x.c:/bin/../x", ":/bin/x", "x.go:/bin/x", "a.c:/bin/x,b.c:/bin/x"} {
		if _, err := ParseCPrograms(bad); err == nil {
			t.Errorf("ParseCPrograms(%q) took it", bad)
		}
	}
}

// TestBuildCPrograms compiles the bench's C helper for every lane whose
// compiler the host has, checks the ELF machine, runs it where the host
// can, and packs it into an initramfs.
func TestBuildCPrograms(t *testing.T) {
	t.Parallel()
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	progs := []CProgram{{Src: "agent/bench/cloop/cloop.c", Guest: "/bin/cloop"}}
	built := 0
	for _, l := range Lanes() {
		if _, err := exec.LookPath(l.CC()); err != nil {
			t.Logf("%s: no %s", l.Name, l.CC())
			continue
		}
		dir := t.TempDir()
		files, err := buildCPrograms(context.Background(), l, progs, "../..", dir)
		if err != nil {
			t.Fatalf("%s: %v", l.Name, err)
		}
		built++
		bin := files["/bin/cloop"]
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatalf("%s: %v", l.Name, err)
		}
		if f.Machine != machine[l.GOARCH] || f.Type != elf.ET_EXEC {
			t.Errorf("%s: %s is %v %v, want %v ET_EXEC", l.Name, bin, f.Machine, f.Type, machine[l.GOARCH])
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s: %s has an interpreter: not static", l.Name, bin)
			}
		}
		f.Close()
		if l.GOARCH == runtime.GOARCH {
			out, err := exec.Command(bin, "numbers").Output()
			if err != nil || !strings.Contains(string(out), "IOMMU_IOAS_MAP 0x3b85") {
				t.Errorf("%s: %s numbers = %q, %v", l.Name, bin, out, err)
			}
		}
	}
	if built == 0 {
		t.Skip("no lane's C compiler on this host")
	}

	// pack puts the file into the initramfs, executable.
	l, err := LaneByName("arm64-smmuv3-7.3")
	if err != nil {
		t.Fatal(err)
	}
	devs, err := ParseDevices("edu")
	if err != nil {
		t.Fatal(err)
	}
	binDir, runDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(binDir, "init"), []byte("ELF-init"), 0o755); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(binDir, "prog")
	if err := os.WriteFile(prog, []byte("ELF-cloop"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, initrd, err := pack(Config{Lane: l, Devices: devs, Variant: VariantStd}, Kernel{}, "", nil, binDir, runDir, "tcg",
		packExtras{Files: map[string]string{"/bin/cloop": prog}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(initrd)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range readNewc(t, b) {
		if e.name == "bin/cloop" {
			found = true
			if string(e.data) != "ELF-cloop" || e.mode != 0o100755 {
				t.Errorf("bin/cloop: mode %o, %q", e.mode, e.data)
			}
		}
	}
	if !found {
		t.Error("bin/cloop is not in the initramfs")
	}
}
