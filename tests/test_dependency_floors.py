"""Issue 24, item 2: the floors in ``pyproject.toml`` are true.

- every floor is at least the release that brought an API the code calls (the table below
  names each; Optuna 4.x, for one, lacks ``Trial.set_constraint`` and telling a FAIL raises);
- ``constraints-floors.txt`` pins each floored dependency to exactly its floor, so
  ``make test-floors`` installs what the floors allow and runs the suite on it;
- the versions installed here satisfy the floors (a floor above what runs is a false floor too).
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# what the code calls and the first release that has it
NEEDS = {
    "optuna": ("5.0", "Trial.set_constraint, FrozenTrial.constraints, create_trial(constraints=)"),
    "ray": ("2.60", "Train V2 FailureConfig(controller_failure_limit, max_preemption_failures)"),
    "pyarrow": ("15.0", "concat_tables(promote_options=), the explicit-schema writes"),
    "timm": ("1.0", "create_model(pretrained_cfg_overlay=), timm.layers, get_pretrained_cfg"),
}


def _floors() -> dict[str, Version]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = {}
    for text in deps:
        req = Requirement(text)
        low = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
        if low:
            floors[req.name.lower()] = max(low)
    return floors


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_floor_covers_the_api_the_code_calls(name: str) -> None:
    need, what = NEEDS[name]
    floor = _floors().get(name)
    assert floor is not None, f"pyproject.toml declares no floor for {name}"
    assert floor >= Version(need), f"{name}>={floor} is false: {what} needs {name} {need}"


def test_constraints_file_pins_every_floor() -> None:
    path = ROOT / "constraints-floors.txt"
    assert path.is_file(), "no constraints-floors.txt to install the floors with"
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9_.\-\[\],]+)==([^\s;]+)", line)
            assert m, f"constraints-floors.txt: {line!r} is not NAME==VERSION"
            pins[Requirement(m[1]).name.lower()] = Version(m[2])
    assert pins == _floors()


def test_installed_versions_meet_the_floors() -> None:
    low = []
    for name, floor in _floors().items():
        try:
            got = Version(version(name))
        except PackageNotFoundError:
            low.append(f"{name} is not installed")
            continue
        if got < floor:
            low.append(f"{name} {got} < {floor}")
    assert not low, "; ".join(low)
