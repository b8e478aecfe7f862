"""Where a device's data lives: one function for the agent and iotctl, never the working
directory (a new folder there meant a new device identity)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from iotctl import settings as iotctl_settings
from iotistic_agent.device_api.auth import key_path
from iotistic_agent.settings import AgentSettings
from iotistic_device_paths import database_path, default_data_dir


def test_root_keeps_its_data_in_var_lib() -> None:
    env = {"HOME": "/root", "XDG_DATA_HOME": "/root/.xdg"}
    assert default_data_dir(env, as_root=True) == Path("/var/lib/iotistic")
    assert database_path(env, as_root=True) == Path("/var/lib/iotistic/device.sqlite")


def test_a_user_keeps_it_in_the_xdg_data_directory() -> None:
    env = {"HOME": "/home/pi", "XDG_DATA_HOME": "/data/pi"}
    assert default_data_dir(env, as_root=False) == Path("/data/pi/iotistic")


@pytest.mark.parametrize("xdg", ["", "  ", "relative/share"])
def test_without_a_usable_xdg_data_home_it_is_under_local_share(xdg: str) -> None:
    # The XDG specification: an unset, empty or relative XDG_DATA_HOME means the default.
    env = {"HOME": "/home/pi", "XDG_DATA_HOME": xdg}
    assert default_data_dir(env, as_root=False) == Path("/home/pi/.local/share/iotistic")


def test_database_path_wins_and_a_relative_one_is_taken_from_the_working_directory(
    tmp_path: Path,
) -> None:
    assert database_path({"DATABASE_PATH": "/srv/iot/db.sqlite"}) == Path("/srv/iot/db.sqlite")
    assert database_path({"DATABASE_PATH": "rel/db.sqlite"}, cwd=tmp_path) == (
        tmp_path / "rel" / "db.sqlite"
    )
    home = {"HOME": str(tmp_path)}
    assert database_path({"DATABASE_PATH": "~/db.sqlite", **home}) == tmp_path / "db.sqlite"
    assert database_path({"DATABASE_PATH": "~nobody-here/db.sqlite"}, cwd=tmp_path) == (
        tmp_path / "~nobody-here" / "db.sqlite"
    )
    assert database_path({"DATABASE_PATH": " "}, as_root=True) == Path(
        "/var/lib/iotistic/device.sqlite"
    )


def test_the_agent_no_longer_depends_on_the_folder_it_starts_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"HOME": str(tmp_path / "home")}
    found = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        found.append(AgentSettings.from_env(env).DATABASE_PATH)
    assert found[0] == found[1] == database_path(env)
    assert not found[0].is_relative_to(tmp_path / "a")


names = st.text(st.sampled_from("abc/._~ "), max_size=12)


@given(
    database=st.one_of(st.none(), names),
    xdg=st.one_of(st.none(), names, names.map(lambda n: "/x/" + n)),
)
def test_iotctl_looks_for_the_key_where_the_agent_writes_it(
    database: str | None, xdg: str | None
) -> None:
    env = {"HOME": "/home/pi"}
    if database is not None:
        env["DATABASE_PATH"] = database
    if xdg is not None:
        env["XDG_DATA_HOME"] = xdg
    try:
        agent = AgentSettings.from_env(env)
    except ValueError:
        return  # a DATABASE_PATH the agent refuses: nothing to find
    assert iotctl_settings.key_file(env) == key_path(agent.data_dir)
