//go:build hwtests && linux

package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
)

// TestGuestBench runs every group on the guest's kernel with its edus
// bound to vfio-pci, logs the table and, when the harness's /out is
// mounted, writes the report there as bench-LANE.json for `make bench`.
// It asserts no timing: every row must be measured or say why not.
func TestGuestBench(t *testing.T) {
	devs := hwtest.FindEdu(t)
	var bdfs []string
	for _, d := range devs {
		hwtest.BindVFIO(t, d)
		bdfs = append(bdfs, d.BDF)
	}
	e := &Env{Quick: os.Getenv("BENCH_QUICK") == "1", Devices: bdfs, Progress: t.Logf}
	if a := os.Getenv("HWTESTS_ACCEL"); a != "" {
		e.Accel = a + " (QEMU guest, " + hwtest.Lane() + " lane)"
	}
	rep := Run(context.Background(), e, Groups())
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
