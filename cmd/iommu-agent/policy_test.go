//go:build !hwtests

package main

import (
	"reflect"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/server"
)

// The example policy the README installs is one serve accepts, and its
// limits spell out the defaults, as the README says.
func TestPolicyExample(t *testing.T) {
	t.Parallel()
	p, err := server.LoadPolicy("../../packaging/policy.example.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules) == 0 {
		t.Fatal("the example has no rules")
	}
	if !reflect.DeepEqual(p.Limits, server.DefaultLimits()) {
		t.Errorf("example limits %+v, defaults %+v", *p.Limits, *server.DefaultLimits())
	}
}
