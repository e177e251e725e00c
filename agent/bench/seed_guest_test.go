//go:build hwtests && linux

package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
)

// TestGuestBench runs every group on the guest's kernel with its edus
// bound to vfio-pci, logs the table and, when the harness's /out is
// mounted, writes the report there as bench-LANE.json for `make bench`.
// It asserts no timing: every row must be measured or say why not.
func TestGuestBench(t *testing.T) {
	hwtest.NeedBench(t)
	devs := hwtest.FindEdu(t)
	var bdfs []string
	for _, d := range devs {
		hwtest.BindVFIO(t, d)
		bdfs = append(bdfs, d.BDF)
	}
	// What the guest-ram group needs of the system (it changes nothing
	// itself): THP for shmem on request, type1 room for 4 KiB chunks of a
	// GiB, and huge pages where memory allows (make bench boots -m 4G).
	setSys(t, "/sys/kernel/mm/transparent_hugepage/shmem_enabled", "advise")
	setSys(t, "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit", "1000000")
	if mi, err := meminfo(); err == nil && mi["MemAvailable"] >= 2*gib+ramHeadroom {
		setSys(t, "/proc/sys/vm/nr_hugepages", "512")
	}
	e := &Env{Quick: os.Getenv("BENCH_QUICK") == "1", Devices: bdfs, Progress: t.Logf}
	if a := os.Getenv("HWTESTS_ACCEL"); a != "" {
		e.Accel = a + " (QEMU guest, " + hwtest.Lane() + " lane)"
	}
	if _, err := os.Stat(guestCLoop); err == nil {
		e.CHelper = guestCLoop
	}
	// guest-ram runs quick (1 GiB, three rounds): at full size its
	// 4 KiB-chunk rows alone take minutes under TCG. The tracer runs in a
	// boot of its own under -icount (TestTracerGroup).
	var groups []Bench
	for _, b := range Groups() {
		if b.Group != "guest-ram" && b.Group != "tracer" {
			groups = append(groups, b)
		}
	}
	rep := Run(context.Background(), e, groups)
	quick := *e
	quick.Quick = true
	ram := Run(context.Background(), &quick, []Bench{GuestRAM()})
	for _, r := range ram.Rows {
		if r.Skipped == "" {
			r.Note = strings.TrimSpace(r.Note + " (quick: 1 GiB, three rounds)")
		}
		rep.Rows = append(rep.Rows, r)
	}
	var text bytes.Buffer
	WriteText(&text, rep)
	t.Logf("\n%s", text.String())
	for _, r := range rep.Rows {
		if r.Skipped != "" {
			t.Logf("%s %s not run: %s", r.Group, r.Name, r.Skipped)
			continue
		}
		if r.Ratio <= 0 || r.Value <= 0 || r.Base <= 0 {
			t.Errorf("%s %s: not measured: %+v", r.Group, r.Name, r)
		}
	}
	if st, err := os.Stat("/out"); err == nil && st.IsDir() && hwtest.Strict() {
		f, err := os.Create(filepath.Join("/out", "bench-"+hwtest.Lane()+".json"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := WriteJSON(f, rep); err != nil {
			t.Fatal(err)
		}
	}
}
