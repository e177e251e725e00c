// Package cleanup is the undo stack of multi-step setups (style.md §10): Add
// each undo as its step succeeds, defer Clean, Release on success. A failure
// half way then leaves no fd, binding or pin behind.
package cleanup

// Stack is a list of undo steps. The zero value is ready to use.
type Stack struct{ undo []func() }

// Add pushes an undo step.
func (s *Stack) Add(f func()) { s.undo = append(s.undo, f) }

// Clean runs the undo steps in reverse order; after Release it does nothing.
func (s *Stack) Clean() {
	for i := len(s.undo) - 1; i >= 0; i-- {
		s.undo[i]()
	}
	s.undo = nil
}

// Release keeps what was set up.
func (s *Stack) Release() { s.undo = nil }
