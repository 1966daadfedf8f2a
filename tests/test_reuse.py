"""Content-addressed reuse (grader.reuse): the rule of what a check can read, its keys, and real gradings.

The gradings use the student-style rpz-cnn solution (students/loops, written from the handout) restricted to a few
numpy and MyNet checks (the FinetuneNet evaluation is what bench/reuse.py times), through the real sandbox, with
the in-memory store: one fresh grading per module, copied for each test.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from grader.api import grade_submission
from grader.assignments import load_assignment
from grader.harness.op_messages import ImportOp, TorchLoadOp
from grader.result import CheckStatus, GradeResult
from grader.reuse import Kept, MemoryStore
from grader.reuse.keys import check_key, data_fingerprint, submission_digests
from grader.reuse.reads import check_reads
from grader.settings import GraderSettings
from tests.conftest import make_zip

LOOPS = Path(__file__).resolve().parent.parent / "grader" / "assignments" / "rpz_cnn" / "students" / "loops"
FILES = ("numpy_nn.py", "pytorch_cnn.py", "model.pt", "finetuned.pt")
NUMPY = ("numpy_nn.Linear.forward", "numpy_nn.Linear.backward", "numpy_nn.ReLU.forward")
TORCH = ("pytorch_cnn.MyNet.build", "pytorch_cnn.classify", "pytorch_cnn.MyNet.checkpoint",
         "pytorch_cnn.MyNet.accuracy")
ONLY = NUMPY + TORCH


def loops(**changed: bytes) -> dict[str, bytes]:
    files = {name: (LOOPS / name).read_bytes() for name in FILES}
    files.update({k.replace("__", "."): v for k, v in changed.items()})
    return files


def by_id(result: GradeResult) -> dict[str, object]:
    return {c.id: c for c in result.checks}


# -- the rule: what a check can read ---------------------------------------------------------------------------

def reads_of(tmp_path: Path, sources: dict[str, str], module: str = "a"):
    for name, text in sources.items():
        (tmp_path / name).write_text(text)
    return check_reads(tmp_path, [ImportOp(module=module)])


def test_static_imports_give_the_closure(tmp_path: Path) -> None:
    r = reads_of(tmp_path, {"a.py": "import numpy as np\nfrom b import f\n", "b.py": "import c\n", "c.py": "x = 1\n",
                            "d.py": "import a\n", "model.pt": "w"})
    assert not r.everything, r.why
    assert r.files == {"a.py", "b.py", "c.py"} and r.modules == {"a", "b", "c"}


@pytest.mark.parametrize("source", [
    "import importlib\nm = importlib.import_module('numpy_nn')\n",
    "from importlib import import_module\n",
    "m = __import__('numpy_nn')\n",
    "exec(open('numpy_nn.py').read())\n",
    "f = getattr(__builtins__, '__imp' + 'ort__')\n",
    "name = 'load'\nimport numpy as np\nf = getattr(np, name)\n",
    "import numpy as np\nw = np.load('weights.npz')\n",
    "import torch\nstate = torch.load('model.pt')\n",
    "import sys\nm = sys.modules\n",
    "import torch\nm = torch.sys.modules\n",
    "x = ().__class__.__base__.__subclasses__()\n",
    "from . import numpy_nn\n",
    "from numpy import *\n",
    "f = getattr\n",
    "def f():\n    def g():\n        return open('numpy_nn.py')\n    return g\n",
    "y = eval('1 + 1')\n",
    "from pathlib import Path\nt = Path('numpy_nn.py').read_text()\n",
    "import pickle\n",
    "import operator\nf = operator.attrgetter('load')\n",
    "__name__ = '__main__'\nif __name__ == '__main__':\n    import numpy_nn\n",
    "def f():\n    return globals()\n",
])
def test_dynamic_reads_make_it_read_everything(tmp_path: Path, source: str) -> None:
    r = reads_of(tmp_path, {"a.py": source})
    assert r.everything, f"not flagged: {source!r}"


@pytest.mark.parametrize("source", [
    "def forward(self, X, eval=False):\n    return X if eval else X\n",  # nd-hw04's handout: a parameter
    "def get(self, i):\n    input = self.X[i]\n    return input\n",  # gt-hw5's handout: a local
    "def f(eval):\n    def g():\n        return eval('2')\n    return g\n",  # a closure over the parameter
    "class A:\n    def __init__(self):\n        self.__h = 1\n",  # a private (name-mangled) attribute
    "from util import *\n",  # cmu-16720's handout: a star import of a module of the submission
    "import numpy as np\nx = getattr(np, 'float32')\n",
])
def test_names_that_only_look_dangerous_are_not(tmp_path: Path, source: str) -> None:
    (tmp_path / "util.py").write_text("def f():\n    return 1\n")
    r = reads_of(tmp_path, {"a.py": source})
    assert not r.everything, r.why


def test_a_main_block_does_not_run_on_import(tmp_path: Path) -> None:
    r = reads_of(tmp_path, {"a.py": "import numpy as np\nif __name__ == '__main__':\n    np.load('x.npz')\n"})
    assert not r.everything, r.why


@pytest.mark.parametrize("extra", ["torch.py", "numpy.py", "sitecustomize.py"])
def test_a_module_shadowing_an_installed_one_reads_everything(tmp_path: Path, extra: str) -> None:
    (tmp_path / extra).write_text("x = 1\n")
    assert reads_of(tmp_path, {"a.py": "x = 2\n"}).everything


def test_importing_a_folder_or_compiled_module_reads_everything(tmp_path: Path) -> None:
    (tmp_path / "helpers").mkdir()
    assert reads_of(tmp_path, {"a.py": "import helpers\n"}).everything
    (tmp_path / "fast.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    assert reads_of(tmp_path, {"a.py": "import fast\n"}).everything


def test_a_whole_pickled_model_reads_everything(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    r = check_reads(tmp_path, [TorchLoadOp(file="m.model", as_state="s", whole_model_of="a")])
    assert r.everything and "m.model" in r.files


# -- keys -------------------------------------------------------------------------------------------------------

def test_keys_change_with_every_input_and_only_with_them(tmp_path: Path, fast_settings: GraderSettings) -> None:
    spec = load_assignment("rpz-cnn")
    check = next(c for c in spec.checks if c.id == "pytorch_cnn.MyNet.checkpoint")
    for name, data in loops().items():
        (tmp_path / name).write_bytes(data)
    reads = check_reads(tmp_path, [ImportOp(module="pytorch_cnn")], check.needs, check.module)
    data = data_fingerprint(fast_settings.hidden_data)

    def key(**kw: object) -> str:
        args: dict[str, object] = dict(spec=spec, check=check, reads=reads, limits=spec.limits, data=data,
                                       assignment=spec.name, digests=submission_digests(tmp_path))
        args.update(kw)
        return check_key(**args)  # type: ignore[arg-type]

    base = key()
    assert key() == base
    (tmp_path / "numpy_nn.py").write_text("changed\n")  # not readable by this check
    assert key() == base
    (tmp_path / "model.pt").write_bytes(b"other weights")
    assert key() != base
    (tmp_path / "model.pt").write_bytes((LOOPS / "model.pt").read_bytes())
    assert key() == base
    (tmp_path / "pytorch_cnn.py").write_text((LOOPS / "pytorch_cnn.py").read_text() + "\n# edited\n")
    assert key() != base
    (tmp_path / "pytorch_cnn.py").write_bytes((LOOPS / "pytorch_cnn.py").read_bytes())
    from dataclasses import replace
    assert key(check=replace(check, points=check.points + 1)) != base
    assert key(limits=replace(spec.limits, op_s=spec.limits.op_s + 1)) != base
    assert key(data=data_fingerprint(tmp_path)) != base


def test_the_data_fingerprint_follows_manifests_arrays_and_the_key(tmp_path: Path) -> None:
    folder = tmp_path / "arrays" / "set" / "8x8"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text('{"key": "a"}')
    (folder / "images.npy").write_bytes(b"12345")
    (tmp_path / "dither.key").write_bytes(b"k" * 32)
    seen = {data_fingerprint(tmp_path)}
    (folder / "manifest.json").write_text('{"key": "b"}')
    seen.add(data_fingerprint(tmp_path))
    (folder / "images.npy").write_bytes(b"123456")
    seen.add(data_fingerprint(tmp_path))
    (tmp_path / "dither.key").write_bytes(b"j" * 32)
    seen.add(data_fingerprint(tmp_path))
    assert len(seen) == 4


# -- real gradings ----------------------------------------------------------------------------------------------

class Recorder(MemoryStore):
    """The in-memory store, remembering what each grading said to keep."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[list[Kept]] = []

    def keep(self, kept: list[Kept]) -> None:  # type: ignore[override]
        self.told.append(list(kept))
        super().keep(kept)


Grade = Callable[..., GradeResult]


@pytest.fixture(scope="module")
def zips(tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict[str, bytes]], Path]:
    folder = tmp_path_factory.mktemp("reuse-zips")

    def build(files: dict[str, bytes]) -> Path:
        return make_zip(folder / f"u{len(list(folder.iterdir()))}.zip", files)

    return build


@pytest.fixture(scope="module")
def first(fast_settings: GraderSettings, zips: Callable[[dict[str, bytes]], Path]) -> tuple[Recorder, GradeResult]:
    store = Recorder()
    result = grade_submission(zip_path=zips(loops()), assignment="rpz-cnn", settings=fast_settings, only=ONLY,
                              reuse=store)
    return store, result


@pytest.fixture
def again(first: tuple[Recorder, GradeResult], fast_settings: GraderSettings,
          zips: Callable[[dict[str, bytes]], Path]) -> Grade:
    """again(files, store=None) grades `files` with a copy of the first grading's store."""
    stores: list[Recorder] = []

    def run(files: dict[str, bytes], store: Recorder | None = None, **kw: object) -> GradeResult:
        store = store or copy.deepcopy(first[0])
        stores.append(store)
        return grade_submission(zip_path=zips(files), assignment="rpz-cnn", settings=kw.pop("settings", fast_settings),
                                only=ONLY, reuse=store, **kw)  # type: ignore[arg-type]

    run.stores = stores  # type: ignore[attr-defined]
    return run


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_first_grading_keeps_every_verdict(first: tuple[Recorder, GradeResult]) -> None:
    store, result = first
    assert result.status == "graded" and all(c.passed for c in result.checks), result.checks
    assert all(c.reused_from is None and c.seconds is not None for c in result.checks)
    assert {k.result.id for k in store.told[0]} == set(ONLY)
    assert result.metrics["sandbox.starts"] == 2  # numpy_nn and pytorch_cnn in processes of their own


@pytest.mark.slow
@pytest.mark.sandbox
def test_an_identical_upload_reuses_everything(first: tuple[Recorder, GradeResult], again: Grade) -> None:
    result = again(loops())
    assert [(c.id, c.status, c.points) for c in result.checks] == [(c.id, c.status, c.points)
                                                                    for c in first[1].checks]
    assert all(c.reused_from == "upload #1" and c.seconds is None for c in result.checks)
    assert result.metrics["mynet.accuracy"] == first[1].metrics["mynet.accuracy"]
    assert "sandbox.starts" not in result.metrics  # nothing ran


@pytest.mark.slow
@pytest.mark.sandbox
def test_changing_only_numpy_nn_reuses_the_network_checks(again: Grade) -> None:
    result = again(loops(numpy_nn__py=(LOOPS / "numpy_nn.py").read_bytes() + b"\n# tidied up\n"))
    checks = by_id(result)
    assert all(checks[i].reused_from == "upload #1" for i in TORCH)  # type: ignore[attr-defined]
    assert all(checks[i].reused_from is None and checks[i].passed for i in NUMPY)  # type: ignore[attr-defined]


BROKEN_FORWARD = b"""

_forward = Linear.forward
def _broken(self, x):
    return _forward(self, x) + 1.0
Linear.forward = _broken
"""
BROKEN_CLASSIFY = b"""

def classify(model, x):
    return torch.min(model(x), 1)[1]
"""


def random_mynet_state() -> bytes:
    import importlib.util

    spec = importlib.util.spec_from_file_location("loops_pytorch_cnn", LOOPS / "pytorch_cnn.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(mod.MyNet().state_dict(), buf)
    return buf.getvalue()


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.parametrize("mutant", ["numpy_forward", "classify", "weights"])
def test_a_changed_relevant_file_is_never_served_a_stale_verdict(again: Grade, mutant: str) -> None:
    if mutant == "numpy_forward":
        result = again(loops(numpy_nn__py=(LOOPS / "numpy_nn.py").read_bytes() + BROKEN_FORWARD))
        rerun, now_failing = NUMPY, ("numpy_nn.Linear.forward",)
    elif mutant == "classify":
        result = again(loops(pytorch_cnn__py=(LOOPS / "pytorch_cnn.py").read_bytes() + BROKEN_CLASSIFY))
        rerun, now_failing = TORCH, ("pytorch_cnn.classify", "pytorch_cnn.MyNet.accuracy")
    else:
        result = again(loops(model__pt=random_mynet_state()))
        rerun, now_failing = TORCH, ("pytorch_cnn.MyNet.accuracy",)
    checks = by_id(result)
    assert all(checks[i].reused_from is None for i in rerun), mutant  # type: ignore[attr-defined]
    assert all(checks[i].status is CheckStatus.FAILED for i in now_failing), [checks[i] for i in now_failing]


DYNAMIC_CLASSIFY = b"""

import importlib

def classify(model, x):
    sign = importlib.import_module("numpy_nn").SIGN  # a dynamic import of the other module
    return torch.max(sign * model(x), 1)[1]
"""


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_dynamic_import_of_numpy_nn_makes_the_network_checks_depend_on_it(fast_settings: GraderSettings,
                                                                              again: Grade) -> None:
    store = Recorder()
    dynamic = (LOOPS / "pytorch_cnn.py").read_bytes() + DYNAMIC_CLASSIFY
    numpy_nn = (LOOPS / "numpy_nn.py").read_bytes()
    one = again(loops(pytorch_cnn__py=dynamic, numpy_nn__py=numpy_nn + b"\nSIGN = 1.0\n"), store=store)
    assert by_id(one)["pytorch_cnn.classify"].passed  # type: ignore[attr-defined]
    two = again(loops(pytorch_cnn__py=dynamic, numpy_nn__py=numpy_nn + b"\nSIGN = -1.0\n"), store=store)
    checks = by_id(two)
    assert all(checks[i].reused_from is None for i in TORCH)  # type: ignore[attr-defined]
    assert checks["pytorch_cnn.classify"].status is CheckStatus.FAILED  # type: ignore[attr-defined]
    assert checks["pytorch_cnn.MyNet.accuracy"].status is CheckStatus.FAILED  # type: ignore[attr-defined]


PATCHES_TORCH = b"""

import torch
torch.max = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("numpy_nn broke torch"))
"""


@pytest.mark.slow
@pytest.mark.sandbox
def test_numpy_nn_never_runs_in_the_networks_process(fast_settings: GraderSettings, again: Grade) -> None:
    """So a verdict of a network check reused across a numpy_nn change is the one a fresh grading gives."""
    files = loops(numpy_nn__py=(LOOPS / "numpy_nn.py").read_bytes() + PATCHES_TORCH)
    fresh = grade_submission(zip_path=make_zip(Path(fast_settings.work_dir) / "patch.zip", files),
                             assignment="rpz-cnn", settings=fast_settings, only=ONLY)
    reused = again(files)
    for i in TORCH:
        assert by_id(fresh)[i].status is CheckStatus.PASSED, by_id(fresh)[i]  # type: ignore[attr-defined]
        assert by_id(reused)[i].reused_from == "upload #1"  # type: ignore[attr-defined]


HANGS = b"""

def _hang(self, x):
    while True:
        pass
Linear.forward = _hang
"""


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_timed_out_verdict_is_judged_again(again: Grade) -> None:
    store = Recorder()
    files = loops(numpy_nn__py=(LOOPS / "numpy_nn.py").read_bytes() + HANGS)
    one = again(files, store=store)
    assert not by_id(one)["numpy_nn.Linear.forward"].passed  # type: ignore[attr-defined]
    assert "numpy_nn.Linear.forward" not in {k.result.id for k in store.told[-1]}
    two = again(files, store=store)
    assert by_id(two)["numpy_nn.Linear.forward"].reused_from is None  # type: ignore[attr-defined]
    assert by_id(two)["pytorch_cnn.classify"].reused_from == "upload #1"  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.sandbox
def test_other_limits_reuse_nothing(fast_settings: GraderSettings, again: Grade) -> None:
    other = fast_settings.with_(limit_overrides={**fast_settings.limit_overrides, "op_s": 5.0})
    result = again(loops(), settings=other)
    assert all(c.reused_from is None for c in result.checks)


@pytest.mark.sandbox
def test_a_store_that_fails_costs_only_the_reuse(fast_settings: GraderSettings, zips) -> None:  # type: ignore[no-untyped-def]
    class Down(MemoryStore):
        def lookup(self, keys):  # type: ignore[no-untyped-def]
            raise ConnectionError("web app down")

        def keep(self, kept):  # type: ignore[no-untyped-def]
            raise ConnectionError("web app down")

    files = loops()
    result = grade_submission(zip_path=zips(files), assignment="rpz-cnn", settings=fast_settings,
                              only=NUMPY, reuse=Down())
    assert result.status == "graded" and all(c.passed and c.reused_from is None for c in result.checks)

