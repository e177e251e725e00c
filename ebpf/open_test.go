//go:build linux && !hwtests

package ebpf

import (
	"errors"
	"testing"
)

// TestOpenUnprivileged: where the kernel refuses BPF (the build machine),
// Open says so with ErrUnavailable and a cause, and leaks nothing.
func TestOpenUnprivileged(t *testing.T) {
	tr, err := Open(Options{})
	if err == nil {
		tr.Close()
		t.Skip("BPF is available here: the guest tests cover the tracer")
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open: %v, want ErrUnavailable", err)
	}
	t.Log(err)
}
