"""Jupyter/Colab notebooks as submissions: turn `NAME.ipynb` into a module `NAME.py` of its definitions.

Reading: nbformat reads the notebook (nbformat 1 to 3 are upgraded to 4 by nbformat's own conversion); only code
cells count. Each code cell is read the way Jupyter runs it, on its own: IPython's own input transformers turn ``!cmd``,
``files = !ls``, ``%magic`` and ``obj?`` into Python calls (a ``%`` inside a string stays text); a cell run by
``%%time``, ``%%capture`` or ``%%prun`` keeps its Python, a cell run by any other cell magic (``%%bash``,
``%%writefile``, ``%%timeit`` whose body runs inside a function) is left out; the cell is compiled as IPython
compiles it (top-level ``await`` allowed, ``from __future__`` imports of earlier cells in force). A cell that Jupyter
could not run is left out with a notice naming it.

Of every cell's top-level statements a filter keeps imports, function and class definitions and assignments of
simple constants; top-level training code, data loading, prints, shell and magic lines do not run. An import that
fails in the grader (``google.colab``, ...) binds a stand-in whose use raises an ImportError naming the cell.
``from __future__`` imports move to the top of the module, so they apply to every cell (in Jupyter: to their cell
and the cells run after it); a notice says so when that reaches definitions of earlier cells. A function that
contains a shell or magic line gets a stand-in ``get_ipython()`` that refuses to run it.

Everything is read under bounds (`NotebookLimits`): the file's size and JSON item count before decoding, the
number of cells, each cell's length, line count and expression nesting (a cheap scan before the parser, which
would otherwise exhaust the recursion limit), the text IPython's transformers may tokenize, the whole code's
length, and a time budget. A cell over a bound is left out with a notice, like a cell with a syntax error; a
notebook over a bound gets a module that fails with the reason. No exception leaves `with_notebook_modules`.
Measured (tests/test_notebook_limits.py): the 200,000-term cell is refused in under 0.01 s; the worst notebooks
within the bounds take about 5 s of CPU and 160 MiB.

The sandbox only sees `NAME.py`; the judge's messages name the notebook the student uploaded instead, and for
a line of the module its code cell and line there (`SourceMap`, applied by the engine to every message).
"""

from grader.notebook.cells import _Budget, _Cell, _LeftOut, _OtherCellMagic
from grader.notebook.limits import KEEP_CELL_MAGICS, MAX_NOTEBOOK_BYTES, NotebookLimits
from grader.notebook.module import convert, failing_module, with_notebook_modules
from grader.notebook.nesting import _nesting
from grader.notebook.reading import notebook_cells
from grader.notebook.source_map import Conversion, NotebookModule, Origin, SourceMap

__all__ = [
    "KEEP_CELL_MAGICS", "MAX_NOTEBOOK_BYTES", "Conversion", "NotebookLimits", "NotebookModule", "Origin", "SourceMap",
    "_Budget", "_Cell", "_LeftOut", "_OtherCellMagic", "_nesting", "convert", "failing_module", "notebook_cells",
    "with_notebook_modules",
]
