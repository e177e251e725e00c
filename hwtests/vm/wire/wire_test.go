package wire

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	for _, f := range []Frame{
		{Kind: KindInit, Text: "uname=6.12.95+deb12-amd64 lane=x86_64-vtd"},
		{Kind: KindLog, Text: "loaded iommufd in 12ms"},
		{Kind: KindError, Text: "mount /host: no such device"},
		{Kind: KindBegin, Name: "hwtests/vm/smoke"},
		{Kind: KindEnd, Name: "hwtests/vm/smoke", Exit: 0, Elapsed: 1234 * time.Millisecond},
		{Kind: KindEnd, Name: "ioctl/iommufd", Exit: -1, Elapsed: time.Minute},
		{Kind: KindVerdict, Text: "pass"},
		{Kind: KindVerdict, Text: "fail 1 of 2 test binaries failed"},
	} {
		line := f.String()
		got, ok, err := Parse(line)
		if err != nil || !ok {
			t.Fatalf("Parse(%q) = %v, %v", line, ok, err)
		}
		if !reflect.DeepEqual(got, f) {
			t.Errorf("Parse(%q) = %+v, want %+v", line, got, f)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line    string
		ok, err bool
	}{
		{"=== RUN   TestX", false, false},
		{"  ##hwtests begin x", false, false}, // not at column 0: output
		{"##hwtests begin", true, true},
		{"##hwtests begin a b", true, true},
		{"##hwtests end x exit=zero elapsed=1s", true, true},
		{"##hwtests end x exit=0", true, true},
		{"##hwtests end x exit=0 elapsed=forever", true, true},
		{"##hwtests bogus", true, true},
		{"##hwtests verdict pass", true, false},
	} {
		_, ok, err := Parse(tc.line)
		if ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("Parse(%q) = ok %v, err %v; want ok %v, err %v", tc.line, ok, err, tc.ok, tc.err)
		}
	}
}

func TestFrameMultiLineText(t *testing.T) {
	t.Parallel()
	f := Frame{Kind: KindError, Text: "a\nb"}
	got, _, _ := Parse(f.String())
	if got.Text != "a | b" {
		t.Errorf("text = %q, want one line", got.Text)
	}
}

func TestVerdictPass(t *testing.T) {
	t.Parallel()
	if !(Frame{Kind: KindVerdict, Text: "pass"}).Pass() {
		t.Error("pass verdict not Pass")
	}
	if (Frame{Kind: KindVerdict, Text: "fail"}).Pass() || (Frame{Kind: KindLog, Text: "pass"}).Pass() {
		t.Error("non-pass frame reads as Pass")
	}
}

func TestManifestJSON(t *testing.T) {
	t.Parallel()
	m := Manifest{
		Lane: "x86_64-vtd", Uname: "u", Output: OutputSerial, TestDevice: "/dev/ttyS1",
		Modules:     []Module{{Name: "irqbypass", Path: "/lib/modules/u/kernel/virt/lib/irqbypass.ko.xz", Compressed: true}},
		Tests:       []Test{{Name: "hwtests/vm/smoke", Path: "/tests/hwtests-vm-smoke.test"}},
		TestTimeout: Duration(8 * time.Minute),
		CoverDir:    "/out/cover",
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var got Manifest
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip: %+v, want %+v", got, m)
	}
	if err := json.Unmarshal([]byte(`{"test_timeout":"soon"}`), &got); err == nil {
		t.Error("bad duration accepted")
	}
}
