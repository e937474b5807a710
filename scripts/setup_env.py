"""Install requirements.txt and the package (editable) into the running interpreter's
environment: with uv when it can be used (a fresh .venv in about 30 s instead of about
2 min with pip on a 2-core machine), else with pip.

uv does not read pip's configuration, so pip's settings that choose packages (index URLs,
find-links, constraint files such as a machine's cap on torch, the certificate bundle)
are handed to it as flags. A pip setting this script cannot hand over, a failed install of
uv or a failed uv install falls back to pip. ``MAMLPRIV_INSTALLER=pip`` forces pip.

Usage (from the repository root): ``.venv/bin/python scripts/setup_env.py``
"""

from __future__ import annotations

import os
import subprocess
import sys

# pip settings that only change how pip talks or prints, not which packages it picks
HARMLESS = {
    "default-timeout",
    "timeout",
    "disable-pip-version-check",
    "quiet",
    "verbose",
    "progress-bar",
    "no-cache-dir",
    "cache-dir",
    "root-user-action",
    "no-color",
    "retries",
    "no-input",
    "break-system-packages",
}
REPEATED = {"extra-index-url": "--extra-index-url", "find-links": "--find-links", "constraint": "--constraint"}


def pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", *args]


def pip_settings() -> dict[str, str]:
    """pip's effective settings, ``{name: value}`` (files and PIP_* variables; the
    variables win, as in pip)."""
    out = subprocess.run(pip("config", "list"), capture_output=True, text=True, check=True).stdout
    files: dict[str, str] = {}
    env: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        section, _, name = key.rpartition(".")
        (env if section == ":env:" else files)[name] = value.strip().strip("'\"")
    return {**files, **env}


def uv_flags(settings: dict[str, str]) -> tuple[list[str], dict[str, str]] | str:
    """uv's flags and environment for pip's ``settings``, or why they cannot be handed over."""
    flags = ["--index-strategy", "unsafe-best-match"]  # pip weighs every index alike
    env: dict[str, str] = {}
    for name, value in settings.items():
        if name in HARMLESS:
            continue
        if name == "index-url":
            flags += ["--index-url", value]
        elif name in REPEATED:
            for v in value.split():
                flags += [REPEATED[name], v]
        elif name == "no-index" and value.lower() in ("1", "true", "yes", "on"):
            flags.append("--no-index")
        elif name == "cert":
            env["SSL_CERT_FILE"] = value
        else:
            return f"pip setting {name!r} has no uv counterpart here"
    return flags, env


def with_pip() -> None:
    subprocess.run(pip("install", "--upgrade", "--quiet", "pip"), check=True)
    subprocess.run(pip("install", "--quiet", "-r", "requirements.txt"), check=True)
    subprocess.run(pip("install", "--quiet", "--no-deps", "-e", "."), check=True)


def with_uv() -> str | None:
    """Install with uv; returns None on success, else why not."""
    translated = uv_flags(pip_settings())
    if isinstance(translated, str):
        return translated
    flags, env = translated
    if subprocess.run(pip("install", "--quiet", "uv")).returncode != 0:
        return "uv could not be installed"
    uv = [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--python", sys.executable, *flags]
    run_env = {**os.environ, **env}
    if subprocess.run([*uv, "-r", "requirements.txt"], env=run_env).returncode != 0:
        return "uv could not install requirements.txt"
    if subprocess.run([*uv, "--no-deps", "-e", "."], env=run_env).returncode != 0:
        return "uv could not install the package"
    return None


def main() -> None:
    if os.environ.get("MAMLPRIV_INSTALLER", "uv") != "pip":
        why = with_uv()
        if why is None:
            return
        print(f"setup: {why}; installing with pip instead", file=sys.stderr)
    with_pip()


if __name__ == "__main__":
    main()
