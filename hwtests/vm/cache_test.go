package vm

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDefaultCacheDir(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"IOMMU_AGENT_CACHE": "/c", "XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/c/hwtests"},
		{map[string]string{"XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/x/iommu-agent/hwtests"},
		{map[string]string{"HOME": "/h"}, "/h/.cache/iommu-agent/hwtests"},
	} {
		got, err := DefaultCacheDir(env(tc.env))
		if err != nil || got != tc.want {
			t.Errorf("DefaultCacheDir(%v) = %q, %v; want %q", tc.env, got, err, tc.want)
		}
	}
	if _, err := DefaultCacheDir(env(nil)); err == nil {
		t.Error("no HOME and no cache variables accepted")
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	a := Key("amd64-6.12.95-1~bpo12+1", "x", "y")
	if a != Key("amd64-6.12.95-1~bpo12+1", "x", "y") {
		t.Error("Key is not deterministic")
	}
	for _, other := range []string{Key("amd64-6.12.95-1~bpo12+1", "x", "z"), Key("amd64-6.12.95-1~bpo12+1", "xy"), Key("amd64-6.12.95-1~bpo12+1", "xy", ""), Key("arm64-6.12.95-1~bpo12+1", "x", "y")} {
		if other == a {
			t.Errorf("different inputs give the same key %s", a)
		}
	}
	if got := Key("a/b c", "x"); filepath.Base(got) != got {
		t.Errorf("key %q is not one path element", got)
	}
}

func TestKernelAndModuleKeys(t *testing.T) {
	t.Parallel()
	lane := Lanes()[0]
	k1, k2 := kernelKey(lane, "6.12.95-1~bpo12+1"), kernelKey(lane, "6.12.117-1~deb12u1")
	if k1 == k2 {
		t.Error("kernel key ignores the version")
	}
	std, err := VariantStd.recipeFiles()
	if err != nil {
		t.Fatal(err)
	}
	compat, err := VariantCompat.recipeFiles()
	if err != nil {
		t.Fatal(err)
	}
	m := moduleKey(lane, k1, VariantStd, std)
	if m == moduleKey(lane, k2, VariantStd, std) {
		t.Error("module key ignores the kernel")
	}
	if m == moduleKey(lane, k1, VariantCompat, compat) {
		t.Error("module key ignores the variant")
	}
	edited := map[string]string{"Kbuild": std["Kbuild"] + "\n# edited\n"}
	if m == moduleKey(lane, k1, VariantStd, edited) {
		t.Error("module key ignores the Kbuild text")
	}
	if kernelKey(lane, "6.12.95-1~bpo12+1") != k1 {
		t.Error("kernel key depends on more than version and recipe")
	}
}

func TestCacheFill(t *testing.T) {
	t.Parallel()
	c := Cache{Dir: t.TempDir()}
	boom := errors.New("interrupted")
	_, built, err := c.Fill("kernel", "k1", func(staging string) error {
		if err := os.WriteFile(filepath.Join(staging, "half"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return boom
	})
	if !errors.Is(err, boom) || !built {
		t.Fatalf("failed fill: built %v, err %v", built, err)
	}
	if _, ok := c.Entry("kernel", "k1"); ok {
		t.Fatal("a failed fill left an entry behind")
	}
	if ents, _ := os.ReadDir(filepath.Join(c.Dir, "tmp")); len(ents) != 0 {
		t.Errorf("a failed fill left staging dirs: %v", ents)
	}
	dir, built, err := c.Fill("kernel", "k1", func(staging string) error {
		return os.WriteFile(filepath.Join(staging, "done"), []byte("x"), 0o644)
	})
	if err != nil || !built {
		t.Fatalf("fill: %v, built %v", err, built)
	}
	if _, err := os.Stat(filepath.Join(dir, "done")); err != nil {
		t.Errorf("entry lacks its content: %v", err)
	}
	again, built, err := c.Fill("kernel", "k1", func(string) error {
		t.Error("fill ran for an existing entry")
		return nil
	})
	if err != nil || built || again != dir {
		t.Errorf("second Fill = %q, %v, %v; want %q from the cache", again, built, err, dir)
	}
}

func TestCacheFillRace(t *testing.T) {
	t.Parallel()
	c := Cache{Dir: t.TempDir()}
	// Another run commits the same entry while ours is being filled
	// (one that does not take the lock: an older harness).
	dir, _, err := c.Fill("modules", "m", func(staging string) error {
		theirs := filepath.Join(c.Dir, "modules", "m")
		if err := os.MkdirAll(theirs, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(theirs, "theirs"), nil, 0o644); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(staging, "ours"), nil, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "theirs")); err != nil {
		t.Errorf("the first committed entry did not win: %v", err)
	}
}

func TestCleanStale(t *testing.T) {
	t.Parallel()
	c := Cache{Dir: t.TempDir()}
	tmp := filepath.Join(c.Dir, "tmp")
	// A pid that cannot be running: above the kernel's pid_max limit.
	dead := filepath.Join(tmp, "4194305-kernel-x-1")
	live := filepath.Join(tmp, strconv.Itoa(os.Getppid())+"-kernel-x-2")
	mine, err := c.TempDir("modules-x")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dead, live} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CleanStale(); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{dead: false, live: true, mine: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
	if err := (Cache{Dir: filepath.Join(c.Dir, "none")}).CleanStale(); err != nil {
		t.Errorf("CleanStale on a new cache: %v", err)
	}
}

// Two fills of one missing entry side by side: one builds, the other
// waits for it and reuses the entry instead of building it again.
func TestFillConcurrentBuildsOnce(t *testing.T) {
	c := Cache{Dir: t.TempDir()}
	var builds atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	dirs := make([]string, 2)
	for i := range dirs {
		wg.Go(func() {
			d, _, err := c.Fill("k", "key", func(staging string) error {
				builds.Add(1)
				<-release
				return os.WriteFile(filepath.Join(staging, "f"), []byte("x"), 0o644)
			})
			if err != nil {
				t.Error(err)
			}
			dirs[i] = d
		})
	}
	time.Sleep(50 * time.Millisecond) // let both reach the lock
	close(release)
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Errorf("%d builds, want 1", n)
	}
	if dirs[0] != dirs[1] || dirs[0] == "" {
		t.Errorf("fills returned %q", dirs)
	}
}

// A run directory whose harness is alive survives pruning however many
// runs came after it: lanes run side by side, and a long kernel build in
// one must not lose its directory to another lane's quick boots.
func TestPruneRunsKeepsLiveRuns(t *testing.T) {
	runs := t.TempDir()
	t0 := time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)
	live := runDirPrefix(t0, os.Getppid()) + "a" // our parent: alive
	dead := runDirPrefix(t0.Add(time.Second), 1<<22+1) + "b"
	old := t0.Add(-time.Hour).Format("20060102-150405") + "-c" // an older harness's name, no pid
	var later []string
	for i := range 5 {
		later = append(later, runDirPrefix(t0.Add(time.Duration(i+2)*time.Minute), os.Getpid())+"x")
	}
	for _, d := range append([]string{live, dead, old}, later...) {
		if err := os.Mkdir(filepath.Join(runs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pruneRuns(runs, 2)
	ents, err := os.ReadDir(runs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	want := []string{live, later[3], later[4]}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after pruning: %q, want %q", got, want)
	}
}
