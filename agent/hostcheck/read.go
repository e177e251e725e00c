package hostcheck

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Size caps: a host check must not hang or balloon on an odd file (a
// FIFO, a link to /dev/zero, a gzip bomb as config.gz). The real files are
// far smaller: a page for a sysfs attribute, a few hundred KiB for a
// distribution's modules.dep or config, about 1 KiB per CPU for cpuinfo.
const (
	maxAttr = 4096
	maxList = 16 << 20 // modules.dep, modules.builtin(.modinfo), config, cpuinfo, interrupts
	maxLine = 1 << 20
)

// openRegular opens path for reading only if it is a regular file: a FIFO
// would block the open, a device could stream forever. ok is false when
// the file does not exist.
func openRegular(path string) (f *os.File, ok bool, err error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if !st.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%s: not a regular file (%s)", path, st.Mode().Type())
	}
	f, err = os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return f, err == nil, err
}

// readAttr reads a single-value file (a sysfs attribute, osrelease) with
// one bounded read, trimmed.
func readAttr(path string) (value string, ok bool, err error) {
	f, ok, err := openRegular(path)
	if !ok || err != nil {
		return "", ok, err
	}
	defer f.Close()
	var buf [maxAttr]byte
	n, err := f.Read(buf[:])
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	return strings.TrimSpace(string(buf[:n])), true, nil
}

// readLines calls fn for each line of path, at most maxList bytes of it,
// gunzipping when gz; fn returns false to stop early. ok is false when the
// file does not exist.
func readLines(path string, gz bool, fn func(line string) bool) (ok bool, err error) {
	f, ok, err := openRegular(path)
	if !ok || err != nil {
		return ok, err
	}
	defer f.Close()
	var r io.Reader = f
	if gz {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return true, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	lr := &io.LimitedReader{R: r, N: maxList + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		if !fn(sc.Text()) {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return true, fmt.Errorf("%s: %w", path, err)
	}
	if lr.N <= 0 {
		return true, fmt.Errorf("%s: longer than %d bytes", path, maxList)
	}
	return true, nil
}

// readNULList calls fn for each NUL-terminated entry of path
// (modules.builtin.modinfo), at most maxList bytes.
func readNULList(path string, fn func(entry string)) (ok bool, err error) {
	f, ok, err := openRegular(path)
	if !ok || err != nil {
		return ok, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxList+1))
	if err != nil {
		return true, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxList {
		return true, fmt.Errorf("%s: longer than %d bytes", path, maxList)
	}
	for _, e := range strings.Split(string(b), "\x00") {
		if e != "" {
			fn(e)
		}
	}
	return true, nil
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
