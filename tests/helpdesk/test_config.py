"""Configuration: defaults -> instance file -> HELPDESK_* environment; generated secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpdesk import create_app


def test_environment_overrides_instance_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = tmp_path / "inst"
    inst.mkdir()
    (inst / "helpdesk.cfg").write_text('QUEUE_PAGE_SIZE = 20\nMAIL_FROM = "file@example.com"\n')
    monkeypatch.setenv("HELPDESK_INSTANCE_PATH", str(inst))
    monkeypatch.setenv("HELPDESK_QUEUE_PAGE_SIZE", "30")
    monkeypatch.setenv("HELPDESK_WORKER_ENABLED", "false")
    app = create_app()
    assert app.instance_path == str(inst)
    assert app.config["QUEUE_PAGE_SIZE"] == 30
    assert app.config["WORKER_ENABLED"] is False
    assert app.config["MAIL_FROM"] == "file@example.com"
    assert app.config["DATABASE_URL"] == f"sqlite:///{inst / 'helpdesk.sqlite3'}"


def test_data_dir_moves_index_and_attachments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path / "data"))
    app = create_app({"INSTANCE_PATH": str(tmp_path / "inst")})
    assert app.config["ATTACHMENTS_DIR"] == str(tmp_path / "data" / "attachments")
    assert app.config["INDEX_DIR"] == str(tmp_path / "data" / "index")


def test_secret_key_is_generated_once_and_kept_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HELPDESK_SECRET_KEY", raising=False)
    first = create_app({"INSTANCE_PATH": str(tmp_path)}).config["SECRET_KEY"]
    second = create_app({"INSTANCE_PATH": str(tmp_path)}).config["SECRET_KEY"]
    assert first == second and len(first) >= 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    monkeypatch.setenv("HELPDESK_SECRET_KEY", "from-env")
    assert create_app({"INSTANCE_PATH": str(tmp_path)}).config["SECRET_KEY"] == "from-env"
