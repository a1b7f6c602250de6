"""What gets installed: exact versions from constraints.txt, and an image that caches its
dependencies apart from the code."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt pins exact versions only: {line!r}"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    return [Requirement(r) for r in listed]


def test_every_dependency_is_pinned_within_its_range():
    pins = _pins()
    for requirement in _requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{requirement.name}=={pins[name]} is outside {requirement.specifier}"
        )


def test_the_readme_and_ci_install_from_the_constraints():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -c constraints.txt -e ." in readme
    assert "pip install -c constraints.txt -e '.[test]'" in readme
    assert "pip install -q -c constraints.txt -e '.[test]'" in ci


def test_the_image_installs_dependencies_before_it_copies_the_code():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    first_code_copy = next(n for n, line in enumerate(lines) if line.startswith("COPY broadcast"))
    dependencies = next(n for n, line in enumerate(lines) if "-c constraints.txt" in line)
    assert dependencies < first_code_copy
    assert "RUN pip install --no-deps ." in lines[first_code_copy:]


def test_the_build_context_leaves_out_the_venv_and_the_data():
    ignored = set((ROOT / ".dockerignore").read_text().splitlines())
    assert {".git", ".venv", "data/", "*.db"} <= ignored
