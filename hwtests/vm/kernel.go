package vm

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultKernelVersion is the Debian linux 6.12 version the recipes were
// verified with (bookworm-backports). When the mirror drops it the
// harness falls back to the newest 6.12 in a bookworm suite.
const DefaultKernelVersion = "6.12.95-1~bpo12+1"

// kernelRecipeRevision is part of the kernel cache key. Bump it when the
// extraction steps below change in a way the key inputs do not show.
const kernelRecipeRevision = "1"

// sourcePackage carries the kernel source tarball; it is arch all and not
// versioned by ABI.
const sourcePackage = "linux-source-6.12"

// sourceSubset is what the module rebuild needs from linux-source:
// directories end in "/".
func sourceSubset() []string {
	return []string{
		"drivers/iommu/iommufd/",
		"drivers/iommu/iommu-priv.h",
		"drivers/vfio/",
		"lib/interval_tree.c",
		"include/uapi/linux/iommufd.h",
		"include/uapi/linux/vfio.h",
	}
}

// Kernel is an extracted guest kernel in the cache.
type Kernel struct {
	Version string `json:"version"` // Debian version, 6.12.95-1~bpo12+1
	ABI     string `json:"abi"`     // 6.12.95+deb12
	Uname   string `json:"uname"`   // 6.12.95+deb12-amd64
	// From says how Version was chosen: "flag", "pinned" or "fallback".
	From     string   `json:"from"`
	Packages []string `json:"packages"`
	Dir      string   `json:"-"`
}

// Root is where the image, headers and kbuild packages are unpacked.
func (k Kernel) Root() string { return filepath.Join(k.Dir, "root") }

// Src holds the source subset, without the linux-source-6.12/ prefix.
func (k Kernel) Src() string { return filepath.Join(k.Dir, "src") }

// Image is the kernel to boot.
func (k Kernel) Image() string { return filepath.Join(k.Root(), "boot", "vmlinuz-"+k.Uname) }

// Headers is the kbuild directory for out-of-tree modules.
func (k Kernel) Headers() string {
	return filepath.Join(k.Root(), "usr", "src", "linux-headers-"+k.Uname)
}

// ModulesDir is /lib/modules/<uname> of the extracted image.
func (k Kernel) ModulesDir() string { return filepath.Join(k.Root(), "lib", "modules", k.Uname) }

// kernelPackages lists the five packages of one kernel; the signed image
// is used as is.
func kernelPackages(abi, flavour string) []string {
	return []string{
		"linux-image-" + abi + "-" + flavour,
		"linux-headers-" + abi + "-" + flavour,
		"linux-headers-" + abi + "-common",
		"linux-kbuild-" + abi,
		sourcePackage,
	}
}

// forHost reports whether package p must match the host rather than the
// guest: kbuild's scripts and modpost run on the host, and the source is
// arch all. The image and headers are the guest's architecture.
func forHost(p string) bool {
	return p == sourcePackage || strings.HasPrefix(p, "linux-kbuild-")
}

// pickVersion chooses the kernel version from `apt-cache madison
// linux-source-6.12` output: the pin if the mirror still has it, else the
// newest version from a bookworm suite (madison lists newest first).
func pickVersion(madison, pin string) (version string, pinned bool, err error) {
	v, pinned, err := pickSourceVersion(madison, pin, "bookworm", "6.12.")
	if err != nil {
		return "", false, fmt.Errorf("no %s 6.12.x from a bookworm suite in apt's lists (run hwtests/vm/setup-host, or apt-get update)", sourcePackage)
	}
	return v, pinned, nil
}

// parseABI finds the ABI in `apt-cache show <meta>=<version>` output: the
// meta package depends on linux-image-<abi>-<flavour> (= version). The ABI
// cannot be derived from the version string (6.12.90+deb12.1 exists).
func parseABI(show, flavour, version string) (string, error) {
	re := regexp.MustCompile(`linux-image-([^\s,|()]+)-` + regexp.QuoteMeta(flavour) + `\s*\(=\s*` + regexp.QuoteMeta(version) + `\)`)
	for _, line := range strings.Split(show, "\n") {
		if !strings.HasPrefix(line, "Depends:") {
			continue
		}
		if m := re.FindStringSubmatch(line); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("no linux-image-<abi>-%s (= %s) dependency found", flavour, version)
}

// resolveKernel picks the version and ABI with apt-cache. The pin (or
// -kernel-version) is looked up directly; `apt-cache madison` runs only
// when the pin is gone, to find the fallback. Each apt-cache call reads
// all lists (~2 s), hence few of them.
func resolveKernel(ctx context.Context, lane Lane, a apt, flagVersion, pin string, log *slog.Logger) (Kernel, error) {
	k := Kernel{Version: flagVersion, From: "flag"}
	if k.Version == "" {
		k.Version, k.From = pin, "pinned"
	}
	abi, err := lookupABI(ctx, lane, a, k.Version)
	if err != nil && k.From == "pinned" {
		out, merr := command(ctx, "", "apt-cache", "madison", sourcePackage)
		if merr != nil {
			return Kernel{}, errors.Join(err, merr)
		}
		v, _, perr := pickVersion(string(out), pin)
		if perr != nil {
			return Kernel{}, errors.Join(err, perr)
		}
		log.Warn("pinned kernel version is gone from the mirror; using the newest bookworm 6.12", "pinned", pin, "using", v)
		k.Version, k.From = v, "fallback"
		abi, err = lookupABI(ctx, lane, a, v)
	}
	if err != nil {
		return Kernel{}, err
	}
	k.ABI = abi
	k.Uname = abi + "-" + lane.Flavour
	k.Packages = kernelPackages(abi, lane.Flavour)
	return k, nil
}

// lookupABI reads the ABI of version from its image meta package; the
// 6.12 backports/security builds name it linux-image-amd64 or
// linux-image-6.12-amd64. One apt-cache call asks for both; the one
// missing makes it exit non-zero, so its output is parsed regardless.
// The meta package is the guest's architecture: a asks the apt that
// lists it.
func lookupABI(ctx context.Context, lane Lane, a apt, version string) (string, error) {
	out, err := a.run(ctx, "", "apt-cache", "show",
		"linux-image-6.12-"+lane.Flavour+"="+version, "linux-image-"+lane.Flavour+"="+version)
	abi, perr := parseABI(string(out), lane.Flavour, version)
	if perr != nil {
		return "", fmt.Errorf("kernel %s not in apt's lists: %w", version, errors.Join(perr, err))
	}
	return abi, nil
}

// kernelKey keys the kernel entry by version and recipe. A Debian version
// fixes the ABI, so the entry can be found without asking apt.
func kernelKey(lane Lane, version string) string {
	return Key(lane.DebArch+"-"+version, append([]string{kernelRecipeRevision, lane.DebArch, lane.Flavour, sourcePackage}, sourceSubset()...)...)
}

// prepareKernel returns the extracted kernel: from the cache when the
// requested (or pinned) version is there, which needs no apt at all; else
// resolved with apt-cache (falling back from a vanished pin) and fetched.
func prepareKernel(ctx context.Context, c Cache, lane Lane, flagVersion string, ph *phases, log *slog.Logger) (Kernel, error) {
	want, from := flagVersion, "flag"
	if want == "" {
		want, from = DefaultKernelVersion, "pinned"
	}
	if k, ok, err := cachedKernel(c, lane, want); err != nil || ok {
		if ok {
			k.From = from
			log.Info("guest kernel from cache", "version", k.Version, "from", from, "uname", k.Uname, "dir", k.Dir)
		}
		return k, err
	}
	a, err := aptFor(c, lane.DebArch)
	if err != nil {
		return Kernel{}, err
	}
	if a.private() {
		stop := ph.start("apt update (" + a.arch + ")")
		err := a.update(ctx)
		stop()
		if err != nil {
			return Kernel{}, fmt.Errorf("%s package lists: %w", a.arch, err)
		}
	}
	stop := ph.start("resolve kernel")
	k, err := resolveKernel(ctx, lane, a, flagVersion, DefaultKernelVersion, log)
	stop()
	if err != nil {
		return Kernel{}, err
	}
	log.Info("guest kernel", "version", k.Version, "from", k.From, "uname", k.Uname)
	if cached, ok, err := cachedKernel(c, lane, k.Version); err != nil || ok {
		cached.From = k.From
		return cached, err
	}
	return fetchKernel(ctx, c, lane, a, k, ph)
}

// cachedKernel loads the cache entry of version, if complete.
func cachedKernel(c Cache, lane Lane, version string) (Kernel, bool, error) {
	dir, ok := c.Entry("kernel", kernelKey(lane, version))
	if !ok {
		return Kernel{}, false, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "kernel.json"))
	if err != nil {
		return Kernel{}, false, fmt.Errorf("kernel cache entry %s: %w (delete it to rebuild)", dir, err)
	}
	var k Kernel
	if err := json.Unmarshal(b, &k); err != nil {
		return Kernel{}, false, fmt.Errorf("kernel cache entry %s: %w (delete it to rebuild)", dir, err)
	}
	k.Dir = dir
	return k, true, nil
}

// fetchKernel downloads and extracts k into the cache entry, unless it is
// there already. The .debs live in the staging directory only and are
// gone before the entry is committed; the source tarball is never written
// to disk (streamed out of its .deb).
func fetchKernel(ctx context.Context, c Cache, lane Lane, a apt, k Kernel, ph *phases) (Kernel, error) {
	dir, _, err := c.Fill("kernel", kernelKey(lane, k.Version), func(staging string) error {
		dl := filepath.Join(staging, "debs")
		if err := os.Mkdir(dl, 0o755); err != nil {
			return err
		}
		stop := ph.start("download")
		// One apt-get per architecture: the host's for kbuild and the
		// source, a's for the image and headers (the same apt on x86).
		byAPT := map[bool][]string{}
		for _, p := range k.Packages {
			host := forHost(p) || !a.private()
			byAPT[host] = append(byAPT[host], p+"="+k.Version)
		}
		for _, host := range []bool{true, false} {
			if len(byAPT[host]) == 0 {
				continue
			}
			via := a
			if host {
				via = hostAPT()
			}
			args := []string{"download", "-qq"}
			if os.Geteuid() == 0 {
				// apt's sandbox user cannot write into our directory.
				args = append(args, "-o", "APT::Sandbox::User=root")
			}
			if _, err := via.run(ctx, dl, "apt-get", append(args, byAPT[host]...)...); err != nil {
				return err
			}
		}
		stop()
		debs, err := filepath.Glob(filepath.Join(dl, "*.deb"))
		if err != nil {
			return err
		}
		if len(debs) != len(k.Packages) {
			return fmt.Errorf("apt-get download gave %d .debs, want %d", len(debs), len(k.Packages))
		}
		stop = ph.start("extract")
		if err := extractKernel(ctx, staging, k, debs, ph); err != nil {
			return err
		}
		stop()
		if err := os.RemoveAll(dl); err != nil {
			return err
		}
		b, err := json.MarshalIndent(k, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(staging, "kernel.json"), append(b, '\n'), 0o644)
	})
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	k.Dir = dir
	return k, nil
}

// extractKernel unpacks the binary packages (then fixes the headers
// Makefile and runs depmod) while the source subset streams out of
// linux-source: the two are independent and each mostly one core.
func extractKernel(ctx context.Context, staging string, k Kernel, debs []string, ph *phases) error {
	root := filepath.Join(staging, "root")
	var srcDeb string
	var bins []string
	for _, d := range debs {
		if strings.HasPrefix(filepath.Base(d), sourcePackage+"_") {
			srcDeb = d
		} else {
			bins = append(bins, d)
		}
	}
	if srcDeb == "" {
		return errors.New("no linux-source .deb downloaded")
	}
	var wg sync.WaitGroup
	var binErr, srcErr error
	wg.Go(func() {
		for _, d := range bins {
			if _, binErr = command(ctx, "", "dpkg-deb", "-x", d, root); binErr != nil {
				return
			}
		}
		tk := k
		tk.Dir = staging
		if binErr = fixHeadersMakefile(tk); binErr != nil {
			return
		}
		stop := ph.start("depmod")
		_, binErr = command(ctx, "", depmodPath(), "-b", root, k.Uname)
		stop()
	})
	wg.Go(func() {
		stop := ph.start("source subset")
		srcErr = extractSourceSubset(ctx, srcDeb, filepath.Join(staging, "src"), sourceSubset())
		stop()
	})
	wg.Wait()
	return errors.Join(binErr, srcErr)
}

// depmodPath finds depmod, which lives in sbin (not on a user's PATH).
func depmodPath() string {
	if p, err := exec.LookPath("depmod"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/depmod", "/sbin/depmod"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "depmod"
}

// fixHeadersMakefile makes the flavour headers' one-line Makefile include
// the common headers next to it instead of /usr/src/... (absolute in the
// package). The include is relative to the Makefile's own location, so
// the entry still works after the staging directory is renamed.
func fixHeadersMakefile(k Kernel) error {
	mf := filepath.Join(k.Headers(), "Makefile")
	b, err := os.ReadFile(mf)
	if err != nil {
		return err
	}
	abs := "/usr/src/linux-headers-" + k.ABI + "-common/Makefile"
	if !bytes.Contains(b, []byte(abs)) {
		return fmt.Errorf("%s does not include %s; the recipe needs updating", mf, abs)
	}
	rel := "$(abspath $(dir $(lastword $(MAKEFILE_LIST)))../linux-headers-" + k.ABI + "-common/Makefile)"
	return os.WriteFile(mf, bytes.ReplaceAll(b, []byte(abs), []byte(rel)), 0o644)
}

// extractSourceSubset streams linux-source's .deb through dpkg-deb and xz
// and writes only the wanted paths. It stops reading once every wanted
// path has been seen and left (tar lists a directory's contents together),
// which skips the last ~17% of the 1.4 GB stream.
func extractSourceSubset(ctx context.Context, deb, dst string, want []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deber := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	killGroupOnCancel(deber) // dpkg-deb forks its decompressor
	debOut, err := deber.StdoutPipe()
	if err != nil {
		return err
	}
	var debErr bytes.Buffer
	deber.Stderr = &debErr
	if err := deber.Start(); err != nil {
		return err
	}
	outer := tar.NewReader(debOut)
	var xzIn io.Reader
	for {
		h, err := outer.Next()
		if err != nil {
			return fmt.Errorf("no linux-source tarball in %s: %w", filepath.Base(deb), err)
		}
		if m, _ := path.Match("./usr/src/linux-source-*.tar.xz", h.Name); m {
			xzIn = outer
			break
		}
	}
	xz := exec.CommandContext(ctx, "xz", "-dc")
	killGroupOnCancel(xz)
	xz.Stdin = xzIn
	xzOut, err := xz.StdoutPipe()
	if err != nil {
		return err
	}
	var xzErr bytes.Buffer
	xz.Stderr = &xzErr
	if err := xz.Start(); err != nil {
		return err
	}
	sel := newSubset(want)
	tr := tar.NewReader(xzOut)
	var extractErr error
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			extractErr = fmt.Errorf("read source tarball: %w", err)
			break
		}
		_, rel, ok := strings.Cut(h.Name, "/") // drop linux-source-6.12/
		if !ok {
			continue
		}
		if sel.done(rel) {
			break
		}
		if !sel.want(rel) {
			continue
		}
		if extractErr = writeTarEntry(dst, rel, h, tr); extractErr != nil {
			break
		}
	}
	// Stop the pipeline: early, or after an error. Their exit status only
	// matters when we read to the end.
	finished := extractErr == nil && sel.complete()
	cancel()
	xzWait, debWait := xz.Wait(), deber.Wait()
	if extractErr != nil {
		return extractErr
	}
	if !finished {
		return fmt.Errorf("source tarball lacks %v (xz: %v %s; dpkg-deb: %v %s)",
			sel.missing(), xzWait, tail(xzErr.String(), 500), debWait, tail(debErr.String(), 500))
	}
	return nil
}

// writeTarEntry writes one directory or regular file below dst.
func writeTarEntry(dst, rel string, h *tar.Header, r io.Reader) error {
	clean := filepath.Clean(rel)
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("unsafe path %q in source tarball", h.Name)
	}
	p := filepath.Join(dst, clean)
	switch h.Typeflag {
	case tar.TypeDir:
		return os.MkdirAll(p, 0o755)
	case tar.TypeReg:
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	default:
		return nil // no links needed from these directories
	}
}

// subset selects tar entries by path; directory patterns end in "/".
type subset struct {
	files map[string]bool // seen
	dirs  map[string]bool // seen
}

func newSubset(want []string) *subset {
	s := &subset{files: map[string]bool{}, dirs: map[string]bool{}}
	for _, w := range want {
		if strings.HasSuffix(w, "/") {
			s.dirs[w] = false
		} else {
			s.files[w] = false
		}
	}
	return s
}

// want reports whether name is extracted, and records it as seen.
func (s *subset) want(name string) bool {
	if _, ok := s.files[name]; ok {
		s.files[name] = true
		return true
	}
	for d := range s.dirs {
		if name == d || strings.HasPrefix(name, d) {
			s.dirs[d] = true
			return true
		}
	}
	return false
}

// done reports that every wanted path was seen and name lies outside all
// wanted directories, so nothing more can follow.
func (s *subset) done(name string) bool {
	if !s.complete() {
		return false
	}
	for d := range s.dirs {
		if strings.HasPrefix(name, d) {
			return false
		}
	}
	return true
}

func (s *subset) complete() bool { return len(s.missing()) == 0 }

func (s *subset) missing() []string {
	var m []string
	for f, seen := range s.files {
		if !seen {
			m = append(m, f)
		}
	}
	for d, seen := range s.dirs {
		if !seen {
			m = append(m, d)
		}
	}
	return m
}

// command runs a program and returns its stdout; on failure the error
// carries the tail of stderr.
func command(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	return commandEnv(ctx, dir, nil, name, args...)
}

// commandEnv is command with an environment (nil: ours).
func commandEnv(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	killGroupOnCancel(cmd)
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(stderr.String(), 2000))
	}
	return out, nil
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// killGroupOnCancel runs cmd in its own process group and kills the whole
// group when ctx ends: dpkg-deb, make and apt fork helpers that would
// otherwise outlive a cancelled run and keep its pipes open. WaitDelay
// bounds the wait for pipes that a stray helper still holds.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
}
