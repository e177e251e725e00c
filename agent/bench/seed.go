//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/iommu-agent/iommu-agent/agent/iommu"
)

// Seed checks the design origin's two claims on the running kernel, with
// two devices bound to vfio-pci in different iommu_groups: the same
// map+unmap through a type1 container and through an iommufd IOAS, and
// the pinned memory charged when one buffer is mapped for both devices
// (a type1 container each, against one shared IOAS), as the kernel
// reports it in /proc/self/status.
func Seed() Bench {
	return Bench{Group: "seed", Run: runSeed}
}

// seedBuffer is the buffer mapped for the pinned-memory claim and the
// largest map+unmap.
const seedBuffer = 64 * mib

func runSeed(ctx context.Context, e *Env) ([]Row, error) {
	if len(e.Devices) < 2 {
		return nil, errors.New("needs two PCI functions bound to vfio-pci in different iommu_groups (-devices A,B) and root")
	}
	a, err := vfioDevice("/sys", e.Devices[0])
	if err != nil {
		return nil, err
	}
	b, err := vfioDevice("/sys", e.Devices[1])
	if err != nil {
		return nil, err
	}
	if a.Group == b.Group {
		return nil, fmt.Errorf("%s and %s share iommu_group %d: the claims need a group each", a.BDF, b.BDF, a.Group)
	}
	m, err := newMemfd("iommu-agent-bench-seed", seedBuffer, 0, 0)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	mem := m.mem

	var rows []Row
	latency, err := seedLatency(ctx, e, a, b, mem)
	rows = append(rows, latency...)
	if err != nil {
		return rows, err
	}
	pinned, err := seedPinned(ctx, a, b, mem)
	if err != nil {
		return rows, err
	}
	return append(rows, pinned), nil
}

// seedLatency maps and unmaps the same sizes through type1 (device a's
// container) and iommufd (device b's IOAS), alternating.
func seedLatency(ctx context.Context, e *Env, a, b iommu.Device, mem []byte) ([]Row, error) {
	t1, err := openType1(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("type1: %w", err)
	}
	defer t1.Close()
	fd, err := openIOMMUFD(ctx, &b)
	if err != nil {
		return nil, fmt.Errorf("iommufd: %w", err)
	}
	defer fd.Close()
	loop := func(as iommu.AddressSpace, size int) Op {
		m := iommu.Mapping{Mem: mem[:size], IOVA: 0x100000000, Fixed: true, Perm: iommu.Read | iommu.Write}
		return func(n int) error {
			for range n {
				if _, err := as.Map(ctx, m); err != nil {
					return err
				}
				if _, err := as.Unmap(ctx, m.IOVA, uint64(size)); err != nil {
					return err
				}
			}
			return nil
		}
	}
	var rows []Row
	for _, size := range []int{pg, 2 * mib, seedBuffer} {
		r, err := e.timeRow(Row{Name: "map+unmap " + sizeName(uint64(size)), Subject: "type1 container (" + string(t1.b.Flavour()) + ")",
			Baseline: "iommufd IOAS"}, loop(t1.as, size), loop(fd.as, size))
		if err != nil {
			return rows, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// seedPinned maps mem for both devices: through two type1 containers, then
// through one IOAS both are attached to, and compares what the kernel
// charged (VmLck for type1's locked_vm, VmPin for iommufd's pinned_vm).
func seedPinned(ctx context.Context, a, b iommu.Device, mem []byte) (Row, error) {
	m := iommu.Mapping{Mem: mem, IOVA: 0x100000000, Fixed: true, Perm: iommu.Read | iommu.Write}
	before, err := statusBytes("VmLck")
	if err != nil {
		return Row{}, err
	}
	var t1Charged uint64
	{
		var spaces []*type1Space
		closeAll := func() {
			for _, t := range spaces {
				t.Close()
			}
		}
		for _, d := range []iommu.Device{a, b} {
			t, err := openType1(ctx, d)
			if err == nil {
				spaces = append(spaces, t)
				_, err = t.as.Map(ctx, m)
			}
			if err != nil {
				closeAll()
				return Row{}, err
			}
		}
		after, err := statusBytes("VmLck")
		closeAll()
		if err != nil {
			return Row{}, err
		}
		t1Charged = after - before
	}
	before, err = statusBytes("VmPin")
	if err != nil {
		return Row{}, err
	}
	fd, err := openIOMMUFD(ctx, &a)
	if err != nil {
		return Row{}, err
	}
	defer fd.Close()
	if _, err := fd.as.Attach(ctx, b); err != nil {
		return Row{}, err
	}
	if _, err := fd.as.Map(ctx, m); err != nil {
		return Row{}, err
	}
	after, err := statusBytes("VmPin")
	if err != nil {
		return Row{}, err
	}
	return ratioRow(Row{Name: fmt.Sprintf("pinned memory charged for one %s buffer mapped for two devices", sizeName(seedBuffer)),
		Subject: "two type1 containers (VmLck)", Baseline: "one shared IOAS (VmPin)",
		Value: float64(t1Charged), Base: float64(after - before), Unit: "bytes",
		Note: "type1 charges each container's pins to the process again; one IOAS pins the pages once for every device attached"}), nil
}

// statusBytes reads a kB field of /proc/self/status, in bytes.
func statusBytes(field string) (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", field, rest, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}
