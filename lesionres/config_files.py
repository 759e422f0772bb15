"""The YAML configs shipped with lesionres: where they are, the default one, finding them by name.

Torch-free (``synth``, ``degrade`` and ``benchmark`` read configs without Lightning).
``default.yaml`` is the default run (the synthetic dataset, sized for a CPU): LightningCLI reads
it as its default config file when no ``--config`` is given, and ``synth`` takes its dataset
settings from it, so that both write and read the same dataset.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from lesionres.errors import LesionresError

__all__ = ["CONFIG_DIR", "DEFAULT_CONFIG", "find_config", "read_section"]

CONFIG_DIR = Path(str(resources.files("lesionres") / "configs"))
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"


def find_config(path: str | Path) -> Path:
    """``path`` itself when it exists, else the shipped config of that name (``paper.yaml``)."""
    path = Path(path)
    if not path.exists() and (CONFIG_DIR / path).exists():
        return CONFIG_DIR / path
    return path


def read_section(path: str | Path | None, section: str = "data") -> dict:
    """One section (``data``, ``model``, ``trainer``) of a lesionres YAML config, as a dict.

    Its ``init_args`` when the section is written in jsonargparse's ``class_path`` form; ``{}``
    for no ``path`` or no such section.

    Raises:
        LesionresError: The file cannot be read or is not YAML.
    """
    if path is None:
        return {}
    path = find_config(path)
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise LesionresError(f"{path}: cannot read config ({error.__class__.__name__})") from None
    part = (config or {}).get(section) or {}
    return part.get("init_args", part) if isinstance(part, dict) else {}
