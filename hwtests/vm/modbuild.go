package vm

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

//go:embed kbuild
var kbuildFS embed.FS // read-only: go:embed data, not mutable state

// Variant picks the module build: std (vfio's own container + type1) or
// compat (iommufd's /dev/vfio/vfio).
type Variant string

const (
	VariantStd    Variant = "std"
	VariantCompat Variant = "compat"
)

// ParseVariant reads the -modules flag.
func ParseVariant(s string) (Variant, error) {
	switch v := Variant(s); v {
	case VariantStd, VariantCompat:
		return v, nil
	}
	return "", fmt.Errorf("unknown module build %q (std or compat)", s)
}

// Modules lists the rebuilt modules in load order.
func (v Variant) Modules() []string {
	if v == VariantCompat {
		return []string{"iommufd", "vfio", "vfio-pci-core", "vfio-pci"}
	}
	return []string{"iommufd", "vfio", "vfio-pci-core", "vfio-pci", "vfio_iommu_type1"}
}

// moduleRecipeRevision is part of the module cache key. Bump it when the
// build steps change in a way the hashed inputs (Kbuild files, compat.h)
// do not show.
const moduleRecipeRevision = "1"

// recipeFiles returns the build files of v: name in the build dir → text.
func (v Variant) recipeFiles() (map[string]string, error) {
	read := func(name string) (string, error) {
		b, err := kbuildFS.ReadFile("kbuild/" + name)
		return string(b), err
	}
	files := map[string]string{}
	kb, err := read("Kbuild." + string(v))
	if err != nil {
		return nil, err
	}
	files["Kbuild"] = kb
	if v == VariantCompat {
		h, err := read("compat.h")
		if err != nil {
			return nil, err
		}
		files["compat.h"] = h
	}
	return files, nil
}

// moduleKey keys a module build by kernel entry, variant and recipe.
func moduleKey(lane Lane, kernelKey string, v Variant, files map[string]string) string {
	inputs := []string{moduleRecipeRevision, kernelKey, string(v), lane.CrossCompile}
	for _, name := range []string{"Kbuild", "compat.h"} {
		inputs = append(inputs, name, files[name])
	}
	return Key(lane.DebArch+"-"+string(v), inputs...)
}

// buildModules returns the cache entry holding v's .ko files for k,
// building them when missing.
func buildModules(ctx context.Context, c Cache, lane Lane, k Kernel, v Variant, log *slog.Logger) (string, error) {
	files, err := v.recipeFiles()
	if err != nil {
		return "", err
	}
	key := moduleKey(lane, filepath.Base(k.Dir), v, files)
	dir, built, err := c.Fill("modules", key, func(staging string) error {
		return compileModules(ctx, lane, k, v, files, staging)
	})
	if err != nil {
		return "", fmt.Errorf("%s modules: %w", v, err)
	}
	if !built {
		log.Info("modules from cache", "variant", v, "dir", dir)
	}
	return dir, nil
}

// compileModules lays out the sources with the Kbuild at the top, runs
// kbuild against the extracted headers and keeps the .ko files (debug
// info stripped; BTF, which fentry on module functions needs, stays).
func compileModules(ctx context.Context, lane Lane, k Kernel, v Variant, files map[string]string, out string) error {
	b := filepath.Join(out, "build")
	for _, p := range []string{"drivers/iommu/iommufd", "drivers/vfio"} {
		if err := copyTree(filepath.Join(k.Src(), p), filepath.Join(b, p)); err != nil {
			return err
		}
	}
	if err := copyFile(filepath.Join(k.Src(), "drivers/iommu/iommu-priv.h"), filepath.Join(b, "drivers/iommu/iommu-priv.h")); err != nil {
		return err
	}
	it, err := os.ReadFile(filepath.Join(k.Src(), "lib/interval_tree.c"))
	if err != nil {
		return err
	}
	span, err := spanIterSource(string(it))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(b, "lib"), 0o755); err != nil {
		return err
	}
	files = maps.Clone(files)
	files["lib/interval_tree_span.c"] = span
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(b, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	args := []string{"-C", k.Headers(), "M=" + b, "-j" + strconv.Itoa(runtime.NumCPU()), "modules"}
	if lane.CrossCompile != "" {
		args = append(args, "ARCH="+kernelArch(lane.DebArch), "CROSS_COMPILE="+lane.CrossCompile)
	}
	logOut, err := command(ctx, "", "make", args...)
	if werr := os.WriteFile(filepath.Join(out, "build.log"), logOut, 0o644); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	for _, m := range v.Modules() {
		ko := filepath.Join(out, m+".ko")
		if _, err := command(ctx, "", lane.CrossCompile+"strip", "--strip-debug", "-o", ko, filepath.Join(b, m+".ko")); err != nil {
			return err
		}
	}
	return os.RemoveAll(b)
}

// kernelArch maps a Debian architecture to kbuild's ARCH.
func kernelArch(debArch string) string {
	switch debArch {
	case "amd64":
		return "x86"
	default:
		return debArch // arm64
	}
}

// spanIterSource builds lib/interval_tree_span.c: the includes plus the
// `#ifdef CONFIG_INTERVAL_TREE_SPAN_ITER` block of lib/interval_tree.c.
// Compiling the whole file would duplicate symbols vmlinux exports.
func spanIterSource(intervalTree string) (string, error) {
	const open = "#ifdef CONFIG_INTERVAL_TREE_SPAN_ITER"
	lines := strings.Split(intervalTree, "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == open {
			start = i
			break
		}
	}
	if start < 0 {
		return "", errors.New("lib/interval_tree.c has no " + open + " block")
	}
	depth := 0
	for i := start; i < len(lines); i++ {
		d := strings.TrimSpace(lines[i])
		switch {
		case strings.HasPrefix(d, "#if"):
			depth++
		case strings.HasPrefix(d, "#endif"):
			depth--
			if depth == 0 {
				body := strings.Join(lines[start+1:i], "\n")
				return "// Generated by hwtests/vm from lib/interval_tree.c: the span iterator only.\n" +
					"#include <linux/interval_tree.h>\n#include <linux/export.h>\n\n" + body + "\n", nil
			}
		}
	}
	return "", errors.New("lib/interval_tree.c: unterminated " + open)
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		t := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(t, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(p, t)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
