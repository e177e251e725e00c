//go:build !hwtests

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/iommu-agent/iommu-agent/agent/sriov"
	"github.com/iommu-agent/iommu-agent/agent/sriov/sriovtest"
)

// sriovRun runs the sriov command on a fake host, with an empty bind
// record and no lease records (in "leases" beside state) unless the test
// writes them.
func sriovRun(t *testing.T, h *sriovtest.Host, state string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	all := append([]string{"-sysfs", h.Root, "-state", state, "-leases", filepath.Join(filepath.Dir(state), "leases")}, args...)
	err := sriovCmd(context.Background(), all, &out, sriovDeps{writer: h.Kernel, links: h.Links})
	return out.String(), err
}

func TestSRIOVCommands(t *testing.T) {
	t.Parallel()
	h := sriovtest.NewHost(t, "../../agent/sriov/testdata/igb.txtar")
	h.Links.Refuse = map[string]error{"state": syscall.EOPNOTSUPP}
	state := filepath.Join(t.TempDir(), "bindings.json")

	out, err := sriovRun(t, h, state, "list")
	if err != nil || out != "0000:01:00.0 8086:10c9 igb, netdev eth0, group 4: 0 of 7 VFs, drivers_autoprobe on\n" {
		t.Errorf("list: %v\n%s", err, out)
	}
	out, err = sriovRun(t, h, state, "enable", "0000:01:00.0", "2", "--autoprobe", "0")
	if err != nil || out != "0000:01:00.0: 2 VFs: 0000:01:10.0 (group 5), 0000:01:10.2 (group 6)\n" {
		t.Errorf("enable: %v\n%s", err, out)
	}
	out, err = sriovRun(t, h, state, "set", "0000:01:10.2", "mac=52:54:00:00:00:02", "vlan=10", "trust=on", "state=enable")
	if !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("set with state refused: %v", err)
	}
	for _, line := range []string{
		"0000:01:10.2 (eth0 vf 1 of 0000:01:00.0):",
		"  mac       52:54:00:00:00:02 ok",
		"  vlan      10                ok",
		"  trust     on                ok",
		"  state     enable            refused: operation not supported (errno 95)",
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("set output lacks %q:\n%s", line, out)
		}
	}
	out, err = sriovRun(t, h, state, "set", "--json", "0000:01:10.2", "state=disable")
	var set SRIOVSet
	if jerr := json.Unmarshal([]byte(out), &set); jerr != nil || err == nil {
		t.Fatalf("set --json: %v %v\n%s", err, jerr, out)
	}
	if len(set.Results) != 1 || set.Results[0].OK || set.Results[0].Errno != int(syscall.EOPNOTSUPP) || set.After.VLAN != 10 {
		t.Errorf("set --json: %+v", set)
	}
	out, err = sriovRun(t, h, state, "list", "--json")
	var inv SRIOVList
	if jerr := json.Unmarshal([]byte(out), &inv); err != nil || jerr != nil {
		t.Fatalf("list --json: %v %v\n%s", err, jerr, out)
	}
	if len(inv.PFs) != 1 || len(inv.PFs[0].VFs) != 2 || *inv.PFs[0].DriversAutoprobe || inv.PFs[0].NumVFs != 2 {
		t.Fatalf("list --json: %+v", inv)
	}
	vf := inv.PFs[0].VFs[1]
	if vf.Address != "0000:01:10.2" || *vf.IOMMUGroup != 6 || vf.Config == nil || vf.Config.MAC.String() != "52:54:00:00:00:02" || !vf.Config.Trust {
		t.Errorf("vf 1 in list --json: %+v", vf)
	}
	out, _ = sriovRun(t, h, state, "list")
	if !strings.Contains(out, "  vf 1 0000:01:10.2 8086:10ca group 6, no driver: mac 52:54:00:00:00:02 vlan 10 qos 0 spoofchk on trust on state auto rate 0-0 Mbit/s\n") {
		t.Errorf("list:\n%s", out)
	}

	// A VF bind holds keeps disable off.
	if err := os.WriteFile(state, []byte(`{"bindings":[{"target":"0000:01:10.0","devices":[{"address":"0000:01:10.0","driver":"","override":""}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	n := len(h.Kernel.Writes())
	if _, err := sriovRun(t, h, state, "disable", "0000:01:00.0"); !errors.Is(err, sriov.ErrInUse) {
		t.Errorf("disable with a bound VF: %v", err)
	}
	if len(h.Kernel.Writes()) != n {
		t.Errorf("refused disable wrote %q", h.Kernel.Writes()[n:])
	}
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	// So does a lease of the agent (serve's record of it), and enable,
	// which would change the count under it.
	leases := filepath.Join(filepath.Dir(state), "leases")
	if err := os.MkdirAll(leases, 0o700); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(leases, "L1.lease")
	if err := os.WriteFile(rec, []byte(`{"id":"L1","state":"active","mode":"fds","group":6,"devices":["0000:01:10.2"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sriovRun(t, h, state, "disable", "0000:01:00.0"); !errors.Is(err, sriov.ErrInUse) {
		t.Errorf("disable with a leased VF: %v", err)
	}
	if _, err := sriovRun(t, h, state, "enable", "0000:01:00.0", "3"); !errors.Is(err, sriov.ErrInUse) {
		t.Errorf("enable 3 with a leased VF: %v", err)
	}
	if len(h.Kernel.Writes()) != n {
		t.Errorf("refused disable wrote %q", h.Kernel.Writes()[n:])
	}
	if err := os.WriteFile(rec, []byte(`{"id":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sriovRun(t, h, state, "disable", "0000:01:00.0"); err == nil || len(h.Kernel.Writes()) != n {
		t.Errorf("disable with an unreadable lease record: %v (it could hold any VF)", err)
	}
	if err := os.Remove(rec); err != nil {
		t.Fatal(err)
	}
	out, err = sriovRun(t, h, state, "disable", "0000:01:00.0")
	if err != nil || out != "0000:01:00.0: no VFs\n" {
		t.Errorf("disable: %v\n%s", err, out)
	}
}

func TestSRIOVBadRequests(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"enable", "0000:01:00.0", "8"}, "only 7"},
		{[]string{"enable", "0000:01:00.0", "two"}, "not a number"},
		{[]string{"enable", "0000:00:01.0", "1"}, "not an SR-IOV physical function"},
		{[]string{"enable", "0000:01:00.0", "1", "--autoprobe", "yes"}, "want 0 or 1"},
		{[]string{"enable", "01:00", "1"}, "malformed"},
		{[]string{"disable", "0000:00:01.0"}, "not an SR-IOV"},
		{[]string{"set", "0000:01:10.0", "mac=01:00:5e:00:00:01"}, "not unicast"},
		{[]string{"set", "0000:01:10.0", "mac=00:00:00:00:00:00"}, "zero"},
		{[]string{"set", "0000:01:10.0", "speed=10"}, "unknown key"},
		{[]string{"set", "0000:01:00.0", "vlan=1"}, "not an SR-IOV virtual function"},
		{[]string{"set", "0000:01:10.0"}, "wrong arguments"},
		{[]string{"frob"}, "unknown command"},
		{nil, "no command"},
	} {
		h := sriovtest.NewHost(t, "../../agent/sriov/testdata/igb-2vfs.txtar")
		_, err := sriovRun(t, h, filepath.Join(t.TempDir(), "b.json"), c.args...)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("sriov %q: %v, want an error saying %q", c.args, err, c.says)
		}
		if w, calls := h.Kernel.Writes(), h.Links.Calls(); len(w)+len(calls) != 0 {
			t.Errorf("sriov %q wrote %q, sent %q", c.args, w, calls)
		}
	}
}

func TestSRIOVListWithoutPFs(t *testing.T) {
	t.Parallel()
	h := sriovtest.NewHost(t, "../../sysfs/testdata/vtd-guest-captured.txtar")
	out, err := sriovRun(t, h, filepath.Join(t.TempDir(), "b.json"), "list")
	if err != nil || out != "no SR-IOV physical functions\n" {
		t.Errorf("list: %v\n%s", err, out)
	}
	out, err = sriovRun(t, h, filepath.Join(t.TempDir(), "b.json"), "list", "--json")
	if err != nil || out != "{\n  \"pfs\": []\n}\n" {
		t.Errorf("list --json: %v\n%s", err, out)
	}
}
