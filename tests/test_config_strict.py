"""A configuration key the platform does not know is refused with its file and line, at every level."""

import pytest

from computenet.config import load_settings

FILE = """\
default_cluster = "b"
typo_option = 1
[server]
port = 9000
prot = 9001

[[clusters]]
name = "a"
kind = "local"

[[clusters]]
name = "b"
kind = "local"
slot = 7
prices = { "*" = { core_hour = 0.05, gpu_hours = 1 } }

[routing]
policyy = "cheapest"
[auth.ldap]
url = "ldap://x"
bind_dnn = "cn=x"
"""


def test_unknown_keys_are_named_with_their_line(tmp_path, monkeypatch):
    for key in [k for k in __import__("os").environ if k.startswith("COMPUTENET_")]:
        monkeypatch.delenv(key)
    config = tmp_path / "config.toml"
    config.write_text(FILE)
    with pytest.raises(SystemExit) as stop:
        load_settings(config)
    lines = str(stop.value).splitlines()
    said = {line.rsplit(": unknown key ", 1)[1].strip("'"): line.split(": unknown key")[0] for line in lines}
    where = {key: place.rsplit(" line ", 1)[1] if " line " in place else None for key, place in said.items()}
    assert where == {"typo_option": "2", "server.prot": "5", "clusters.1.slot": "14",
                     "clusters.1.prices.*.gpu_hours": "15", "routing.policyy": "18", "auth.ldap.bind_dnn": "21"}
    assert all(str(config) in line for line in lines)


def test_a_good_file_still_loads(tmp_path, monkeypatch):
    for key in [k for k in __import__("os").environ if k.startswith("COMPUTENET_")]:
        monkeypatch.delenv(key)
    config = tmp_path / "config.toml"
    config.write_text('[[clusters]]\nname = "a"\nkind = "local"\nslots = 2\n')
    assert load_settings(config).clusters[0].slots == 2
