"""The rpz-cnn reference solution: the seed notebook's values, gradients, the nets, checkpoints, zip builder."""

from __future__ import annotations

import io
import socket
import types
import urllib.request
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.testing as testing
import pytest
import torch

from grader.assignments import load_assignment
from grader.assignments.build import build_submission_zip, reference_dir, submission_files
from grader.assignments.rpz_cnn.reference.numpy_nn import SE, Linear, ReLU, Sigmoid
from grader.assignments.rpz_cnn.reference.pytorch_cnn import (
    FCNet,
    FinetuneNet,
    MyNet,
    SimpleCNN,
    classify,
    pretrained_weights_path,
)

SPEC = load_assignment("rpz-cnn")
HERE = SPEC.reference_dir
SUBMISSION_FILES = SPEC.files

# ----------------------------------------------------------------------------- the seed notebook's own tests


def seed_linear() -> Linear:
    layer = Linear(3, 2)
    layer.W = np.array([[1.0, 0.6], [0.2, -0.2], [-0.6, -1.0]])
    layer.b = np.array([[-0.5, 0.5]])
    return layer


X_SEED = np.array([[-2.0, -1.2, -0.4], [0.4, 1.2, 2.0]])
DL_SEED = np.array([[-3.0, 1.2, -0.5], [-0.4, 2.2, 3.0]])


def test_linear_forward_seed_values() -> None:
    out = seed_linear().forward(X_SEED)
    testing.assert_array_almost_equal([[-2.5, -0.06], [-1.06, -1.5]], out, decimal=6)


def test_linear_backward_seed_values() -> None:
    layer = seed_linear()
    layer.forward(X_SEED)
    dx = layer.backward(np.array([[1.0, 1.33333333], [1.66666667, 2.0]]))
    testing.assert_array_almost_equal(
        [[1.8, -0.06666667, -1.93333333], [2.86666667, -0.06666667, -3.0]], dx, decimal=6
    )
    testing.assert_array_almost_equal(
        [
            [[-2.0, -2.66666667], [-1.2, -1.6], [-0.4, -0.53333333]],
            [[0.66666667, 0.8], [2.0, 2.4], [3.33333333, 4.0]],
        ],
        layer.dL_wrt_W,
        decimal=6,
    )
    testing.assert_array_almost_equal([[[1.0, 1.33333333]], [[1.66666667, 2.0]]], layer.dL_wrt_b, decimal=6)


def test_relu_seed_values() -> None:
    relu = ReLU()
    testing.assert_array_almost_equal([[0, 0, 0], [0.4, 1.2, 2.0]], relu.forward(X_SEED), decimal=6)
    testing.assert_array_almost_equal([[0.0, 0.0, 0.0], [-0.4, 2.2, 3.0]], relu.backward(DL_SEED), decimal=6)


def test_sigmoid_seed_values() -> None:
    sigmoid = Sigmoid()
    testing.assert_array_almost_equal(
        [[0.119203, 0.231475, 0.401312], [0.598688, 0.768525, 0.880797]], sigmoid.forward(X_SEED), decimal=6
    )
    testing.assert_array_almost_equal(
        [[-0.314981, 0.213473, -0.12013], [-0.096104, 0.391368, 0.314981]],
        sigmoid.backward(DL_SEED),
        decimal=6,
    )


def test_se_seed_values() -> None:
    se = SE()
    y = np.linspace(-2, 2, 1001)
    testing.assert_array_almost_equal(y**2, se.forward(y, 0 * y), decimal=6)
    y = np.linspace(-5, 5, 9)
    se.forward(y, 0.5 * y)
    testing.assert_array_almost_equal(
        [-5.0, -3.75, -2.5, -1.25, 0.0, 1.25, 2.5, 3.75, 5.0], se.backward(), decimal=6
    )


# ----------------------------------------------------------------------------- shapes and interface


def test_linear_init_shapes_and_params_are_the_layers_arrays() -> None:
    layer = Linear(5, 3)
    assert layer.W.shape == (5, 3) and layer.b.shape == (1, 3)
    assert np.all(layer.b == 0) and np.any(layer.W != 0)
    assert layer.params()["W"] is layer.W and layer.params()["b"] is layer.b
    x = np.random.default_rng(0).normal(size=(4, 5))
    layer.forward(x)
    layer.backward(np.ones((4, 3)))
    grads = layer.grads()
    assert grads["W"].shape == (4, 5, 3) and grads["b"].shape == (4, 1, 3)
    # The seed's update step works in place through params().
    before = layer.W.copy()
    for name, value in layer.params().items():
        value -= 0.1 * layer.grads()[name].mean(axis=0)
    testing.assert_allclose(layer.W, before - 0.1 * grads["W"].mean(axis=0))


def test_linear_batch_of_one() -> None:
    layer = seed_linear()
    out = layer.forward(X_SEED[:1])
    assert out.shape == (1, 2)
    assert layer.backward(np.ones((1, 2))).shape == (1, 3)
    assert layer.dL_wrt_W.shape == (1, 3, 2) and layer.dL_wrt_b.shape == (1, 1, 2)


@pytest.mark.parametrize("shape", [(7,), (2, 3), (2, 3, 4), (2, 3, 4, 5)])
@pytest.mark.parametrize("layer_cls", [ReLU, Sigmoid])
def test_activations_any_rank(layer_cls: type, shape: tuple[int, ...]) -> None:
    layer = layer_cls()
    x = np.random.default_rng(1).normal(size=shape)
    assert layer.forward(x).shape == shape
    assert layer.backward(np.ones(shape)).shape == shape
    assert layer.params() == {} and layer.grads() == {}


def test_sigmoid_is_stable_for_large_inputs() -> None:
    sigmoid = Sigmoid()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = sigmoid.forward(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0]))
        grad = sigmoid.backward(np.ones(5))
    testing.assert_allclose(out, [0.0, 1.9287498479639178e-22, 0.5, 1.0, 1.0], rtol=1e-12, atol=0)
    assert np.all(np.isfinite(grad))


# ----------------------------------------------------------------------------- numerical gradients


def numerical_grad(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of a scalar function ``f`` at ``x``."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = orig + eps
        plus = f(x)
        x[idx] = orig - eps
        minus = f(x)
        x[idx] = orig
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


@pytest.mark.parametrize("layer_cls", [ReLU, Sigmoid])
def test_activation_backward_matches_numerical_gradient(layer_cls: type) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 4, 2))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the ReLU kink
    g = rng.normal(size=x.shape)
    layer = layer_cls()
    layer.forward(x)
    analytic = layer.backward(g)
    testing.assert_allclose(
        analytic, numerical_grad(lambda v: float(np.sum(layer_cls().forward(v) * g)), x), atol=1e-6
    )


def test_linear_backward_matches_numerical_gradient() -> None:
    rng = np.random.default_rng(3)
    layer = Linear(4, 3, rng=rng)
    x = rng.normal(size=(5, 4))
    g = rng.normal(size=(5, 3))
    layer.forward(x)
    dx = layer.backward(g)
    testing.assert_allclose(
        dx, numerical_grad(lambda v: float(np.sum(layer.forward(v) * g)), x.copy()), atol=1e-6
    )
    # Per-sample gradients: sample i's loss depends on W and b only through row i of the output.
    W, b = layer.W.copy(), layer.b.copy()
    for i in range(len(x)):

        def loss_w(w: np.ndarray, i: int = i) -> float:
            return float(((x[i : i + 1] @ w + b) @ g[i]).item())

        def loss_b(bb: np.ndarray, i: int = i) -> float:
            return float(((x[i : i + 1] @ W + bb) @ g[i]).item())

        testing.assert_allclose(layer.dL_wrt_W[i], numerical_grad(loss_w, W.copy()), atol=1e-6)
        testing.assert_allclose(layer.dL_wrt_b[i], numerical_grad(loss_b, b.copy()), atol=1e-6)


def test_se_backward_matches_numerical_gradient() -> None:
    rng = np.random.default_rng(4)
    y, y_gt = rng.normal(size=(6, 1)), rng.normal(size=(6, 1))
    se = SE()
    se.forward(y, y_gt)
    testing.assert_allclose(
        se.backward(), numerical_grad(lambda v: float(SE().forward(v, y_gt).sum()), y.copy()), atol=1e-6
    )


def test_composed_network_trains() -> None:
    """The seed's training loop on a toy problem: Linear-ReLU-Linear-Sigmoid with the SE head."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 2))
    y = (x[:, :1] * x[:, 1:] > 0).astype(float)  # XOR-like quadrants
    model = [Linear(2, 16, rng=rng), ReLU(), Linear(16, 1, rng=rng), Sigmoid()]
    head = SE()

    def run(batch: np.ndarray) -> np.ndarray:
        for layer in model:
            batch = layer.forward(batch)
        return batch

    first = head.forward(run(x), y).mean()
    for _ in range(300):
        for i in range(0, len(x), 20):
            head.forward(run(x[i : i + 20]), y[i : i + 20])
            grad = head.backward()
            for layer in reversed(model):
                grad = layer.backward(grad)
            for layer in model:
                for name, value in layer.params().items():
                    value -= 0.5 * layer.grads()[name].mean(axis=0)
    last = head.forward(run(x), y).mean()
    assert last < 0.5 * first
    assert np.mean((run(x) > 0.5) == y) > 0.9


# ----------------------------------------------------------------------------- PyTorch part


@pytest.mark.parametrize("net_cls", [MyNet, FCNet, SimpleCNN])
def test_fashion_nets_output_log_probabilities(net_cls: type[torch.nn.Module]) -> None:
    model = net_cls()
    x = torch.rand(64, 1, 28, 28, requires_grad=True)
    out = model(x)
    assert torch.is_tensor(out) and out.requires_grad
    assert out.shape == (64, 10)
    testing.assert_allclose(out.exp().sum(dim=1).detach().numpy(), np.ones(64), rtol=1e-5)
    pred = classify(model, x)
    assert pred.shape == (64,) and pred.dtype == torch.int64
    assert int(pred.min()) >= 0 and int(pred.max()) < 10


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.usefixtures("no_network")
def test_finetune_net_default_builds_offline() -> None:
    model = FinetuneNet()
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(3, 3, 96, 96))
    assert out.shape == (3, 2)
    pred = classify(model, torch.rand(2, 3, 96, 96))
    assert pred.shape == (2,) and set(pred.tolist()) <= {0, 1}


@pytest.mark.slow
@pytest.mark.usefixtures("no_network")
def test_finetune_net_pretrained_loads_local_weights() -> None:
    model = FinetuneNet(load_pretrained=True)
    model.freeze_backbone()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"model.classifier.1.weight", "model.classifier.1.bias"}
    reference = torch.load(pretrained_weights_path(), weights_only=True)
    torch.testing.assert_close(model.model.features[0][0].weight, reference["features.0.0.weight"])


# ----------------------------------------------------------------------------- checkpoints


def load_checkpoint(name: str) -> dict[str, torch.Tensor]:
    path = HERE / name
    if not path.exists():
        pytest.skip(f"{path} not trained yet (python -m grader.assignments.rpz_cnn.train)")
    return torch.load(path, map_location="cpu", weights_only=True)


def test_model_checkpoint_loads_strictly_and_is_small() -> None:
    state = load_checkpoint("model.pt")
    MyNet().load_state_dict(state, strict=True)
    assert (HERE / "model.pt").stat().st_size < 2 * 2**20


@pytest.mark.usefixtures("no_network")
def test_finetuned_checkpoint_loads_strictly() -> None:
    state = load_checkpoint("finetuned.pt")
    FinetuneNet().load_state_dict(state, strict=True)


@pytest.mark.slow
def test_model_checkpoint_is_accurate_on_fashion_mnist_test() -> None:
    from grader.assignments.rpz_cnn.train import FASHION_DIR, accuracy, load_fashion_mnist

    if not (FASHION_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("FashionMNIST (Debian dataset-fashion-mnist) not installed")
    model = MyNet()
    model.load_state_dict(load_checkpoint("model.pt"))
    assert accuracy(model, *load_fashion_mnist("test")) >= 0.88


# ----------------------------------------------------------------------------- submission zips


def test_reference_submission_files_exist() -> None:
    assert reference_dir("rpz-cnn") == HERE
    for name in SUBMISSION_FILES:
        if name.endswith(".pt") and not (HERE / name).exists():
            pytest.skip(f"{name} not trained yet")
        assert (HERE / name).is_file(), name


@pytest.fixture
def trained() -> None:
    """Skip when the reference checkpoints have not been trained yet."""
    load_checkpoint("model.pt")
    load_checkpoint("finetuned.pt")


def zip_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


@pytest.mark.usefixtures("trained")
def test_build_submission_zip_root(tmp_path: Path) -> None:
    path = build_submission_zip("rpz-cnn", tmp_path / "good.zip")
    members = zip_members(path)
    assert sorted(members) == sorted(SUBMISSION_FILES)
    assert members == submission_files("rpz-cnn")
    torch.load(io.BytesIO(members["model.pt"]), weights_only=True)


@pytest.mark.usefixtures("trained")
def test_build_submission_zip_variants(tmp_path: Path) -> None:
    mutant = b"raise SystemExit(3)\n"
    path = build_submission_zip(
        "rpz-cnn",
        tmp_path,
        replace={"numpy_nn.py": mutant},
        omit=["finetuned.pt"],
        extra={"cnn.ipynb": b"{}"},
        folder="alice",
    )
    assert path == tmp_path / "rpz-cnn.zip"
    members = zip_members(path)
    assert sorted(members) == [
        "alice/cnn.ipynb",
        "alice/model.pt",
        "alice/numpy_nn.py",
        "alice/pytorch_cnn.py",
    ]
    assert members["alice/numpy_nn.py"] == mutant


def test_build_submission_zip_rejects_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        build_submission_zip("rpz-cnn", tmp_path / "x.zip", omit=["nope.py"])
    with pytest.raises(KeyError):
        build_submission_zip("no-such-assignment", tmp_path / "x.zip")


def test_mutants_quote_the_reference_files() -> None:
    """Every `find` string of mutants.toml still occurs in the reference file it edits."""
    import tomllib

    mutants = tomllib.loads((SPEC.folder / "mutants.toml").read_text())["mutants"]
    assert mutants
    for mutant in mutants:
        if "replace" in mutant:
            text = (HERE / mutant["replace"]["file"]).read_text()
            assert mutant["replace"]["find"] in text, mutant["name"]
        if "swap" in mutant:
            assert {mutant["swap"]["file"], mutant["swap"]["with"]} <= set(SUBMISSION_FILES), mutant["name"]


# ----------------------------------------------------------------------------- the student-style reference (loops)

STUDENTS = SPEC.folder / "students"


def load_student_module(style: str, name: str) -> types.ModuleType:
    """A student-style file imported under a name of its own, so that it never shadows the reference's modules."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"student_{style}_{name}", STUDENTS / style / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_student_style_loops_passes_the_handouts_own_cells() -> None:
    """The 'loops' solution was written from the handout alone: the notebook's own asserts (seed 003 lines 50-282)
    hold for it, with the grader's conventions nowhere in sight."""
    nn_ = load_student_module("loops", "numpy_nn")
    layer = nn_.Linear(3, 2)
    layer.W = np.array([[1.0, 0.6], [0.2, -0.2], [-0.6, -1.0]])
    layer.b = np.array([[-0.5, 0.5]])
    testing.assert_array_almost_equal([[-2.5, -0.06], [-1.06, -1.5]], layer.forward(X_SEED), decimal=6)
    dx = layer.backward(np.array([[1.0, 1.33333333], [1.66666667, 2.0]]))
    testing.assert_array_almost_equal([[1.8, -0.06666667, -1.93333333], [2.86666667, -0.06666667, -3.0]], dx,
                                      decimal=6)
    testing.assert_array_almost_equal([[[-2.0, -2.66666667], [-1.2, -1.6], [-0.4, -0.53333333]],
                                       [[0.66666667, 0.8], [2.0, 2.4], [3.33333333, 4.0]]], layer.dL_wrt_W, decimal=6)
    testing.assert_array_almost_equal([[[1.0, 1.33333333]], [[1.66666667, 2.0]]], layer.dL_wrt_b, decimal=6)
    relu = nn_.ReLU()
    testing.assert_array_almost_equal([[0, 0, 0], [0.4, 1.2, 2.0]], relu.forward(X_SEED), decimal=6)
    testing.assert_array_almost_equal([[0.0, 0.0, 0.0], [-0.4, 2.2, 3.0]], relu.backward(DL_SEED), decimal=6)
    sig = nn_.Sigmoid()
    testing.assert_array_almost_equal([[0.119203, 0.231475, 0.401312], [0.598688, 0.768525, 0.880797]],
                                      sig.forward(X_SEED), decimal=6)
    testing.assert_array_almost_equal([[-0.314981, 0.213473, -0.12013], [-0.096104, 0.391368, 0.314981]],
                                      sig.backward(DL_SEED), decimal=6)
    se, y = nn_.SE(), np.linspace(-5, 5, 9)
    se.forward(y, 0.5 * y)
    testing.assert_array_almost_equal([-5.0, -3.75, -2.5, -1.25, 0.0, 1.25, 2.5, 3.75, 5.0], se.backward(), decimal=6)
    assert nn_.Linear(5, 4).params()["W"] is not None and nn_.ReLU().params() == {}


@pytest.mark.usefixtures("no_network")
def test_student_style_loops_models_are_the_handouts_and_load_their_checkpoints() -> None:
    """MyNet has the Dropout and BatchNorm the handout suggests, FinetuneNet is the handout's ExampleFinetuneNet
    (a torchvision model whose last layer is replaced, built without downloading), and both load the checkpoints
    their training script wrote (students/loops/train.py) strictly, with weights_only=True."""
    cnn = load_student_module("loops", "pytorch_cnn")
    mynet = cnn.MyNet()
    kinds = {type(m) for m in mynet.modules()}
    assert {torch.nn.Dropout, torch.nn.BatchNorm2d} <= kinds
    mynet.load_state_dict(torch.load(STUDENTS / "loops" / "model.pt", weights_only=True), strict=True)
    assert (STUDENTS / "loops" / "model.pt").stat().st_size < 1 * 2**20
    net = cnn.FinetuneNet()
    net.load_state_dict(torch.load(STUDENTS / "loops" / "finetuned.pt", weights_only=True), strict=True)
    net.eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 96, 96)).shape == (2, 2)
    assert not hasattr(net, "mean")  # no ImageNet normalisation: the handout's ToTensor images go in as they are
