package vm

import (
	"context"
	"fmt"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// CProgram is a C file the harness compiles on the host for the lane's
// architecture and puts into the initramfs: the guest has no compiler,
// and some benches compare our Go with a C program (agent/bench's
// cloop). The file must be freestanding (no libc, its own _start and
// syscalls): the arm64 cross gcc comes without an arm64 libc.
type CProgram struct {
	Src   string // host path; relative to the module root
	Guest string // absolute path in the guest, e.g. /bin/cloop
}

// cProgramFlags build a static freestanding executable.
var cProgramFlags = []string{"-static", "-O2", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-fno-asynchronous-unwind-tables"}

// ParseCPrograms parses -cprog: "src.c:/guest/path", comma-separated.
func ParseCPrograms(spec string) ([]CProgram, error) {
	var out []CProgram
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		src, guest, ok := strings.Cut(item, ":")
		if !ok || src == "" || !path.IsAbs(guest) || path.Clean(guest) != guest || guest == "/" {
			return nil, fmt.Errorf("-cprog %q: want src.c:/absolute/guest/path", item)
		}
		if !strings.HasSuffix(src, ".c") {
			return nil, fmt.Errorf("-cprog %q: the source must be a .c file", item)
		}
		if seen[guest] {
			return nil, fmt.Errorf("-cprog: %s given twice", guest)
		}
		seen[guest] = true
		out = append(out, CProgram{Src: src, Guest: guest})
	}
	return out, nil
}

// CC is the lane's C compiler on the host: gcc-12, or its cross
// version, both in the lane's HostTools.
func (l Lane) CC() string { return l.CrossCompile + "gcc-12" }

// buildCPrograms compiles progs for lane into dir and returns guest path
// → host file. Relative sources are under modDir.
func buildCPrograms(ctx context.Context, lane Lane, progs []CProgram, modDir, dir string) (map[string]string, error) {
	out := map[string]string{}
	for i, p := range progs {
		src := p.Src
		if !filepath.IsAbs(src) {
			src = filepath.Join(modDir, src)
		}
		bin := filepath.Join(dir, fmt.Sprintf("cprog%d-%s", i, path.Base(p.Guest)))
		args := append(append([]string(nil), cProgramFlags...), "-o", bin, src)
		if b, err := exec.CommandContext(ctx, lane.CC(), args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("-cprog %s: %s %s: %w: %s", p.Src, lane.CC(), strings.Join(args, " "), err, strings.TrimSpace(string(b)))
		}
		out[p.Guest] = bin
	}
	return out, nil
}
