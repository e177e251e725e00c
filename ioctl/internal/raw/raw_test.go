//go:build linux

package raw

import (
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func pipe(t *testing.T) (*FD, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	dup, err := unix.Dup(int(r.Fd()))
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := NewFD(dup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close() })
	return fd, w
}

func TestIoctlPointer(t *testing.T) {
	fd, w := pipe(t)
	if _, err := w.Write([]byte("12345")); err != nil {
		t.Fatal(err)
	}
	var n int32
	if err := Ioctl(fd, unix.TIOCINQ, unsafe.Pointer(&n)); err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Fatalf("FIONREAD = %d, want 5", n)
	}
}

func TestIoctlAllocatesNothing(t *testing.T) {
	fd, _ := pipe(t)
	var n int32
	allocs := testing.AllocsPerRun(100, func() {
		if err := Ioctl(fd, unix.TIOCINQ, unsafe.Pointer(&n)); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Ioctl allocates %v times per call", allocs)
	}
}

func TestErrnoKept(t *testing.T) {
	fd, err := Open("/dev/null", unix.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	var n int32
	err = Ioctl(fd, 0x3b80, unsafe.Pointer(&n)) // IOMMU_DESTROY on /dev/null
	if !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("err = %v, want ENOTTY", err)
	}
	var e *Errno
	if !errors.As(err, &e) || e.Request != 0x3b80 {
		t.Fatalf("err %v is not an *Errno for request 0x3b80", err)
	}
	if err == unix.ENOTTY { //nolint:errorlint // the point: a plain comparison must not match
		t.Fatal("*Errno compares equal to the bare errno")
	}
	if !strings.HasPrefix(err.Error(), "ENOTTY") {
		t.Errorf("message %q does not name the errno", err)
	}
	if _, err := IoctlValue(fd, 0x3b65, 3); !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("IoctlValue err = %v, want ENOTTY", err)
	}
}

func TestClosedFD(t *testing.T) {
	fd, err := Open("/dev/null", unix.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	if err := fd.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fd.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if fd.Int() != -1 {
		t.Errorf("Int after Close = %d", fd.Int())
	}
	if err := Ioctl(fd, unix.TIOCINQ, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Ioctl on closed FD: %v", err)
	}
	if _, err := fd.Dup(); !errors.Is(err, ErrClosed) {
		t.Errorf("Dup of closed FD: %v", err)
	}
	if fd.File("x") != nil {
		t.Error("File of closed FD is not nil")
	}
	var nilFD *FD
	if err := nilFD.Close(); err != nil || nilFD.Int() != -1 {
		t.Error("nil FD misbehaves")
	}
}

func TestDupAndFile(t *testing.T) {
	fd, err := Open("/dev/null", unix.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	dup, err := fd.Dup()
	if err != nil {
		t.Fatal(err)
	}
	if dup.Int() == fd.Int() {
		t.Fatal("Dup returned the same descriptor")
	}
	flags, err := unix.FcntlInt(uintptr(dup.Int()), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("dup is not close-on-exec: %#x %v", flags, err)
	}
	f := dup.File("null")
	if dup.Int() != -1 {
		t.Error("File did not disown the FD")
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
	if err := fd.Close(); err != nil {
		t.Error(err)
	}
}

func TestLeaks(t *testing.T) {
	before := len(Leaks())
	fd, err := Open("/dev/null", unix.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	leaks := Leaks()
	if len(leaks) != before+1 || !strings.Contains(strings.Join(leaks, "\n"), "TestLeaks") {
		t.Fatalf("open FD not reported with its opener:\n%s", strings.Join(leaks, "\n"))
	}
	fd.Close()
	if len(Leaks()) != before {
		t.Fatal("closed FD still reported")
	}
}

func TestNewFDRejectsNegative(t *testing.T) {
	if _, err := NewFD(-1); err == nil {
		t.Fatal("NewFD(-1) succeeded")
	}
}
