"""Loading an example script as a module (examples/ is not a package)."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str, module_name: str | None = None) -> ModuleType:
    """examples/<name>.py as a module registered in sys.modules (dataclasses look
    their module up there)."""
    spec = importlib.util.spec_from_file_location(module_name or f"{name}_example",
                                                  EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
