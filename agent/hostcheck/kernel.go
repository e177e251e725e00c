package hostcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Kernel is what the running kernel says about itself outside /sys: its
// release, its build config and its module lists. Each part is nil or
// empty when it could not be read, and its error (or absence) noted, so a
// check can say "unknown" with the reason.
type Kernel struct {
	// Release is /proc/sys/kernel/osrelease (uname -r); "" if unreadable.
	Release string
	// Config maps CONFIG_ symbols to their value ("y", "m", a string);
	// symbols "is not set", or missing from a config that was read, are
	// absent. Nil when no config could be read.
	Config map[string]string
	// ConfigSource is the file Config came from; NoConfig says why there
	// is none.
	ConfigSource, NoConfig string
	// Builtin maps module names built into the kernel to their object path
	// (modules.builtin, modules.builtin.modinfo); nil when neither exists.
	Builtin       map[string]string
	BuiltinSource string
	// Dep maps loadable module names to their file relative to the
	// modules directory (modules.dep); nil when it does not exist.
	Dep       map[string]string
	DepSource string
	// ModulesDir is ModulesRoot/Release; "" without a release.
	ModulesDir string
	// NoModules is set when this kernel cannot load modules at all
	// (CONFIG_MODULES unset, or a readable /proc without /proc/modules),
	// and NoModulesSource says which: then nothing is "modprobe"-able, and
	// a component not built in is absent.
	NoModules       bool
	NoModulesSource string
	// Missing says, per source, why it could not be read.
	Missing []string
}

// readKernel reads the release, then the config from /proc/config.gz,
// /boot/config-RELEASE or /lib/modules/RELEASE/config (Fedora's place),
// then RELEASE's modules.builtin, modules.builtin.modinfo and modules.dep.
func readKernel(procRoot, modulesRoot, bootRoot, sysModule string) Kernel {
	var k Kernel
	osrelease := filepath.Join(procRoot, "sys", "kernel", "osrelease")
	rel, ok, err := readAttr(osrelease)
	switch {
	case err != nil:
		k.Missing = append(k.Missing, err.Error())
	case !ok || rel == "":
		k.Missing = append(k.Missing, "no "+osrelease)
	case strings.ContainsAny(rel, "/\x00") || rel == "." || rel == "..":
		k.Missing = append(k.Missing, fmt.Sprintf("%s: release %q is no directory name", osrelease, rel))
	default:
		k.Release = rel
		k.ModulesDir = filepath.Join(modulesRoot, rel)
	}

	type source struct {
		path string
		gz   bool
	}
	configs := []source{{filepath.Join(procRoot, "config.gz"), true}}
	if k.Release != "" {
		configs = append(configs, source{filepath.Join(bootRoot, "config-"+k.Release), false}, source{filepath.Join(k.ModulesDir, "config"), false})
	}
	var cfgErrs, looked []string
	for _, c := range configs {
		looked = append(looked, c.path)
		cfg := map[string]string{}
		ok, err := readLines(c.path, c.gz, func(line string) bool {
			if sym, val, found := strings.Cut(line, "="); found && strings.HasPrefix(sym, "CONFIG_") {
				cfg[sym] = strings.Trim(val, `"`)
			}
			return true
		})
		if err != nil {
			cfgErrs = append(cfgErrs, err.Error())
			continue
		}
		if ok {
			k.Config, k.ConfigSource = cfg, c.path
			break
		}
	}
	if k.Config == nil {
		k.NoConfig = "no kernel config (looked for " + strings.Join(looked, ", ") + ")"
		if len(cfgErrs) > 0 {
			k.NoConfig += ": " + strings.Join(cfgErrs, "; ")
		}
		k.Missing = append(k.Missing, k.NoConfig)
	}

	k.NoModules, k.NoModulesSource = noModules(k, procRoot, osrelease, sysModule)

	if k.ModulesDir == "" {
		return k
	}
	if _, err := os.Lstat(k.ModulesDir); k.NoModules && errors.Is(err, fs.ErrNotExist) {
		// No modules, no directory for them: nothing is unread.
		return k
	}
	builtin := map[string]string{}
	var srcs []string
	p := filepath.Join(k.ModulesDir, "modules.builtin")
	ok, err = readLines(p, false, func(line string) bool {
		if line = strings.TrimSpace(line); line != "" {
			builtin[moduleName(line)] = line
		}
		return true
	})
	switch {
	case err != nil:
		k.Missing = append(k.Missing, err.Error())
	case ok:
		srcs = append(srcs, p)
	}
	// modinfo entries are "name.key=value": a built-in module with no
	// object in modules.builtin (older kernels) still shows here.
	p = filepath.Join(k.ModulesDir, "modules.builtin.modinfo")
	ok, err = readNULList(p, func(e string) {
		if name, _, found := strings.Cut(e, "."); found && name != "" {
			if _, had := builtin[name]; !had {
				builtin[name] = "modinfo"
			}
		}
	})
	switch {
	case err != nil:
		k.Missing = append(k.Missing, err.Error())
	case ok:
		srcs = append(srcs, p)
	}
	if len(srcs) > 0 {
		k.Builtin, k.BuiltinSource = builtin, strings.Join(srcs, " and ")
	} else {
		k.Missing = append(k.Missing, "no modules.builtin under "+k.ModulesDir)
	}

	dep := map[string]string{}
	p = filepath.Join(k.ModulesDir, "modules.dep")
	ok, err = readLines(p, false, func(line string) bool {
		if mod, _, found := strings.Cut(line, ":"); found && mod != "" {
			dep[moduleName(mod)] = mod
		}
		return true
	})
	switch {
	case err != nil:
		k.Missing = append(k.Missing, err.Error())
	case ok:
		k.Dep, k.DepSource = dep, p
	default:
		k.Missing = append(k.Missing, "no "+p)
	}
	return k
}

// noModules tells whether the kernel has no module support: from the
// config when there is one, else from /proc/modules, which exists exactly
// when CONFIG_MODULES is set (kernel/module/procfs.c). A loaded module
// (sysModule/NAME/initstate, which only loadable modules have) proves
// support whatever /proc shows (a copied or partial /proc). Without the
// config and with /proc unreadable (osrelease missing too), it cannot tell.
func noModules(k Kernel, procRoot, osrelease, sysModule string) (bool, string) {
	if v, known := k.ConfigValue("CONFIG_MODULES"); known {
		if v == "" {
			return true, k.configText("CONFIG_MODULES")
		}
		return false, ""
	}
	if k.Release == "" && !exists(osrelease) {
		return false, ""
	}
	if m, _ := filepath.Glob(filepath.Join(sysModule, "*", "initstate")); len(m) > 0 {
		return false, ""
	}
	mods := filepath.Join(procRoot, "modules")
	if _, err := os.Stat(mods); errors.Is(err, fs.ErrNotExist) {
		return true, "no " + mods + " (it exists on every kernel with CONFIG_MODULES)"
	}
	return false, ""
}

// moduleName is the kernel's name for a module object: the basename
// without .ko[.xz|.zst|.gz], dashes as underscores (vfio-pci.ko.xz is
// vfio_pci).
func moduleName(p string) string {
	b := path.Base(p)
	b, _, _ = strings.Cut(b, ".ko")
	return strings.ReplaceAll(b, "-", "_")
}

// ConfigValue returns sym's value ("" when not set) and whether a config
// was read at all.
func (k Kernel) ConfigValue(sym string) (value string, known bool) {
	if k.Config == nil {
		return "", false
	}
	if v := k.Config[sym]; v != "n" {
		return v, true
	}
	return "", true
}

// configText says where sym's value was read: "CONFIG_X=m in /proc/config.gz"
// or "CONFIG_X is not set in /boot/config-6.12".
func (k Kernel) configText(sym string) string {
	if v := k.Config[sym]; v != "" {
		return sym + "=" + v + " in " + k.ConfigSource
	}
	return sym + " is not set in " + k.ConfigSource
}

// State is where a kernel component stands on this host.
type State string

// The states. Only Loaded and BuiltIn are usable now; Available needs a
// modprobe; NotInstalled a package; Absent another kernel. NotLoaded is
// "not loaded, and no source says whether this kernel has it"; Unknown is
// "cannot even tell whether it is loaded".
const (
	Loaded       State = "loaded"
	BuiltIn      State = "built-in"
	Available    State = "available"
	NotInstalled State = "not-installed"
	Absent       State = "absent"
	NotLoaded    State = "not-loaded"
	Unknown      State = "unknown"
)

// Ready reports whether the component works without any action.
func (s State) Ready() bool { return s == Loaded || s == BuiltIn }

// Component is one kernel component's state and its evidence.
type Component struct {
	Name   string // module name, or the driver's name for a bool option
	Config string // its CONFIG_ symbol
	State  State
	Source string // where State was read, for the reader of the finding
	File   string // the module file, relative to ModulesDir, when Available
}

// Module finds module name (built by CONFIG_ symbol config) on this host.
// /sys/module/NAME exists for a loaded module (with initstate) and for a
// built-in one with parameters or a version (without initstate);
// modules.builtin, modules.dep and the config tell the rest.
func (h *Host) Module(name, config string) Component {
	c := Component{Name: name, Config: config}
	k := h.Kernel
	dir := h.fs.Path("module", name)
	st, err := os.Stat(dir)
	var sysErr error
	switch {
	case err == nil && st.IsDir():
		v, ok, rerr := readAttr(filepath.Join(dir, "initstate"))
		switch {
		case rerr != nil:
			c.State, c.Source = Loaded, "/sys/module/"+name+" has an initstate ("+rerr.Error()+")"
		case ok:
			c.State, c.Source = Loaded, "/sys/module/"+name+"/initstate: "+v
		default:
			c.State, c.Source = BuiltIn, "/sys/module/"+name+" without initstate"
		}
		return c
	case err == nil:
		sysErr = fmt.Errorf("%s is not a directory", dir)
	case !errors.Is(err, fs.ErrNotExist):
		sysErr = err
	case !isDir(h.fs.Path("module")):
		sysErr = fmt.Errorf("no %s", h.fs.Path("module"))
	}
	if p, ok := k.Builtin[name]; ok {
		c.State, c.Source = BuiltIn, k.BuiltinSource+" lists "+p
		if p == "modinfo" {
			c.Source = k.BuiltinSource + " has " + name + ".*"
		}
		return c
	}
	cv, known := k.ConfigValue(config)
	if cv == "y" {
		c.State, c.Source = BuiltIn, k.configText(config)
		return c
	}
	if known && cv == "" {
		c.State, c.Source = Absent, k.configText(config)
		return c
	}
	if k.NoModules && sysErr == nil {
		// Built in, it would be in /sys/module: the modules check asks
		// about (vfio, vfio_pci, vfio_iommu_type1, iommufd, arm_smmu_v3)
		// all have parameters or a version there.
		c.State, c.Source = Absent, "this kernel cannot load modules ("+k.NoModulesSource+"), and no /sys/module/"+name+" shows it built in"
		return c
	}
	if sysErr != nil {
		c.State, c.Source = Unknown, "cannot read /sys/module: "+sysErr.Error()
		return c
	}
	switch {
	case k.Dep != nil:
		p, listed := k.Dep[name]
		switch {
		case listed && exists(filepath.Join(k.ModulesDir, p)):
			c.State, c.File, c.Source = Available, p, k.DepSource+" lists "+p
		case listed:
			c.State, c.Source = NotInstalled, k.DepSource+" lists "+p+", but the file is missing"
		case cv == "m":
			c.State, c.Source = NotInstalled, k.configText(config)+", but "+k.DepSource+" does not list it"
		case k.Builtin != nil:
			c.State, c.Source = Absent, "neither "+k.BuiltinSource+" nor "+k.DepSource+" lists it"
		default:
			c.State, c.Source = NotLoaded, k.DepSource+" does not list it, and with no modules.builtin or kernel config built-in cannot be told from absent"
		}
	case cv == "m":
		c.State, c.Source = Available, k.configText(config)+" (no modules.dep to confirm the file: "+strings.Join(k.Missing, "; ")+")"
	default:
		c.State, c.Source = NotLoaded, "whether this kernel has it is unknown: "+strings.Join(k.Missing, "; ")
	}
	return c
}
