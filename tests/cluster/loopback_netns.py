"""A private network namespace whose only interface is loopback, for the tests that start real daemons
(Ray, Slurm): they cannot be reached from, or reach, anything but 127.0.0.1 there, and their ports
cannot collide with other tests'. Shared by the cluster tests (imported with tests/cluster on sys.path)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# `ip link set lo up` without iproute2: SIOCGIFFLAGS / SIOCSIFFLAGS with IFF_UP. With an argument, also
# SIOCSIFADDR of that address on the alias lo:1 (still the loopback interface).
LOOPBACK_UP = """
import fcntl, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))
for addr in sys.argv[1:]:
    fcntl.ioctl(s, 0x8916, struct.pack("16sH2s4s8s", b"lo:1", socket.AF_INET, bytes(2), socket.inet_aton(addr),
                                       bytes(8)))
"""


def listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets listening in the network namespace of `pid` (/proc/PID/net/tcp{,6})."""
    return set(listening_inodes(pid))


def listening_inodes(pid: int) -> dict[tuple[str, int], int]:
    """(address, port) -> socket inode, of the TCP sockets listening in the namespace of `pid`."""
    found = {}
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            hex_addr, hex_port = fields[1].rsplit(":", 1)
            raw = bytes.fromhex(hex_addr)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found[(socket.inet_ntop(family, raw), int(hex_port, 16))] = int(fields[9])
    return found


def socket_owners(pids: list[int]) -> dict[int, int]:
    """socket inode -> pid of a process (among `pids`) holding it."""
    owners = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    owners[int(link[8:-1])] = pid
        except OSError:
            pass
    return owners


def listening_ports(pid: int) -> set[int]:
    return {port for _, port in listening(pid)}


def netns_pids(netns: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "net") == netns:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def alive(pid: int) -> bool:
    """Running, not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()[:200].replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"


class Netns:
    """A network namespace with only loopback, kept alive by a `sleep` process (holder None: not possible here).

    `extra_addresses`: more IPv4 addresses on lo. glibc's getaddrinfo(AF_INET, AI_ADDRCONFIG), which Slurm
    uses even for "127.0.0.1", finds nothing while 127.0.0.1 is the only IPv4 address of the host;
    a second loopback address (127.0.0.2) makes it resolve, and nothing but lo exists still."""

    def __init__(self, lifetime_s: float, extra_addresses: tuple[str, ...] = ()):
        self.holder = None
        self.prefix: list[str] = []
        self.netns = ""
        for unshare, enter in ((["--net"], ["--net"]),
                               (["--user", "--map-root-user", "--net"], ["--user", "--net", "--preserve-credentials"])):
            holder = subprocess.Popen(["unshare", *unshare, "--", "sleep", str(int(lifetime_s))],
                                      start_new_session=True, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            prefix = ["nsenter", f"--target={holder.pid}", *enter, "--"]
            up = holder.poll() is None and subprocess.run(
                [*prefix, sys.executable, "-c", LOOPBACK_UP, *extra_addresses], capture_output=True,
                timeout=30).returncode == 0
            if up:
                self.holder, self.prefix = holder, prefix
                self.netns = os.readlink(f"/proc/{holder.pid}/ns/net")
                return
            holder.kill()
            holder.wait()

    def interfaces(self) -> list[str]:
        dev = Path(f"/proc/{self.holder.pid}/net/dev").read_text().splitlines()[2:]
        return [line.split(":")[0].strip() for line in dev]

    def processes(self) -> list[int]:
        return [pid for pid in netns_pids(self.netns) if pid != self.holder.pid]

    def survivors(self) -> list[int]:
        return [pid for pid in self.processes() if alive(pid)]

    def close(self):
        if self.holder is None:
            return
        for pid in self.processes():  # whatever the test's own stop left behind (nothing, when it works)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.holder.kill()
        self.holder.wait()
