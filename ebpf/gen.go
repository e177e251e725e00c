//go:build linux

package ebpf

// The BPF objects and their Go wrappers are committed, so building needs no
// clang. `go generate ./ebpf` rebuilds them byte for byte with the pinned
// clang-19 (Debian bookworm's 1:19.1.7-3~deb12u1; llvm-strip-19 strips the
// DWARF, bpf2go maps the source directory out of what remains), which `make
// bpfcheck` verifies.
//go:generate go tool bpf2go -cc clang-19 -target amd64,arm64 -go-package ebpf -type hist -type hist_key -type event dmatrace bpf/dmatrace.c -- -Wall -Werror
