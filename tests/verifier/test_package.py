"""token_verifier as a distribution of its own (token_verifier/pyproject.toml).

- It resolves to one real package everywhere: the checkout's token_verifier/ is the package
  directory itself, found first through PYTHONPATH (services, tests) and, without PYTHONPATH,
  through the editable install the lock makes — the same files either way.
- Its imports stay inside what it declares: joserfc and httpx always, each framework only in
  its own adapter, prometheus-client and structlog only when present, never a service or kit.
- A wheel built from it installs into a fresh virtual environment without Litestar,
  SQLAlchemy, asyncpg or argon2, and verifies a token there.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import token_verifier
from tests.infra import ROOT

PACKAGE = ROOT / "token_verifier"
DISTRIBUTION = "authplatform-token-verifier"
WHEELHOUSE = ROOT / "tests" / "artifacts" / "verifier-wheelhouse"
NEVER = {"litestar", "sqlalchemy", "asyncpg", "argon2-cffi", "advanced-alchemy", "pynacl"}
# What each module may import beyond the standard library and the package itself.
ALLOWED = {"joserfc", "httpx"}
ADAPTER_IMPORTS = {
    "fastapi.py": {"fastapi", "starlette"},
    "starlette.py": {"starlette"},
    "litestar.py": {"litestar"},
    "log.py": {"structlog"},  # imported only if installed (ImportError falls back)
}


def resolved_in_subprocess(cwd: Path, env: dict[str, str]) -> str:
    code = "import token_verifier; print(token_verifier.__file__)"
    return run(sys.executable, "-c", code, cwd=cwd, env=env).strip()


def test_one_real_package_from_the_checkout_and_from_the_install(tmp_path: Path) -> None:
    expected = str(PACKAGE / "__init__.py")
    assert token_verifier.__file__ == expected
    spec = importlib.util.find_spec("token_verifier")
    assert spec is not None and spec.origin == expected  # a regular package, not a namespace
    assert list(spec.submodule_search_locations or []) == [str(PACKAGE)]
    # installed like any other dependency, in editable mode from this very directory
    distribution = importlib.metadata.distribution(DISTRIBUTION)
    assert distribution.version == token_verifier.__version__
    direct_url = json.loads(distribution.read_text("direct_url.json") or "{}")
    assert direct_url["dir_info"] == {"editable": True}
    assert Path(direct_url["url"].removeprefix("file://")).resolve() == PACKAGE
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # as the services run (PYTHONPATH = the checkout), and as anything else would
    assert resolved_in_subprocess(tmp_path, {**env, "PYTHONPATH": str(ROOT)}) == expected
    assert resolved_in_subprocess(tmp_path, env) == expected


def test_the_distribution_declares_what_it_imports() -> None:
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    required = {dependency.split(">")[0].split("[")[0] for dependency in project["dependencies"]}
    assert required == ALLOWED
    extras = project["optional-dependencies"]
    assert set(extras) == {"prometheus", "fastapi", "starlette", "litestar"}
    assert (PACKAGE / "py.typed").exists()
    assert f"## {token_verifier.__version__}" in (PACKAGE / "CHANGELOG.md").read_text()
    stdlib = sys.stdlib_module_names
    for module in sorted(PACKAGE.glob("*.py")):
        imported: set[str] = set()
        for node in ast.walk(ast.parse(module.read_text(), filename=str(module))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
        outside = imported - stdlib - {"token_verifier"}
        assert outside <= ALLOWED | ADAPTER_IMPORTS.get(module.name, set()), (module, outside)
    # prometheus-client is imported by name only where metrics.py falls back without it
    assert '"prometheus_client"' in (PACKAGE / "metrics.py").read_text()


def test_the_root_project_installs_it_from_the_checkout() -> None:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert root["tool"]["uv"]["sources"][DISTRIBUTION] == {
        "path": "token_verifier",
        "editable": True,
    }
    assert not any(
        "token_verifier" in pattern for pattern in root["tool"]["setuptools"]["packages"]["find"]
    )
    for lock in ("requirements.lock", "requirements-dev.lock"):
        assert "-e token_verifier" in (ROOT / lock).read_text().splitlines(), lock
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    builder, final = dockerfile.split("\nFROM ", 2)[1:]
    # The lock's relative line resolves from /app, where the final stage puts the same files.
    assert builder.index("WORKDIR /app") < builder.index(
        "COPY token_verifier/ /app/token_verifier/"
    )
    assert builder.index("COPY token_verifier/ /app/token_verifier/") < builder.index("pip install")
    assert "COPY token_verifier/ /app/token_verifier/" in final


# --- a fresh virtual environment ------------------------------------------------------------


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"{argv}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


def source_copy(destination: Path) -> Path:
    """The package's tracked files only (no egg-info or build left by an editable install)."""
    destination.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md", "py.typed", *_modules()):
        shutil.copy2(PACKAGE / name, destination / name)
    return destination


def _modules() -> list[str]:
    return sorted(path.name for path in PACKAGE.glob("*.py"))


def wheelhouse(tmp_path: Path) -> Path:
    """The package's dependencies (at the lock's versions) and its build backend, downloaded
    from PyPI once and kept in tests/artifacts until the lock or the package's pyproject
    changes; every later run installs with --no-index."""
    lock = (ROOT / "requirements.lock").read_text()
    digest = hashlib.sha256((lock + (PACKAGE / "pyproject.toml").read_text()).encode())
    stamp = WHEELHOUSE / ".sha256"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return WHEELHOUSE
    shutil.rmtree(WHEELHOUSE, ignore_errors=True)
    constraints = tmp_path / "constraints.txt"
    pinned = [line for line in lock.splitlines() if "==" in line and not line.startswith(" ")]
    constraints.write_text("\n".join(pinned) + "\n")
    run(
        sys.executable, "-m", "pip", "download", "--quiet", "--dest", WHEELHOUSE,
        "-c", constraints, "setuptools>=68", source_copy(tmp_path / "download-src"),
        cwd=tmp_path,
    )  # fmt: skip
    stamp.write_text(digest.hexdigest())
    return WHEELHOUSE


@pytest.mark.slow
def test_wheel_in_a_fresh_environment_without_the_services_dependencies(tmp_path: Path) -> None:
    wheels = wheelhouse(tmp_path)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    offline: list[str | Path] = ["--quiet", "--no-index", "--find-links", wheels]
    source = source_copy(tmp_path / "src")
    run(python, "-m", "pip", "wheel", *offline, "--no-deps", "-w", tmp_path / "dist", source,
        cwd=tmp_path)  # fmt: skip
    [wheel] = (tmp_path / "dist").glob("authplatform_token_verifier-*.whl")
    assert wheel.name.startswith(f"authplatform_token_verifier-{token_verifier.__version__}-")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    run(python, "-m", "pip", "install", *offline, wheel, cwd=tmp_path, env=env)
    listed = json.loads(run(python, "-m", "pip", "list", "--format=json", cwd=tmp_path, env=env))
    installed = {package["name"].lower() for package in listed}
    assert {DISTRIBUTION, "joserfc", "httpx"} <= installed
    assert not installed & NEVER, installed & NEVER
    assert not installed & {"prometheus-client", "structlog", "fastapi", "starlette"}
    script = Path(__file__).with_name("fresh_environment_check.py")
    out = run(python, script, token_verifier.__version__, cwd=tmp_path, env=env)
    assert out.strip() == "verified ada; fastapi adapter needs fastapi; metrics off", out
