"""Test-wide set-up: Verilator's makefiles (cocotb runner, virtual board) call ``python``;
make it the interpreter running the tests, so a machine with only ``python3`` works."""

import os
import sys
from pathlib import Path

os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
