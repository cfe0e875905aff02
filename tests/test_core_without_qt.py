"""The streaming core, the CLI and the benchmark load without Qt: only the app (asrlive.gui) and
the benchmark's plot files import it, when they run."""

import subprocess
import sys
from pathlib import Path

import asrlive


def test_no_module_outside_the_gui_imports_qt():
    package = Path(asrlive.__file__).parent
    names = sorted(f"asrlive.{'.'.join(p.relative_to(package).with_suffix('').parts)}"
                   for p in package.rglob("*.py") if "gui" not in p.relative_to(package).parts)
    names = [n.removesuffix(".__init__") for n in names if not n.endswith("__main__")]
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(names) > 25 and done.stdout.strip() == "[]", done.stdout
