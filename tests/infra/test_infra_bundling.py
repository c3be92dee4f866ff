"""The Docker-free bundler: function assets are copies of the sources, the layer
is pip-installed for arm64/cp313 (the command is checked here, not run)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from infra import build_assets as bundling


def test_function_asset_has_package_init_and_only_its_function(tmp_path: Path) -> None:
    out = bundling.build_function("authorizer", tmp_path / "authorizer")
    assert (out / "lambdas" / "__init__.py").is_file()
    assert (out / "lambdas" / "authorizer" / "__init__.py").is_file()
    assert sorted(p.name for p in (out / "lambdas").iterdir()) == ["__init__.py", "authorizer"]
    assert not list(out.rglob("__pycache__"))


def test_layer_requirements_are_runtime_deps_without_boto3() -> None:
    reqs = bundling.layer_requirements()
    project = tomllib.loads((bundling.ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert reqs == [d for d in project if not d.startswith("boto3")]
    names = {r.split("[")[0].split(">")[0].split("<")[0].strip() for r in reqs}
    assert {"aws-lambda-powertools", "pydantic", "segno"} <= names
    assert not names & {"boto3", "botocore"}
    assert any(r.startswith("aws-lambda-powertools[tracer]") for r in reqs)


def test_pip_command_targets_lambda_arm64_python313(tmp_path: Path) -> None:
    cmd = bundling.pip_command(tmp_path / "python")
    joined = " ".join(cmd)
    for flag in ("--platform manylinux2014_aarch64", "--only-binary=:all:", "--python-version 3.13",
                 "--implementation cp", f"--target {tmp_path / 'python'}"):
        assert flag in joined
    assert "boto3" not in joined


def test_asset_hashes_track_their_inputs() -> None:
    assert bundling.function_hash("api") != bundling.function_hash("redirect")
    assert bundling.function_hash("api") == bundling.function_hash("api")
    assert len(bundling.layer_hash()) == 64
