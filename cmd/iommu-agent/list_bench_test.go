//go:build !hwtests

package main

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/iommu-agent/iommu-agent/sysfs/sysfstest"
)

// BenchmarkList runs `iommu-agent list --json` over synthetic hosts of n
// devices, each alone in its iommu_group, up to 100,000 of each: list must
// stay linear in devices and groups. Building the tree takes longer than
// listing it, and is done once per size.
//
//	go test -run '^$' -bench BenchmarkList -benchtime 1x ./cmd/iommu-agent
func BenchmarkList(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("groups=%dk", n/1000), func(b *testing.B) {
			root := sysfstest.SyntheticScan(b, n, n)
			b.ResetTimer()
			for b.Loop() {
				if err := run(context.Background(), []string{"list", "--json", "-sysfs", root}, io.Discard, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
