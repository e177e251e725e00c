package vm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestForHost(t *testing.T) {
	t.Parallel()
	var host, guest []string
	for _, p := range kernelPackages("6.12.95+deb12", "arm64") {
		if forHost(p) {
			host = append(host, p)
		} else {
			guest = append(guest, p)
		}
	}
	if strings.Join(host, " ") != "linux-kbuild-6.12.95+deb12 linux-source-6.12" {
		t.Errorf("host packages %v", host)
	}
	if strings.Join(guest, " ") != "linux-image-6.12.95+deb12-arm64 linux-headers-6.12.95+deb12-arm64 linux-headers-6.12.95+deb12-common" {
		t.Errorf("guest packages %v", guest)
	}
}

func TestAPTFor(t *testing.T) {
	t.Parallel()
	c := Cache{Dir: t.TempDir()}
	a, err := aptFor(c, hostArch())
	if err != nil || a.private() {
		t.Fatalf("host arch: %+v, %v; want the host's apt", a, err)
	}
	foreign := "arm64"
	if hostArch() == "arm64" {
		foreign = "amd64"
	}
	a, err = aptFor(c, foreign)
	if err != nil || !a.private() {
		t.Fatalf("%s: %+v, %v; want a private state", foreign, a, err)
	}
	dir := filepath.Join(c.Dir, "apt-"+foreign)
	for _, p := range []string{"lists/partial", "cache/archives/partial", "status", "apt.conf"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("private state lacks %s: %v", p, err)
		}
	}
	conf, err := os.ReadFile(filepath.Join(dir, "apt.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`APT::Architecture "` + foreign + `";`, `APT::Architectures { "` + foreign + `"; };`,
		`Dir::State::Lists "` + filepath.Join(dir, "lists") + `";`} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("apt.conf lacks %s:\n%s", want, conf)
		}
	}
	if !strings.Contains(strings.Join(a.env, "\n"), "APT_CONFIG="+filepath.Join(dir, "apt.conf")) {
		t.Error("private apt does not point APT_CONFIG at its apt.conf")
	}
	// A second call reuses the state.
	if _, err := aptFor(c, foreign); err != nil {
		t.Fatal(err)
	}
}
