"""Why a network scores near chance on a hidden set: the usual convention slips, tested by the judge.

The judge holds the labels, so it can tell a student which slip would explain a near-chance accuracy without
revealing any label: only that the slip would raise the accuracy to about X (rounded), never a per-image fact.

* Class order (free: from the predictions already made): the best one-to-one renaming of the predicted classes,
  from the confusion matrix (``scipy.optimize.linear_sum_assignment``), e.g. "0-9 then A-Z" where the set
  numbers A-Z then 0-9.
* Outputs read the wrong way round (free, when the outputs are per-class scores): the smallest output instead of
  the largest, as with negative log-probabilities or losses.
* Images (a follow-up round of predictions on a subset, only for a near-chance result): transposed, flipped,
  inverted, or on another scale (0-255 instead of [0, 1]).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SUBSET = 600
"""Images of a hidden set the follow-up round predicts per image variant (about +-0.02 in accuracy)."""


def chance(classes: int) -> float:
    return 1.0 / max(classes, 1)


def near_chance(accuracy: float, classes: int, threshold: float) -> bool:
    """Below the bar and nearer chance than the bar: what a working network with a convention slip looks like."""
    c = chance(classes)
    return accuracy < threshold and accuracy <= c + 0.5 * max(threshold - c, 0.0)


def explains(candidate: float, accuracy: float, threshold: float) -> bool:
    """Whether a slip that would give `candidate` explains a result of `accuracy` against the bar `threshold`."""
    return candidate >= accuracy + 0.1 and candidate >= accuracy + 0.5 * (threshold - accuracy)


def relabelled(pred: np.ndarray, labels: np.ndarray, classes: int) -> tuple[float, np.ndarray]:
    """The accuracy under the best one-to-one renaming of the predicted classes, and the renaming
    (``mapping[p]`` = the set's class that predicted class p stands for)."""
    from scipy.optimize import linear_sum_assignment

    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (pred.astype(np.int64), labels.astype(np.int64)), 1)
    rows, cols = linear_sum_assignment(confusion, maximize=True)
    mapping = np.arange(classes)
    mapping[rows] = cols
    return float(confusion[rows, cols].sum()) / max(len(labels), 1), mapping


def order_words(mapping: np.ndarray, names: tuple[str, ...]) -> str:
    """The order of classes the predictions follow, in the set's names, as runs ("0-9 then A-Z"); "" when it
    would take more than four runs to say."""
    runs: list[tuple[int, int]] = []
    start = 0
    for p in range(1, len(mapping) + 1):
        if p == len(mapping) or mapping[p] != mapping[p - 1] + 1:
            runs.append((int(mapping[start]), int(mapping[p - 1])))
            start = p
    if len(runs) > 4 or len(names) != len(mapping):
        return ""
    return " then ".join(names[a] if a == b else f"{names[a]}-{names[b]}" for a, b in runs)


def class_order_hint(pred: np.ndarray, labels: np.ndarray, names: tuple[str, ...], threshold: float) -> str:
    """A sentence when a renaming of the predicted classes explains a near-chance accuracy, else ""."""
    accuracy = float(np.mean(pred == labels)) if len(labels) else 0.0
    if not near_chance(accuracy, len(names), threshold):
        return ""
    best, mapping = relabelled(pred, labels, len(names))
    if not explains(best, accuracy, threshold) or np.array_equal(mapping, np.arange(len(names))):
        return ""
    order = order_words(mapping, names)
    return (f"Your predictions match the classes in another order{f' ({order}?)' if order else ''}: numbered as "
            f"the hidden set numbers them, the accuracy would be about {best:.2f}. Check the label order in the "
            "conventions table.")


def scores_hint(scores: np.ndarray, labels: np.ndarray, threshold: float) -> str:
    """A sentence when the smallest of per-class outputs explains a near-chance accuracy (negative log-probabilities
    or losses where the largest output is taken as the prediction), else ""."""
    accuracy = float(np.mean(scores.argmax(axis=1) == labels))
    if not near_chance(accuracy, scores.shape[1], threshold):
        return ""
    smallest = float(np.mean(scores.argmin(axis=1) == labels))
    if not explains(smallest, accuracy, threshold):
        return ""
    return (f"Your outputs look like negative log-probabilities or losses: the grader takes the largest output as "
            f"the prediction, and the smallest would give an accuracy of about {smallest:.2f}. Return scores, "
            "probabilities or log-probabilities (larger = more likely).")


@dataclass(frozen=True, slots=True)
class Variant:
    """One way of showing a hidden set's images that a slip in the student's pipeline would undo."""

    name: str
    words: str
    """How the sentence names the slip: "your network expects transposed images"."""
    images: Callable[[np.ndarray], np.ndarray]
    """The shown uint8 (N, C, H, W) images -> the variant's (same dtype and range)."""
    scale: Callable[[float], float] = lambda s: s
    """The divisor of the pixel values -> the variant's."""


def variants(images: np.ndarray, scale: float) -> list[Variant]:
    """The image slips worth trying for a set: orientation for single-channel square images, scaling for all."""
    top = float(images.max()) if images.size else 255.0
    out: list[Variant] = []
    if images.ndim == 4 and images.shape[1] == 1 and images.shape[2] == images.shape[3]:
        out += [Variant("transposed", "transposed images (rows and columns swapped)",
                        lambda a: np.ascontiguousarray(a.transpose(0, 1, 3, 2))),
                Variant("flipped left-right", "images flipped left to right",
                        lambda a: np.ascontiguousarray(a[..., ::-1])),
                Variant("flipped upside down", "images flipped upside down",
                        lambda a: np.ascontiguousarray(a[..., ::-1, :]))]
    if images.ndim == 4 and images.shape[1] == 1:
        peak = np.uint8(min(255, round(top)))
        out.append(Variant("inverted", "inverted images (dark ink on a light background, or the other way round)",
                           lambda a: (peak - np.minimum(a, peak)).astype(np.uint8)))
    if scale != 1.0:
        out.append(Variant("0-255", f"pixel values from 0 to {top:g} (not divided by {scale:g})",
                           lambda a: a, lambda s: 1.0))
    elif top > 1:
        out.append(Variant("0-1", f"pixel values scaled to [0, 1] (divided by {top:g})", lambda a: a,
                           lambda s: top))
    return out


def subset(n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the images a follow-up round predicts."""
    return np.sort(rng.choice(n, size=min(n, SUBSET), replace=False))


def image_hint(results: dict[str, np.ndarray], words: dict[str, str], labels: np.ndarray, names: tuple[str, ...],
               accuracy: float, threshold: float) -> str:
    """The sentence for the image variant (possibly with the classes renamed) that best explains a near-chance
    accuracy, from the predictions of each variant on the subset; "" when none does."""
    best: tuple[float, str, str] | None = None
    for name, pred in results.items():
        plain = float(np.mean(pred == labels))
        renamed, mapping = relabelled(pred, labels, len(names))
        options = [(plain, "")]
        if not np.array_equal(mapping, np.arange(len(names))) and renamed >= plain + 0.1:
            order = order_words(mapping, names)
            options.append((renamed, f", with the classes in another order{f' ({order}?)' if order else ''}"))
        for acc, extra in options:
            if explains(acc, accuracy, threshold) and (best is None or acc > best[0] + 0.02):
                best = (acc, words[name], extra)
    if best is None:
        return ""
    acc, slip, extra = best
    return (f"Your network seems to expect {slip}{extra}: shown so, a sample of the hidden images would be "
            f"classified with an accuracy of about {acc:.2f}. Check the image orientation and scaling in the "
            "conventions table.")
