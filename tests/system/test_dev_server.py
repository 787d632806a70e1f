"""`make run`'s command starts a working hotline on the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select

from hotline.models import District, School
from tests.support.services import free_port


def test_dev_command_serves_a_healthy_hotline_with_the_sample_directory(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWILIO_", "HOTLINE_", "DATABASE_URL", "REDIS_URL", "SECRET_KEY"))
    }
    env.update(
        HOTLINE_INSTANCE_PATH=str(tmp_path / "instance"),
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
    )
    log = (tmp_path / "dev.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "hotline", "dev"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                body = r.json()
                if r.status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        else:
            pytest.fail(
                f"dev server never became healthy ({body}):\n"
                + (tmp_path / "dev.log").read_text(errors="replace")[-4000:]
            )
        assert body is not None
        assert body["ok"]
        assert (tmp_path / "instance" / "identity.key").exists()
        engine = create_engine(f"sqlite:///{tmp_path / 'instance' / 'hotline.sqlite3'}")
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(District)) >= 1
            assert conn.scalar(select(func.count()).select_from(School)) >= 4
        engine.dispose()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
