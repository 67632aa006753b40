"""Executes examples/moments_vs_width.ipynb on a run directory (as a user would in Jupyter).

Usage: python3 run_notebook.py DATA_DIR
"""
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

root = Path(__file__).resolve().parents[2]
os.environ["NNQFT_DATA"] = str(Path(sys.argv[1]).resolve())
nb = nbformat.read(root / "examples" / "moments_vs_width.ipynb", as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(root / "examples")}}).execute()
out = Path(os.environ["NNQFT_DATA"]) / "plots" / "moments_vs_width_notebook.png"
assert out.is_file() and out.stat().st_size > 10_000, out
print("notebook ran:", out)
