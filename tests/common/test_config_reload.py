"""QUNYUN_CONFIG changes apply without a restart; a broken file keeps the running config."""

from __future__ import annotations

import os
import signal
import threading

from services.common.auth import token_entry
from services.common.settings import load_config, write_config
from services.moderation.app import create_app
from tests.support import auth, wait_until


def test_new_token_works_without_restart_and_broken_file_keeps_old(
    tmp_path, config_path, make_settings, run_app, tokens, unique
):
    path = tmp_path / "qunyun.toml"
    write_config(path, load_config(config_path))
    settings = make_settings(qunyun_config=str(path))
    group = unique("reload")
    newcomer = "qy_test_reloaded_" + unique("t")
    with run_app(create_app(settings)) as client:
        rules = f"/v1/groups/{group}/rules"
        assert client.get(rules, headers=auth(newcomer)).status_code == 401

        config = load_config(path)
        config.tokens.append(token_entry("reloaded", newcomer, [group], ["read"]))
        write_config(path, config)
        assert wait_until(
            lambda: client.get(rules, headers=auth(newcomer)).status_code == 200, timeout=10
        )

        path.write_text(path.read_text() + '\n[[tokens]]\nname = "broken"\nsha256 = "nope"\n')
        denied_for_a_while = not wait_until(
            lambda: client.get(rules, headers=auth(newcomer)).status_code != 200, timeout=3
        )
        assert denied_for_a_while, "a broken file must keep the running config"
        assert client.get(rules, headers=auth(tokens.admin)).status_code == 200
        metrics = client.get("/metrics").text
        assert 'qunyun_config_reloads_total{outcome="rejected"}' in metrics


def test_sighup_reloads_at_once(tmp_path, config_path, make_settings, run_app, unique):
    """SIGHUP asks for a reload even when the file's stamp did not change (main thread only)."""
    from services.common.config_reload import ConfigReloader, reload_on_sighup

    path = tmp_path / "qunyun.toml"
    write_config(path, load_config(config_path))
    applied = threading.Event()
    reloader = ConfigReloader(str(path), lambda _: applied.set(), interval=60)
    restore = reload_on_sighup(reloader)
    reloader.start()
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        assert applied.wait(5)
    finally:
        reloader.stop()
        restore()
