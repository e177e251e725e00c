package vm

import (
	"bytes"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/hwtests/vm/wire"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func tests2() []wire.Test {
	return []wire.Test{
		{Name: "hwtests/vm/smoke", Path: "/tests/hwtests-vm-smoke.test"},
		{Name: "ioctl/vfio", Path: "/tests/ioctl-vfio.test"},
	}
}

func parse(t *testing.T, tests []wire.Test, kmsg bool, stream string) (StreamResult, string) {
	t.Helper()
	var out bytes.Buffer
	p := NewParser(&out, quietLog(), tests, kmsg)
	if err := p.Consume(strings.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	return p.Finish(), out.String()
}

func TestParserPassAndFail(t *testing.T) {
	t.Parallel()
	stream := `##hwtests init lane=x86_64-vtd
##hwtests log loaded iommufd in 70ms
##hwtests begin hwtests/vm/smoke
=== RUN   TestA
--- PASS: TestA (0.00s)
=== RUN   TestB
=== RUN   TestB/one
    --- PASS: TestB/one (0.00s)
=== RUN   TestB/two
    --- SKIP: TestB/two (0.00s)
--- PASS: TestB (0.00s)
PASS
##hwtests end hwtests/vm/smoke exit=0 elapsed=1.5s
##hwtests begin ioctl/vfio
=== RUN   TestC
    c_test.go:9: boom
--- FAIL: TestC (0.01s)
FAIL
##hwtests end ioctl/vfio exit=1 elapsed=250ms
##hwtests verdict fail 1 of 2 test binaries failed
`
	res, out := parse(t, tests2(), false, stream)
	if res.Counts != (Counts{Passed: 3, Failed: 1, Skipped: 1}) {
		t.Errorf("counts %+v", res.Counts)
	}
	if !slices.Equal(res.FailedNames, []string{"TestC"}) {
		t.Errorf("failed names %v", res.FailedNames)
	}
	if len(res.Problems) != 0 || !res.InitSeen || res.Verdict != "fail 1 of 2 test binaries failed" || res.Pass() {
		t.Errorf("result %+v", res)
	}
	for _, want := range []string{"ok  \thwtests/vm/smoke\t1.500s\n", "FAIL\tioctl/vfio\t0.250s\n", "    c_test.go:9: boom\n", "    --- PASS: TestB/one (0.00s)\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "##hwtests") {
		t.Errorf("frames leaked into the output:\n%s", out)
	}
	if len(res.Binaries) != 2 || res.Binaries[1].Exit != 1 || !res.Binaries[1].Ended {
		t.Errorf("binaries %+v", res.Binaries)
	}
}

func TestParserAllPass(t *testing.T) {
	t.Parallel()
	stream := "##hwtests init x\r\n##hwtests begin hwtests/vm/smoke\r\n--- PASS: TestA (0.00s)\r\nPASS\r\n" +
		"##hwtests end hwtests/vm/smoke exit=0 elapsed=1s\r\n##hwtests begin ioctl/vfio\r\n--- PASS: TestB (0.00s)\r\n" +
		"##hwtests end ioctl/vfio exit=0 elapsed=1s\r\n##hwtests verdict pass\r\n"
	res, out := parse(t, tests2(), false, stream)
	if !res.Pass() || res.Passed != 2 || res.Failed != 0 {
		t.Errorf("result %+v", res)
	}
	if strings.Contains(out, "\r") {
		t.Error("carriage returns kept")
	}
}

func TestParserExitWithoutFailLine(t *testing.T) {
	t.Parallel()
	stream := `##hwtests init x
##hwtests begin hwtests/vm/smoke
=== RUN   TestHang
panic: test timed out after 1m0s
##hwtests end hwtests/vm/smoke exit=2 elapsed=1m0s
##hwtests begin ioctl/vfio
--- PASS: TestB (0.00s)
##hwtests end ioctl/vfio exit=0 elapsed=1s
##hwtests verdict fail 1 of 2 test binaries failed
`
	res, out := parse(t, tests2(), false, stream)
	if res.Failed != 1 || res.Passed != 1 {
		t.Errorf("counts %+v", res.Counts)
	}
	if !strings.Contains(out, "--- FAIL: hwtests-vm-smoke.test (exit status 2)\n") {
		t.Errorf("no synthesized failure named after the binary:\n%s", out)
	}
	// A binary that failed a test and exited 1 is not counted twice.
	stream2 := strings.Replace(stream, "panic: test timed out after 1m0s", "--- FAIL: TestHang (0.00s)", 1)
	if res, _ := parse(t, tests2(), false, stream2); res.Failed != 1 {
		t.Errorf("double-counted: %+v", res.Counts)
	}
}

func TestParserCutOff(t *testing.T) {
	t.Parallel()
	// The guest died in the middle of the first binary: no end frame, no
	// verdict, the second binary never started.
	stream := "##hwtests init x\n##hwtests begin hwtests/vm/smoke\n--- PASS: TestA (0.00s)\n=== RUN   TestB\n"
	res, out := parse(t, tests2(), false, stream)
	if res.Passed != 1 || res.Failed != 2 {
		t.Errorf("counts %+v", res.Counts)
	}
	for _, want := range []string{
		"--- FAIL: hwtests-vm-smoke.test (no end frame: guest output ended)\nFAIL\thwtests/vm/smoke\t?\n",
		"--- FAIL: ioctl-vfio.test (never started)\nFAIL\tioctl/vfio\t?\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if res.Pass() || res.Verdict != "" || len(res.Problems) != 2 {
		t.Errorf("result %+v", res)
	}
}

func TestParserNothing(t *testing.T) {
	t.Parallel()
	res, _ := parse(t, tests2(), false, "")
	if res.InitSeen || res.Failed != 2 || res.Pass() {
		t.Errorf("empty stream: %+v", res)
	}
}

func TestParserProtocolErrors(t *testing.T) {
	t.Parallel()
	stream := `##hwtests init x
##hwtests end hwtests/vm/smoke exit=0 elapsed=1s
##hwtests begin hwtests/vm/smoke
##hwtests bogus frame
##hwtests end hwtests/vm/smoke exit=0 elapsed=1s
##hwtests begin ioctl/vfio
##hwtests verdict pass
`
	res, _ := parse(t, tests2(), false, stream)
	if len(res.Problems) != 3 || res.Pass() {
		t.Errorf("problems %q", res.Problems)
	}
}

func TestParserInitError(t *testing.T) {
	t.Parallel()
	stream := "##hwtests init x\n##hwtests error modules: load vfio: exec format error\n##hwtests verdict fail modules\n"
	res, _ := parse(t, nil, false, stream)
	if res.Pass() || len(res.InitErrors) != 1 || res.Failed != 0 {
		t.Errorf("result %+v", res)
	}
}

func TestParserKmsg(t *testing.T) {
	t.Parallel()
	stream := `[    1.000000] AMD-Vi: Interrupt remapping enabled
[    2.000000] @hwt@ ##hwtests init lane=x86_64-amdvi
[    2.100000] @hwt@ ##hwtests begin hwtests/vm/smoke
[    2.200000] vfio-pci 0000:00:02.0: --- FAIL: not a test line
[    2.300000] @hwt@ --- PASS: TestA (0.00s)
[    2.400000] @hwt@ ##hwtests end hwtests/vm/smoke exit=0 elapsed=1s
[    2.500000] @hwt@ ##hwtests verdict pass
`
	res, out := parse(t, tests2()[:1], true, stream)
	if !res.Pass() || res.Passed != 1 {
		t.Errorf("result %+v", res)
	}
	if strings.Contains(out, "AMD-Vi") || strings.Contains(out, "not a test line") {
		t.Errorf("kernel messages leaked:\n%s", out)
	}
}

func TestCountLine(t *testing.T) {
	t.Parallel()
	var c Counts
	for _, l := range []string{"--- PASS: A (0.00s)", "        --- FAIL: A/b/c (0.00s)", "--- SKIP: B (0.00s)", "---- PASS: no", "x --- PASS: no", "=== RUN   A"} {
		countLine(&c, l)
	}
	if c != (Counts{Passed: 1, Failed: 1, Skipped: 1}) {
		t.Errorf("counts %+v", c)
	}
}
