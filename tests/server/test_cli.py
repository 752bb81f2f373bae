"""The ``diemcau`` command line: users and points commands, in-process and as a real subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result

from server.cli import main
from server.config import load_config
from server.services import Services
from tests.conftest import REPO

DATA = Path(__file__).resolve().parent.parent / "data"
T = TypeVar("T")
BAD_CSV = ("code,name,level,parent\n"
           "08,UBND tỉnh Tuyên Quang,province,\n"
           "070,UBND thành phố Tuyên Quang,thành phố,08\n"  # 3: ambiguous level
           "075,,district,08\n"  # 4: empty name
           "02437,UBND xã Thắng Quân,commune,08\n"  # 5: commune under a province
           "02437,UBND xã Thắng Quân (lặp),commune,075\n")  # 6: duplicate


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("DIEMCAU_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no ./config.yaml here: built-in defaults
    return tmp_path / "data"


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def with_services(data_dir: Path, func: Callable[[Services], Awaitable[T]]) -> T:
    async def go() -> T:
        services = await Services.start(load_config(None, env={}, overrides={"server.data_dir": str(data_dir)}))
        try:
            return await func(services)
        finally:
            await services.close()

    return asyncio.run(go())


def test_users_create_with_password_stdin(data_dir: Path) -> None:
    result = run("users", "create", "--data-dir", str(data_dir), "--username", "ChuTri", "--role", "chair",
                 "--display-name", "Phạm Minh Quang", "--password-stdin", input="mat-khau-chu-tri\n")
    assert result.exit_code == 0, result.output
    assert "created chair chutri" in result.stdout

    async def check(services: Services) -> Any:
        return await services.accounts.authenticate("chutri", "mat-khau-chu-tri")

    user = with_services(data_dir, check)
    assert user.display_name == "Phạm Minh Quang"
    listed = run("users", "list", "--data-dir", str(data_dir))
    assert "chutri" in listed.stdout and "chair" in listed.stdout and "Phạm Minh Quang" in listed.stdout


def test_users_create_errors(data_dir: Path) -> None:
    args = ["users", "create", "--data-dir", str(data_dir), "--username", "thuky", "--password-stdin"]
    bad_role = run(*args, "--role", "king", input="mat-khau-thu-ky\n")
    assert bad_role.exit_code == 2 and "king" in bad_role.output
    empty = run(*args, "--role", "secretary", input="")
    assert empty.exit_code == 2 and "no password" in empty.output
    short = run(*args, "--role", "secretary", input="ngan\n")
    assert short.exit_code == 1 and "[weak_password]" in short.output
    assert run(*args, "--role", "secretary", input="mat-khau-thu-ky\n").exit_code == 0
    again = run(*args, "--role", "secretary", input="mat-khau-thu-ky\n")
    assert again.exit_code == 1 and "[username_taken]" in again.output
    no_point = run("users", "create", "--data-dir", str(data_dir), "--username", "daibieu", "--role", "delegate",
                   "--point", "nope", "--password-stdin", input="mat-khau-dai-bieu\n")
    assert no_point.exit_code == 1 and "[point_not_found]" in no_point.output


def test_users_set_password(data_dir: Path) -> None:
    run("users", "create", "--data-dir", str(data_dir), "--username", "quantri", "--role", "admin",
        "--password-stdin", input="mat-khau-quan-tri\n")
    result = run("users", "set-password", "--data-dir", str(data_dir), "--username", "quantri", "--password-stdin",
                 input="mat-khau-moi-2026\n")
    assert result.exit_code == 0, result.output

    async def check(services: Services) -> Any:
        return await services.accounts.authenticate("quantri", "mat-khau-moi-2026")

    assert with_services(data_dir, check).username == "quantri"
    missing = run("users", "set-password", "--data-dir", str(data_dir), "--username", "ghost", "--password-stdin",
                  input="mat-khau-moi-2026\n")
    assert missing.exit_code == 1 and "[user_not_found]" in missing.output


def test_points_import_csv_and_yaml_then_list_and_token(data_dir: Path) -> None:
    result = run("points", "import", "--data-dir", str(data_dir), str(DATA / "points_sample.csv"))
    assert result.exit_code == 0, result.output
    assert "imported 15 new and 0 updated" in result.stdout
    result = run("points", "import", "--data-dir", str(data_dir), str(DATA / "points_sample.yaml"))
    assert "imported 13 new and 0 updated" in result.stdout
    result = run("points", "import", "--data-dir", str(data_dir), "--update", str(DATA / "points_sample.csv"))
    assert "imported 0 new and 15 updated" in result.stdout
    tree = run("points", "list", "--data-dir", str(data_dir)).stdout.splitlines()
    assert "92  UBND thành phố Cần Thơ  (province)" in tree
    assert "    31300  UBND xã Nhơn Ái  (commune)" in tree
    token = run("points", "token", "--data-dir", str(data_dir), "--label", "PC hội trường", "31300")
    assert token.exit_code == 0 and token.stdout.strip().startswith("dcp_")
    missing = run("points", "token", "--data-dir", str(data_dir), "99999")
    assert missing.exit_code == 1 and "[point_not_found]" in missing.output


def test_points_import_rejected_prints_every_row(data_dir: Path, tmp_path: Path) -> None:
    run("points", "import", "--data-dir", str(data_dir), str(DATA / "points_sample.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_CSV, encoding="utf-8")
    result = run("points", "import", "--data-dir", str(data_dir), str(bad))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert "import rejected, nothing was imported (5 problem(s))" in lines[0]
    # row 6 has two problems: a duplicate code, and a parent (075) that is neither in the file nor registered
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["row 3", "row 4", "row 5", "row 6", "row 6"]
    assert "ambiguous" in lines[1] and "name is empty" in lines[2]
    assert result.stdout == ""

    async def count(services: Services) -> int:
        return len(await services.registry.list())

    assert with_services(data_dir, count) == 15  # nothing from the bad file


def test_points_import_unsupported_and_missing_files(data_dir: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "points.xlsx"
    sheet.write_bytes(b"PK\x03\x04")
    result = run("points", "import", "--data-dir", str(data_dir), str(sheet))
    assert result.exit_code == 1 and "[unsupported_format]" in result.output
    result = run("points", "import", "--data-dir", str(data_dir), str(tmp_path / "nope.csv"))
    assert result.exit_code == 2


@pytest.mark.slow
def test_real_subprocess_points_import(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIEMCAU_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    data_dir = tmp_path / "data"
    cmd = [sys.executable, "-m", "server", "points", "import", "--data-dir", str(data_dir)]
    ok = subprocess.run([*cmd, str(DATA / "points_sample.yaml")], cwd=tmp_path, env=env, capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "imported 13 new" in ok.stdout
    assert (data_dir / "diemcau.sqlite3").exists()
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_CSV.replace("08,UBND tỉnh Tuyên Quang", "22,Trùng mã Quảng Ninh"), encoding="utf-8")
    rejected = subprocess.run([*cmd, str(bad)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert rejected.returncode == 1
    assert "row 2: code '22' is already registered" in rejected.stderr
    assert sum(line.startswith("  row ") for line in rejected.stderr.splitlines()) == 6
