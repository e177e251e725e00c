//go:build linux

package client

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/proto"
)

func TestCommandPlaceholders(t *testing.T) {
	t.Parallel()
	fds := &Acquired{
		Lease: proto.Lease{ID: "l-1", Mode: proto.ModeFDs, Group: 4, Devices: []string{"0000:00:04.0", "0000:00:04.1"}},
		Names: []string{"iommufd", "vfio:0000:00:04.0", "vfio:0000:00:04.1"},
		Files: []*os.File{os.Stdin, os.Stdin, os.Stdin},
	}
	cmd, err := fds.Command([]string{"qemu", "-object", "iommufd,id=i0,fd={iommufd}", "-device", "vfio-pci,iommufd=i0,fd={device0}",
		"-device", `{"driver":"vfio-pci","fd":"{device1}"}`, "{lease}/{group}", "{other}"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"qemu", "-object", "iommufd,id=i0,fd=3", "-device", "vfio-pci,iommufd=i0,fd=4",
		"-device", `{"driver":"vfio-pci","fd":"5"}`, "l-1/4", "{other}"}
	if !slices.Equal(cmd.Args, want) {
		t.Errorf("args %q, want %q", cmd.Args, want)
	}
	for _, e := range []string{"IOMMU_AGENT_LEASE=l-1", "IOMMU_AGENT_GROUP=4", "IOMMU_AGENT_IOMMUFD_FD=3",
		"IOMMU_AGENT_DEVICE_FDS=4,5", "IOMMU_AGENT_DEVICES=0000:00:04.0,0000:00:04.1"} {
		if !slices.Contains(cmd.Env, e) {
			t.Errorf("env lacks %s", e)
		}
	}
	if len(cmd.ExtraFiles) != 3 {
		t.Errorf("%d extra files", len(cmd.ExtraFiles))
	}
	if _, err := fds.Command([]string{"qemu", "fd={device2}"}); err == nil || !strings.Contains(err.Error(), "{device0} to {device1}") {
		t.Errorf("{device2} of a group of two: %v", err)
	}

	broker := &Acquired{Lease: proto.Lease{ID: "l-2", Mode: proto.ModeBroker, Group: 1, Devices: []string{"0000:00:01.0"}}}
	cmd, err = broker.Command([]string{"vmm", "{lease}"})
	if err != nil || !slices.Equal(cmd.Args, []string{"vmm", "l-2"}) || !slices.Contains(cmd.Env, "IOMMU_AGENT_DEVICES=0000:00:01.0") {
		t.Errorf("broker: %v, %v", cmd, err)
	}
	if _, err := broker.Command([]string{"vmm", "fd={iommufd}"}); err == nil || !strings.Contains(err.Error(), "sends no fds") {
		t.Errorf("{iommufd} of a broker lease: %v", err)
	}
	if _, err := broker.Command(nil); err == nil {
		t.Error("no command accepted")
	}
}

func TestSocketPath(t *testing.T) {
	t.Parallel()
	if p := SocketPath(func(string) string { return "" }); p != DefaultSocket {
		t.Errorf("no env: %s", p)
	}
	if p := SocketPath(func(k string) string { return map[string]string{SocketEnv: "/x.sock"}[k] }); p != "/x.sock" {
		t.Errorf("env: %s", p)
	}
}
