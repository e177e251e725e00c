//go:build linux

package type1

// cleanup is a stack of undo steps for a multi-step setup (style.md §10):
// Add each undo as its step succeeds, defer Clean, Release on success. A
// failure half way then leaves no fd, binding or pin behind.
type cleanup struct{ undo []func() }

func (c *cleanup) Add(f func()) { c.undo = append(c.undo, f) }

// Clean runs the undo steps in reverse; after Release it does nothing.
func (c *cleanup) Clean() {
	for i := len(c.undo) - 1; i >= 0; i-- {
		c.undo[i]()
	}
	c.undo = nil
}

// Release keeps what was set up.
func (c *cleanup) Release() { c.undo = nil }
