"""``requirements-lambda.lock``: pyproject.toml's runtime dependencies resolved
for what Lambda runs (CPython 3.13, arm64 manylinux; markers evaluated for it,
not for the build machine) by ``python -m infra.build_assets --lock`` (``make
lock``, uv), every package pinned with its hashes. Its first line is a digest of
the dependencies: :func:`lock_problems` (``make build`` and a test in ``make
test``) fails when one was edited and not the other."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements-lambda.lock"
# The resolver's target: what Lambda runs (python3.13 on arm64, Amazon Linux 2023, glibc 2.34).
LOCK_TARGET: tuple[str, ...] = ("--python-version", "3.13", "--python-platform", "aarch64-manylinux_2_28",
                                "--only-binary", ":all:")
LOCK_COMMAND: tuple[str, ...] = ("uv", "pip", "compile", "pyproject.toml", *LOCK_TARGET, "--generate-hashes",
                                 "--custom-compile-command", "make lock")
DIGEST_PREFIX = "# pyproject-dependencies-sha256: "
# Provided by the Lambda Python runtime: never shipped in the layer.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")



def runtime_dependencies() -> list[str]:
    """``[project].dependencies`` of ``pyproject.toml``: what the functions import at run time."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    deps: list[str] = data["project"]["dependencies"]
    return deps


def dependencies_digest(deps: Sequence[str]) -> str:
    return hashlib.sha256("\n".join([*LOCK_TARGET, *deps]).encode()).hexdigest()


def lock_entries(text: str) -> dict[str, tuple[str, str]]:
    """Canonical name -> (version, the entry's lines) of a ``--generate-hashes`` lock."""
    entries: dict[str, tuple[str, str]] = {}
    name, version, lines = "", "", []
    for line in [*text.splitlines(), ""]:
        if line.startswith((" ", "\t")) and name:
            lines.append(line)
            continue
        if name:
            entries[name] = (version, "\n".join(lines))
            name = ""
        match = _PIN.match(line)
        if match:
            name, version, lines = canonicalize_name(match.group(1)), match.group(2), [line]
    return entries


def lock_problems(deps: Sequence[str] | None = None, text: str | None = None) -> list[str]:
    """Why the lock does not match ``pyproject.toml`` (empty: it matches)."""
    deps = runtime_dependencies() if deps is None else deps
    text = LOCK.read_text(encoding="utf-8") if text is None else text
    problems = []
    if f"{DIGEST_PREFIX}{dependencies_digest(deps)}" not in text.splitlines():
        problems.append("pyproject.toml's dependencies changed since the lock was made: run `make lock`")
    entries = lock_entries(text)
    for dep in deps:
        req = Requirement(dep)
        pinned = entries.get(canonicalize_name(req.name))
        if pinned is None:
            problems.append(f"{req.name} is not in the lock")
        elif not req.specifier.contains(pinned[0], prereleases=True):
            problems.append(f"{req.name}=={pinned[0]} in the lock does not satisfy {dep!r}")
        elif "--hash=sha256:" not in pinned[1]:
            problems.append(f"{req.name} has no hash in the lock")
    return problems


def layer_requirements(text: str | None = None) -> str:
    """The lock without what the Lambda runtime provides (a requirements file for pip)."""
    entries = lock_entries(LOCK.read_text(encoding="utf-8") if text is None else text)
    return "".join(block + "\n" for name, (_, block) in sorted(entries.items()) if name not in RUNTIME_PROVIDED)


def write_lock() -> Path:
    """Resolve ``pyproject.toml``'s dependencies for Lambda with uv; prepend the digest."""
    uv = Path(sys.executable).with_name("uv")
    out = subprocess.run([str(uv) if uv.exists() else "uv", *LOCK_COMMAND[1:]], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    LOCK.write_text(f"{DIGEST_PREFIX}{dependencies_digest(runtime_dependencies())}\n{out}", encoding="utf-8")
    return LOCK
