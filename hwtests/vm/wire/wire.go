// Package wire is the contract between the host harness (hwtests/vm) and the
// guest /init: the manifest packed into the initramfs and the framing lines
// /init writes around each test binary's output.
//
// The test stream is plain text, one frame per line, at column 0:
//
//	##hwtests init lane=x86_64-vtd release=6.12.95+deb12-amd64 tests=3 cmdline="..."
//	##hwtests log loaded iommufd in 52ms
//	##hwtests error mounts: mount 9p out on /out: no such device
//	##hwtests begin hwtests/vm/smoke
//	=== RUN   TestDeviceNodes          (the binary's stdout+stderr, verbatim)
//	--- PASS: TestDeviceNodes (0.01s)
//	##hwtests end hwtests/vm/smoke exit=0 elapsed=1.234s
//	##hwtests verdict pass             (or: verdict fail <what failed>)
//
// exit=-1 means the binary was killed by a signal. Every begin needs its
// end and the stream needs a verdict: the host counts anything missing as
// a failure, so a crashed guest or an /init panic cannot read as success.
// On kmsg lanes each line travels as a /dev/kmsg record behind KmsgTag.
//
// It is its own package so the static guest /init links nothing of the
// host side (go/parser, exec of QEMU, caches).
package wire

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ManifestPath is where the manifest sits in the initramfs.
const ManifestPath = "/hwtests.json"

// Prefix starts every framing line, at column 0 of the test stream. Test
// output that happens to start with it would be misread, so it is long and
// unlikely.
const Prefix = "##hwtests "

// KmsgTag marks test-stream lines relayed through /dev/kmsg (lanes whose
// userspace serial output does not work, see Lane.Output). The host keeps
// only the text after it, dropping the kernel's own messages and
// timestamps around it.
const KmsgTag = "@hwt@ "

// Output says how the test stream leaves the guest.
type Output string

const (
	// OutputSerial: a second serial port (TestDevice), copied verbatim.
	OutputSerial Output = "serial"
	// OutputKmsg: each line written to /dev/kmsg behind KmsgTag, so it
	// reaches the host on the kernel console.
	OutputKmsg Output = "kmsg"
)

// Manifest tells /init what to load, mount and run. The harness writes it
// per run; /init trusts it.
type Manifest struct {
	Lane       string `json:"lane"`
	Uname      string `json:"uname"`
	Output     Output `json:"output"`
	TestDevice string `json:"test_device,omitempty"` // e.g. /dev/ttyS1 for OutputSerial
	// Modules in load order; dependencies come first.
	Modules []Module `json:"modules"`
	Mounts  []Mount  `json:"mounts"`
	Tests   []Test   `json:"tests"`
	// TestArgs go to every test binary after the harness's own flags.
	TestArgs    []string `json:"test_args,omitempty"`
	TestTimeout Duration `json:"test_timeout"`
	// CoverDir is passed as -test.gocoverdir; it lives on a writable mount.
	CoverDir string `json:"cover_dir"`
	// Env is added to each test binary's environment (KEY=value).
	Env []string `json:"env"`
	// Collect lists guest files /init copies to CollectDir on the
	// writable export before any test runs: what the harness needs from
	// the guest itself, such as the firmware's ACPI tables.
	Collect []string `json:"collect,omitempty"`
}

// CollectDir is where /init puts the Collect files, by base name.
const CollectDir = "/out/collect"

// Module is one kernel module file in the initramfs.
type Module struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Compressed modules (.ko.xz) are loaded with
	// MODULE_INIT_COMPRESSED_FILE: the kernel decompresses them.
	Compressed bool `json:"compressed,omitempty"`
}

// Mount is a 9p export to mount.
type Mount struct {
	Tag      string `json:"tag"`
	Dir      string `json:"dir"`
	ReadOnly bool   `json:"read_only,omitempty"`
	Options  string `json:"options"`
	// HostRoot exports are the host's /: /init binds the guest's /proc,
	// /sys and /dev under it and puts tmpfs on its tmp and run, so host
	// programs can run chrooted there.
	HostRoot bool `json:"host_root,omitempty"`
}

// Test is one test binary.
type Test struct {
	Name string `json:"name"` // package path relative to the module, e.g. hwtests/vm/smoke
	Path string `json:"path"` // in the initramfs
}

// Duration is a time.Duration that reads and writes as "1m30s" in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Kind is the type of a framing line.
type Kind string

const (
	KindInit    Kind = "init"    // /init is running; Text has key=value facts
	KindLog     Kind = "log"     // progress from /init (module loads, mounts)
	KindError   Kind = "error"   // a setup step failed; the verdict will be fail
	KindBegin   Kind = "begin"   // a test binary starts; its raw output follows
	KindEnd     Kind = "end"     // it exited: Exit and Elapsed are set
	KindVerdict Kind = "verdict" // last line: Text is "pass" or "fail ..."
)

// Frame is one parsed framing line.
type Frame struct {
	Kind    Kind
	Name    string        // begin, end
	Exit    int           // end; -1 when killed by a signal
	Elapsed time.Duration // end
	Text    string        // init, log, error, verdict
}

// String formats f as one line, without the newline.
func (f Frame) String() string {
	switch f.Kind {
	case KindBegin:
		return Prefix + "begin " + f.Name
	case KindEnd:
		return fmt.Sprintf("%send %s exit=%d elapsed=%s", Prefix, f.Name, f.Exit, f.Elapsed.Round(time.Millisecond))
	default:
		return Prefix + string(f.Kind) + " " + oneLine(f.Text)
	}
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " | ") }

// Pass reports whether a verdict frame says pass.
func (f Frame) Pass() bool { return f.Kind == KindVerdict && f.Text == "pass" }

// Parse reads a framing line. ok is false for ordinary output. A line that
// has the prefix but is malformed is an error, so a garbled frame is never
// taken for test output.
func Parse(line string) (f Frame, ok bool, err error) {
	rest, found := strings.CutPrefix(line, Prefix)
	if !found {
		return Frame{}, false, nil
	}
	kind, rest, _ := strings.Cut(rest, " ")
	f.Kind = Kind(kind)
	switch f.Kind {
	case KindInit, KindLog, KindError, KindVerdict:
		f.Text = rest
	case KindBegin:
		if rest == "" || strings.ContainsAny(rest, " \t") {
			return Frame{}, true, fmt.Errorf("malformed begin frame %q", line)
		}
		f.Name = rest
	case KindEnd:
		fields := strings.Fields(rest)
		if len(fields) != 3 {
			return Frame{}, true, fmt.Errorf("malformed end frame %q", line)
		}
		f.Name = fields[0]
		code, ok1 := strings.CutPrefix(fields[1], "exit=")
		el, ok2 := strings.CutPrefix(fields[2], "elapsed=")
		if !ok1 || !ok2 {
			return Frame{}, true, fmt.Errorf("malformed end frame %q", line)
		}
		if f.Exit, err = strconv.Atoi(code); err != nil {
			return Frame{}, true, fmt.Errorf("end frame %q: %w", line, err)
		}
		if f.Elapsed, err = time.ParseDuration(el); err != nil {
			return Frame{}, true, fmt.Errorf("end frame %q: %w", line, err)
		}
	default:
		return Frame{}, true, fmt.Errorf("unknown frame kind in %q", line)
	}
	return f, true, nil
}
