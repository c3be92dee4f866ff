"""The Docker-free bundler: function assets are copies of the sources, the layer
is pip-installed for arm64/cp313 from requirements-lambda.lock (the command is
checked here, not run), and the lock matches pyproject.toml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra import build_assets as bundling
from infra import lock


def test_function_asset_has_package_init_and_only_its_function(tmp_path: Path) -> None:
    out = bundling.build_function("authorizer", tmp_path / "authorizer")
    assert (out / "lambdas" / "__init__.py").is_file()
    assert (out / "lambdas" / "authorizer" / "__init__.py").is_file()
    assert sorted(p.name for p in (out / "lambdas").iterdir()) == ["__init__.py", "authorizer"]
    if bundling.bytecode_python() is None:  # no interpreter of the runtime's version here: source only
        assert not list(out.rglob("__pycache__"))


@pytest.fixture
def runtime_is_this_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the runtime is the Python running the tests (the only one this machine has)."""
    import sys

    monkeypatch.setattr(bundling, "RUNTIME_VERSION", tuple(sys.version_info[:2]))
    monkeypatch.setattr(bundling, "RUNTIME_PY", f"{sys.version_info[0]}.{sys.version_info[1]}")
    monkeypatch.setenv("QRPRO_RUNTIME_PYTHON", sys.executable)
    bundling.bytecode_python.cache_clear()
    yield
    bundling.bytecode_python.cache_clear()


def test_assets_carry_bytecode_lambda_uses_as_is(tmp_path: Path, runtime_is_this_python: None) -> None:
    """Lambda's code directories are read-only: shipped bytecode is what saves each cold start
    from compiling every module. It must not depend on the zip's timestamps (unchecked hash), and
    tracebacks must name the deployed paths."""
    import importlib.util
    import marshal
    import subprocess
    import sys

    out = bundling.build_function("authorizer", tmp_path / "fn")
    sources = sorted(out.rglob("*.py"))
    assert sources
    tag = sys.implementation.cache_tag
    for source in sources:
        pyc = Path(importlib.util.cache_from_source(str(source)))
        assert pyc.is_file(), source
        data = pyc.read_bytes()
        assert int.from_bytes(data[4:8], "little") == 0b01, f"{pyc}: not unchecked-hash"
        code = marshal.loads(data[16:])  # noqa: S302 - bytecode this test just compiled
        assert code.co_filename == "/var/task/" + source.relative_to(out).as_posix()
        assert tag in pyc.name
    # The bytecode is what runs, whatever the source's timestamp: an edited source is not recompiled.
    handler = out / "lambdas" / "authorizer" / "handler.py"
    handler.write_text("raise SystemExit('the source ran, not the shipped bytecode')\n")
    probe = ("import sys; sys.dont_write_bytecode = True; sys.path[:0] = [sys.argv[1], sys.argv[2]]; "
             "import lambdas.authorizer.handler as h; print(h.__spec__.cached)")
    layers = str(Path(bundling.ROOT) / "layers")
    run = subprocess.run([sys.executable, "-c", probe, str(out), layers], capture_output=True, text=True,
                         env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"}, check=False)
    assert run.returncode == 0, run.stderr[-2000:]


def test_a_deploy_without_the_runtime_python_fails_unless_told(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    monkeypatch.setenv("QRPRO_RUNTIME_PYTHON", "")
    monkeypatch.setattr(bundling.shutil, "which", lambda name: None)
    bundling.bytecode_python.cache_clear()
    try:
        monkeypatch.setenv("QRPRO_REQUIRE_BYTECODE", "1")
        with pytest.raises(RuntimeError, match=r"no Python 3\.13"):
            bundling.function_hash("authorizer")
        monkeypatch.setenv("QRPRO_REQUIRE_BYTECODE", "0")
        assert bundling.function_hash("authorizer")
    finally:
        bundling.bytecode_python.cache_clear()


def test_the_bytecode_version_is_the_runtime_version() -> None:
    from infra.constructs.functions import RUNTIME

    assert RUNTIME.name == f"python{bundling.RUNTIME_PY}"


def test_lock_matches_pyproject_runtime_dependencies() -> None:
    """`make lock` re-resolves it; this fails when pyproject.toml or the lock is edited alone."""
    assert lock.lock_problems() == []


def test_lock_check_catches_an_edit_on_either_side() -> None:
    deps = lock.runtime_dependencies()
    text = lock.LOCK.read_text()
    added = lock.lock_problems([*deps, "requests>=2"], text)
    assert any("make lock" in p for p in added) and "requests is not in the lock" in added
    bumped = [d if not d.startswith("pydantic") else "pydantic>=99" for d in deps]
    assert any("does not satisfy 'pydantic>=99'" in p for p in lock.lock_problems(bumped, text))
    pin = re.search(r"^segno==(\S+) ", text, re.M)
    assert pin
    hand_edited = text.replace(f"segno=={pin.group(1)}", "segno==0.1")
    assert any("segno==0.1" in p for p in lock.lock_problems(deps, hand_edited))


def test_lock_is_resolved_for_lambda_and_pins_every_package_with_hashes() -> None:
    assert lock.LOCK_TARGET == ("--python-version", "3.13", "--python-platform", "aarch64-manylinux_2_28",
                                    "--only-binary", ":all:")
    entries = lock.lock_entries(lock.LOCK.read_text())
    assert {"aws-lambda-powertools", "pydantic", "pydantic-core", "segno", "pillow"} <= set(entries)
    for name, (_, block) in entries.items():
        assert "--hash=sha256:" in block, name


def test_layer_requirements_are_the_lock_without_what_lambda_provides() -> None:
    reqs = lock.layer_requirements()
    names = set(lock.lock_entries(reqs))
    assert names == set(lock.lock_entries(lock.LOCK.read_text())) - set(lock.RUNTIME_PROVIDED)
    assert {"aws-lambda-powertools", "pydantic", "segno"} <= names
    assert not names & {"boto3", "botocore", "s3transfer"}


def test_pip_command_installs_exactly_the_lock_for_lambda_arm64_python313(tmp_path: Path) -> None:
    cmd = bundling.pip_command(tmp_path / "python", tmp_path / "req.txt")
    joined = " ".join(cmd)
    for flag in ("--platform manylinux2014_aarch64", "--only-binary=:all:", "--python-version 3.13",
                 "--implementation cp", f"--target {tmp_path / 'python'}", "--require-hashes", "--no-deps",
                 f"-r {tmp_path / 'req.txt'}"):
        assert flag in joined


def test_the_layer_asset_hash_covers_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = tmp_path / "requirements-lambda.lock"
    (tmp_path / "layer").mkdir()
    monkeypatch.setattr(bundling, "ROOT", tmp_path)
    monkeypatch.setattr(bundling, "LAYER_SRC", tmp_path / "layer")
    monkeypatch.setattr(bundling, "LOCK", lock)
    hashes = []
    for text in ("segno==1.6.6 \\\n    --hash=sha256:aa\n", "segno==1.6.7 \\\n    --hash=sha256:bb\n"):
        lock.write_text(text)
        hashes.append((bundling.layer_hash(), bundling.deps_hash()))
    assert hashes[0][0] != hashes[1][0] and hashes[0][1] != hashes[1][1]


def test_asset_hashes_track_their_inputs() -> None:
    assert bundling.function_hash("api") != bundling.function_hash("redirect")
    assert bundling.function_hash("api") == bundling.function_hash("api")
    assert len(bundling.layer_hash()) == 64


def test_tests_run_the_library_versions_lambda_runs() -> None:
    """The venv (Python 3.11 here) holds the locked versions (`make install` uses the lock as
    constraints), so only the interpreter differs between the tests and Lambda (3.13)."""
    from importlib.metadata import PackageNotFoundError, version

    stale = []
    for name, (pinned, _) in lock.lock_entries(lock.LOCK.read_text()).items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "missing"
        if installed != pinned:
            stale.append(f"{name}: venv {installed}, lock {pinned}")
    assert not stale, "run `make install` (venv older than the lock): " + "; ".join(stale)


# Standard-library modules removed in Python 3.12 and 3.13 (PEP 594, PEP 632): importable by the
# tests' 3.11, missing on Lambda's python3.13.
REMOVED_BY_313 = frozenset({
    "distutils", "imp", "asynchat", "asyncore", "smtpd", "aifc", "audioop", "cgi", "cgitb", "chunk", "crypt",
    "imghdr", "mailcap", "msilib", "nis", "nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau",
    "telnetlib", "uu", "xdrlib", "lib2to3",
})


def test_lambda_code_imports_nothing_python_313_removed() -> None:
    import ast

    sources = [*bundling.LAMBDAS.rglob("*.py"), *bundling.LAYER_SRC.rglob("*.py")]
    assert len(sources) > 20
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in REMOVED_BY_313, f"{path}: {name}"


def test_ruff_and_mypy_check_for_the_lambda_runtime_python() -> None:
    import tomllib

    from infra.constructs.functions import RUNTIME

    version = RUNTIME.name.removeprefix("python")  # "3.13"
    config = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert config["tool"]["mypy"]["python_version"] == version
    assert config["tool"]["ruff"]["target-version"] == "py" + version.replace(".", "")


def test_pyproject_lists_every_package() -> None:
    """A package missing from the list is left out of a non-editable ``pip install .``."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    setup = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set()
    for name, where in setup["package-dir"].items():
        for init in (root / where).rglob("__init__.py"):
            relative = init.parent.relative_to(root / where).parts
            if "swagger_ui" not in relative:
                found.add(".".join((name, *relative)))
    assert sorted(setup["packages"]) == sorted(found)
