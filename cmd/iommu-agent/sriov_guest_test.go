//go:build hwtests && linux

package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestGuestSRIOVList runs the sriov command in the guest of
// go run ./hwtests/vm/cmd/hwtests -devices igb: enable two VFs, configure
// one, list (logged: the output the issue asks for), disable.
func TestGuestSRIOVList(t *testing.T) {
	if os.Getenv("HWTESTS_STRICT") != "1" {
		t.Skip("enables VFs: runs in the guest only")
	}
	// The other boots of make guest run this package without igb.
	if devs := os.Getenv("HWTESTS_DEVICES"); !strings.Contains(","+devs, ",igb@") {
		t.Skipf("this guest has no igb (HWTESTS_DEVICES=%s); run with -devices igb", devs)
	}
	state := filepath.Join(t.TempDir(), "bindings.json")
	inv := sriovGuestList(t)
	var pf *SRIOVPF
	for i := range inv.PFs {
		if inv.PFs[i].Vendor == "8086" && inv.PFs[i].Device == "10c9" {
			pf = &inv.PFs[i]
		}
	}
	if pf == nil {
		t.Fatalf("sriov list shows no igb PF (-devices igb): %+v", inv)
	}
	if pf.NumVFs != 0 || pf.Driver != "igb" || pf.Link == "" {
		t.Fatalf("igb PF before: %+v", pf)
	}
	t.Cleanup(func() { guestRun(t, "sriov", "disable", pf.Address, "-state", state) })

	if _, err := guestRun(t, "sriov", "enable", pf.Address, "8", "-state", state); err == nil || !strings.Contains(err.Error(), "only 7") {
		t.Errorf("enable 8 of 7: %v", err)
	}
	out, err := guestRun(t, "sriov", "enable", pf.Address, "2", "-state", state)
	if err != nil || !strings.HasPrefix(out, pf.Address+": 2 VFs: ") {
		t.Fatalf("enable 2: %v\n%s", err, out)
	}
	inv = sriovGuestList(t)
	vfs := inv.PFs[0].VFs
	if len(vfs) != 2 {
		t.Fatalf("VFs after enable: %+v", inv.PFs)
	}
	if _, err := guestRun(t, "sriov", "set", vfs[0].Address, "mac=01:00:5e:00:00:01"); err == nil {
		t.Error("multicast MAC accepted")
	}
	out, err = guestRun(t, "sriov", "set", vfs[1].Address, "mac=52:54:00:aa:bb:02", "vlan=20", "qos=2", "trust=on", "spoofchk=off")
	if err != nil {
		t.Errorf("set: %v\n%s", err, out)
	}
	out, err = guestRun(t, "sriov", "set", vfs[0].Address, "state=disable", "max_rate=100")
	if !errors.Is(err, syscall.EOPNOTSUPP) || !errors.Is(err, syscall.EINVAL) ||
		!strings.Contains(out, "refused: operation not supported (errno 95)") || !strings.Contains(out, "refused: invalid argument (errno 22)") {
		t.Errorf("set state and max_rate without carrier: %v\n%s", err, out)
	}

	out, err = guestRun(t, "sriov", "list")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("iommu-agent sriov list:\n%s", out)
	for _, want := range []string{
		pf.Address + " 8086:10c9 igb, netdev " + pf.Link + ", ",
		": 2 of 7 VFs, drivers_autoprobe on\n",
		"  vf 0 " + vfs[0].Address + " 8086:10ca group ",
		"  vf 1 " + vfs[1].Address + " 8086:10ca group ",
		": mac 52:54:00:aa:bb:02 vlan 20 qos 2 spoofchk off trust on state auto rate 0-0 Mbit/s\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("sriov list lacks %q", want)
		}
	}
	if strings.Contains(out, "error:") {
		t.Error("sriov list reports errors")
	}

	out, err = guestRun(t, "sriov", "disable", pf.Address, "-state", state)
	if err != nil || out != pf.Address+": no VFs\n" {
		t.Errorf("disable: %v\n%s", err, out)
	}
	inv = sriovGuestList(t)
	if inv.PFs[0].NumVFs != 0 || len(inv.PFs[0].VFs) != 0 || inv.PFs[0].Driver != "igb" {
		t.Errorf("PF after disable: %+v", inv.PFs[0])
	}
}

func sriovGuestList(t *testing.T) SRIOVList {
	t.Helper()
	out, err := guestRun(t, "sriov", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var inv SRIOVList
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatal(err)
	}
	return inv
}
