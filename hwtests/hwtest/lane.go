//go:build hwtests && linux

package hwtest

import (
	"debug/elf"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// laneException names the tests a lane cannot run, and why: the only
// skips strict mode allows. Each is a fact of the lane (its guest's
// architecture, its firmware), never a failure to be looked at later.
func laneException(test, lane string) (string, bool) {
	switch {
	case test == "TestGuestQEMUClient" && strings.HasPrefix(lane, "arm64-"):
		return "the client is the host's QEMU, an x86_64 binary under /host: the arm64 guest cannot exec it " +
			"(no x86_64 QEMU or binfmt emulation in the guest), so the QEMU-as-client run is the x86_64 lanes' alone", true
	}
	return "", false
}

// LaneException ends a test that cannot run on this machine for the
// reason why. Outside strict mode it skips. In strict mode (the guest) it
// skips only when the lane names the test among its exceptions, saying
// both; otherwise the test fails: a lane must not lose a test silently.
func LaneException(t *testing.T, why string) {
	t.Helper()
	if reason, ok := laneException(t.Name(), Lane()); ok {
		t.Skipf("lane %s exception for %s: %s (%s)", Lane(), t.Name(), reason, why)
	}
	if Strict() {
		t.Fatalf("%s: %s; lane %q names no exception for it", t.Name(), why, Lane())
	}
	t.Skip(why)
}

// Runnable reports whether this machine can exec the ELF binary at path:
// nil when its machine is the running architecture's, else an error naming
// both. An x86_64 host's binary shared into an arm64 guest is not.
func Runnable(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	want, ok := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "386": elf.EM_386,
		"riscv64": elf.EM_RISCV, "ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390}[runtime.GOARCH]
	if !ok {
		return fmt.Errorf("%s: no ELF machine known for %s", path, runtime.GOARCH)
	}
	if f.Machine != want {
		return fmt.Errorf("%s is a %v binary, this machine is %s (%v)", path, f.Machine, runtime.GOARCH, want)
	}
	return nil
}
