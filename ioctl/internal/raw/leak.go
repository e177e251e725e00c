//go:build linux

package raw

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// openFDs records where each FD of a test binary was opened, so a test can
// fail on a leaked descriptor (a leaked group fd turns the next test's open
// into EBUSY). It is the package's only mutable state and stays empty
// outside test binaries: testing.Testing reports false there. An FD closed
// by its cleanup rather than Close stays recorded: it leaked.
var (
	openFDs sync.Map // uint64 id -> string (stack)
	lastID  atomic.Uint64
)

func track() uint64 {
	if !testing.Testing() {
		return 0
	}
	id := lastID.Add(1)
	buf := make([]byte, 4096)
	buf = buf[:runtime.Stack(buf, false)]
	openFDs.Store(id, string(buf))
	return id
}

func untrack(id uint64) {
	if id != 0 {
		openFDs.Delete(id)
	}
}

// Leaks describes every FD opened in this test binary and not yet closed,
// with the stack that opened it. It is empty outside test binaries.
func Leaks() []string {
	var out []string
	openFDs.Range(func(k, v any) bool {
		out = append(out, fmt.Sprintf("fd #%d opened at:\n%s", k, strings.TrimSpace(v.(string))))
		return true
	})
	slices.Sort(out)
	return out
}
