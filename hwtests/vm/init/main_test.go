//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/iommu-agent/iommu-agent/hwtests/vm"
	"github.com/iommu-agent/iommu-agent/hwtests/vm/wire"
)

// TestMain doubles as a fake test binary: runTest starts this executable
// with HWTESTS_FAKE set, and it behaves as the mode says.
func TestMain(m *testing.M) {
	switch os.Getenv("HWTESTS_FAKE") {
	case "":
		os.Exit(m.Run())
	case "pass":
		fmt.Println("=== RUN   TestA")
		fmt.Println("--- PASS: TestA (0.00s)")
		fmt.Print("PASS") // no trailing newline: the end frame must still start a line
		os.Exit(0)
	case "fail":
		fmt.Println("--- FAIL: TestB (0.00s)")
		fmt.Fprintln(os.Stderr, "FAIL")
		os.Exit(1)
	case "crash":
		fmt.Println("=== RUN   TestC")
		os.Exit(2)
	case "env":
		fmt.Printf("strict=%s lane=%s args=%s\n", os.Getenv("HWTESTS_STRICT"), os.Getenv("HWTESTS_LANE"), strings.Join(os.Args[1:], " "))
		wd, _ := os.Getwd()
		fmt.Printf("cwd-under-tmp=%v\n", strings.HasPrefix(wd, os.TempDir()) || strings.HasPrefix(wd, "/tmp"))
		os.Exit(0)
	}
	os.Exit(3)
}

func TestRunTestFramesOutput(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	out := &stream{w: &buf, drain: func() {}, lastNL: true}
	var tests []wire.Test
	codes := map[string]int{}
	for _, mode := range []string{"pass", "fail", "crash", "env"} {
		m := wire.Manifest{TestTimeout: wire.Duration(time.Minute), TestArgs: []string{"-test.run=X"},
			Env: []string{"HWTESTS_FAKE=" + mode, "HWTESTS_LANE=x86_64-vtd"}}
		tc := wire.Test{Name: "pkg/" + mode, Path: exe}
		tests = append(tests, tc)
		codes[mode] = runTest(out, m, tc)
	}
	out.frame(wire.Frame{Kind: wire.KindVerdict, Text: "fail"})
	if codes["pass"] != 0 || codes["fail"] != 1 || codes["crash"] != 2 || codes["env"] != 0 {
		t.Errorf("exit codes %v", codes)
	}
	text := buf.String()
	if !strings.Contains(text, "PASS\n##hwtests end pkg/pass exit=0 elapsed=") {
		t.Errorf("end frame not on its own line:\n%s", text)
	}
	if !strings.Contains(text, "strict=1 lane=x86_64-vtd args=-test.v -test.timeout=1m0s -test.run=X\ncwd-under-tmp=true\n") {
		t.Errorf("environment or arguments wrong:\n%s", text)
	}

	// The host reads it back.
	var got bytes.Buffer
	p := vm.NewParser(&got, slog.New(slog.NewTextHandler(io.Discard, nil)), tests, false)
	if err := p.Consume(&buf); err != nil {
		t.Fatal(err)
	}
	res := p.Finish()
	if res.Passed != 1 || res.Failed != 2 || len(res.Problems) != 0 {
		t.Errorf("host parse: %+v\n%s", res, got.String())
	}
	if !strings.Contains(got.String(), "--- FAIL: "+exeBase(exe)+" (exit status 2)") {
		t.Errorf("crash not reported:\n%s", got.String())
	}
}

func exeBase(p string) string { return p[strings.LastIndex(p, "/")+1:] }

func TestStreamFrameAfterPartialLine(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := &stream{w: &buf, drain: func() {}, lastNL: true}
	fmt.Fprint(s, "partial")
	s.logf("x")
	fmt.Fprint(s, "line\n")
	s.errorf("multi\nline")
	want := "partial\n##hwtests log x\nline\n##hwtests error multi | line\n"
	if buf.String() != want {
		t.Errorf("stream = %q, want %q", buf.String(), want)
	}
}

func TestKmsgWriter(t *testing.T) {
	t.Parallel()
	var rec recorder
	k := &kmsgWriter{w: &rec}
	fmt.Fprint(k, "one\ntw")
	fmt.Fprint(k, "o\n")
	fmt.Fprint(k, strings.Repeat("x", kmsgMax+10)+"\n")
	want := []string{"<2>@hwt@ one\n", "<2>@hwt@ two\n", "<2>@hwt@ " + strings.Repeat("x", kmsgMax) + "\n", "<2>@hwt@ xxxxxxxxxx\n"}
	if len(rec.writes) != len(want) {
		t.Fatalf("records %q", rec.writes)
	}
	for i := range want {
		if rec.writes[i] != want[i] {
			t.Errorf("record %d = %q, want %q", i, rec.writes[i], want[i])
		}
	}
}

// recorder keeps each Write separately, as /dev/kmsg takes one record per
// write.
type recorder struct{ writes []string }

func (r *recorder) Write(b []byte) (int, error) {
	r.writes = append(r.writes, string(b))
	return len(b), nil
}
