//go:build hwtests && linux

package bench

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/hwtests/hwtest"
)

// guestCLoop is where the harness puts the C helper:
//
//	go run ./hwtests/vm/cmd/hwtests -devices edu,edu -pkgs ./agent/bench \
//	    -cprog agent/bench/cloop/cloop.c:/bin/cloop -run TestGuest -ioctl-coverage off
const guestCLoop = "/bin/cloop"

// guestEnv binds every edu to vfio-pci and returns an Env over them,
// with the prebuilt C helper when the harness put one in.
func guestEnv(t *testing.T) *Env {
	t.Helper()
	e := &Env{Quick: true, Progress: func(f string, a ...any) { t.Logf(f, a...) }}
	for _, d := range hwtest.FindEdu(t) {
		hwtest.BindVFIO(t, d)
		e.Devices = append(e.Devices, d.BDF)
	}
	if _, err := os.Stat(guestCLoop); err == nil {
		e.CHelper = guestCLoop
	}
	return e
}

// logReport logs the table and checks every row that ran: a positive
// value, base and ratio. Timings are never asserted.
func logReport(t *testing.T, rep Report) (ran int) {
	t.Helper()
	var b strings.Builder
	if err := WriteText(&b, rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", b.String())
	for _, r := range rep.Rows {
		if r.Skipped != "" {
			continue
		}
		ran++
		if !(r.Value > 0 && r.Base > 0 && r.Ratio > 0) {
			t.Errorf("%s: value %v, base %v, ratio %v: want all positive", r.Name, r.Value, r.Base, r.Ratio)
		}
	}
	return ran
}

func TestGuestGoVsC(t *testing.T) {
	e := guestEnv(t)
	if e.CHelper == "" && hwtest.Strict() {
		t.Fatalf("no %s: run hwtests with -cprog agent/bench/cloop/cloop.c:%s", guestCLoop, guestCLoop)
	}
	rep := Run(context.Background(), e, []Bench{GoVsC()})
	logReport(t, rep)
	for _, r := range rep.Rows {
		// 1 GiB may not fit in the guest's RAM; everything else must run.
		if r.Skipped != "" && !strings.HasPrefix(r.Skipped, "needs 1 GiB") {
			t.Errorf("%s: skipped: %s", r.Name, r.Skipped)
		}
	}
	if n := len(rep.Rows); n != 9 {
		t.Errorf("%d rows, want 9 (3 kinds x 3 sizes)", n)
	}
}
