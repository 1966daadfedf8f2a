"""The operation interpreter: runs a judge-chosen script of calls against a submission's modules.

Inside the sandbox it drives the student's code; in the judge it drives the trusted reference solution
with the very same script, so that both produce comparable raw outputs. It never decides anything.

Op values: JSON literals, ``{"$in": name}`` (a fresh copy of a judge-provided input array),
``{"$ref": name}`` (an object kept by an earlier op's ``"as"``), ``{"$len": name, "add": k}`` and
``{"$dim": [name, index, axis], "add": k}`` (sizes of a kept object, e.g. of the weights a student saved).
"""

from __future__ import annotations

import importlib
import pickle
import sys
import time
import traceback
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import numpy as np

from . import op_messages as m
from .protocol import Failure, Op, OpBase, OpKind, Outcome, RawOp, op_from_wire
from .wire import WireError

T = TypeVar("T")
MAX_LIST = 1000
DATA_WAIT_S = 30.0
"""How long an op waits for the judge to show it a hidden set (the judge does so when the op starts)."""


class OpError(Exception):
    """A contract violation found by the harness (not raised by the student's code)."""


class ProtocolError(OpError):
    """An op the harness does not know, or one without the fields of its kind (a grader bug)."""


class Interpreter:
    def __init__(
        self,
        *,
        load_module: Callable[[str], ModuleType],
        inputs: Mapping[str, np.ndarray],
        data_dir: Path | None = None,
        submission_dir: Path | None = None,
    ) -> None:
        self.load_module = load_module
        self.inputs = inputs
        self.data_dir = data_dir
        self.submission_dir = submission_dir
        self.refs: dict[str, Any] = {}
        self.ops: dict[OpKind, Callable[[Any], Any]] = {
            OpKind.IMPORT: self.op_import, OpKind.NEW: self.op_new, OpKind.CALL: self.op_call,
            OpKind.VALUE: self.op_value, OpKind.GET: self.op_get, OpKind.NP_LOAD: self.op_np_load,
            OpKind.ASSIGN_STATE: self.op_assign_state, OpKind.SETATTR: self.op_setattr,
            OpKind.GETATTR: self.op_getattr, OpKind.GETITEM: self.op_getitem, OpKind.ISUB: self.op_isub,
            OpKind.SGD: self.op_sgd, OpKind.TORCH_PROBE: self.op_torch_probe, OpKind.KNOWN_NET: self.op_known_net,
            OpKind.TENSOR: self.op_tensor, OpKind.STATE_KEYS: self.op_state_keys,
            OpKind.TORCH_LOAD: self.op_torch_load, OpKind.LOAD_STATE_DICT: self.op_load_state_dict,
            OpKind.EVAL: self.op_eval, OpKind.PREDICT: self.op_predict,
        }
        """One method per op kind: the closed set of protocol.OpKind."""

    # -- values ---------------------------------------------------------------------------------
    def value(self, v: Any) -> Any:
        if isinstance(v, dict):
            if "$in" in v:
                return np.array(self.inputs[v["$in"]], copy=True)
            if "$ref" in v:
                return self.refs[v["$ref"]]
            if "$data" in v:
                return self._dataset(v)
            if "$len" in v:  # the size of a kept object, e.g. the number of weight arrays a student saved
                return len(self.refs[v["$len"]]) + int(v.get("add", 0))
            if "$dim" in v:  # one dimension of an array inside a kept object: {"$dim": [name, index, axis]}
                name, index, axis = v["$dim"]
                return int(np.shape(self.refs[name][index])[axis]) + int(v.get("add", 0))
            return {k: self.value(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        return v

    def data_file(self, name: str) -> Path:
        """The file of hidden set `name`; the judge links it in only while the op that needs it runs."""
        assert self.data_dir is not None
        path = self.data_dir / f"{name}.npy"
        deadline = time.monotonic() + DATA_WAIT_S
        while not path.exists():
            if time.monotonic() > deadline:
                raise OpError(f"the grader did not provide the hidden set {name} (grader problem)")
            time.sleep(0.002)
        return path

    def _dataset(self, v: Mapping[str, Any]) -> Any:
        """A judge-provided image set (``{"$data": name, "scale", "flatten", "torch"}``) as float32."""
        images = np.load(self.data_file(v["$data"]), allow_pickle=False)
        x = images.astype(np.float32) / np.float32(v.get("scale", 255.0))
        if v.get("flatten"):
            x = x.reshape(len(x), -1)
        if v.get("torch"):
            import torch

            return torch.from_numpy(x)
        return x.astype(np.float64) if v.get("float64") else x

    def _target(self, op: m.NewOp | m.CallOp | m.GetOp) -> Any:
        if op.module is not None and op.ref is None:
            mod = self.load_module(op.module)
            if op.name is None:
                return mod
            if not hasattr(mod, op.name):
                raise OpError(f"{op.module}.py does not define {op.name}")
            return getattr(mod, op.name)
        if op.ref is None:  # an op with no target (a grader bug): the KeyError it always gave
            raise KeyError("ref")
        return self.refs[op.ref]

    # -- ops ------------------------------------------------------------------------------------
    def run(self, op: Op | RawOp) -> Any:
        """Run one op (typed, or as a request carries it); its raw result (see `describe`), or None when it is
        not reported.

        Raises ProtocolError for an op that is not one of OpKind's with its kind's fields of their types."""
        if not isinstance(op, OpBase):
            try:
                op = op_from_wire(op)
            except WireError as exc:
                raise ProtocolError(f"the grader sent an op the harness cannot run ({exc}; grader bug)") from None
        result = self.ops[op.KIND](op)
        if op.as_ is not None:
            self.refs[op.as_] = result
        return describe(result) if op.reported else None

    def op_import(self, op: m.ImportOp) -> Any:
        self.load_module(op.module)
        return None

    def op_new(self, op: m.NewOp) -> Any:
        cls = self._target(op)
        return cls(*self.value(_or(op.args, [])), **self.value(_or(op.kwargs, {})))

    def op_call(self, op: m.CallOp) -> Any:
        target = self._target(op)
        fn = getattr(target, op.method) if op.method is not None else target
        return fn(*self.value(_or(op.args, [])), **self.value(_or(op.kwargs, {})))

    def op_value(self, op: m.ValueOp) -> Any:
        """A judge-chosen value (e.g. a dict of arrays) kept with "as" so later ops can inspect it."""
        return self.value(op.value)

    def op_get(self, op: m.GetOp) -> Any:
        """A module attribute itself (a function or class), e.g. to pass it as an argument."""
        return self._target(op)

    def op_np_load(self, op: m.NpLoadOp) -> Any:
        """np.load(allow_pickle=False) a submitted .npz: a dict of arrays, or with "list" arr_0, arr_1, ..."""
        assert self.submission_dir is not None
        with np.load(self.submission_dir / op.file, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if not op.as_list:
            return arrays
        names = [f"arr_{i}" for i in range(len(arrays))]
        if sorted(arrays) != sorted(names):
            raise OpError(f"{op.file} holds {sorted(arrays)}; expected arr_0, arr_1, ... "
                          f"(save it with np.savez('{op.file}', *weights))")
        return [arrays[n] for n in names]

    def op_assign_state(self, op: m.AssignStateOp) -> Any:
        """obj.a[0].W = state["a.0.W"] for every key of a loaded dict: saved tensors of hand-written layers."""
        obj, state = self.refs[op.ref], self.refs[op.state]
        if not isinstance(state, Mapping):
            raise OpError(f"the checkpoint holds a {type(state).__name__}; expected a dict of tensors")
        for key, value in state.items():
            *path, last = str(key).split(".")
            target = obj
            for part in path:
                target = target[int(part)] if part.isdigit() else getattr(target, part)
            old = getattr(target, last, None)
            if last.startswith("_") or old is None:
                raise OpError(f"checkpoint key '{key}': {type(target).__name__} has no attribute '{last}'")
            if tuple(getattr(old, "shape", ())) != tuple(getattr(value, "shape", ())):
                raise OpError(f"checkpoint key '{key}' has shape {tuple(getattr(value, 'shape', ()))}; the model's "
                              f"is {tuple(getattr(old, 'shape', ()))}")
            setattr(target, last, value)
        return sorted(str(k) for k in state)

    def op_setattr(self, op: m.SetattrOp) -> Any:
        setattr(self.refs[op.ref], op.attr, self.value(op.value))

    def op_getattr(self, op: m.GetattrOp) -> Any:
        obj = self.refs[op.ref]
        if not hasattr(obj, op.attr):
            raise OpError(f"{type(obj).__name__} has no attribute '{op.attr}'")
        return getattr(obj, op.attr)

    def op_getitem(self, op: m.GetitemOp) -> Any:
        container = self.refs[op.ref]
        key = op.key
        if isinstance(container, Mapping) and key not in container:
            keys = sorted(str(k) for k in container)
            shown = ", ".join(f"'{k}'" for k in keys[:20]) + (f", ... ({len(keys)} keys)" if len(keys) > 20 else "")
            raise OpError(f"there is no '{key}'; it has {shown or 'no keys'}")
        return container[key]

    def op_isub(self, op: m.IsubOp) -> Any:
        """``container[key] -= value``: the in-place update of the seed's training loop."""
        container = self.refs[op.ref]
        item = container[op.key]
        item -= self.value(op.value)
        container[op.key] = item

    def op_sgd(self, op: m.SgdOp) -> Any:
        """One step of the seed's update loop over a list of layers."""
        lr = float(op.lr)
        for name in op.layers:
            layer = self.refs[name]
            for param_name, param_value in layer.params().items():
                param_value -= lr * layer.grads()[param_name].mean(axis=0)

    # -- torch ops --------------------------------------------------------------------------------
    def op_torch_probe(self, op: m.TorchProbeOp) -> Any:
        """Forward a random input that requires grad; report raw facts about the output."""
        import torch

        net = self.refs[op.ref]
        gen = torch.Generator().manual_seed(int(op.seed))
        x = torch.rand(*op.shape, generator=gen, requires_grad=True)
        out = net(x)
        facts: dict[str, Any] = {"is_tensor": isinstance(out, torch.Tensor), "type": type(out).__name__}
        if isinstance(out, torch.Tensor):
            facts.update(shape=list(out.shape), dtype=str(out.dtype).removeprefix("torch."),
                         requires_grad=bool(out.requires_grad),
                         grad_fn=type(out.grad_fn).__name__ if out.grad_fn is not None else None,
                         finite=bool(torch.isfinite(out).all()))
            if out.requires_grad:
                out.float().sum().backward()  # type: ignore[no-untyped-call]
                facts["input_grad_abs_sum"] = float(x.grad.abs().sum()) if x.grad is not None else 0.0
        return facts

    def op_known_net(self, op: m.KnownNetOp) -> Any:
        """A model whose outputs the judge knows: the first ``classes`` pixels of each flattened image.

        For checking ``classify`` when the student's own untrained model gives the same class for every input
        (a constant classifier would agree with it). It has one parameter, so ``next(model.parameters())`` works.
        """
        import torch

        classes = int(op.classes)

        class KnownOutputs(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.zero = torch.nn.Parameter(torch.zeros(()))

            def forward(self, x: Any) -> Any:
                return x.reshape(len(x), -1)[:, :classes] + self.zero

        return KnownOutputs()

    def op_tensor(self, op: m.TensorOp) -> Any:
        """A float32 torch tensor from a judge-provided array (inputs for torch code)."""
        import torch

        dtype = _or(op.dtype, "float32")
        return torch.from_numpy(np.asarray(self.value(op.value), dtype=getattr(np, dtype)))

    def op_state_keys(self, op: m.StateKeysOp) -> Any:
        return {k: list(v.shape) for k, v in self.refs[op.ref].state_dict().items()}

    def op_torch_load(self, op: m.TorchLoadOp) -> Any:
        """torch.load(weights_only=True) a submitted checkpoint; report its keys and shapes."""
        import torch

        assert self.submission_dir is not None
        path = self.submission_dir / op.file
        try:
            state = torch.load(path, weights_only=True, map_location="cpu")
        except pickle.UnpicklingError:
            if not op.whole_model_of:
                raise
            state = self._whole_model_state(path, op.whole_model_of)
        self.refs[op.as_state] = state
        if not isinstance(state, Mapping):
            return {"type": type(state).__name__}
        return {"type": "dict", "keys": {str(k): list(getattr(v, "shape", [])) if hasattr(v, "shape")
                                         else None for k, v in state.items()}}

    def _whole_model_state(self, path: Path, main: str) -> Any:
        """The state_dict of a whole model saved by ``torch.save(model, ...)`` in a notebook, whose classes pickle
        names as ``__main__.X``: they are taken from the student's module `main` (made from that notebook).

        Unpickling runs the student's own pickle, here in the sandbox, like the rest of the student's code."""
        import torch

        module = self.load_module(main)

        class Unpickler(pickle.Unpickler):
            def find_class(self, mod: str, name: str) -> Any:
                if mod == "__main__":
                    if not hasattr(module, name):
                        raise OpError(f"{path.name} is a whole model whose class {name} your notebook does not "
                                      "define")
                    return getattr(module, name)
                return super().find_class(mod, name)

        pickle_module = types.SimpleNamespace(Unpickler=Unpickler, load=pickle.load, __name__="pickle")
        model = torch.load(path, weights_only=False, map_location="cpu", pickle_module=pickle_module)
        if isinstance(model, torch.nn.Module):
            return model.state_dict()
        return model

    def op_load_state_dict(self, op: m.LoadStateDictOp) -> Any:
        self.refs[op.ref].load_state_dict(self.refs[op.state], strict=True)

    def op_eval(self, op: m.EvalOp) -> Any:
        self.refs[op.ref].eval()

    def op_predict(self, op: m.PredictOp) -> Any:
        """Run ``fn(net, x)`` over an image array in batches; return the concatenated predictions."""
        import torch

        net = self.refs[op.ref]
        fn = self.load_module(op.fn_module).__dict__.get(op.fn)
        if fn is None:
            raise OpError(f"{op.fn_module}.py does not define {op.fn}")
        images = np.load(self.data_file(op.data), mmap_mode="r", allow_pickle=False)
        scale = float(_or(op.scale, 255.0))
        batch = int(_or(op.batch, 256))
        end = min(len(images), int(_or(op.limit, len(images))))  # the judge times its reference on one batch
        preds = []
        with torch.no_grad():
            for i in range(0, end, batch):
                x = torch.from_numpy(np.asarray(images[i:i + batch], dtype=np.float32) / scale)
                p = fn(net, x)
                p = p.detach().cpu().numpy() if isinstance(p, torch.Tensor) else np.asarray(p)
                if p.shape != (len(x),):
                    raise OpError(f"{op.fn}(model, x) returned shape {tuple(p.shape)} for a batch of "
                                  f"{len(x)}; expected ({len(x)},)")
                preds.append(p)
        return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def _or(v: T | None, default: T) -> T:
    """An optional field's value, or its default when it is not set."""
    return default if v is None else v


def describe(v: Any, depth: int = 0) -> Any:
    """Raw, wire-safe description of a value returned by student (or reference) code."""
    if depth > 6:
        return {"$object": "nested too deeply"}
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, np.ndarray):
        return v if v.dtype != object else {"$object": "object array"}
    if isinstance(v, np.generic):
        return v.item() if not isinstance(v, np.object_) else {"$object": "object scalar"}
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(v, torch.Tensor):
        return _describe_tensor(torch, v)
    if isinstance(v, Mapping):
        return {"$dict": {str(k): describe(x, depth + 1) for k, x in list(v.items())[:MAX_LIST]}}
    if isinstance(v, list | tuple):
        return {"$list": [describe(x, depth + 1) for x in v[:MAX_LIST]], "type": type(v).__name__}
    return {"$object": type(v).__name__}


def _describe_tensor(torch: Any, v: Any) -> Any:
    """A tensor (subclasses included: Parameter, a student's own class) as a plain one's facts and values."""
    try:
        with torch._C.DisableTorchFunctionSubclass():
            plain = torch.Tensor.as_subclass(v, torch.Tensor)
            facts = {"dtype": str(plain.dtype).removeprefix("torch."), "requires_grad": bool(plain.requires_grad),
                     "grad_fn": type(plain.grad_fn).__name__ if plain.grad_fn is not None else None}
            t = plain.detach().cpu()
            if t.is_complex() or t.layout != torch.strided:
                return {"$tensor": None, **facts}
            if t.dtype == torch.bfloat16:
                t = t.float()
            return {"$tensor": t.numpy(), **facts}
    except Exception as exc:  # noqa: BLE001 - a tensor the grader cannot read is reported as such
        return {"$object": f"{type(v).__name__} (a tensor that cannot be read: {type(exc).__name__})"}


def error_info(exc: BaseException, *, submission_dir: Path | None) -> Failure:
    """The failure of an op that raised: type, message and the innermost frame in the student's own files.

    RAISED for the student's exceptions, FAILED for the harness's own findings (OpError), MALFORMED for an op
    the harness does not know (ProtocolError)."""
    where = ""
    tb = traceback.extract_tb(exc.__traceback__)
    if submission_dir is not None:
        own = [f for f in tb if f.filename.startswith(str(submission_dir))]
        if own:
            f = own[-1]
            where = f"{Path(f.filename).name} line {f.lineno}, in {f.name}"
    outcome = (Outcome.MALFORMED if isinstance(exc, ProtocolError) else
               Outcome.FAILED if isinstance(exc, OpError) else Outcome.RAISED)
    return Failure(outcome=outcome, type=type(exc).__name__, message=str(exc)[:1500], where=where)


def module_loader(submission_dir: Path) -> Callable[[str], ModuleType]:
    """Import student modules by name from the submission folder (first import runs their code)."""

    def load(name: str) -> ModuleType:
        if name in sys.modules:
            return sys.modules[name]
        if not (submission_dir / f"{name}.py").is_file():
            raise OpError(f"{name}.py is missing")
        if str(submission_dir) not in sys.path:
            sys.path.insert(0, str(submission_dir))
        return importlib.import_module(name)

    return load
