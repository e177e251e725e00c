package vm

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Device is one emulated PCI device the guest gets.
type Device struct {
	Kind string // edu, igb, e1000, e1000e
	// Bridge is 0 for a device on the root complex (or its own root port,
	// for PCIe devices), n for the n-th PCIe-to-PCI bridge.
	Bridge int
}

// deviceKind describes what each -devices name means.
type deviceKind struct {
	qemu   string // QEMU -device driver
	pcie   bool   // PCIe endpoint: gets a root port, may not sit behind the PCI bridge
	nic    bool   // needs a -netdev
	module string // stock guest driver to load ("" = none; edu has no driver)
	// kconfig is the driver's symbol, which an own-kernel lane (no
	// modules) must build in.
	kconfig string
	id      string // vendor:device, for the tests' HWTESTS_DEVICES
}

func deviceKinds() map[string]deviceKind {
	return map[string]deviceKind{
		"edu":    {qemu: "edu", id: "1234:11e8"},
		"e1000":  {qemu: "e1000", nic: true, module: "e1000", kconfig: "CONFIG_E1000", id: "8086:100e"},
		"e1000e": {qemu: "e1000e", pcie: true, nic: true, module: "e1000e", kconfig: "CONFIG_E1000E", id: "8086:10d3"},
		"igb":    {qemu: "igb", pcie: true, nic: true, module: "igb", kconfig: "CONFIG_IGB", id: "8086:10c9"},
	}
}

// Devices is the parsed -devices list, in command-line order.
type Devices []Device

// ParseDevices reads a comma-separated device list. "bridge:" before an
// entry opens a new PCIe-to-PCI bridge; that entry and all after it sit
// behind the bridge until the next "bridge:". So "edu" is one edu on the
// root bus, "edu,edu" two, "bridge:edu,edu" two behind one bridge (they
// share an IOMMU group), "edu,bridge:edu" one of each.
func ParseDevices(s string) (Devices, error) {
	kinds := deviceKinds()
	var (
		devs   Devices
		bridge int
	)
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if rest, ok := strings.CutPrefix(item, "bridge:"); ok {
			bridge++
			item = rest
		}
		k, ok := kinds[item]
		if !ok {
			return nil, fmt.Errorf("devices %q: unknown device %q (have edu, e1000, e1000e, igb; bridge:<dev> opens a PCI bridge)", s, item)
		}
		if k.pcie && bridge > 0 {
			return nil, fmt.Errorf("devices %q: %s is a PCIe device and cannot sit behind the PCI bridge (list it before the first bridge: entry)", s, item)
		}
		devs = append(devs, Device{Kind: item, Bridge: bridge})
	}
	return devs, nil
}

// String gives back the canonical -devices form.
func (d Devices) String() string {
	var b strings.Builder
	for i, dev := range d {
		if i > 0 {
			b.WriteByte(',')
		}
		if dev.Bridge > 0 && (i == 0 || d[i-1].Bridge != dev.Bridge) {
			b.WriteString("bridge:")
		}
		b.WriteString(dev.Kind)
	}
	return b.String()
}

// QEMUArgs returns the -device/-netdev arguments. Everything on the root
// bus gets an explicit address in list order starting at slot firstSlot,
// so the first device is 00:01.0 on VT-d whatever follows: a root-bus
// device takes a slot, a PCIe device takes one for its own root port, a
// bridge takes one for the root port it sits on. Devices behind a bridge
// take its slots from bridgeSlot on, in list order; 0 leaves them to QEMU.
func (d Devices) QEMUArgs(firstSlot, bridgeSlot int) []string {
	kinds := deviceKinds()
	var args []string
	slot, port := firstSlot, 0
	bridgeBus := map[int]string{}
	bridgeNext := map[int]int{}
	count := map[string]int{}
	rootPort := func() string {
		port++
		rp := "rp" + strconv.Itoa(port)
		args = append(args, "-device", fmt.Sprintf("pcie-root-port,id=%s,bus=pcie.0,addr=%#x,chassis=%d,slot=%d", rp, slot, port, port))
		slot++
		return rp
	}
	for _, dev := range d {
		k := kinds[dev.Kind]
		id := dev.Kind + strconv.Itoa(count[dev.Kind])
		count[dev.Kind]++
		opts := k.qemu + ",id=" + id
		switch {
		case dev.Bridge > 0:
			br, ok := bridgeBus[dev.Bridge]
			if !ok {
				br = "br" + strconv.Itoa(dev.Bridge)
				bridgeBus[dev.Bridge] = br
				rp := rootPort()
				args = append(args, "-device", fmt.Sprintf("pcie-pci-bridge,id=%s,bus=%s", br, rp))
			}
			opts += ",bus=" + br
			if bridgeSlot > 0 {
				opts += fmt.Sprintf(",addr=%#x", bridgeSlot+bridgeNext[dev.Bridge])
				bridgeNext[dev.Bridge]++
			}
		case k.pcie:
			opts += ",bus=" + rootPort()
		default:
			opts += fmt.Sprintf(",bus=pcie.0,addr=%#x", slot)
			slot++
		}
		if k.nic {
			args = append(args, "-netdev", "user,id=net-"+id+",restrict=on")
			opts += ",netdev=net-" + id
		}
		args = append(args, "-device", opts)
	}
	return args
}

// Modules returns the stock drivers the devices need in the guest, once
// each, in list order.
func (d Devices) Modules() []string {
	kinds := deviceKinds()
	var mods []string
	seen := map[string]bool{}
	for _, dev := range d {
		if m := kinds[dev.Kind].module; m != "" && !seen[m] {
			seen[m] = true
			mods = append(mods, m)
		}
	}
	return mods
}

// GuestEnv describes the devices for the tests (HWTESTS_DEVICES):
// kind@vendor:device, plus @BDF for devices on the root bus, whose
// addresses QEMUArgs fixes. Devices behind root ports or bridges get bus
// numbers from the guest's enumeration, so tests find them by ID.
func (d Devices) GuestEnv(firstSlot int) string {
	kinds := deviceKinds()
	var parts []string
	slot := firstSlot
	bridges := map[int]bool{}
	for _, dev := range d {
		k := kinds[dev.Kind]
		p := dev.Kind + "@" + k.id
		switch {
		case dev.Bridge > 0:
			if !bridges[dev.Bridge] {
				bridges[dev.Bridge] = true
				slot++
			}
		case k.pcie:
			slot++
		default:
			p += fmt.Sprintf("@0000:00:%02x.0", slot)
			slot++
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ",")
}

// Kconfig lists the driver symbols the devices need built in, once each.
func (d Devices) Kconfig() []string {
	kinds := deviceKinds()
	var out []string
	for _, dev := range d {
		if k := kinds[dev.Kind].kconfig; k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}
