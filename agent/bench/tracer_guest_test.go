//go:build hwtests && linux

package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/ebpf"
	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
)

// TestTracerGroup runs the tracer group on the guest's edu and logs its
// rows. Ratios are reported, never asserted: the test fails only when the
// group cannot measure (an error, or a row skipped for another reason
// than noise). Under the harness's -icount (HWTESTS_ICOUNT) the rows are
// in guest instructions; the report goes to the harness's /out as
// bench-tracer-LANE.json:
//
//	go run ./hwtests/vm/cmd/hwtests -icount shift=0,sleep=off -devices edu -pkgs ./agent/bench \
//	    -ioctl-coverage off -run TestTracerGroup
func TestTracerGroup(t *testing.T) {
	hwtest.NeedBench(t)
	if cs, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource"); err == nil {
		t.Logf("clocksource %s, -icount %q", bytes.TrimSpace(cs), os.Getenv("HWTESTS_ICOUNT"))
	}
	dev := hwtest.FindEdu(t)[0]
	hwtest.BindVFIO(t, dev)
	e := &Env{Devices: []string{dev.BDF}, Quick: os.Getenv("HWTESTS_ICOUNT") == "", Progress: t.Logf}
	hdr, start := header(e.Quick), time.Now()
	rows, err := Tracer(TracerOptions{ICount: os.Getenv("HWTESTS_ICOUNT"), Verbose: testing.Verbose()}).Run(context.Background(), e)
	if errors.Is(err, ebpf.ErrUnavailable) && !hwtest.Strict() {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Skipped != "" {
			if strings.HasPrefix(r.Skipped, unresolved) {
				// Measured, but the noise won: ns on a loaded TCG host.
				t.Logf("%s: %s", r.Name, r.Skipped)
			} else {
				t.Errorf("%s: not measured: %s", r.Name, r.Skipped)
			}
			continue
		}
		t.Logf("%-62s %8.3f  (%.0f vs %.0f %s; goal %g) %s", r.Name, r.Ratio, r.Value, r.Base, r.Unit, r.Goal, r.Note)
	}
	// For make bench: the report as bench-tracer-LANE.json in the
	// harness's /out, to merge with the other groups'.
	if st, err := os.Stat("/out"); err == nil && st.IsDir() && hwtest.Strict() {
		rep := Report{Header: hdr, Rows: rows}
		rep.Header.Seconds = time.Since(start).Seconds()
		rep.Header.Accel = "tcg (QEMU guest, " + hwtest.Lane() + " lane)"
		if ic := os.Getenv("HWTESTS_ICOUNT"); ic != "" {
			rep.Header.Accel = "tcg -icount " + ic + " (QEMU guest, " + hwtest.Lane() + " lane)"
		}
		for i := range rep.Rows {
			rep.Rows[i].Group = "tracer"
		}
		f, err := os.Create(filepath.Join("/out", "bench-tracer-"+hwtest.Lane()+".json"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := WriteJSON(f, rep); err != nil {
			t.Fatal(err)
		}
	}
}
