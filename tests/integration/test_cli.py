"""The ``xiaowu`` command line, run as a real process."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from server.catalogue_loader import load_kiosk_config
from server.citizen_tokens import TokenPolicy, verify
from server.settings import DEFAULT_CONFIG_DIR

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, data_dir: Path, check: bool = True,
        config_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "server", *args, "--data-dir", str(data_dir)]
    if config_dir is not None:
        cmd += ["--config-dir", str(config_dir)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIAOWU_")}
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_config_check_reports_the_demo_catalogue(tmp_path: Path) -> None:
    out = run("config", "check", data_dir=tmp_path).stdout
    assert re.search(r"ok: 21 huts, \d+ matters", out)


def test_a_bad_config_file_stops_with_one_message_naming_file_and_key(tmp_path: Path) -> None:
    broken = tmp_path / "kiosk_config"
    shutil.copytree(DEFAULT_CONFIG_DIR, broken)
    huts = broken / "huts.toml"
    huts.write_text(huts.read_text().replace('level = "county"', 'level = "province"', 1))
    result = run("config", "check", data_dir=tmp_path, config_dir=broken, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "huts.toml" in lines[0]
    assert re.search(r"hut\[\d+\]\.level", lines[0])


def test_kiosk_provision_prints_a_one_time_code_and_url(tmp_path: Path) -> None:
    unknown = run("kiosk", "provision", "no-such-hut", data_dir=tmp_path, check=False)
    assert unknown.returncode == 1 and "unknown hut" in unknown.stderr
    out = run("kiosk", "provision", "dy-hall-01", data_dir=tmp_path).stdout
    assert re.search(r"/kiosk/\?provision=[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", out)


def test_citizen_token_is_signed_with_the_data_dirs_key(tmp_path: Path) -> None:
    out = run("citizen-token", "--sub", "wx-1", "--name", "付宇航", data_dir=tmp_path).stdout
    token = out.splitlines()[0]
    key = (tmp_path / "citizen-token.key").read_text().strip()
    principal = verify(TokenPolicy(key, "xiaowu-citizen", 86400), token)
    assert principal.subject == "citizen:wx-1"


def test_clerk_add_validates_against_the_catalogue(tmp_path: Path) -> None:
    config = load_kiosk_config(DEFAULT_CONFIG_DIR)
    dept = config.departments[0].code
    bad = run("clerk", "add", "lihua", "--name", "李华", "--department", dept,
              "--skills", "no-such-skill", data_dir=tmp_path, check=False)
    assert bad.returncode == 1 and "invalid_clerk" in bad.stderr
    good = run("clerk", "add", "lihua", "--name", "李华", "--department", dept,
               "--skills", config.matters[0].code, "--jurisdictions", "370500",
               data_dir=tmp_path)
    assert re.search(r"one-time password for lihua: \S{14}", good.stdout)
    again = run("clerk", "add", "lihua", "--name", "李华", "--department", dept,
                data_dir=tmp_path, check=False)
    assert again.returncode == 1 and "username_taken" in again.stderr
    reset = run("clerk", "passwd", "lihua", data_dir=tmp_path)
    assert "one-time password for lihua" in reset.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_serve_demo_comes_up_prints_accounts_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIAOWU_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--demo", "--port", str(port),
         "--data-dir", str(tmp_path)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = _get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                time.sleep(0.2)
        assert status == 200
        assert _get(f"http://127.0.0.1:{port}/readyz") == 200
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert re.search(r"clerk\s+wangli\s+\S{14}", output)
    assert re.search(r"supervisor\s+zhangzhuren\s+\S{14}", output)
    assert "/kiosk/?provision=" in output
    assert "/m/?t=" in output
