#!/usr/bin/env python3
"""Kernel-tier runner: run one command inside a Debian kernel booted under qemu (TCG).

The CI host kernel has no team driver and cannot load modules, so the kernel tier boots Debian's
current ``linux-image-amd64`` kernel under ``qemu-system-x86_64`` (software emulation; /dev/kvm
is not usable here), with the host root filesystem mounted read-only over 9p and a writable 9p
share for results.  Inside the guest, ``tests/kernel/init.sh`` loads the team/veth/9p modules,
builds a chroot of the host root with fresh proc/sys/dev and tmpfs on /tmp, /run, /var/tmp,
/var/log, and runs the command there.

CLI::

    python tests/kernel/vm.py [--timeout S] [--results-dir DIR] [--quiet] -- COMMAND ARGS...

exits with the guest command's exit code; 124 if the VM timed out, 125 if the guest never
reported an exit code, 2 if the kernel/initramfs/qemu setup failed (with a message saying what
failed and what to do).  This tier must never be skipped silently.

Library::

    from tests.kernel.vm import run_in_vm
    res = run_in_vm(["pytest", "-q", "tests/kernel"], timeout=240, results_dir=Path(...))
    res.exit_code, res.console_log_path, res.results_dir, res.boot_seconds

Inside the guest the command runs in the host's current directory (read-only), with
``HOME=/tmp/home``, ``KERNEL_TIER_VM=1`` and ``VM_RESULTS_DIR`` = the results directory, which is
writable at its host path.  Caches (kernel package, extracted tree, initramfs) live under
``.cache/kernel/`` (override with ``$KERNEL_TIER_CACHE``); only one VM runs at a time (file lock).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import fcntl
import gzip
import hashlib
import io
import lzma
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CACHE_DIR = Path(os.environ.get("KERNEL_TIER_CACHE", REPO / ".cache" / "kernel"))
INIT_SCRIPT = HERE / "init.sh"
META_PACKAGE = "linux-image-amd64"
BUSYBOX = Path("/bin/busybox")
QEMU = "qemu-system-x86_64"

# Modules the guest needs; their dependencies come from modules.dep.  Built-in ones are skipped.
# Order matters only between independent groups: virtio transport first, then 9p, then the rest.
MODULES: tuple[str, ...] = (
    "virtio_pci",
    "virtio_rng",
    "9pnet_virtio",
    "9p",
    "af_packet",
    "team",
    "team_mode_loadbalance",
    "team_mode_activebackup",
    "team_mode_roundrobin",
    "team_mode_broadcast",
    "team_mode_random",
    "veth",
    "dummy",
    "bonding",
    "crc32c_generic",  # libcrc32c (openvswitch -> nf_conntrack) needs a crc32c provider
    "openvswitch",
)
# Bump when the initramfs layout changes in a way the hashed inputs do not capture.
INITRAMFS_FORMAT = 1

EXIT_SETUP_FAILED = 2
EXIT_TIMEOUT = 124
EXIT_NO_RESULT = 125

GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MARKER_RE = re.compile(r"@@vm: (?P<what>[a-z][a-z ]*[a-z])(?P<rest>[^@]*)@@")


class VmSetupError(RuntimeError):
    """A step needed to boot the VM failed; the message says what and what to do."""


@dataclasses.dataclass(frozen=True)
class Kernel:
    package: str
    version: str  # uname -r, e.g. 6.1.0-56-amd64
    root: Path  # extracted package tree
    vmlinuz: Path  # compressed bzImage
    vmlinux: Path  # uncompressed ELF with a PVH entry note: boots without decompressing
    moddir: Path  # root/lib/modules/<version>
    config: Path


@dataclasses.dataclass
class VmResult:
    exit_code: int
    console_log_path: Path
    results_dir: Path
    timed_out: bool = False
    boot_seconds: float | None = None  # host wall clock: qemu start -> command start
    guest_boot_seconds: float | None = None  # guest uptime at command start
    command_seconds: float | None = None  # host wall clock: command start -> command exit
    wall_seconds: float = 0.0  # whole qemu run
    kernel_version: str = ""
    error: str | None = None


def log(msg: str) -> None:
    print(f"[kernel-tier] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Kernel from apt


def _run(argv: Sequence[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv), cwd=cwd, capture_output=True, text=True, check=False, timeout=900
        )
    except FileNotFoundError as exc:
        raise VmSetupError(f"`{argv[0]}` is not installed ({exc})") from exc


def _apt_update(why: str) -> None:
    log(f"{why}; running `apt-get update` (once) to refresh the package lists")
    res = _run(["apt-get", "update"])
    if res.returncode != 0:
        raise VmSetupError(
            f"{why}, and `apt-get update` failed (exit {res.returncode}):\n"
            f"{res.stderr.strip()}\n"
            "Fix apt sources/network access (or run as root), then rerun."
        )


def _cached_kernels() -> list[Path]:
    return sorted(
        (p.parent.parent for p in CACHE_DIR.glob("linux-image-*/root/.complete")),
        key=lambda p: p.stat().st_mtime,
    )


def resolve_kernel_package(updated: list[bool]) -> str:
    """linux-image-amd64 -> linux-image-<ver>-amd64 via `apt-cache depends`."""
    for attempt in range(2):
        res = _run(["apt-cache", "depends", META_PACKAGE])
        found = re.findall(r"Depends:\s*(linux-image-\S+)", res.stdout)
        if res.returncode == 0 and found:
            return found[0]
        if attempt == 0 and not updated[0]:
            updated[0] = True
            try:
                _apt_update(f"`apt-cache depends {META_PACKAGE}` found no kernel package")
                continue
            except VmSetupError as exc:
                cached = _cached_kernels()
                if cached:
                    log(f"warning: {exc}; using cached {cached[-1].name}")
                    return cached[-1].name
                raise
        break
    cached = _cached_kernels()
    if cached:
        log(f"warning: apt cannot resolve {META_PACKAGE}; using cached {cached[-1].name}")
        return cached[-1].name
    raise VmSetupError(
        f"`apt-cache depends {META_PACKAGE}` gave no linux-image-* dependency "
        f"(exit {res.returncode}): {res.stderr.strip() or res.stdout.strip()}\n"
        "Make sure Debian's main repository is in /etc/apt/sources.list and run `apt-get update`."
    )


def ensure_kernel() -> Kernel:
    """Download and extract the kernel package into the cache (idempotent)."""
    updated = [False]
    package = resolve_kernel_package(updated)
    pkgdir = CACHE_DIR / package
    root = pkgdir / "root"
    if not (root / ".complete").exists():
        pkgdir.mkdir(parents=True, exist_ok=True)
        debs = sorted(pkgdir.glob(f"{package}_*.deb"))
        if not debs:
            log(f"downloading {package} with apt-get download")
            argv = ["apt-get", "download", "-o", "APT::Sandbox::User=root", package]
            res = _run(argv, cwd=pkgdir)
            if res.returncode != 0 and not updated[0]:
                updated[0] = True
                _apt_update(f"`apt-get download {package}` failed")
                res = _run(argv, cwd=pkgdir)
            if res.returncode != 0:
                raise VmSetupError(
                    f"`apt-get download {package}` failed (exit {res.returncode}):\n"
                    f"{res.stderr.strip()}\nCheck network access to the Debian mirror and "
                    "`apt-get update`, then rerun."
                )
            debs = sorted(pkgdir.glob(f"{package}_*.deb"))
            if not debs:
                raise VmSetupError(f"`apt-get download {package}` left no .deb in {pkgdir}")
        tmp = pkgdir / "root.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"extracting {debs[-1].name}")
        res = _run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)])
        if res.returncode != 0:
            raise VmSetupError(
                f"`dpkg-deb -x {debs[-1]}` failed: {res.stderr.strip()}\n"
                f"Delete {pkgdir} and rerun (the download may be corrupt)."
            )
        versions = [p.name for p in (tmp / "lib" / "modules").iterdir() if p.is_dir()]
        if len(versions) != 1:
            raise VmSetupError(f"{debs[-1].name}: expected one lib/modules/<ver>, got {versions}")
        # Debian generates modules.dep in postinst; do it here for the extracted tree.
        res = _run(["depmod", "-b", str(tmp), versions[0]])
        if res.returncode != 0:
            raise VmSetupError(
                f"`depmod -b {tmp} {versions[0]}` failed: {res.stderr.strip()}\n"
                "Install kmod (`apt-get install kmod`) and rerun."
            )
        (tmp / ".complete").write_text(versions[0] + "\n")
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    version = (root / ".complete").read_text().strip()
    kernel = Kernel(
        package=package,
        version=version,
        root=root,
        vmlinuz=root / "boot" / f"vmlinuz-{version}",
        vmlinux=root / "boot" / f"vmlinux-{version}.pvh",
        moddir=root / "lib" / "modules" / version,
        config=root / "boot" / f"config-{version}",
    )
    for path in (kernel.vmlinuz, kernel.moddir / "modules.dep", kernel.config):
        if not path.exists():
            raise VmSetupError(f"{path} is missing; delete {pkgdir} and rerun")
    if not kernel.vmlinux.exists():
        _extract_vmlinux(kernel.vmlinuz, kernel.vmlinux)
    return kernel


def _extract_vmlinux(bzimage: Path, out: Path) -> None:
    """Decompress the ELF vmlinux out of a bzImage (Debian: xz).

    Under TCG the guest spends seconds decompressing a 66 MB kernel; qemu boots the ELF directly
    through its PVH entry point (CONFIG_PVH=y), which skips that and the real-mode setup.
    """
    data = bzimage.read_bytes()
    at = data.find(b"\xfd7zXZ\x00")
    if at < 0:
        raise VmSetupError(f"{bzimage}: no xz payload found; cannot extract vmlinux")
    try:
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[at:])
    except lzma.LZMAError as exc:
        raise VmSetupError(f"{bzimage}: xz payload does not decompress: {exc}") from exc
    if elf[:4] != b"\x7fELF":
        raise VmSetupError(f"{bzimage}: decompressed payload is not an ELF vmlinux")
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(elf)
    tmp.rename(out)


# --------------------------------------------------------------------------------------------
# initramfs


def _modname(path: str) -> str:
    return Path(path).name.split(".ko")[0].replace("-", "_")


def module_load_order(kernel: Kernel, wanted: Sequence[str] = MODULES) -> list[str]:
    """Module paths (relative to moddir) in insmod order, dependencies first."""
    deps: dict[str, list[str]] = {}
    paths: dict[str, str] = {}
    for line in (kernel.moddir / "modules.dep").read_text().splitlines():
        if ":" not in line:
            continue
        mod, rest = line.split(":", 1)
        paths[_modname(mod)] = mod
        deps[mod] = rest.split()
    builtin = {
        _modname(line.strip())
        for line in (kernel.moddir / "modules.builtin").read_text().splitlines()
        if line.strip()
    }
    order: list[str] = []

    def visit(mod: str) -> None:
        if mod in order:
            return
        # modules.dep lists dependencies so that the last one must be loaded first.
        for dep in reversed(deps[mod]):
            visit(dep)
        order.append(mod)

    for name in wanted:
        name = name.replace("-", "_")
        if name in paths:
            visit(paths[name])
        elif name not in builtin:
            raise VmSetupError(
                f"kernel {kernel.version} has module {name} neither as a module nor built in "
                f"(see {kernel.config}); update MODULES in {__file__}"
            )
    return order


class _Cpio:
    """Minimal writer of the 'newc' cpio format the kernel unpacks as initramfs."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1
        self.seen: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)):
        name = name.strip("/")
        if name in self.seen:
            return
        self.seen.add(name)
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
        self.ino += 1
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.buf.write(hdr + name.encode() + b"\0")
        self.buf.write(b"\0" * (-(len(hdr) + len(name) + 1) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))

    def dir(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self._entry("/".join(parts[:i]), stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        if "/" in name.strip("/"):
            self.dir(str(Path(name.strip("/")).parent))
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        self.seen.discard("TRAILER!!!")
        return self.buf.getvalue()


def _has_interpreter(elf: bytes) -> bool:
    """True if an ELF64 binary has a PT_INTERP segment (i.e. is dynamically linked)."""
    if elf[:5] != b"\x7fELF\x02":
        return True
    phoff = int.from_bytes(elf[0x20:0x28], "little")
    phentsize = int.from_bytes(elf[0x36:0x38], "little")
    phnum = int.from_bytes(elf[0x38:0x3A], "little")
    return any(
        int.from_bytes(elf[phoff + i * phentsize : phoff + i * phentsize + 4], "little") == 3
        for i in range(phnum)
    )


def ensure_initramfs(kernel: Kernel) -> Path:
    """Build (or reuse) the initramfs: busybox, modules, /init.  Cached by content hash."""
    if not BUSYBOX.exists():
        raise VmSetupError(f"{BUSYBOX} missing: run `apt-get install busybox-static`")
    bb = BUSYBOX.read_bytes()
    if _has_interpreter(bb):
        raise VmSetupError(f"{BUSYBOX} is dynamically linked: `apt-get install busybox-static`")
    order = module_load_order(kernel)
    init = INIT_SCRIPT.read_bytes()
    h = hashlib.sha256()
    for part in (str(INITRAMFS_FORMAT), kernel.version, "\n".join(order), init, bb):
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    for mod in order:
        h.update((kernel.moddir / mod).read_bytes())
    out = CACHE_DIR / f"initramfs-{kernel.version}-{h.hexdigest()[:16]}.cpio.gz"
    if out.exists():
        return out
    log(f"building {out.name} ({len(order)} modules)")
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    cpio = _Cpio()
    for d in ("bin", "dev", "proc", "sys", "etc", "newroot", "results", "tmp"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3)
    cpio.file("bin/busybox", bb, 0o755)
    for applet in applets:
        if applet != "busybox":
            cpio.symlink(f"bin/{applet}", "busybox")
    cpio.symlink("sbin", "bin")
    cpio.file("init", init, 0o755)
    guest_moddir = f"lib/modules/{kernel.version}"
    lines = []
    for mod in order:
        cpio.file(f"{guest_moddir}/{mod}", (kernel.moddir / mod).read_bytes())
        lines.append(f"/{guest_moddir}/{mod}")
    cpio.file("etc/vm-modules", ("\n".join(lines) + "\n").encode())
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(cpio.finish(), compresslevel=6, mtime=0))
    for old in CACHE_DIR.glob(f"initramfs-{kernel.version}-*.cpio.gz"):
        old.unlink()
    tmp.rename(out)
    return out


# --------------------------------------------------------------------------------------------
# qemu


@contextmanager
def _vm_lock() -> Iterator[None]:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / "vm.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another kernel-tier VM is running; waiting for it (one qemu at a time)")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def qemu_argv(
    kernel: Kernel,
    initrd: Path,
    results_dir: Path,
    *,
    smp: int = 2,
    mem_mb: int = 2048,
    cpu: str = "max",
    machine: str = "q35",
    boot: str = "pvh",
    append: str = "",
) -> list[str]:
    append = " ".join(
        [
            "console=ttyS0",
            "quiet",
            "loglevel=3",
            "panic=-1",
            "oops=panic",
            "mitigations=off",
            "tsc=reliable",
            "random.trust_cpu=on",
            "rdinit=/init",
            append,  # KEY=VALUE words reach /init as environment (VM_9P_CACHE, VM_MSIZE)
        ]
    ).strip()
    return [
        QEMU,
        "-machine", f"{machine},accel=tcg",
        "-cpu", cpu,
        "-smp", str(smp),
        "-m", str(mem_mb),
        "-nodefaults",
        "-no-user-config",
        "-display", "none",
        "-serial", "stdio",
        "-no-reboot",
        "-kernel", str(kernel.vmlinux if boot == "pvh" else kernel.vmlinuz),
        "-initrd", str(initrd),
        "-append", append,
        "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
        "-fsdev", f"local,id=results,path={results_dir},security_model=none",
        "-device", "virtio-9p-pci,fsdev=results,mount_tag=results",
        "-device", "virtio-rng-pci",
    ]  # fmt: skip


def _die_with_parent() -> None:
    """In the qemu child: get SIGKILL if the runner dies, so no qemu is ever left running."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


_RESULT_FILES = ("exit_code", "guest_command_start", "init_error", "console.log")


def _write_guest_files(
    argv: Sequence[str], results_dir: Path, cwd: Path, env: Mapping[str, str]
) -> None:
    for name in _RESULT_FILES:
        (results_dir / name).unlink(missing_ok=True)
    guest_env = {
        "PATH": GUEST_PATH,
        "HOME": "/tmp/home",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "KERNEL_TIER_VM": "1",
        "VM_RESULTS_DIR": str(results_dir),
        **env,
    }
    lines = ["# generated by tests/kernel/vm.py; runs inside the guest chroot"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in guest_env.items()]
    lines.append(f"cd {shlex.quote(str(cwd))} 2>/dev/null || cd /")
    lines.append("exec " + shlex.join(argv))
    (results_dir / "vm-command.sh").write_text("\n".join(lines) + "\n")
    (results_dir / "vm-init.env").write_text(f"VM_RESULTS_DIR={shlex.quote(str(results_dir))}\n")


def run_in_vm(
    argv: list[str],
    *,
    timeout: float,
    results_dir: Path,
    echo: bool | IO[str] = True,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    smp: int = 2,
    mem_mb: int = 2048,
    cpu: str = "max",
    machine: str = "q35",
    boot: str = "pvh",
    append: str = "",
) -> VmResult:
    """Boot the kernel-tier VM, run ``argv`` in the host-root chroot, return its exit code.

    Raises VmSetupError if the kernel, initramfs or qemu cannot be prepared.  The console is
    written to ``results_dir/console.log`` and, line by line, to ``echo`` (True: the current
    sys.stdout; False: silent; or a text stream).
    """
    out: IO[str] | None = sys.stdout if echo is True else (echo or None)
    if not argv:
        raise ValueError("argv is empty")
    results_dir = Path(results_dir).resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    cwd = (cwd or Path.cwd()).resolve()
    if shutil.which(QEMU) is None:
        raise VmSetupError(f"{QEMU} not found: run `apt-get install qemu-system-x86`")
    with _vm_lock():
        kernel = ensure_kernel()
        initrd = ensure_initramfs(kernel)
        _write_guest_files(argv, results_dir, cwd, env or {})
        console_path = results_dir / "console.log"
        cmd = qemu_argv(
            kernel,
            initrd,
            results_dir,
            smp=smp,
            mem_mb=mem_mb,
            cpu=cpu,
            machine=machine,
            boot=boot,
            append=append,
        )
        result = VmResult(
            exit_code=EXIT_NO_RESULT,
            console_log_path=console_path,
            results_dir=results_dir,
            kernel_version=kernel.version,
        )
        marks: dict[str, float] = {}
        t0 = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        assert proc.stdout is not None

        def pump(stream: IO[bytes], logf: IO[bytes]) -> None:
            for raw in iter(stream.readline, b""):
                logf.write(raw)
                logf.flush()
                line = raw.decode(errors="replace").replace("\r", "")
                m = MARKER_RE.search(line)
                if m:
                    marks.setdefault(m.group("what"), time.monotonic())
                if out is not None:
                    out.write(line)
                    out.flush()

        with open(console_path, "wb") as logf:
            reader = threading.Thread(target=pump, args=(proc.stdout, logf), daemon=True)
            reader.start()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                result.timed_out = True
                result.error = f"VM timed out after {timeout:.0f} s; qemu killed"
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                reader.join(timeout=5)
        result.wall_seconds = time.monotonic() - t0
        if "command start" in marks:
            result.boot_seconds = marks["command start"] - t0
            if "command exit" in marks:
                result.command_seconds = marks["command exit"] - marks["command start"]
        try:
            result.guest_boot_seconds = float(
                (results_dir / "guest_command_start").read_text().strip()
            )
        except (OSError, ValueError):
            pass
        exit_file = results_dir / "exit_code"
        if exit_file.exists():
            result.exit_code = int(exit_file.read_text().strip() or EXIT_NO_RESULT)
        elif result.timed_out:
            result.exit_code = EXIT_TIMEOUT
        else:
            init_error = results_dir / "init_error"
            why = init_error.read_text().strip() if init_error.exists() else ""
            result.error = (
                f"guest reported no exit code (qemu exit {proc.returncode}) {why}".strip()
                + f"; see {console_path}"
            )
        return result


def main(args: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a command inside the kernel-tier qemu VM (Debian kernel, host root "
        "read-only over 9p).",
        usage="%(prog)s [--timeout S] [--results-dir DIR] [--quiet] -- COMMAND ARGS...",
    )
    parser.add_argument("--timeout", type=float, default=270.0, help="kill qemu after S seconds")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=CACHE_DIR / "last-run",
        help="writable dir shared with the guest (default: .cache/kernel/last-run)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not echo the console live")
    parser.add_argument("--smp", type=int, default=2)
    parser.add_argument("--mem", type=int, default=2048, help="guest memory in MiB")
    parser.add_argument("--cpu", default="max", help="qemu -cpu model")
    parser.add_argument("--machine", default="q35", help="qemu -machine type")
    parser.add_argument(
        "--boot",
        choices=("pvh", "bzimage"),
        default="pvh",
        help="pvh: uncompressed vmlinux via its PVH entry (fast); bzimage: Debian's vmlinuz",
    )
    parser.add_argument(
        "--append",
        default="",
        help="extra kernel command line, e.g. 'VM_9P_CACHE=mmap VM_MSIZE=262144' or 'loglevel=7'",
    )
    parser.add_argument("--prepare-only", action="store_true", help="build caches, no boot")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    ns = parser.parse_args(args)
    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # unwinds run_in_vm, which kills qemu

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if ns.prepare_only:
            with _vm_lock():
                kernel = ensure_kernel()
                initrd = ensure_initramfs(kernel)
            log(f"kernel {kernel.version} ({kernel.vmlinuz}); initramfs {initrd}")
            return 0
        if not command:
            parser.error("no command given (put it after --)")
        res = run_in_vm(
            command,
            timeout=ns.timeout,
            results_dir=ns.results_dir,
            echo=not ns.quiet,
            smp=ns.smp,
            mem_mb=ns.mem,
            cpu=ns.cpu,
            machine=ns.machine,
            boot=ns.boot,
            append=ns.append,
        )
    except KeyboardInterrupt:
        log("interrupted; qemu stopped")
        return 130
    except VmSetupError as exc:
        log(f"SETUP FAILED: {exc}")
        log("the kernel tier cannot run; this is a failure, not a skip")
        return EXIT_SETUP_FAILED

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}s"

    log(
        f"kernel {res.kernel_version}: boot to command {fmt(res.boot_seconds)} "
        f"(guest uptime {fmt(res.guest_boot_seconds)}), command {fmt(res.command_seconds)}, "
        f"total {fmt(res.wall_seconds)}; exit code {res.exit_code}; console {res.console_log_path}"
    )
    if res.error:
        log(f"ERROR: {res.error}")
    return res.exit_code


if __name__ == "__main__":
    sys.exit(main())
