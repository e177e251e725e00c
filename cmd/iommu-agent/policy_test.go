//go:build !hwtests

package main

import (
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/server"
)

// The example policy the README installs is one serve accepts.
func TestPolicyExample(t *testing.T) {
	t.Parallel()
	p, err := server.LoadPolicy("../../packaging/policy.example.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules) == 0 {
		t.Fatal("the example has no rules")
	}
}
