"""Run the double: in a thread on a free port (tests), or in the foreground (`make demo`).

python -m tools.platform_double [--port 8090] [--strict]
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from dataclasses import dataclass
from typing import get_args

import uvicorn

from tools.platform_double.app import build_app
from tools.platform_double.state import DoubleConfig, DoubleState, OneBotFlavour


@dataclass
class DoubleHandle:
    """A running double: where it listens, its state, and how to stop it."""

    base_url: str
    state: DoubleState
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def onebot_url(self) -> str:
        """The `api_url` of the double's OneBot implementation."""
        return self.base_url + "/onebot"

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_double(
    config: DoubleConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> DoubleHandle:
    """Start the double in a daemon thread (port 0: a free one) and return once it listens."""
    state = DoubleState(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(
        uvicorn.Config(build_app(state), log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="platform-double", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the platform double did not start")
        time.sleep(0.01)
    bound = sock.getsockname()[1]
    return DoubleHandle(f"http://{host}:{bound}", state, server, thread)


def main() -> None:
    """Serve the double in the foreground until interrupted."""
    parser = argparse.ArgumentParser(
        description="Platform double for Telegram, Slack, Feishu, OneBot, WeCom"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--strict", action="store_true", help="answer not-found for unseen targets")
    parser.add_argument(
        "--onebot-flavour",
        choices=get_args(OneBotFlavour),
        default="spec",
        help="answer a refused token or a missing action as this OneBot implementation does",
    )
    args = parser.parse_args()
    state = DoubleState(DoubleConfig(strict=args.strict, onebot_flavour=args.onebot_flavour))
    print(f"platform double on http://{args.host}:{args.port}/ (admin API under /_double)")
    uvicorn.run(build_app(state), host=args.host, port=args.port, log_level="warning")
