package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Remote work is done by short POSIX sh scripts, one round trip each.
// Every value put into a script goes through shQuote; the inventory check
// keeps names and dirs to characters a shell does not interpret anyway.

// shLib is prepended to scripts that look at processes. alive checks the
// pid's command line too, so a pidfile left by a crash never makes us
// signal an unrelated process that reused the pid (or a zombie).
const shLib = `set -u
umask 077
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2 "; }
`

// probe is what a host tells us before we change anything.
type probe struct {
	arch    string            // uname -m
	systemd bool              // booted with systemd and we may manage units
	sums    map[string]string // remote file -> sha256, "" if missing
	modes   map[string]string // remote file -> permission bits in octal, as stat -c %a prints them
}

// current reports whether file on the host has checksum sum and mode: a
// file whose mode was loosened since is installed again, not left alone.
func (p probe) current(file, sum string, mode uint32) bool {
	return p.sums[file] == sum && p.modes[file] == fmt.Sprintf("%o", mode)
}

// probe asks the host for its architecture, service manager and the
// checksums and modes of files (so unchanged files are neither sent nor
// restarted).
func (c *Conn) probe(ctx context.Context, files ...string) (probe, error) {
	var b strings.Builder
	b.WriteString(shLib)
	b.WriteString(`uname -sm
if [ -d /run/systemd/system ] && [ "$(id -u)" = 0 ] && command -v systemctl >/dev/null 2>&1; then echo systemd; else echo background; fi
command -v setsid >/dev/null 2>&1 || { echo "setsid not found (install util-linux)" >&2; exit 1; }
command -v sha256sum >/dev/null 2>&1 || { echo "sha256sum not found (install coreutils)" >&2; exit 1; }
`)
	for _, f := range files {
		q := shQuote(f)
		fmt.Fprintf(&b, "if [ -f %s ]; then echo \"$(sha256sum < %s | cut -d' ' -f1) $(stat -c %%a %s)\"; else echo none; fi\n", q, q, q)
	}
	res, err := c.Run(ctx, b.String(), nil)
	if err != nil {
		return probe{}, fmt.Errorf("probe: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
	if len(lines) != 2+len(files) {
		return probe{}, fmt.Errorf("probe: unexpected output %q", res.Stdout)
	}
	uname := strings.Fields(lines[0])
	if len(uname) != 2 || uname[0] != "Linux" {
		return probe{}, fmt.Errorf("probe: host runs %q; twopc deploys to Linux only", lines[0])
	}
	p := probe{arch: uname[1], systemd: lines[1] == "systemd", sums: map[string]string{}, modes: map[string]string{}}
	for i, f := range files {
		if l := lines[2+i]; l != "none" {
			p.sums[f], p.modes[f], _ = strings.Cut(l, " ")
		}
	}
	return p, nil
}

// useSystemd decides the service manager from the inventory and the probe.
func useSystemd(h Host, p probe) (bool, error) {
	switch h.Service {
	case ServiceSystemd:
		if !p.systemd {
			return false, fmt.Errorf("service is systemd, but the host did not boot with systemd or the user is not root (set service to background or auto)")
		}
		return true, nil
	case ServiceBackground:
		return false, nil
	}
	return p.systemd, nil
}

// put writes data to file atomically: upload to a temporary name in the
// same directory, then rename over the old one, so a reader (or a process
// being exec'd) sees the old file or the new one, never half of one.
func (c *Conn) put(ctx context.Context, file string, mode uint32, data []byte) error {
	dir := path.Dir(file)
	// $$ makes the temporary name unique to this upload.
	script := fmt.Sprintf(`umask 077 && mkdir -p %s || exit 1
tmp=%s.$$
cat > "$tmp" && chmod %o "$tmp" && mv -f "$tmp" %s || { rm -f "$tmp"; exit 1; }`,
		shQuote(dir), shQuote(path.Join(dir, "."+path.Base(file)+".tmp")), mode, shQuote(file))
	if _, err := c.Run(ctx, script, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("upload %s: %w", file, err)
	}
	return nil
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// procState is what runs of one role on a host.
type procState struct {
	Running bool
	PID     int
	Detail  string // e.g. "active", "restarting", "stopped (stale pidfile)", systemd's state
	// Restarts counts the restarts after a crash since the process was
	// last started by the deploy (systemd's NRestarts, or twopc
	// supervise's count); Last is the last crash, when known.
	Restarts int
	Last     string
}

// RestartText is the status column: "0", "2 (last: killed by SIGKILL)".
func (st procState) RestartText() string {
	if st.Last == "" || st.Last == "-" {
		return strconv.Itoa(st.Restarts)
	}
	return fmt.Sprintf("%d (last: %s)", st.Restarts, st.Last)
}

// supervisorTag identifies role's supervisor in /proc/PID/cmdline.
func supervisorTag(h Host, role string) string { return binPath(h) + " supervise --name " + role }

// state reports whether role runs on the host, and its restarts.
func (c *Conn) state(ctx context.Context, role string, systemd bool) (procState, error) {
	h := c.Host
	var script string
	if systemd {
		u := shQuote(unitName(h, role))
		script = fmt.Sprintf(`st=$(systemctl is-active %s 2>/dev/null); pid=$(systemctl show -p MainPID --value %s 2>/dev/null)
n=$(systemctl show -p NRestarts --value %s 2>/dev/null); echo "$st ${pid:-0} ${n:-0} -"`, u, u, u)
	} else {
		// A supervisor alive without its child is in its pause before a
		// restart; one that gave up says so in the restarts file.
		script = shLib + fmt.Sprintf(`pid=$(cat %s 2>/dev/null || true); spid=$(cat %s 2>/dev/null || true)
r=$(cat %s 2>/dev/null || echo "0 -")
if alive "$pid" %s; then st=active; elif alive "$spid" %s; then st=restarting; pid=0; elif [ -n "$pid" ]; then st=stale; pid=0; else st=inactive; pid=0; fi
echo "$st $pid $r"
`, shQuote(pidPath(h, role)), shQuote(supervisorPidPath(h, role)), shQuote(restartsPath(h, role)),
			shQuote(binPath(h)+" "+role), shQuote(supervisorTag(h, role)))
	}
	res, err := c.Run(ctx, script, nil)
	if err != nil {
		return procState{}, fmt.Errorf("%s state: %w", role, err)
	}
	f := strings.SplitN(strings.TrimSpace(string(res.Stdout)), " ", 4)
	if len(f) != 4 {
		return procState{}, fmt.Errorf("%s state: unexpected output %q", role, res.Stdout)
	}
	pid, _ := strconv.Atoi(f[1])
	n, _ := strconv.Atoi(f[2])
	st := procState{Running: f[0] == "active" && pid > 0, PID: pid, Detail: f[0], Restarts: n, Last: f[3]}
	if f[0] == "stale" {
		st.Detail = "stopped (stale pidfile)"
	}
	if why, ok := strings.CutPrefix(st.Last, "gave up after "); ok && !st.Running {
		st.Detail, st.Last = "stopped (supervisor gave up)", why
	}
	return st, nil
}

// start starts role unless it runs already; it returns the pid.
func (c *Conn) start(ctx context.Context, role string, systemd bool) (int, error) {
	h := c.Host
	if systemd {
		if _, err := c.Run(ctx, "systemctl start "+shQuote(unitName(h, role)), nil); err != nil {
			return 0, fmt.Errorf("%s: systemctl start: %w", role, err)
		}
	} else {
		// setsid puts the supervisor in its own session, so it outlives
		// this SSH session; every fd is redirected, so the session can
		// end. The inner sh rebuilds the arguments from the args file
		// without evaluating them, writes its pid (exec keeps it) and
		// execs twopc supervise, which starts the service, writes its pid
		// to the pidfile and restarts it when it crashes.
		pidf, bin := pidPath(h, role), binPath(h)
		script := shLib + fmt.Sprintf(`cd %s 2>/dev/null || { echo "%s does not exist: run the deploy first" >&2; exit 1; }
pidf=%s; bin=%s
[ -x "$bin" ] || { echo "$bin missing: run the deploy first" >&2; exit 1; }
if alive "$(cat "$pidf" 2>/dev/null || true)" "$bin %s"; then exit 0; fi
if ! alive "$(cat %s 2>/dev/null || true)" %s; then
  mkdir -p run log data
  rm -f "$pidf"
  setsid sh -c 'f=$1 s=$2; shift 2; set -- "$@" --; while IFS= read -r a; do set -- "$@" "$a"; done < "$f"; echo $$ > "$s.tmp" && mv -f "$s.tmp" "$s"; exec "$0" supervise "$@"' \
    "$bin" %s %s --name %s --pidfile "$pidf" --state %s --log %s >> %s 2>&1 < /dev/null &
fi
i=0; while ! alive "$(cat "$pidf" 2>/dev/null || true)" "$bin %s" && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
alive "$(cat "$pidf" 2>/dev/null || true)" "$bin %s" || { echo "not running 10s after the start; see %s" >&2; exit 1; }
`, shQuote(h.Dir), h.Dir, shQuote(pidf), shQuote(bin), role,
			shQuote(supervisorPidPath(h, role)), shQuote(supervisorTag(h, role)),
			shQuote(argsPath(h, role)), shQuote(supervisorPidPath(h, role)), role,
			shQuote(restartsPath(h, role)), shQuote(logPath(h, role)), shQuote(logPath(h, role)), role, role, logPath(h, role))
		if _, err := c.Run(ctx, script, nil); err != nil {
			return 0, fmt.Errorf("%s: start: %w", role, err)
		}
	}
	st, err := c.state(ctx, role, systemd)
	if err != nil {
		return 0, err
	}
	if !st.Running {
		return 0, fmt.Errorf("%s exited right after start (%s)%s", role, st.Detail, c.tail(ctx, role, systemd, 5))
	}
	return st.PID, nil
}

// stop stops role: SIGTERM, up to 15 s for a clean exit, then SIGKILL.
// In background mode the supervisor is stopped first (it stops its
// child the same way), so that it does not restart what is being
// stopped. It reports whether something was running.
func (c *Conn) stop(ctx context.Context, role string, systemd bool) (bool, error) {
	h := c.Host
	if systemd {
		u := shQuote(unitName(h, role))
		res, err := c.Run(ctx, fmt.Sprintf("if systemctl is-active --quiet %s; then systemctl stop %s && echo stopped; fi", u, u), nil)
		if err != nil {
			return false, fmt.Errorf("%s: systemctl stop: %w", role, err)
		}
		return len(res.Stdout) > 0, nil
	}
	script := shLib + fmt.Sprintf(`pidf=%s; tag=%s; spidf=%s; stag=%s
end() { # pid tag: SIGTERM, then SIGKILL after 20 s
  if alive "$1" "$2"; then
    kill -TERM "$1"
    i=0; while alive "$1" "$2" && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
    if alive "$1" "$2"; then kill -KILL "$1"; echo "killed after 20s"; else echo stopped; fi
  fi
}
end "$(cat "$spidf" 2>/dev/null || true)" "$stag"
end "$(cat "$pidf" 2>/dev/null || true)" "$tag"
rm -f "$pidf" "$spidf"
`, shQuote(pidPath(h, role)), shQuote(binPath(h)+" "+role), shQuote(supervisorPidPath(h, role)), shQuote(supervisorTag(h, role)))
	res, err := c.Run(ctx, script, nil)
	if err != nil {
		return false, fmt.Errorf("%s: stop: %w", role, err)
	}
	return len(res.Stdout) > 0, nil
}

// retire stops role for good: as stop, and under systemd its unit is
// disabled too, so that a reboot does not start it again. It reports
// whether something was running.
func (c *Conn) retire(ctx context.Context, role string, systemd bool) (bool, error) {
	was, err := c.stop(ctx, role, systemd)
	if err != nil || !systemd {
		return was, err
	}
	u := shQuote(unitName(c.Host, role))
	if _, err := c.Run(ctx, fmt.Sprintf("if systemctl is-enabled --quiet %s 2>/dev/null; then systemctl disable --quiet %s; fi", u, u), nil); err != nil {
		return was, fmt.Errorf("%s: systemctl disable: %w", role, err)
	}
	return was, nil
}

// signal sends sig (KILL, STOP, CONT) to the running role's process.
func (c *Conn) signal(ctx context.Context, role string, systemd bool, sig string) error {
	st, err := c.state(ctx, role, systemd)
	if err != nil {
		return err
	}
	if !st.Running {
		return fmt.Errorf("%s on %s is not running", role, c.Host.Name)
	}
	if _, err := c.Run(ctx, fmt.Sprintf("kill -%s %d", sig, st.PID), nil); err != nil {
		return fmt.Errorf("kill -%s %s: %w", sig, role, err)
	}
	return nil
}

// tail returns the last n lines of role's log, prefixed for an error.
func (c *Conn) tail(ctx context.Context, role string, systemd bool, n int) string {
	out, err := c.logs(ctx, role, systemd, n)
	if err != nil || len(out) == 0 {
		return ""
	}
	return "; last log lines:\n" + strings.TrimRight(string(out), "\n")
}

func (c *Conn) logs(ctx context.Context, role string, systemd bool, n int) ([]byte, error) {
	script := fmt.Sprintf("tail -n %d %s", n, shQuote(logPath(c.Host, role)))
	if systemd {
		script = fmt.Sprintf("journalctl --no-pager -n %d -u %s", n, shQuote(unitName(c.Host, role)))
	}
	res, err := c.Run(ctx, script, nil)
	return res.Stdout, err
}

// version is what the installed binary says it is.
func (c *Conn) version(ctx context.Context) string {
	res, err := c.Run(ctx, shQuote(binPath(c.Host))+" version", nil)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(res.Stdout))
}
