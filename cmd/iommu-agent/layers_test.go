//go:build !hwtests

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayers: the kernel-facing layers (ioctl/, sysfs/, ebpf/) never import
// agent/, so the imports point one way: cmd → agent → {ioctl, sysfs, ebpf}.
func TestLayers(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	const mod = "github.com/iommu-agent/iommu-agent/"
	out, err := exec.Command("go", "list", "-tags", "hwtests", "-f", `{{.ImportPath}}:{{join .Imports " "}}`,
		"../../ioctl/...", "../../sysfs/...", "../../ebpf/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		n++
		for _, imp := range strings.Fields(imports) {
			if strings.HasPrefix(imp, mod+"agent/") || strings.HasPrefix(imp, mod+"cmd/") {
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
	if n < 5 {
		t.Fatalf("go list named %d packages: %s", n, out)
	}
}
