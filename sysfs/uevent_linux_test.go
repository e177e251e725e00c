//go:build linux

package sysfs

import (
	"errors"
	"os"
	"testing"
	"time"
)

// The socket opens without root (the kernel group is open to all) and
// Close wakes a blocked read.
func TestUeventConnClose(t *testing.T) {
	t.Parallel()
	c, err := OpenUevents()
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("no uevent socket here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := c.ReadUevent(make([]byte, maxUevent))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the read block; a read after Close fails the same way
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Errorf("read after Close: %v, want os.ErrClosed", err)
	}
}
