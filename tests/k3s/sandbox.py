"""Run rendered scripts for real in a throwaway root: a private mount namespace + chroot.

The root is a directory tree with the host's /usr bind-mounted read-only (so bash,
coreutils, sed, grep, ... are the real ones) and a writable /usr/local. Only the commands
that would touch the machine (systemctl, modprobe, sysctl, swapoff, package managers,
firewall-cmd, SELinux tools, curl, uname, k3s itself) are stubs, in /usr/local/sbin, which
the scripts' own PATH puts first. The stubs keep their state in files under /stub and
append every call to /stub/calls.log, so a test can assert what a run did.

The script text is run exactly as sshd would: ``bash -c "<create text>"`` with the secret
config on stdin.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from components.versions import K3S_INSTALLER

STUBS: dict[str, str] = {}

STUBS["systemctl"] = r"""#!/bin/bash
# systemctl stub: unit state in /stub/units/<unit>/{enabled,active,activating,invocation,exists}
# 'activating' is a unit stuck in start-up (Type=notify): 'start' is a no-op on it, as in systemd.
# /stub/hang makes the next start of k3s/k3s-agent hang in 'activating'.
echo "systemctl $*" >>/stub/calls.log
args=()
quiet=""
for a in "$@"; do
  case $a in --quiet|-q) quiet=1 ;; --no-block|--no-pager|--value|--) ;; *) args+=("$a") ;; esac
done
verb=${args[0]:-}
prop=""
if [ "$verb" = show ]; then
  prop=${args[2]#*=} unit=${args[3]:-}
else
  unit=${args[1]:-}
fi
case $unit in *.*) ;; "") ;; *) unit=$unit.service ;; esac
d=/stub/units/$unit
exists() { [ -e "$d/exists" ] || [ -e "/etc/systemd/system/$unit" ]; }
start() {
  exists || { echo "Unit $unit not found." >&2; exit 5; }
  [ -e /stub/broken ] && return 0
  mkdir -p "$d"
  n=$(cat "$d/invocation" 2>/dev/null || echo 0); echo $((n + 1)) >"$d/invocation"
  case $unit in k3s.service|k3s-agent.service) [ -e /stub/hang ] && { touch "$d/activating"; return 0; } ;; esac
  touch "$d/active"
  case $unit in
    k3s.service|k3s-agent.service)
      /usr/local/bin/k3s --version | sed -n '1s/^k3s version \([^ ]*\).*/\1/p' >"/stub/running-$unit"
      if [ "$unit" = k3s.service ]; then
        mkdir -p /etc/rancher/k3s /var/lib/rancher/k3s/server/db
        echo "apiVersion: v1" >/etc/rancher/k3s/k3s.yaml; chmod 600 /etc/rancher/k3s/k3s.yaml
      else
        mkdir -p /var/lib/rancher/k3s/agent; echo "apiVersion: v1" >/var/lib/rancher/k3s/agent/kubelet.kubeconfig
      fi ;;
  esac
}
case $verb in
  is-enabled) [ -e "$d/enabled" ] ;;
  is-active)
    if [ -e "$d/active" ]; then s=active; elif [ -e "$d/activating" ]; then s=activating; else s=inactive; fi
    [ -n "$quiet" ] || echo "$s"
    [ "$s" = active ] ;;
  enable) exists || exit 1; mkdir -p "$d"; touch "$d/enabled" ;;
  disable) rm -f "$d/enabled" ;;
  start) [ -e "$d/active" ] || [ -e "$d/activating" ] || start ;;
  restart) rm -f "$d/active" "$d/activating"; start ;;
  stop) rm -f "$d/active" "$d/activating" ;;
  reload|daemon-reload|status|reset-failed) ;;
  cat) exists ;;
  show)
    case $prop in
      InvocationID) { [ -e "$d/active" ] || [ -e "$d/activating" ]; } && cat "$d/invocation" 2>/dev/null || echo "" ;;
      ActiveState) [ -e "$d/active" ] && echo active || echo inactive ;;
    esac ;;
  *) echo "systemctl stub: unsupported $*" >&2; exit 1 ;;
esac
"""

STUBS["modprobe"] = r"""#!/bin/bash
echo "modprobe $*" >>/stub/calls.log
m=${*: -1}; mkdir -p "/sys/module/${m//-/_}"
"""

STUBS["sysctl"] = r"""#!/bin/bash
echo "sysctl $*" >>/stub/calls.log
for a in "$@"; do
  case $a in *=*) k=${a%%=*}; v=${a#*=}; f=/proc/sys/${k//.//}; mkdir -p "$(dirname "$f")"
    if [ "$k" = vm.nr_hugepages ] && [ -e /stub/hugepages-short ]; then v=$((v / 2)); fi
    echo "$v" >"$f" ;;
  esac
done
"""

STUBS["swapoff"] = r"""#!/bin/bash
echo "swapoff $*" >>/stub/calls.log
head -n 1 /proc/swaps >/proc/swaps.new && mv /proc/swaps.new /proc/swaps
"""

STUBS["dpkg-query"] = r"""#!/bin/bash
p=${*: -1}
[ -e "/stub/pkgs/$p" ] && printf 'install ok installed' && exit 0
exit 1
"""

STUBS["apt-get"] = r"""#!/bin/bash
echo "apt-get $*" >>/stub/calls.log
if [ "$1" = install ] || [[ " $* " == *" install "* ]]; then
  for a in "$@"; do case $a in -*|install) ;; *) touch "/stub/pkgs/$a" ;; esac; done
fi
"""

STUBS["rpm"] = r"""#!/bin/bash
p=${*: -1}
[ -e "/stub/pkgs/$p" ]
"""

STUBS["dnf"] = r"""#!/bin/bash
echo "dnf $*" >>/stub/calls.log
for a in "$@"; do case $a in -*|install) ;; *) touch "/stub/pkgs/$a" ;; esac; done
"""

STUBS["firewall-cmd"] = r"""#!/bin/bash
echo "firewall-cmd $*" >>/stub/calls.log
mkdir -p /stub/firewalld; touch /stub/firewalld/rules
zone=default
for a in "$@"; do
  case $a in
    --zone=*) zone=${a#--zone=} ;;
    --query-*=*) k=${a#--query-}; grep -qxF "$zone ${k}" /stub/firewalld/rules; exit $? ;;
    --add-*=*) k=${a#--add-}; echo "$zone ${k}" >>/stub/firewalld/rules ;;
  esac
done
exit 0
"""

STUBS["getenforce"] = r"""#!/bin/bash
cat /stub/selinux-mode
"""

STUBS["setenforce"] = r"""#!/bin/bash
echo "setenforce $*" >>/stub/calls.log
if [ "$1" = 0 ]; then echo Permissive >/stub/selinux-mode; else echo Enforcing >/stub/selinux-mode; fi
"""

STUBS["uname"] = r"""#!/bin/bash
case $1 in -r) echo 6.1.0-sandbox ;; -m) echo x86_64 ;; *) echo Linux ;; esac
"""

STUBS["journalctl"] = "#!/bin/bash\nexit 0\n"

STUBS["ip"] = r"""#!/bin/bash
# ip stub: routes from /stub/ip/{route-dev,default-dev,addr-to}; interfaces are /sys/class/net/*.
args=" $* "
case $args in
  *" route get "*) d=$(cat /stub/ip/route-dev 2>/dev/null || true)
    [ -n "$d" ] && echo "${*: -1} dev $d src 192.0.2.51 uid 0" ;;
  *" route show default"*) d=$(cat /stub/ip/default-dev 2>/dev/null || true)
    [ -n "$d" ] && echo "default via 192.0.2.1 dev $d proto static" ;;
  *" addr show to "*) cat /stub/ip/addr-to 2>/dev/null || true ;;
  *) echo "ip stub: unsupported $*" >&2; exit 1 ;;
esac
exit 0
"""

# /stub/vip-taken: another host answers for the VIP (arping -D sees a reply, ping answers).
STUBS["arping"] = r"""#!/bin/bash
echo "arping $*" >>/stub/calls.log
[ -e /stub/vip-taken ] && exit 1
exit 0
"""

STUBS["ping"] = r"""#!/bin/bash
[ -e /stub/vip-taken ]
"""

STUBS["curl"] = r"""#!/bin/bash
echo "curl $*" >>/stub/calls.log
if [ -n "${HTTPS_PROXY:-}" ]; then echo "curl-proxy $HTTPS_PROXY" >>/stub/calls.log; fi
out="" url=""
while [ $# -gt 0 ]; do
  case $1 in -o) out=$2; shift ;; --retry|--connect-timeout|--max-time) shift ;; -*) ;; *) url=$1 ;; esac
  shift
done
case $url in
  */install.sh) cp /stub/fake-install.sh "$out" ;;
  */ping) [ -e /stub/ping-pong ] && printf pong && exit 0; exit 7 ;;
  */v3/cluster/member/list)  # etcd's member list, one member per line in /stub/etcd-members
    [ -e /stub/etcd-members ] || exit 7
    printf '{"header":{},"members":['; paste -sd, /stub/etcd-members | tr -d '\n'; printf ']}' ;;
  *) exit 22 ;;
esac
"""

FAKE_INSTALLER = r"""#!/bin/sh
# Fake K3s installer: records its environment, installs a fake k3s of INSTALL_K3S_VERSION.
set -e
env | sort >/stub/installer-env.log
echo "installer $INSTALL_K3S_VERSION $INSTALL_K3S_EXEC" >>/stub/calls.log
[ "$INSTALL_K3S_SKIP_START" = true ] || { echo "installer: would start k3s" >&2; exit 3; }
if [ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" != true ]; then
  sed "s/@VERSION@/$INSTALL_K3S_VERSION/" /stub/fake-k3s >/usr/local/bin/k3s
  chmod 755 /usr/local/bin/k3s
fi
unit=k3s-agent un=k3s-agent-uninstall.sh
if [ "$INSTALL_K3S_EXEC" = server ]; then unit=k3s un=k3s-uninstall.sh; fi
mkdir -p /etc/systemd/system
printf '[Service]\nExecStart=/usr/local/bin/k3s %s\n' "$INSTALL_K3S_EXEC" >/etc/systemd/system/$unit.service
{
  echo '#!/bin/sh'
  echo 'echo uninstall >>/stub/calls.log'
  echo "rm -rf /etc/rancher/k3s /var/lib/rancher/k3s /usr/local/bin/k3s /etc/systemd/system/$unit.service \"\$0\""
} >/usr/local/bin/$un
chmod 755 /usr/local/bin/$un
systemctl enable "$unit"
systemctl daemon-reload
"""

FAKE_K3S = r"""#!/bin/bash
# Fake k3s @VERSION@: answers the few kubectl queries the scripts make.
if [ "${1:-}" = --version ]; then echo "k3s version @VERSION@ (fake)"; echo "go version go1.24"; exit 0; fi
if [ "${1:-}" = etcd-snapshot ]; then
  echo "k3s $*" >>/stub/calls.log
  [ -e /stub/snapshot-fails ] && { echo "snapshot failed" >&2; exit 1; }
  name="" config=""
  while [ $# -gt 0 ]; do
    case $1 in --name) name=$2; shift ;; --config) config=$2; shift ;; esac
    shift
  done
  if [ -n "$config" ]; then  # a request to the server named in the config: the snapshot lands there
    [ -e /stub/remote-snapshot-fails ] && exit 1
    cat "$config" >>/stub/remote-snapshots; stat -c '%a' "$config" >>/stub/remote-snapshots; exit 0
  fi
  d=/var/lib/rancher/k3s/server/db/snapshots; mkdir -p "$d"
  n=$(cat /stub/snapshot-seq 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" >/stub/snapshot-seq
  f="$d/$name-fake-node-$((1700000000 + n))"
  echo "snapshot $n" >"$f"; touch -d "@$((1700000000 + n))" "$f"
  exit 0
fi
[ "${1:-}" = kubectl ] || exit 1
shift
echo "kubectl $*" >>/stub/calls.log
svc=k3s.service
for a in "$@"; do case $a in *kubelet.kubeconfig) svc=k3s-agent.service ;; esac; done
args=" $* "
if [[ $args == *" --server https://"* ]]; then
  # another server's API (a survivor, the VIP): up with /stub/remote-up, or while this host's K3s
  # runs, unless /stub/remote-down
  if [ ! -e /stub/remote-up ] && { [ -e /stub/remote-down ] || [ ! -e "/stub/units/$svc/active" ]; }; then
    echo "connection refused" >&2; exit 1
  fi
  url=${args#* --server }; host=${url%% *}; host=${host#https://}; host=${host%:*}
  [ -e "/stub/down-$host" ] && { echo "connection refused" >&2; exit 1; }  # that one server is down
  echo "remote $args" >>/stub/cluster-ops.log
  case $args in
    *" get --raw=/readyz "*) echo ok ;;
    *" delete node "*)
      [ -e /stub/delete-fails ] && { echo "Error from server (InternalError)" >&2; exit 1; }
      n=${args#* delete node }; n=${n%% *}
      state=stopped; [ -e /stub/units/k3s.service/active ] && state=running
      echo "remote delete node $n (local k3s $state)" >>/stub/calls.log
      # K3s's etcd controller removes the deleted node's member (unless /stub/member-sticks)
      [ -e /stub/member-sticks ] || sed -i "/\"name\":\"$n-/d" /stub/etcd-members 2>/dev/null || true ;;
    *" drain "*) ;;
    *) echo "fake k3s: unsupported remote kubectl $*" >&2; exit 1 ;;
  esac
  exit 0
fi
[ -e "/stub/units/$svc/active" ] || { echo "connection refused" >&2; exit 1; }
running=$(cat "/stub/running-$svc")
case $args in
  *" get --raw=/readyz "*) echo ok ;;
  *" get nodes "*) cat /stub/cluster-nodes 2>/dev/null || true ;;
  *" get node "*"annotations"*)
    k=${args#*annotations.}; k=${k%%\}*}; k=${k//\\/}
    cat "/stub/ann-${k//[\/.]/_}" 2>/dev/null || true ;;
  *" get node "*"spec.taints"*) sed 's/^\([^=:]*\):/\1=:/' /stub/taints 2>/dev/null || true ;;
  *" label node "*|*" taint node "*|*" annotate node "*)
    echo "$args" >>/stub/cluster-ops.log
    verb=$(sed 's/.* \(label\|taint\|annotate\) node .*/\1/' <<<"$args")
    store=/stub/labels; [ "$verb" = taint ] && store=/stub/taints; touch "$store"
    seen=0 did=0
    for a in "$@"; do
      if [ "$seen" -lt 2 ]; then case $a in node) seen=1 ;; *) [ "$seen" = 1 ] && seen=2 ;; esac; continue; fi
      case $a in --*) continue ;; esac
      if [ "$verb" = annotate ]; then
        if [[ $a == *- ]]; then rm -f "/stub/ann-$(tr '/.' '__' <<<"${a%-}")"; did=1; continue; fi
        k=${a%%=*}; f=/stub/ann-${k//[\/.]/_}
        [ "$(cat "$f" 2>/dev/null)" = "${a#*=}" ] || { printf '%s' "${a#*=}" >"$f"; did=1; }
        continue
      fi
      if [[ $a == *- ]]; then k=${a%-}; [ "$verb" = taint ] && k=${k%%:*}
        grep -q "^$k[=:]" "$store" && { sed -i "\\|^$k[=:]|d" "$store"; did=1; }
      else
        grep -qxF "$a" "$store" || { k=${a%%[=:]*}; sed -i "\\|^$k[=:]|d" "$store"; echo "$a" >>"$store"; did=1; }
      fi
    done
    past=${verb}ed; [ "$verb" = annotate ] && past=annotated
    if [ "$did" = 1 ]; then echo "node/x $past"; else echo "node/x not $past"; fi ;;
  *" get node "*"etcd"*)
    beat=$(date -u +%Y-%m-%dT%H:%M:%SZ); [ -e /stub/stale-heartbeat ] && beat=2020-01-01T00:00:00Z
    echo "$running true True $beat" ;;
  *" get node "*'jsonpath={.status.conditions[?(@.type=="Ready")].status}'*) echo True ;;
  *" get node "*"kubeletVersion"*"lastHeartbeatTime"*) echo "$running True $(date -u +%Y-%m-%dT%H:%M:%SZ)" ;;
  *" get node "*"kubeletVersion"*'"Ready")].status}'*) echo "$running True" ;;
  *" get node "*"kubeletVersion"*) echo "$running" ;;
  *" uncordon "*) echo "$args" >>/stub/cluster-ops.log ;;
  *" get node "*"InternalIP"*) cat /stub/internal-ip ;;
  *" get node "*)
    if [ -e /stub/node-gone ]; then echo 'Error from server (NotFound): nodes "x" not found' >&2; exit 1; fi
    echo node/x ;;
  *" drain "*) echo "$args" >>/stub/cluster-ops.log ;;
  *" delete "*" -l "*|*" delete addons"*)
    echo "$args" >>/stub/cluster-ops.log
    if [ -e /stub/kube-vip-objects ]; then echo "daemonset.apps \"kube-vip-ds\" deleted"
    else echo "No resources found"; fi ;;
  *" delete node "*)
    echo "$args" >>/stub/cluster-ops.log
    n=${args#* delete node }; n=${n%% *}
    [ -e /stub/member-sticks ] || sed -i "/\"name\":\"$n-/d" /stub/etcd-members 2>/dev/null || true
    touch /stub/node-gone ;;
  *) echo "fake k3s: unsupported kubectl $*" >&2; exit 1 ;;
esac
"""

OS_RELEASES = {
    "debian": 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
    "rhel": 'ID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\nPRETTY_NAME="Red Hat Enterprise Linux 9.4"\n',
    "centos7": 'ID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n',
}

MUTATING = (
    "modprobe", "sysctl -q -w", "swapoff", "apt-get", "dnf", "systemctl enable", "systemctl disable",
    "systemctl start", "systemctl restart", "systemctl stop", "firewall-cmd -q --permanent --add",
    "firewall-cmd -q --reload", "setenforce", "installer", "uninstall",
)


def unshare_available() -> bool:
    for flags in (["-Urm"], ["-m"]):
        try:
            ok = subprocess.run(["unshare", *flags, "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok and (shutil.which("chroot") or Path("/usr/sbin/chroot").exists()):
            return True
    return False


def _unshare_flags() -> list[str]:
    return ["-Urm"] if subprocess.run(["unshare", "-Urm", "true"], capture_output=True).returncode == 0 else ["-m"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def changes(self) -> int:
        for line in reversed(self.stderr.splitlines()):
            if "done: " in line and "change(s)" in line:
                return int(line.split("done: ")[1].split()[0])
        raise AssertionError(f"no 'done: N change(s)' line in:\n{self.stderr}")


FAKE_INSTALLER_SHA256 = hashlib.sha256(FAKE_INSTALLER.encode()).hexdigest()


class Sandbox:
    def __init__(self, base: Path, family: str = "debian") -> None:
        self.base = base
        self.pin_fake_installer = True
        self.root = base / "root"
        self.local = base / "usr-local"
        r = self.root
        for d in ("usr", "dev", "tmp", "etc/systemd/system", "etc/selinux", "proc/sys", "sys/module", "var/lib",
                  "run", "root", "stub/pkgs", "stub/units"):
            (r / d).mkdir(parents=True, exist_ok=True)
        (r / "tmp").chmod(0o1777)
        (r / "dev/null").touch()
        for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")):
            if not (r / link).exists():
                (r / link).symlink_to(target)
        for d in ("bin", "sbin"):
            (self.local / d).mkdir(parents=True, exist_ok=True)
        for name, text in STUBS.items():
            if name in ("getenforce", "setenforce") and family == "debian":
                continue
            self._write(self.local / "sbin" / name, text, 0o755)
        self._write(r / "stub/fake-install.sh", FAKE_INSTALLER, 0o755)
        self._write(r / "stub/fake-k3s", FAKE_K3S, 0o755)
        self._write(r / "etc/os-release", OS_RELEASES[family])
        self._write(r / "etc/fstab", "UUID=abc / ext4 defaults 0 1\n/dev/sda2 none swap sw 0 0\n")
        self._write(r / "proc/swaps", "Filename Type Size Used Priority\n/dev/sda2 partition 1000 0 -2\n")
        self._write(r / "proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu sse4_1 sse4_2 avx\n")
        self._write(r / "stub/calls.log", "")
        self._write(r / "stub/internal-ip", "192.0.2.54\n")
        # A stock Debian 12 / RHEL 9 VM: predictable interface names, the default route on ens18.
        for iface in ("lo", "ens18"):
            (r / "sys/class/net" / iface).mkdir(parents=True, exist_ok=True)
        self._write(r / "stub/ip/route-dev", "ens18\n")
        self._write(r / "stub/ip/default-dev", "ens18\n")
        for key in ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "vm/nr_hugepages"):
            self._write(r / "proc/sys" / key, "0\n")
        if family != "debian":
            self._write(r / "stub/selinux-mode", "Enforcing\n")
            self._write(r / "etc/selinux/config", "SELINUX=enforcing\nSELINUXTYPE=targeted\n")
            for unit in ("firewalld.service", "nm-cloud-setup.service", "nm-cloud-setup.timer"):
                self.set_unit(unit, enabled=True, active=True)
        else:
            self.set_unit("ufw.service", enabled=True, active=True)
        for unit in ("iscsid.service", "multipathd.service"):
            self.set_unit(unit, enabled=False, active=False)

    @staticmethod
    def _write(path: Path, text: str, mode: int = 0o644) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)

    def set_unit(self, unit: str, *, enabled: bool, active: bool) -> None:
        d = self.root / "stub/units" / unit
        d.mkdir(parents=True, exist_ok=True)
        (d / "exists").touch()
        for flag, on in (("enabled", enabled), ("active", active)):
            if on:
                (d / flag).touch()
            elif (d / flag).exists():
                (d / flag).unlink()

    def path(self, inside: str) -> Path:
        if inside.startswith("/usr/local/"):
            return self.local / inside[len("/usr/local/"):]
        return self.root / inside.lstrip("/")

    def run(self, script: str, stdin: str = "", timeout: float = 60) -> Result:
        """Run `script` as sshd would (``bash -c``), as root, inside the sandbox.

        The curl stub serves the fake installer for the pinned URL, so the script's pinned sha256 is
        swapped for the fake's (`pin_fake_installer`); a test clears that to see a mismatch refused.
        """
        if self.pin_fake_installer:
            script = script.replace(f"INSTALLER_SHA256={K3S_INSTALLER.sha256}",
                                    f"INSTALLER_SHA256={FAKE_INSTALLER_SHA256}")
        setup = (
            'mount --bind /usr "$R/usr" && mount -o remount,bind,ro "$R/usr" && '
            'mount --bind "$L" "$R/usr/local" && mount --bind /dev/null "$R/dev/null" && '
            'exec env -i HOME=/root TERM=dumb /usr/sbin/chroot "$R" /usr/bin/bash -c "$S"'
        )
        env = {"R": str(self.root), "L": str(self.local), "S": script, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        proc = subprocess.run(
            ["unshare", *_unshare_flags(), "sh", "-c", setup], input=stdin, capture_output=True, text=True,
            env=env, timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def calls(self) -> list[str]:
        return self.path("/stub/calls.log").read_text().splitlines()

    def reset_calls(self) -> None:
        self.path("/stub/calls.log").write_text("")

    def mutating_calls(self) -> list[str]:
        return [c for c in self.calls() if c.startswith(MUTATING) or c.startswith("sysctl -q -w")]

    def snapshot(self) -> dict[str, tuple[int, str, int]]:
        """path -> (mode, sha256, mtime_ns) of every file outside /stub (the stubs' bookkeeping)."""
        out: dict[str, tuple[int, str, int]] = {}
        for top in (self.root, self.local):
            for dirpath, dirnames, filenames in os.walk(top):
                rel_dir = os.path.relpath(dirpath, top)
                if top == self.root and (rel_dir == "stub" or rel_dir.startswith("stub/") or rel_dir == "usr"):
                    dirnames[:] = []
                    continue
                for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                    full = os.path.join(dirpath, name)
                    st = os.lstat(full)
                    digest = ""
                    if stat.S_ISREG(st.st_mode):
                        digest = hashlib.sha256(Path(full).read_bytes()).hexdigest()
                    out[f"{top.name}/{os.path.relpath(full, top)}"] = (stat.S_IMODE(st.st_mode), digest, st.st_mtime_ns)
                for name in dirnames:
                    full = os.path.join(dirpath, name)
                    st = os.lstat(full)
                    out[f"{top.name}/{os.path.relpath(full, top)}/"] = (stat.S_IMODE(st.st_mode), "", 0)
        return out
