"""Run assignment4.ipynb in this folder top to bottom ("Run all"), as Colab would, on the CPU and offline:
its own experiment cell trains the MLP and the CNN (the handout's training(): Adamax, lr 1e-3, weight decay 1e-5,
up to 1000 epochs, early stopping after 20 without progress) and its last cell copies the best state_dicts to
classifier_mlp.pt and classifier_cnn.pt, which are then moved beside this file. The notebook is saved back with
the cells' outputs (printed text and the plots as PNG), like a notebook downloaded from Colab.

    .venv/bin/python grader/assignments/a4_digits/students/colab/train.py

Colab stand-ins: `google.colab.drive.mount` does nothing and the Drive folder (`results_dir`) is a temporary
folder; `!pip ...` lines are skipped; other `!` lines (cp, ls) run in the temporary working folder;
`%matplotlib inline` is honoured by showing each figure as the cell's output. Nothing here is part of grading.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import shutil
import string
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
from IPython.core.inputtransformer2 import TransformerManager  # noqa: E402

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "assignment4.ipynb"
OUTPUTS = ("classifier_mlp.pt", "classifier_cnn.pt")


class FakeIPython:
    """The two things the converted cells call: get_ipython().system(...) and .run_line_magic(...)."""

    def __init__(self, ns: dict[str, Any], cwd: Path) -> None:
        self.ns, self.cwd = ns, cwd

    def system(self, cmd: str) -> None:
        cmd = string.Formatter().vformat(cmd, (), self.ns)  # IPython expands {name} from the namespace
        if cmd.split()[0] not in ("cp", "ls"):
            print(f"(skipped: !{cmd})")
            return
        done = subprocess.run(cmd, shell=True, cwd=self.cwd, capture_output=True, text=True, check=False)
        print(done.stdout + done.stderr, end="")

    def run_line_magic(self, name: str, line: str) -> None:
        if (name, line) != ("matplotlib", "inline"):
            print(f"(skipped: %{name} {line})")


def colab_stub(drive_root: Path) -> None:
    """A google.colab module whose drive.mount does nothing (the Drive folder is a temporary folder)."""
    google = types.ModuleType("google")
    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=lambda path, **kw: print(f"Mounted at {path}"))
    google.colab = colab
    sys.modules.setdefault("google", google)
    sys.modules["google.colab"] = colab
    drive_root.mkdir(parents=True, exist_ok=True)


def run_all(nb: nbformat.NotebookNode, work: Path) -> None:
    ns: dict[str, Any] = {"__name__": "__main__"}
    ns["get_ipython"] = lambda: FakeIPython(ns, work)
    drive = work / "gdrive" / "MyDrive" / "Colab Notebooks" / "assignment_4"
    colab_stub(drive)
    figures: list[dict[str, Any]] = []

    def show(*args: Any, **kwargs: Any) -> None:  # the inline backend: each shown figure becomes an output
        for num in plt.get_fignums():
            buf = io.BytesIO()
            plt.figure(num).savefig(buf, format="png", dpi=60, bbox_inches="tight")
            figures.append(nbformat.v4.new_output("display_data", data={
                "image/png": base64.b64encode(buf.getvalue()).decode(), "text/plain": "<Figure>"}))
        plt.close("all")

    plt.show = show
    transform = TransformerManager().transform_cell
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        count += 1
        t0 = time.perf_counter()
        out = io.StringIO()
        figures.clear()
        with contextlib.redirect_stdout(out):
            exec(compile(transform(cell.source), f"<cell {count}>", "exec"), ns)
            show()
        if str(ns.get("results_dir", "")).startswith("/content"):
            ns["results_dir"] = str(drive) + "/"  # Colab's Drive folder, here a temporary one
        cell.execution_count = count
        cell.outputs = ([nbformat.v4.new_output("stream", name="stdout", text=out.getvalue())]
                        if out.getvalue() else []) + list(figures)
        print(f"cell {count}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        sys.stderr.write(out.getvalue()[-600:] if "FINAL" in out.getvalue() else "")


def main() -> int:
    import torch

    torch.set_num_threads(2)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            run_all(nb, Path(tmp))
        finally:
            os.chdir(cwd)
        for name in OUTPUTS:
            shutil.move(Path(tmp) / name, HERE / name)
            print(f"{HERE / name}: {(HERE / name).stat().st_size} bytes", file=sys.stderr)
    nbformat.write(nb, NOTEBOOK)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
