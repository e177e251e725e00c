package cleanup

import (
	"slices"
	"testing"
)

func TestOrderAndOnce(t *testing.T) {
	var got []int
	func() {
		var s Stack
		defer s.Clean()
		for i := range 3 {
			s.Add(func() { got = append(got, i) })
		}
		s.Clean()
	}()
	if !slices.Equal(got, []int{2, 1, 0}) {
		t.Errorf("undo order %v, want 2 1 0 once", got)
	}
}

func TestRelease(t *testing.T) {
	ran := false
	var s Stack
	s.Add(func() { ran = true })
	s.Release()
	s.Clean()
	if ran {
		t.Error("undo ran after Release")
	}
}
