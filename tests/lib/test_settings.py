"""Every setting of library.md 6.2 (and master-api.md 11) with its default, and the
lookup order of 6.1."""

from __future__ import annotations

import json
import os
import pickle
import socket

import pytest

from disco.settings import DiscoSettings, guess_settings, job_owner

HOME = "/srv/disco-home"
ROOT = HOME + "/root"

DEFAULTS = {
    "DISCO_HOME": HOME,
    "DISCO_ROOT": ROOT,
    "DISCO_DATA": ROOT + "/data",
    "DISCO_MASTER_HOME": HOME + "/master",
    "DISCO_MASTER_ROOT": ROOT + "/data/_disco_8989",
    "DISCO_MASTER_CONFIG": ROOT + "/disco_8989.config",
    "DISCO_MASTER_HOST": "127.0.0.1",  # 0.5: socket.gethostname() (docs/decisions.md)
    "DISCO_MASTER": "http://127.0.0.1:8989",
    "DISCO_PORT": 8989,
    "DISCO_NAME": "disco_8989",
    "DISCO_LOG_DIR": ROOT + "/log",
    "DISCO_PID_DIR": ROOT + "/run",
    "DISCO_WWW_ROOT": HOME + "/master/www",
    "DISCO_DEBUG": "off",
    "DISCO_ERLANG": "erl",
    "DISCO_EVENTS": "",
    "DISCO_FLAGS": "",
    "DISCO_HTTPD": "lighttpd -f $DISCO_PROXY_CONFIG",
    "DISCO_ROTATE_LOG": False,
    "DISCO_USER": "alice",
    "DISCO_WORKER_MAX_MEM": "80%",
    "DISCO_ULIMIT": 16000000,
    "DISCO_GC_AFTER": 100 * 365 * 24 * 60 * 60,
    "DATA_GC_INTERVAL": 12,
    "DISCO_PROFILE": "False",
    "GRAPHITE_HOST": "localhost",
    "SYSTEMD_ENABLED": False,
    "DISCO_PROXY_ENABLED": "",
    "DISCO_PROXY": "",
    "DISCO_PROXY_PORT": 8999,
    "DISCO_PROXY_PID": ROOT + "/disco_8989-proxy.pid",
    "DISCO_PROXY_CONFIG": ROOT + "/disco_8989-proxy.conf",
    "DISCO_SCHEDULER": "fair",
    "DISCO_SCHEDULER_ALPHA": 0.001,
    "DISCO_AUTH_TOKEN": "",  # not in 0.5 (docs/security.md)
    "DISCO_AUTH_READS": "",
    "DISCO_TEST_DISCODB": "",
    "DISCO_TEST_HOST": socket.gethostname(),
    "DISCO_TEST_PORT": 9444,
    "DISCO_TEST_PROFILE": "",
    "DISCO_TEST_PURGE": "purge",
    "DDFS_ROOT": ROOT + "/ddfs",
    "DDFS_DATA": ROOT + "/ddfs",
    "DDFS_PUT_PORT": 8990,
    "DDFS_PUT_MAX": 3,
    "DDFS_GET_MAX": 3,
    "DDFS_READ_TOKEN": None,
    "DDFS_WRITE_TOKEN": None,
    "DDFS_TAG_MIN_REPLICAS": 1,
    "DDFS_TAG_REPLICAS": 1,
    "DDFS_BLOB_REPLICAS": 1,
    "DDFS_PARANOID_DELETE": "",
    "DDFS_GC_INITIAL_WAIT": "",
    "DDFS_GC_BALANCE_THRESHOLD": 0.1,
    "DDFS_SPACE_AWARE": "",
    "DDFS_ABSOLUTE_SPACE": "",
}


def settings(**environ: str) -> DiscoSettings:
    base = {"DISCO_HOME": HOME, "DISCO_SETTINGS_FILE": "", "LOGNAME": "alice"}
    return DiscoSettings(environ={**base, **environ})


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_default(name: str, monkeypatch) -> None:
    monkeypatch.setenv("LOGNAME", "alice")
    assert settings()[name] == DEFAULTS[name]


def test_every_documented_setting_has_a_default() -> None:
    assert set(DEFAULTS) <= set(DiscoSettings.defaults)
    assert (
        "DISCO_JOB_OWNER" in DiscoSettings.defaults
        and "DISCO_SETTINGS_FILE" in DiscoSettings.defaults
    )


def test_job_owner_and_settings_file_guess() -> None:
    assert settings()["DISCO_JOB_OWNER"] == job_owner()
    assert "@" in job_owner()
    guessed = guess_settings()
    assert guessed in ("", os.path.expanduser("~/.disco"), "/etc/disco/settings.py")


def test_defaults_follow_other_settings() -> None:
    s = settings(DISCO_PORT="7000", DISCO_MASTER_HOST="m1", DISCO_ROOT="/r")
    assert s["DISCO_NAME"] == "disco_7000"
    assert s["DISCO_MASTER"] == "http://m1:7000"
    assert s["DISCO_MASTER_ROOT"] == "/r/data/_disco_7000"
    assert s["DISCO_MASTER_CONFIG"] == "/r/disco_7000.config"
    assert s["DDFS_DATA"] == "/r/ddfs"


def test_lookup_order_instance_environment_file_default(tmp_path) -> None:
    path = tmp_path / "settings.py"
    path.write_text("DISCO_PORT = 7001\nDISCO_EVENTS = 'json'\nDISCO_FLAGS = 'nocurl'\n")
    s = DiscoSettings(
        DISCO_FLAGS="explicit",
        environ={"DISCO_HOME": HOME, "DISCO_SETTINGS_FILE": str(path), "DISCO_EVENTS": "env"},
    )
    assert s["DISCO_FLAGS"] == "explicit"  # 1. the instance
    assert s["DISCO_EVENTS"] == "env"  # 2. the environment (a string)
    assert s["DISCO_PORT"] == 7001  # 3. the settings file
    assert s["DISCO_NAME"] == "disco_7001"  # 4. defaults see the file's value
    assert s["DISCO_TEST_PORT"] == 9444


def test_pickled_settings_keep_their_values_and_ensuredirs(tmp_path) -> None:
    s = settings(DISCO_ROOT=str(tmp_path / "root"), DISCO_MASTER_HOME=str(tmp_path / "mh"))
    copy = pickle.loads(pickle.dumps(s))
    assert copy["DISCO_DATA"] == s["DISCO_DATA"] and copy["DISCO_PORT"] == 8989
    s.ensuredirs()
    for key in s.must_exist:
        assert os.path.isdir(s[key]), key
    with open(s["DISCO_MASTER_CONFIG"]) as f:
        assert json.load(f) == [["localhost", str(os.cpu_count() or 1)]]
    assert s.env["DISCO_PORT"] == "8989"


def test_default_expressions_are_compiled_once_and_still_follow_their_class() -> None:
    """Each default expression is compiled once per process (``_COMPILED``), not at every
    lookup; a subclass's own default for a key is what it resolves, and defaults still
    see the other settings of the instance they are looked up in."""
    from disco import settings as settings_module

    class Custom(DiscoSettings):
        defaults = {**DiscoSettings.defaults, "DISCO_NAME": "'custom_%d' % DISCO_PORT"}

    first = settings(DISCO_PORT="7000")["DISCO_NAME"]
    code = settings_module._COMPILED[DiscoSettings.defaults["DISCO_NAME"]]
    assert settings(DISCO_PORT="7001")["DISCO_NAME"] == "disco_7001" and first == "disco_7000"
    assert settings_module._COMPILED[DiscoSettings.defaults["DISCO_NAME"]] is code  # reused
    custom = Custom(DISCO_PORT=7002, environ={"DISCO_HOME": HOME})
    assert custom["DISCO_NAME"] == "custom_7002"
    assert settings(DISCO_PORT="7003")["DISCO_NAME"] == "disco_7003"
