package vm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSetupHostMirror: setup-host takes the mirror for bookworm-backports and
// trixie from whichever form the host's apt sources have: a cloud image's
// deb822 debian.sources, or the installer's one-line sources.list (which it
// once refused, "no bookworm stanza").
func TestSetupHostMirror(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string // "" = refused
	}{
		{"deb822", map[string]string{"sources.list.d/debian.sources": "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n" +
			"Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"}, "http://deb.example/debian"},
		{"installer sources.list", map[string]string{"sources.list": "#deb cdrom:[Debian GNU/Linux 12]/ bookworm main\n\n" +
			"deb http://ftp.example/debian/ bookworm main non-free-firmware\ndeb-src http://ftp.example/debian/ bookworm main\n" +
			"deb http://security.debian.org/debian-security bookworm-security main\n"}, "http://ftp.example/debian/"},
		{"options", map[string]string{"sources.list.d/mirror.list": "deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://m.example/debian bookworm main\n"}, "http://m.example/debian"},
		{"not bookworm", map[string]string{"sources.list": "deb http://deb.example/debian trixie main\n"}, ""},
		{"nothing", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755)
			for name, body := range c.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("bash", "setup-host", "--print-mirror")
			cmd.Env = append(os.Environ(), "SETUP_HOST_APT_DIR="+dir)
			out, err := cmd.Output()
			got := strings.TrimSpace(string(out))
			if c.want == "" {
				if err == nil {
					t.Errorf("mirror %q, want a refusal", got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("mirror %q (%v), want %q", got, err, c.want)
			}
		})
	}
}
