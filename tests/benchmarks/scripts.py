"""Load a script of benchmarks/ (not a package) as a module, once per name."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_script(file_name: str, module_name: str) -> ModuleType:
    """benchmarks/FILE_NAME as `module_name` (registered in sys.modules, where dataclasses look
    their module up), with benchmarks/ on the path for the scripts' own sibling imports."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / file_name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
