"""scripts/setup_env.py: pip's settings handed to uv, or a named reason to use pip."""

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("setup_env", Path(__file__).parents[1] / "scripts" / "setup_env.py")
assert spec is not None and spec.loader is not None
setup_env = importlib.util.module_from_spec(spec)
spec.loader.exec_module(setup_env)


def test_pip_settings_become_uv_flags():
    settings = {
        "extra-index-url": "file:///a/simple file:///b/simple",
        "find-links": "/opt/wheels",
        "constraint": "/etc/cap.txt",
        "cert": "/etc/ca.crt",
        "default-timeout": "180",
        "index-url": "https://mirror/simple",
    }
    flags, env = setup_env.uv_flags(settings)
    pairs = list(zip(flags[::2], flags[1::2]))
    assert ("--extra-index-url", "file:///a/simple") in pairs and ("--extra-index-url", "file:///b/simple") in pairs
    assert ("--find-links", "/opt/wheels") in pairs and ("--constraint", "/etc/cap.txt") in pairs
    assert ("--index-url", "https://mirror/simple") in pairs
    assert ("--index-strategy", "unsafe-best-match") in pairs
    assert env == {"SSL_CERT_FILE": "/etc/ca.crt"}
    assert "180" not in flags


def test_a_setting_uv_cannot_take_falls_back_to_pip():
    why = setup_env.uv_flags({"only-binary": ":all:"})
    assert isinstance(why, str) and "only-binary" in why


def test_no_index_is_kept():
    flags, _ = setup_env.uv_flags({"no-index": "true", "find-links": "/w"})
    assert "--no-index" in flags
