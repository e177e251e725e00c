package vm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// apt runs apt-get and apt-cache for one architecture. The host's own
// architecture uses the host's apt state as is; a foreign one (the arm64
// lane on an amd64 host) gets a private state under the cache with
// APT::Architecture set to it, reading the host's sources. That fetches
// and lists the arm64 packages without `dpkg --add-architecture`, which
// would change what the host itself installs and upgrades.
type apt struct {
	arch string
	env  []string // nil: the host's apt
}

// hostArch is the Debian architecture of the packages the host runs:
// linux-kbuild (scripts/modpost) must be the host's build, whatever the
// guest's. The harness runs natively, so Go's GOARCH names it (the two
// spellings agree for amd64 and arm64).
func hostArch() string { return runtime.GOARCH }

// hostAPT is the host's apt.
func hostAPT() apt { return apt{arch: hostArch()} }

// aptFor returns the apt that lists arch's packages: the host's, or the
// private state of a foreign arch (created when missing; its lists are
// updated by update).
func aptFor(c Cache, arch string) (apt, error) {
	if arch == hostArch() {
		return hostAPT(), nil
	}
	dir, err := filepath.Abs(filepath.Join(c.Dir, "apt-"+arch))
	if err != nil {
		return apt{}, err
	}
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return apt{}, err
		}
	}
	status := filepath.Join(dir, "status")
	if _, err := os.Stat(status); os.IsNotExist(err) {
		if err := os.WriteFile(status, nil, 0o644); err != nil {
			return apt{}, err
		}
	}
	conf := privateAPTConf(dir, arch, os.Geteuid() == 0)
	p := filepath.Join(dir, "apt.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		return apt{}, err
	}
	return apt{arch: arch, env: append(os.Environ(), "APT_CONFIG="+p)}, nil
}

// privateAPTConf is the apt.conf of a private state in dir. As root, apt
// would drop to its _apt user, which cannot write into the cache.
func privateAPTConf(dir, arch string, root bool) string {
	q := func(s string) string { return `"` + s + `"` }
	var b strings.Builder
	fmt.Fprintf(&b, "Dir::State::Lists %s;\n", q(filepath.Join(dir, "lists")))
	fmt.Fprintf(&b, "Dir::State::status %s;\n", q(filepath.Join(dir, "status")))
	fmt.Fprintf(&b, "Dir::Cache %s;\n", q(filepath.Join(dir, "cache")))
	fmt.Fprintf(&b, "APT::Architecture %s;\nAPT::Architectures { %s; };\n", q(arch), q(arch))
	if root {
		b.WriteString("APT::Sandbox::User \"root\";\n")
	}
	return b.String()
}

// private reports whether a uses a state of its own.
func (a apt) private() bool { return a.env != nil }

// update refreshes a private state's lists; the host's lists are
// setup-host's business.
func (a apt) update(ctx context.Context) error {
	if !a.private() {
		return nil
	}
	_, err := a.run(ctx, "", "apt-get", "update", "-qq")
	return err
}

func (a apt) run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	return commandEnv(ctx, dir, a.env, name, args...)
}
