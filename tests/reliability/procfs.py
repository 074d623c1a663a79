"""What a process holds, read from Linux's ``/proc``: resident memory, open file
descriptors, its TCP connections, its child processes, and which process owns the
server end of a given connection."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "TcpSocket",
    "children",
    "connections",
    "established_by_peer",
    "fd_count",
    "owner_of_connection",
    "rss_bytes",
    "socket_inodes",
]

#: ``st`` of an established connection in ``/proc/net/tcp``.
ESTABLISHED = "01"


@dataclass(frozen=True)
class TcpSocket:
    local_port: int
    remote_port: int
    state: str
    inode: int

    @property
    def established(self) -> bool:
        return self.state == ESTABLISHED


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


#: A SQLite database's own files: the connection pool keeps up to its size of them open,
#: so their count follows how many sessions overlapped, not a leak.
_DATABASE_FILES = (".db", ".db-wal", ".db-shm", ".db-journal")


def fd_count(pid: int) -> int:
    """Open file descriptors of ``pid``, but for its SQLite database's pooled files."""
    directory = f"/proc/{pid}/fd"
    count = 0
    for name in os.listdir(directory):
        try:
            target = os.readlink(f"{directory}/{name}")
        except OSError:  # closed in between
            continue
        count += not target.endswith(_DATABASE_FILES)
    return count


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets ``pid`` has open."""
    inodes = set()
    directory = f"/proc/{pid}/fd"
    for name in os.listdir(directory):
        try:
            target = os.readlink(f"{directory}/{name}")
        except OSError:  # closed in between
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def connections() -> list[TcpSocket]:
    """Every TCP socket of this network namespace (IPv4 and IPv6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            found.append(TcpSocket(_port(fields[1]), _port(fields[2]), fields[3], int(fields[9])))
    return found


def established_by_peer(pid: int, *, server_port: int) -> Counter[str]:
    """``pid``'s established connections by kind: ``inbound`` (clients of
    ``server_port``) and ``to:PORT`` for each outbound peer port."""
    mine = socket_inodes(pid)
    kinds: Counter[str] = Counter()
    for sock in connections():
        if sock.inode in mine and sock.established:
            kind = "inbound" if sock.local_port == server_port else f"to:{sock.remote_port}"
            kinds[kind] += 1
    return kinds


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces; the parent pid follows the ")".
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.append(int(entry))
    return sorted(found)


def owner_of_connection(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the server end of the connection from ``client_port``
    (``None`` while no process has accepted it yet)."""
    inode = next(
        (
            sock.inode
            for sock in connections()
            if sock.local_port == server_port and sock.remote_port == client_port and sock.inode
        ),
        None,
    )
    if inode is None:
        return None
    for pid in pids:
        try:
            if inode in socket_inodes(pid):
                return pid
        except OSError:
            continue
    return None
