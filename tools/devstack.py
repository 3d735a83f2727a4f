"""`make run`: the whole stack on one machine without Docker, stopped cleanly on Ctrl-C."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from services.common.auth import token_entry
from services.common.kafka.admin import ensure_topics
from services.common.settings import QunyunConfig, Settings, Source, write_config
from tools.localstack import port_open, start_redis, start_tansu, stop
from tools.stack import SERVICES, start_service, wait_ready

VAR = Path("var")


def dev_config(path: Path, token_path: Path) -> str:
    """Write a dev config (a generic source, an all-groups token) once; return the token."""
    if path.exists() and token_path.exists():
        return token_path.read_text().strip()
    token = "qy_dev_" + secrets.token_urlsafe(24)
    config = QunyunConfig(
        sources=[Source(id="dev", platform="generic", secret=secrets.token_hex(16))],
        tokens=[token_entry("dev", token, ["*"], ["read", "write"])],
    )
    write_config(path, config, comment="Development config written by `make run`; edit freely.")
    token_path.touch(mode=0o600, exist_ok=True)
    token_path.chmod(0o600)
    token_path.write_text(token + "\n")
    return token


def _redis_reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def main() -> int:
    """Start the broker, Redis, and the four services; stop what was started on exit."""
    VAR.mkdir(exist_ok=True)
    started: list[subprocess.Popen[bytes]] = []
    env = dict(os.environ)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if "KAFKA_BOOTSTRAP_SERVERS" not in env:
            env["KAFKA_BOOTSTRAP_SERVERS"] = "127.0.0.1:9092"
            if port_open(9092):
                print("broker: something already listens on 127.0.0.1:9092, using it")
            else:
                print("broker: starting Tansu on 127.0.0.1:9092 (in-memory)")
                started.append(start_tansu(9092, VAR / "broker.log"))
        if "REDIS_URL" not in env:
            env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
            if not _redis_reachable(env["REDIS_URL"]):
                print("redis: starting redis-server on 127.0.0.1:6379")
                started.append(start_redis(6379, VAR / "redis.log"))
        env.setdefault("DATABASE_URL", f"sqlite:///{(VAR / 'qunyun.db').resolve()}")
        if "QUNYUN_CONFIG" not in env:
            env["QUNYUN_CONFIG"] = str((VAR / "dev-config.toml").resolve())
            token = dev_config(VAR / "dev-config.toml", VAR / "dev-token")
        else:
            token = "(see your QUNYUN_CONFIG)"
        os.environ.update(env)
        settings = Settings()
        ensure_topics(settings)
        for name, port in SERVICES.items():
            if port_open(port):
                raise SystemExit(f"port {port} for {name} is taken: stop what runs there first")
            started.append(start_service(name, port, env, VAR / f"{name}.log"))
        pending = wait_ready(SERVICES, 90, should_stop=lambda: stopping)
        if pending and not stopping:
            print(f"not ready after 90 s: {', '.join(pending)} (see var/<service>.log)")
        print()
        for name, port in SERVICES.items():
            print(f"  {name:<11} http://127.0.0.1:{port}   docs: http://127.0.0.1:{port}/docs")
        print(f"\n  broker      {env['KAFKA_BOOTSTRAP_SERVERS']}\n  redis       {env['REDIS_URL']}")
        print(f"  database    {env['DATABASE_URL']}\n  config      {env['QUNYUN_CONFIG']}")
        print(f"\n  API token:  {token}")
        print(
            f'  try: curl -H "Authorization: Bearer {token}" '
            "http://127.0.0.1:8002/v1/groups/demo/active\n"
        )
        print("Ctrl-C stops everything started here. Logs: var/*.log", flush=True)
        while not stopping:
            for proc in started:
                if proc.poll() is not None:
                    print(f"a process exited ({proc.args!r}); stopping", flush=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping…", flush=True)
        for proc in reversed(started):
            stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
