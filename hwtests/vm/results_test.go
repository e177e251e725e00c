package vm

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestCountsLine(t *testing.T) {
	c := Counts{Passed: 12, Failed: 1, Skipped: 3}
	if got, want := CountsLine("", c), "hwtests: 12 passed, 1 failed"; got != want {
		t.Errorf("CountsLine(\"\") = %q, want %q", got, want)
	}
	if got, want := CountsLine("arm64-smmuv3", c), "hwtests[arm64-smmuv3]: 12 passed, 1 failed"; got != want {
		t.Errorf("CountsLine(lane) = %q, want %q", got, want)
	}
}

func TestSummarize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results")
	recs := []BootRecord{
		{Lane: "x86_64-vtd", Devices: "bridge:edu,e1000", Modules: VariantStd, Passed: 10, Skipped: 1, Seconds: 30.2},
		{Lane: "x86_64-vtd", Devices: "edu,edu", Modules: VariantCompat, Passed: 5, Seconds: 60},
		{Lane: "arm64-smmuv3", Devices: "edu,edu", Modules: VariantStd, Passed: 7, Seconds: 95.6},
		{Lane: "x86_64-vtd", Devices: "igb", Modules: VariantStd, Passed: 2, Seconds: 50},
		{Lane: "x86_64-amdvi", Devices: "edu,edu", Modules: VariantStd, Passed: 4},
	}
	for _, r := range recs {
		if err := AppendResult(path, r); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	if err := Summarize(path, &out); err != nil {
		t.Fatalf("Summarize: %v\n%s", err, out.String())
	}
	want := "hwtests[x86_64-vtd] time: 3 boots in 2m20s\n" +
		"hwtests[arm64-smmuv3] time: 1 boots in 1m36s\n" +
		"hwtests[x86_64-amdvi] time: 1 boots in 0s\n" +
		"hwtests[x86_64-vtd]: 17 passed, 0 failed\n" +
		"hwtests[arm64-smmuv3]: 7 passed, 0 failed\n" +
		"hwtests[x86_64-amdvi]: 4 passed, 0 failed\n" +
		"hwtests: 28 passed, 0 failed\n"
	if out.String() != want {
		t.Errorf("Summarize wrote\n%s\nwant\n%s", out.String(), want)
	}

	// A failed boot: every line still printed, and an error.
	if err := AppendResult(path, BootRecord{Lane: "arm64-smmuv3", Devices: "igb", Passed: 1, Failed: 2}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := Summarize(path, &out); err == nil {
		t.Error("Summarize with failures returned nil")
	}
	if !strings.Contains(out.String(), "hwtests[arm64-smmuv3]: 8 passed, 2 failed\n") ||
		!strings.HasSuffix(out.String(), "hwtests: 29 passed, 2 failed\n") {
		t.Errorf("Summarize with failures wrote\n%s", out.String())
	}
}

func TestSummarizeNothing(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	if err := Summarize(missing, new(strings.Builder)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Summarize(missing file) = %v, want ErrNotExist", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := Summarize(empty, &out); err == nil || out.Len() != 0 {
		t.Errorf("Summarize(empty file) = %v, wrote %q; want an error and nothing", err, out.String())
	}
}

func TestReadResultsStrict(t *testing.T) {
	for _, in := range []string{
		"garbage\n",
		`{"lane":"x86_64-vtd","passed":1}` + "\n" + `{"passed":3}` + "\n",
		`{"lane":"x86_64-vtd","passed":"1"}` + "\n",
		`{"lane":"x86_64-vtd","pass` + "\n", // a torn line
	} {
		if recs, err := ReadResults(strings.NewReader(in)); err == nil {
			t.Errorf("ReadResults(%q) = %+v, nil; want an error", in, recs)
		}
	}
}

// Runs appending at once (make -j, two lanes side by side) keep whole lines.
func TestAppendResultConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results")
	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = AppendResult(path, BootRecord{Lane: "lane", Devices: strings.Repeat("edu,", 100) + "edu", Passed: i})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := ReadResults(f)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, r := range recs {
		got = append(got, r.Passed)
	}
	slices.Sort(got)
	if len(got) != n || got[0] != 0 || got[n-1] != n-1 || len(slices.Compact(got)) != n {
		t.Errorf("read back %d records %v, want 0..%d once each", len(got), got, n-1)
	}
}
