"""Finding and validating probe profiles: shipped ones by name, others by path.

A profile error stops the edge at start-up with the profile file and the key: a wrong register
address found at 3 a.m. by a flat-lining station costs far more than a refused start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ingest.edge.base import ProfileBase
from ingest.edge.drivers import DRIVERS
from radmon.errors import InputError

PROFILE_DIR = Path(__file__).parent / "profiles"


def shipped_profiles() -> list[str]:
    """Names of the profiles shipped with radmon."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def profile_path(ref: str, key: str) -> Path:
    """The file *ref* names: a shipped profile name, or a path to a YAML file.

    *key* is the configuration key that gave *ref*, for the error message.
    """
    looks_like_path = "/" in ref or ref.endswith((".yaml", ".yml"))
    candidate = Path(ref) if looks_like_path else PROFILE_DIR / f"{ref}.yaml"
    if candidate.is_file():
        return candidate
    if looks_like_path:
        raise InputError(f"key {key!r}: profile file {ref} does not exist")
    raise InputError(
        f"key {key!r}: {ref!r} is not a shipped profile ({', '.join(shipped_profiles())}) "
        "nor a path to a YAML file"
    )


def _describe(exc: ValidationError, path: Path) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key {key!r}")
        elif err["type"] == "missing":
            lines.append(f"{path}: key {key!r} is required")
        else:
            lines.append(f"{path}: key {key!r}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)


def load_profile(ref: str, key: str = "profile") -> ProfileBase:
    """Load and validate the profile *ref*; InputError names the file and the key."""
    path = profile_path(ref, key)
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read profile: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: a profile is a mapping of keys")
    driver = data.get("driver", "modbus")
    spec = DRIVERS.get(driver) if isinstance(driver, str) else None
    if spec is None:
        known = ", ".join(sorted(DRIVERS))
        raise InputError(f"{path}: key 'driver': unknown driver {driver!r} (known: {known})")
    try:
        return spec.profile_model.model_validate(data)
    except ValidationError as exc:
        raise InputError(_describe(exc, path)) from exc
