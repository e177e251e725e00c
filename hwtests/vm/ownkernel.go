package vm

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

//go:embed kconfig
var kconfigFS embed.FS // read-only: go:embed data, not mutable state

// KernelBuild is a lane whose kernel we build ourselves: Debian's
// linux-source-<Series>, configured from allnoconfig plus a fragment of
// ours, everything built in. Debian's own kernels compile out what it is
// for: the SMMUv3's iommufd part (GET_HW_INFO, nesting parent, vIOMMU),
// the ioctls after 6.12, and a kernel without modules for hostcheck.
type KernelBuild struct {
	// Series names the source package, linux-source-<Series>.
	Series string
	// Pin is the Debian version the lane was verified with; when the
	// mirror drops it, the newest <Series> from Suite is used.
	Pin   string
	Suite string
	// Arch is kbuild's ARCH; Target the image make builds and ImagePath
	// where it lands under the output directory.
	Arch, Target, ImagePath string
	// Fragment is the file under kconfig/ applied over allnoconfig.
	Fragment string
}

// ownKernelRecipeRevision is part of the own kernel's cache key. Bump it
// when the build steps change in a way the hashed inputs do not show.
const ownKernelRecipeRevision = "1"

func (b KernelBuild) sourcePackage() string { return "linux-source-" + b.Series }

// fragment returns the config fragment's text.
func (b KernelBuild) fragment() (string, error) {
	t, err := kconfigFS.ReadFile("kconfig/" + b.Fragment)
	return string(t), err
}

// fragmentLines are the fragment's settings ("CONFIG_X=y"), comments and
// blank lines dropped.
func fragmentLines(frag string) []string {
	var out []string
	for _, l := range strings.Split(frag, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// missingSettings returns the fragment settings that the resolved
// .config does not hold: a symbol whose dependencies are off is dropped
// silently by kconfig, and a lane must not lose a feature silently.
func missingSettings(frag, config string) []string {
	have := map[string]bool{}
	for _, l := range strings.Split(config, "\n") {
		have[strings.TrimSpace(l)] = true
	}
	var missing []string
	for _, l := range fragmentLines(frag) {
		if strings.HasSuffix(l, "=n") {
			name, _, _ := strings.Cut(l, "=")
			if have["# "+name+" is not set"] || !strings.Contains(config, name+"=") {
				continue
			}
		} else if have[l] {
			continue
		}
		missing = append(missing, l)
	}
	return missing
}

// ownKernelKey keys the build by source version, fragment, compilers and
// recipe: the fragment's hash is the config's.
func ownKernelKey(lane Lane, version, frag, toolchain string) string {
	b := lane.Build
	return Key("linux-"+version+"-"+b.Arch, ownKernelRecipeRevision, lane.CrossCompile, b.Target, frag, toolchain)
}

// toolchainID names the compiler and pahole (BTF) versions, which change
// the image without changing the fragment.
func toolchainID(ctx context.Context, lane Lane) string {
	var ids []string
	for _, argv := range [][]string{{lane.CrossCompile + "gcc-12", "--version"}, {"pahole", "--version"}} {
		out, err := command(ctx, "", argv[0], argv[1:]...)
		first, _, _ := strings.Cut(string(out), "\n")
		if err != nil {
			first = argv[0] + " unavailable"
		}
		ids = append(ids, strings.TrimSpace(first))
	}
	return strings.Join(ids, "; ")
}

// prepareOwnKernel returns the lane's own kernel, building it when the
// cache lacks it (minutes; later runs take it from the cache).
func prepareOwnKernel(ctx context.Context, c Cache, lane Lane, flagVersion string, ph *phases, log *slog.Logger) (Kernel, error) {
	b := lane.Build
	frag, err := b.fragment()
	if err != nil {
		return Kernel{}, err
	}
	tc := toolchainID(ctx, lane)
	want, from := flagVersion, "flag"
	if want == "" {
		want, from = b.Pin, "pinned"
	}
	load := func(version, from string) (Kernel, bool, error) {
		dir, ok := c.Entry("kernel", ownKernelKey(lane, version, frag, tc))
		if !ok {
			return Kernel{}, false, nil
		}
		k, err := readKernelJSON(dir)
		k.From = from
		return k, err == nil, err
	}
	if k, ok, err := load(want, from); err != nil || ok {
		if ok {
			log.Info("own kernel from cache", "version", k.Version, "uname", k.Uname, "dir", k.Dir)
		}
		return k, err
	}
	version := want
	if flagVersion == "" {
		stop := ph.start("resolve kernel")
		out, err := command(ctx, "", "apt-cache", "madison", b.sourcePackage())
		stop()
		if err != nil {
			return Kernel{}, err
		}
		v, pinned, err := pickSourceVersion(string(out), b.Pin, b.Suite, b.Series+".")
		if err != nil {
			return Kernel{}, fmt.Errorf("%w (hwtests/vm/setup-host adds %s)", err, b.Suite)
		}
		if !pinned {
			log.Warn("pinned kernel source is gone from the mirror; using the newest", "pinned", b.Pin, "using", v)
			from = "fallback"
			if k, ok, err := load(v, from); err != nil || ok {
				return k, err
			}
		}
		version = v
	}
	key := ownKernelKey(lane, version, frag, tc)
	log.Info("building the own kernel (minutes; cached afterwards)", "source", b.sourcePackage(), "version", version, "arch", b.Arch, "fragment", b.Fragment)
	dir, _, err := c.Fill("kernel", key, func(staging string) error {
		return buildOwnKernel(ctx, lane, version, frag, staging, ph)
	})
	if err != nil {
		return Kernel{}, fmt.Errorf("own kernel %s: %w", version, err)
	}
	k, err := readKernelJSON(dir)
	k.From = from
	return k, err
}

func readKernelJSON(dir string) (Kernel, error) {
	b, err := os.ReadFile(filepath.Join(dir, "kernel.json"))
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel cache entry %s: %w (delete it to rebuild)", dir, err)
	}
	var k Kernel
	if err := json.Unmarshal(b, &k); err != nil {
		return Kernel{}, fmt.Errorf("kernel cache entry %s: %w (delete it to rebuild)", dir, err)
	}
	k.Dir = dir
	return k, nil
}

// buildOwnKernel downloads the source, configures, builds, and leaves in
// out only what a boot needs, laid out like an extracted Debian kernel
// (root/boot/vmlinuz-<uname>, an empty modules.dep: nothing is a module)
// plus the resolved config.
func buildOwnKernel(ctx context.Context, lane Lane, version, frag, out string, ph *phases) error {
	b := lane.Build
	dl := filepath.Join(out, "debs")
	src := filepath.Join(out, "src")
	obj := filepath.Join(out, "build")
	for _, d := range []string{dl, src, obj} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	stop := ph.start("download")
	args := []string{"download", "-qq"}
	if os.Geteuid() == 0 {
		args = append(args, "-o", "APT::Sandbox::User=root")
	}
	if _, err := command(ctx, dl, "apt-get", append(args, b.sourcePackage()+"="+version)...); err != nil {
		return err
	}
	stop()
	debs, err := filepath.Glob(filepath.Join(dl, b.sourcePackage()+"_*.deb"))
	if err != nil || len(debs) != 1 {
		return fmt.Errorf("apt-get download gave %d %s .debs, want 1 (%v)", len(debs), b.sourcePackage(), err)
	}
	stop = ph.start("extract source")
	// The whole tree (with its symlinks), straight from the .deb's inner
	// tarball: tar handles what a kernel tree holds.
	const extract = `set -o pipefail; dpkg-deb --fsys-tarfile "$1" | tar -xOf - --wildcards './usr/src/linux-source-*.tar.xz' | tar -xJf - -C "$2" --strip-components=1`
	if _, err := command(ctx, "", "bash", "-c", extract, "extract", debs[0], src); err != nil {
		return err
	}
	if err := os.RemoveAll(dl); err != nil {
		return err
	}
	stop()

	fragFile := filepath.Join(out, "fragment.config")
	if err := os.WriteFile(fragFile, []byte(frag), 0o644); err != nil {
		return err
	}
	mk := func(target ...string) ([]byte, error) {
		args := append([]string{"-s", "-C", src, "O=" + obj, "ARCH=" + b.Arch,
			"CROSS_COMPILE=" + lane.CrossCompile, "CC=" + lane.CrossCompile + "gcc-12",
			"KCONFIG_ALLCONFIG=" + fragFile}, target...)
		return command(ctx, "", "make", args...)
	}
	stop = ph.start("kernel config")
	if _, err := mk("allnoconfig"); err != nil {
		return err
	}
	config, err := os.ReadFile(filepath.Join(obj, ".config"))
	if err != nil {
		return err
	}
	if missing := missingSettings(frag, string(config)); len(missing) > 0 {
		return fmt.Errorf("kconfig dropped %s from kconfig/%s (a dependency is off, or the symbol is gone in %s)",
			strings.Join(missing, ", "), b.Fragment, version)
	}
	stop()
	stop = ph.start("kernel build")
	if _, err := mk("-j"+strconv.Itoa(runtime.NumCPU()), b.Target); err != nil {
		return err
	}
	rel, err := mk("kernelrelease")
	if err != nil {
		return err
	}
	stop()
	uname := strings.TrimSpace(string(rel))
	if uname == "" || strings.ContainsAny(uname, "/ \n") {
		return fmt.Errorf("make kernelrelease said %q", rel)
	}
	k := Kernel{Version: version, ABI: uname, Uname: uname, Packages: []string{b.sourcePackage()}, Dir: out}
	if err := os.MkdirAll(k.ModulesDir(), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(k.ModulesDir(), "modules.dep"), nil, 0o644); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(obj, b.ImagePath), k.Image()); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(k.Root(), "boot", "config-"+uname), config, 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(src); err != nil {
		return err
	}
	if err := os.RemoveAll(obj); err != nil {
		return err
	}
	j, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "kernel.json"), append(j, '\n'), 0o644)
}

// pickSourceVersion chooses from `apt-cache madison` output: the pin if
// listed, else the newest (madison lists newest first) version of the
// series from suite or a suite named after it ("bookworm" takes
// bookworm-backports and bookworm-security too).
func pickSourceVersion(madison, pin, suite, series string) (version string, pinned bool, err error) {
	var fallback string
	for _, line := range strings.Split(madison, "\n") {
		f := strings.Split(line, "|")
		if len(f) < 3 {
			continue
		}
		v := strings.TrimSpace(f[1])
		where := strings.Fields(f[2]) // url suite/component arch Packages
		if len(where) < 2 {
			continue
		}
		s, _, _ := strings.Cut(where[1], "/")
		if v == pin {
			return v, true, nil
		}
		if fallback == "" && (s == suite || strings.HasPrefix(s, suite+"-")) && strings.HasPrefix(v, series) {
			fallback = v
		}
	}
	if fallback == "" {
		return "", false, fmt.Errorf("no %s* from %s in apt's lists", series, suite)
	}
	return fallback, false, nil
}

// builtInDrivers checks that an own-kernel lane builds in the driver of
// every device: it has no modules, and a device whose driver is missing
// would sit there driverless.
func builtInDrivers(lane Lane, devs Devices) error {
	frag, err := lane.Build.fragment()
	if err != nil {
		return err
	}
	lines := fragmentLines(frag)
	var missing []string
	for _, sym := range devs.Kconfig() {
		if !slices.Contains(lines, sym+"=y") {
			missing = append(missing, sym)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("lane %s has no modules and kconfig/%s does not build in %s (add =y there for %s)",
			lane.Name, lane.Build.Fragment, strings.Join(missing, ", "), devs)
	}
	return nil
}
