"""Code similarity (grader.similarity) at the scale of a big course: 1,000 synthetic numpy_nn.py submissions.

The population, each file starting with the same template code (the handout's plotting helpers, given to
find_pairs as the template, as an assignment's template/ folder would be):

* independent students: each writes every method (Linear init/forward/backward/params/grads, ReLU, Sigmoid and
  SE forward/backward) in one of several ways (the reference's, the student-style loops', and others:
  einsum, np.where, clip, tanh, in-place masks, ...), with their own names, comments, docstrings or none,
  type hints or none, asserts or none, and their own order of methods and classes;
* planted copies: a student takes another's file (or the reference, or the loops solution) and renames every
  identifier, reorders classes and methods and rewrites comments (tests/similarity_copies.disguised); a few
  copiers also rewrite one or two methods of their own.

Prints the wall time (fingerprinting, candidate pairs, comparisons), the pairs found, the planted pairs found
and the pairs found that were not planted, and the load (`uptime`) before and after.

    .venv/bin/python bench/similarity.py [--students 1000] [--planted 12] [--threshold 0.5] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.similarity import Params, find_pairs  # noqa: E402
from tests.similarity_copies import disguised  # noqa: E402

REFERENCE = (ROOT / "grader/assignments/rpz_cnn/reference/numpy_nn.py").read_text()
LOOPS = (ROOT / "grader/assignments/rpz_cnn/students/loops/numpy_nn.py").read_text()
TEMPLATE = LOOPS[LOOPS.index("def load_data"):]
"""The handout's helpers (load_data, visualize_*, show_classification): in every file, and the template."""

# Ways to write each method. {x} {g} {y} {t} {out} {c} {w} {b} {dw} {db} {i} {n} are the student's names;
# {T:...} a type hint written only by students who write them. Body lines are indented by 8 spaces.
WAYS: dict[str, list[str]] = {
    "Linear.__init__": [
        "self.{w} = np.random.randn({i}, {n}) * 0.01\nself.{b} = np.zeros((1, {n}))",
        "rng = np.random.default_rng()\nself.{w} = rng.normal(0.0, np.sqrt(2.0 / {i}), size=({i}, {n}))\n"
        "self.{b} = np.zeros((1, {n}))",
        "limit = np.sqrt(6 / ({i} + {n}))\nself.{w} = np.random.uniform(-limit, limit, size=({i}, {n}))\n"
        "self.{b} = np.zeros({n})[None, :]",
        "self.{w} = np.random.randn({i}, {n}) / 100\nself.{b} = np.random.randn(1, {n}) / 100",
        "self.{w} = np.random.standard_normal(({i}, {n})) / np.sqrt({i})\nself.{b} = np.full((1, {n}), 0.0)",
        "scale = 1.0 / np.sqrt({i})\nself.{w} = scale * (2 * np.random.rand({i}, {n}) - 1)\n"
        "self.{b} = scale * (2 * np.random.rand(1, {n}) - 1)",
    ],
    "Linear.forward": [
        "self.{c} = {x}\nreturn {x} @ self.{w} + self.{b}",
        "self.{c} = {x}.copy()\n{out} = np.dot({x}, self.{w})\n{out} += self.{b}\nreturn {out}",
        "self.{c} = {x}.copy()\nbatch = {x}.shape[0]\n{out} = np.zeros((batch, self.{w}.shape[1]))\n"
        "for k in range(batch):\n    {out}[k, :] = np.dot({x}[k, :], self.{w}) + self.{b}[0, :]\nreturn {out}",
        "self.{c} = {x}\nreturn np.einsum('bi,io->bo', {x}, self.{w}) + self.{b}",
        "self.{c} = np.asarray({x}, dtype=float)\n{out} = self.{c}.dot(self.{w}) + self.{b}\nreturn {out}",
        "self.{c} = {x}\nreturn np.matmul({x}, self.{w}) + self.{b}.reshape(1, -1)",
    ],
    "Linear.backward": [
        "self.{dw} = self.{c}[:, :, np.newaxis] * {g}[:, np.newaxis, :]\n"
        "self.{db} = {g}[:, np.newaxis, :].copy()\nreturn {g} @ self.{w}.T",
        "batch, fan_in = self.{c}.shape\nself.{dw} = np.zeros((batch, fan_in, self.{w}.shape[1]))\n"
        "self.{db} = np.zeros((batch, 1, self.{w}.shape[1]))\n{out} = np.zeros((batch, fan_in))\n"
        "for k in range(batch):\n    self.{dw}[k] = np.outer(self.{c}[k], {g}[k])\n    self.{db}[k, 0] = {g}[k]\n"
        "    {out}[k] = np.dot(self.{w}, {g}[k])\nreturn {out}",
        "self.{dw} = np.einsum('bi,bo->bio', self.{c}, {g})\nself.{db} = np.expand_dims({g}, 1)\n"
        "return np.dot({g}, self.{w}.T)",
        "batch = {g}.shape[0]\nself.{dw} = np.stack([np.outer(self.{c}[k], {g}[k]) for k in range(batch)])\n"
        "self.{db} = {g}.reshape(batch, 1, -1)\n{out} = {g}.dot(self.{w}.transpose())\nreturn {out}",
        "self.{dw} = np.matmul(self.{c}[:, :, None], {g}[:, None, :])\nself.{db} = {g}[:, None]\n"
        "return np.matmul({g}, np.transpose(self.{w}))",
    ],
    "Linear.params": ["return {{'W': self.{w}, 'b': self.{b}}}", "return dict(W=self.{w}, b=self.{b})",
                      "d = {{}}\nd['W'] = self.{w}\nd['b'] = self.{b}\nreturn d"],
    "Linear.grads": ["return {{'W': self.{dw}, 'b': self.{db}}}", "return dict(W=self.{dw}, b=self.{db})",
                     "d = {{}}\nd['W'] = self.{dw}\nd['b'] = self.{db}\nreturn d"],
    "ReLU.forward": [
        "self.{c} = {x}\nreturn np.maximum({x}, 0.0)", "self.{c} = {x} > 0\nreturn np.where(self.{c}, {x}, 0.0)",
        "self.{c} = {x}\nreturn {x} * ({x} > 0)", "self.{c} = {x}.copy()\n{out} = {x}.copy()\n"
        "{out}[{out} < 0] = 0\nreturn {out}", "self.{c} = {x}\nreturn np.clip({x}, 0, None)",
        "self.{c} = np.asarray({x})\nreturn (np.abs(self.{c}) + self.{c}) / 2",
    ],
    "ReLU.backward": [
        "return {g} * (self.{c} > 0)", "return np.where(self.{c} > 0, {g}, 0.0)",
        "mask = self.{c} > 0\n{out} = {g}.copy()\n{out}[~mask] = 0\nreturn {out}",
        "return {g} * (self.{c} > 0).astype(float)", "return {g} * np.heaviside(self.{c}, 0.0)",
        "{out} = np.zeros_like({g})\n{out}[self.{c} > 0] = {g}[self.{c} > 0]\nreturn {out}",
    ],
    "Sigmoid.forward": [
        "self.{y} = 1.0 / (1.0 + np.exp(-{x}))\nreturn self.{y}",
        "{x} = np.asarray({x}, dtype=float)\ne = np.exp(-np.abs({x}))\n"
        "self.{y} = np.where({x} >= 0, 1.0 / (1.0 + e), e / (1.0 + e))\nreturn self.{y}",
        "self.{y} = 0.5 * (1 + np.tanh(0.5 * {x}))\nreturn self.{y}",
        "self.{y} = np.exp({x}) / (1 + np.exp({x}))\nreturn self.{y}",
        "{out} = np.reciprocal(1.0 + np.exp(-{x}))\nself.{y} = {out}\nreturn {out}",
        "self.{c} = {x}\nreturn 1 / (1 + np.exp(-{x}))",
    ],
    "Sigmoid.backward": [
        "return {g} * self.{y} * (1.0 - self.{y})", "s = self.{y}\nreturn {g} * s * (1 - s)",
        "d = self.{y} - self.{y} ** 2\nreturn {g} * d",
        "s = 1 / (1 + np.exp(-self.{c}))\nreturn {g} * s * (1 - s)",
        "return np.multiply({g}, self.{y} * (1 - self.{y}))",
    ],
    "SE.forward": [
        "self.{y} = {x}\nself.{t} = {g}\nreturn ({x} - {g}) ** 2",
        "self.{c} = {x} - {g}\nreturn np.square(self.{c})",
        "self.{c} = {x} - {g}\nreturn self.{c} * self.{c}",
        "self.{y}, self.{t} = {x}, {g}\nreturn np.power({x} - {g}, 2)",
    ],
    "SE.backward": [
        "return 2.0 * (self.{y} - self.{t})", "return 2 * self.{c}", "return self.{c} + self.{c}",
        "return np.multiply(2, self.{y} - self.{t})",
    ],
}
SIGNATURES = {"__init__": "self, {i}{T:: int}, {n}{T:: int}", "forward": "self, {x}{T:: np.ndarray}",
              "backward": "self, {g}{T:: np.ndarray}", "params": "self", "grads": "self"}
NAMES = {"x": ["x", "inp", "X", "data", "a", "inputs"], "g": ["dL_wrt_output", "grad", "dout", "g", "upstream", "delta"],
         "y": ["y", "out_cache", "s", "activation", "sig", "y_pred"], "t": ["y_gt", "target", "t", "labels", "truth"],
         "out": ["out", "result", "res", "z", "ret", "output"], "c": ["x", "cache", "inp", "last_input", "saved", "mem"],
         "w": ["W"], "b": ["b"], "dw": ["dL_wrt_W", "dW", "grad_W", "gW"], "db": ["dL_wrt_b", "db", "grad_b", "gb"],
         "i": ["input_dim", "n_in", "d_in", "fan_in"], "n": ["output_dim", "n_out", "d_out", "fan_out"]}
COMMENTS = ["# forward pass", "# cache for backward", "# per-sample gradients", "# derivative", "# TODO",
            "# vectorised", "# chain rule", "# as in the lecture", "# shape (B, out)"]


def student(rng: random.Random) -> str:
    """One independent numpy_nn.py: a way per method, the student's names, style and order."""
    hints, docs, asserts, comments = (rng.random() < 0.4, rng.random() < 0.5, rng.random() < 0.3, rng.random())
    names = {k: rng.choice(v) for k, v in NAMES.items()}
    hab = {"floats": rng.choice(["as is", "int", "float"]), "temp": rng.random() < 0.4,
           "cache": rng.choice(["", ".copy()", "np.array"]), "asarray": rng.random() < 0.25,
           "parens": rng.random() < 0.2, "shape": rng.random() < 0.3}

    def fill(text: str) -> str:
        text = text.replace("{T:", "\0")
        parts = text.split("\0")
        out = parts[0]
        for p in parts[1:]:
            hint, rest = p.split("}", 1)
            out += (hint if hints else "") + rest
        return out.format(**names)

    classes = []
    for cls in ("Linear", "ReLU", "Sigmoid", "SE"):
        methods = []
        for m in ("__init__", "forward", "backward", "params", "grads"):
            key = f"{cls}.{m}"
            if key in WAYS:
                body = fill(rng.choice(WAYS[key]))
            elif m == "__init__":
                body = "\n".join(f"self.{names[k]} = None" for k in ("c", "y") if rng.random() < 0.7) or "pass"
            else:
                body = rng.choice(["return {}", "return dict()"])
            if cls == "SE" and m in ("forward", "backward"):
                sig = fill("self, {x}{T:: np.ndarray}, {g}{T:: np.ndarray}") if m == "forward" else "self"
            else:
                sig = "self" if m == "__init__" and cls != "Linear" else fill(SIGNATURES[m])
            lines = habits(body, hab, names, rng).split("\n")
            if asserts and m == "backward" and cls != "SE":
                lines.insert(0, f"assert self.{names['c']} is not None, 'call forward first'")
            if comments < 0.6 and rng.random() < 0.5:
                lines.insert(rng.randrange(len(lines)), rng.choice(COMMENTS))
            if docs and m in ("forward", "backward"):
                lines.insert(0, f'"""{rng.choice(["Forward pass.", "Backward pass.", "See the handout."])}"""')
            head = f"    def {m}({sig}){' -> np.ndarray' if hints and m in ('forward', 'backward') else ''}:"
            methods.append(head + "\n" + "\n".join("        " + line for line in lines))
        if rng.random() < 0.3:
            rng.shuffle(methods)
        doc = f'    """{cls} layer."""\n\n' if docs else ""
        classes.append(f"class {cls}:\n{doc}" + "\n\n".join(methods))
    if rng.random() < 0.3:
        rng.shuffle(classes)
    return "import numpy as np\nimport matplotlib.pyplot as plt\n\n\n" + "\n\n\n".join(classes) + "\n\n\n" + TEMPLATE


def habits(body: str, hab: dict[str, object], names: dict[str, str], rng: random.Random) -> str:
    """A student's habits applied to one method body: how they write numbers, whether they return an
    expression or a named result, how they keep the input for backward, and a few more."""
    if hab["floats"] == "int":
        body = re.sub(r"\b(\d)\.0\b", r"\1", body)
    elif hab["floats"] == "float":
        body = re.sub(r"(?<![\w.'])([0-2])(?![\w.'])", r"\1.0", body)
    lines = body.split("\n")
    last = lines[-1]
    if hab["temp"] and last.startswith("return ") and not last.startswith("return self.") and rng.random() < 0.7:
        lines[-1:] = [f"{names['out']}_ = {last[7:]}", f"return {names['out']}_"]
    elif hab["parens"] and last.startswith("return ") and "{" not in last:
        lines[-1] = f"return ({last[7:]})"
    c, x = names["c"], names["x"]
    for k, line in enumerate(lines):
        if line == f"self.{c} = {x}" and hab["cache"]:
            lines[k] = f"self.{c} = {x}.copy()" if hab["cache"] == ".copy()" else f"self.{c} = np.array({x})"
    if hab["asarray"] and any(f"({x}" in line or f" {x}" in line for line in lines) and "self.{c} = np.as" not in body:
        lines.insert(0, f"{x} = np.asarray({x})")
    if hab["shape"] and "shape[0]" not in body and "batch" not in body and rng.random() < 0.3:
        lines.insert(0, f"batch_size = {x}.shape[0]")
    return "\n".join(lines)


def rewrite_methods(source: str, rng: random.Random, count: int) -> str:
    """`source` with `count` of its methods written another way (a copier's own touch): the body of a method
    replaced by one taken from an independent student's file."""
    other = student(rng)
    for _ in range(count):
        name = rng.choice(["forward", "backward"])
        cls = rng.choice(["ReLU", "Sigmoid"])
        mine, theirs = _method(source, cls, name), _method(other, cls, name)
        if mine and theirs:
            source = source.replace(mine, theirs)
    return source


def _method(source: str, cls: str, name: str) -> str | None:
    import ast

    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for m in node.body:
                if isinstance(m, ast.FunctionDef) and m.name == name:
                    return "\n".join(source.splitlines()[m.lineno - 1:m.end_lineno])
    return None


def population(n: int, planted: int, seed: int) -> tuple[dict[str, dict[str, str]], set[frozenset[str]]]:
    rng = random.Random(seed)
    files = {f"s{k:04d}": student(rng) for k in range(n)}
    names = sorted(files)
    copies: set[frozenset[str]] = set()
    # the reference and the loops solution copied, each by two students (who then match each other too)
    sources = [REFERENCE.split("\n\n\n# ---")[0] + "\n\n\n" + TEMPLATE, LOOPS]
    victims = rng.sample(names, 4 + 2 * planted)
    for k, src in enumerate(sources):
        a, b = victims[2 * k], victims[2 * k + 1]
        files[a], files[b] = disguised(src, seed=rng.randrange(10**6)), disguised(src, seed=rng.randrange(10**6))
        copies.add(frozenset((a, b)))
    for k in range(planted):
        original, copier = victims[4 + 2 * k], victims[5 + 2 * k]
        text = disguised(files[original], seed=rng.randrange(10**6))
        if k % 3 == 2:
            text = rewrite_methods(text, rng, count=2)
        files[copier] = text
        copies.add(frozenset((original, copier)))
    return {u: {"numpy_nn.py": t} for u, t in files.items()}, copies


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except OSError:
        return "(uptime not available)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--students", type=int, default=1000)
    ap.add_argument("--planted", type=int, default=12, help="planted copies of generated students (plus 2 pairs "
                    "copying the reference and the loops solution)")
    ap.add_argument("--threshold", type=float, default=Params().threshold)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--show", type=int, default=5, help="print the best pairs that were not planted")
    args = ap.parse_args()
    print(f"load before: {uptime()}")
    students, planted = population(args.students, args.planted, args.seed)
    stages: dict[str, float] = {}
    t0 = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        stages[stage] = time.perf_counter() - t0
        stages[stage + "_n"] = total

    pairs = find_pairs(students, {"numpy_nn.py": TEMPLATE}, Params(threshold=args.threshold), progress=progress)
    wall = time.perf_counter() - t0
    found = {frozenset((p.student_a, p.student_b)) for p in pairs}
    false = [p for p in pairs if frozenset((p.student_a, p.student_b)) not in planted]
    fp_s = stages.get("fingerprint", 0.0)
    print(f"{args.students} students, {len(planted)} planted pairs, threshold {args.threshold}")
    print(f"wall {wall:.1f} s (fingerprints {fp_s:.1f} s; index and {int(stages.get('compare_n', 0))} candidate "
          f"comparisons {wall - fp_s:.1f} s)")
    print(f"pairs found {len(pairs)}, planted found {len(found & planted)} of {len(planted)}, "
          f"false pairs {len(false)}")
    scores = sorted(p.score for p in pairs if frozenset((p.student_a, p.student_b)) in planted)
    if scores:
        print(f"  planted pairs' scores: lowest {scores[0]:.3f}, median {scores[len(scores) // 2]:.3f}")
    if false:
        print(f"  false pairs' scores: highest {false[0].score:.3f}; above the lowest planted: "
              f"{sum(p.score >= (scores[0] if scores else 1.0) for p in false)}")
    for p in false[: args.show]:
        print(f"  false: {p.student_a} {p.student_b} {p.score:.3f}")
    missed = planted - found
    for m in sorted(sorted(m) for m in missed):
        print(f"  missed planted: {m[0]} {m[1]}")
    print(f"load after: {uptime()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
