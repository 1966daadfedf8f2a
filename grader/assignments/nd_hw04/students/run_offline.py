"""Run a student-style notebook's own cells offline, in order, the way Colab would, and keep their outputs.

    python -m grader.assignments.nd_hw04.students.run_offline loops colab   # re-trains and rewrites the checkpoints

Every code cell runs in one IPython shell (magics through IPython itself) in a scratch folder that holds the
course's data where the notebook looks for it. Shell lines (``!git clone``, ``!pip install``, ``!wget``) are not
run (no network; the data is already there) and ``google.colab.drive.mount`` is a stub. A cell that fails offline
(the segmented letters of Task 04 are not in our data) is recorded with its error, like in Colab, and the run
goes on. The checkpoints the notebook saves are copied next to it; the notebook is rewritten with its outputs.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable, Sequence
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("AUTOGRADER_SHARED_DATA", HERE.parents[4] / "shared" / "data"))
CHECKPOINTS = ("scratch_ffn.pt", "ffn.pt", "cnn.pt")


def _stub_colab() -> None:
    drive = types.ModuleType("google.colab.drive")
    drive.mount = lambda path, **kw: print(f"Mounted at {path}")  # type: ignore[attr-defined]
    colab = types.ModuleType("google.colab")
    colab.drive = drive  # type: ignore[attr-defined]
    google = sys.modules.get("google") or types.ModuleType("google")
    google.colab = colab  # type: ignore[attr-defined]
    sys.modules.update({"google": google, "google.colab": colab, "google.colab.drive": drive})


def run_notebook(path: Path, workdir: Path, *, outputs: Sequence[str], colab: bool = False) -> list[str]:
    """Run the code cells of notebook `path` in `workdir`; rewrite it with their outputs; copy `outputs` back.

    :return: one line per cell that raised (cell number and error)
    """
    import matplotlib
    import torch
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    matplotlib.use("Agg")
    torch.set_num_threads(1)  # small tensors on a shared machine: a second thread only spins
    if colab:
        _stub_colab()
    nb = nbformat.read(path, as_version=4)
    shell = InteractiveShell.instance()
    shell.system = lambda cmd: print(f"[offline: not run] !{cmd}")  # type: ignore[method-assign]
    shell.getoutput = lambda cmd, split=True, depth=0: []  # type: ignore[method-assign]
    shell.showtraceback = lambda *args, **kwargs: None  # type: ignore[method-assign]  # the error output has it
    shell.enable_gui = lambda gui=None: None  # type: ignore[method-assign]  # %matplotlib inline without a kernel
    failures: list[str] = []
    old = Path.cwd()
    os.chdir(workdir)
    shell.user_ns["_dh"] = [str(workdir)]  # %cd's directory history starts here, not in our checkout
    try:
        for count, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
            number = count - 1
            t0 = time.perf_counter()
            with capture_output(display=True) as cap:
                result = shell.run_cell(cell.source, store_history=True)
            cell.execution_count = count
            cell.outputs = _outputs(cap, result, count)
            if not result.success:
                err = result.error_in_exec or result.error_before_exec
                failures.append(f"code cell {number + 1}: {type(err).__name__}: {err}")
            print(f"cell {number + 1}: {time.perf_counter() - t0:.1f} s{'' if result.success else ' (failed)'}",
                  flush=True)
    finally:
        os.chdir(old)
    nbformat.write(nb, path)
    for name in outputs:
        if (workdir / name).is_file():
            shutil.copy2(workdir / name, path.parent / name)
    return failures


def _outputs(cap, result, count: int) -> list:
    out = []
    for name, text in (("stdout", cap.stdout), ("stderr", cap.stderr)):
        if text:
            out.append(nbformat.v4.new_output("stream", name=name, text=text))
    for rich in cap.outputs:
        data = {k: v for k, v in rich.data.items() if k in ("image/png", "text/plain")}
        if data:
            out.append(nbformat.v4.new_output("display_data", data=data, metadata={}))
    if result.result is not None:
        out.append(nbformat.v4.new_output("execute_result", data={"text/plain": repr(result.result)},
                                          execution_count=count))
    err = result.error_in_exec or result.error_before_exec
    if err is not None:
        out.append(nbformat.v4.new_output("error", ename=type(err).__name__, evalue=str(err),
                                          traceback=traceback.format_exception_only(err)))
    return out


def emnist_folder(workdir: Path) -> None:
    """The course's data folder as `load_dataset('emnist_balanced_small')` reads it (relative to the notebook)."""
    (workdir / "emnist_balanced_small").symlink_to(SHARED / "emnist_balanced_small")


def main(styles: Sequence[str], prepare: Callable[[Path], None] = emnist_folder, folder: Path = HERE,
         notebook: str = "hw04.ipynb", outputs: Sequence[str] = CHECKPOINTS) -> None:
    for style in styles:
        path = folder / style / notebook
        with tempfile.TemporaryDirectory(prefix=f"{style}-") as tmp:
            workdir = Path(tmp) / "content"  # Colab's working directory
            workdir.mkdir()
            prepare(workdir)
            t0 = time.perf_counter()
            failures = run_notebook(path, workdir, outputs=outputs, colab=True)
        print(f"{style}: {time.perf_counter() - t0:.0f} s; cells that failed offline: {failures or 'none'}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["loops", "colab"])
