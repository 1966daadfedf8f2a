"""The predict op evaluates a student's model the plain way the handouts do (issue 13, the floor): float32 NCHW
inputs, `torch.no_grad()` (not `torch.inference_mode()`), the spec's batch size, the student's own module. The
faster evaluation of bench/grade_overhead.py's floor (channels_last, inference_mode, other batch sizes, a frozen
TorchScript model) gives the reference models' classes exactly, but each of these tricks changes what some
student's code sees; the models below would be graded differently under them. In-process, no sandbox."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from grader.harness.op_messages import PredictOp
from grader.harness.ops import Interpreter

STUDENT = '''
import torch
from torch import nn


class GradInForward(nn.Module):
    """Scores from a gradient taken inside forward (torch.enable_grad), as a saliency-style model might."""

    def forward(self, x):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            g, = torch.autograd.grad((x ** 2).sum(), x)
        return g.reshape(len(g), -1)[:, :3]


class ViewsItsInput(nn.Module):
    """x.view(len(x), -1) works on a contiguous NCHW input only (not on a channels_last one)."""

    def forward(self, x):
        return x.view(len(x), -1)[:, :3]


class BatchMean(nn.Module):
    """Scores relative to the batch's mean: its classes depend on which images share a batch."""

    def forward(self, x):
        flat = x.reshape(len(x), -1)[:, :3]
        return flat - flat.mean(0, keepdim=True)


def classify(model, x):
    return model(x).argmax(dim=1)
'''


@pytest.fixture
def student(tmp_path: Path) -> types.ModuleType:
    module = types.ModuleType("plain_student")
    exec(compile(STUDENT, str(tmp_path / "plain_student.py"), "exec"), module.__dict__)  # noqa: S102 - test code
    sys.modules["plain_student"] = module
    yield module
    del sys.modules["plain_student"]


def predict(tmp_path: Path, module: types.ModuleType, net: torch.nn.Module, images: np.ndarray, batch: int) -> np.ndarray:
    (tmp_path / "data").mkdir(exist_ok=True)
    np.save(tmp_path / "data" / "d0.npy", images)
    interp = Interpreter(load_module=lambda name: module, inputs={}, data_dir=tmp_path / "data")
    interp.refs["net"] = net
    out = interp.run(PredictOp(ref="net", fn_module="plain_student", fn="classify", data="d0", batch=batch,
                               scale=255.0))
    assert isinstance(out, np.ndarray)
    return out


def plain(module: types.ModuleType, net: torch.nn.Module, images: np.ndarray, batch: int) -> np.ndarray:
    """What the handout's validation loop gives: net.eval(), torch.no_grad(), float32 batches of `batch`."""
    net.eval()
    with torch.no_grad():
        return np.concatenate([module.classify(net, torch.from_numpy(images[i:i + batch].astype(np.float32) / 255.0))
                               .numpy() for i in range(0, len(images), batch)])


@pytest.mark.parametrize("name", ["GradInForward", "ViewsItsInput", "BatchMean"])
def test_predict_gives_the_classes_of_plain_evaluation(tmp_path, student, name):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(50, 3, 4, 4), dtype=np.uint8)
    net = getattr(student, name)()
    assert np.array_equal(predict(tmp_path, student, net, images, batch=20), plain(student, net, images, 20))


def test_the_floors_tricks_would_change_these_models(student):
    """Why the grader does not use them: inference_mode breaks the gradient in forward, channels_last the view,
    another batch size the batch-relative scores."""
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, size=(50, 3, 4, 4)).astype(np.float32) / 255.0)
    with torch.inference_mode(), pytest.raises(RuntimeError):
        student.GradInForward()(x)
    with torch.no_grad(), pytest.raises(RuntimeError, match="view"):
        student.ViewsItsInput()(x.contiguous(memory_format=torch.channels_last))
    net = student.BatchMean()
    with torch.no_grad():
        by_20 = torch.cat([student.classify(net, x[i:i + 20]) for i in range(0, 50, 20)])
        by_50 = student.classify(net, x)
    assert not torch.equal(by_20, by_50)
