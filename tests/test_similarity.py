"""Issue 14, code similarity (grader.similarity): real copies of numpy_nn.py are flagged, honest solutions written
independently are not, and template code everyone shares does not count."""

from __future__ import annotations

import itertools
import json
import random
import re
from pathlib import Path

import pytest

from tests.similarity_copies import disguised, recommented, renamed, reordered
from tests.similarity_honest import HONEST
from tests.tooling import import_tool

import_tool("copydetect")

from grader.similarity import Params, find_pairs, notebook_text  # noqa: E402
from grader.similarity.code import filtered, units  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RPZ = ROOT / "grader/assignments/rpz_cnn"
REFERENCE = (RPZ / "reference/numpy_nn.py").read_text()
LOOPS = (RPZ / "students/loops/numpy_nn.py").read_text()
LAYERS = LOOPS[: LOOPS.index("# ------")]
"""The loops solution's layers without the handout's helpers after them (tests of the template add those)."""
HELPERS = LOOPS[LOOPS.index("def load_data"):]


def pairs_of(files: dict[str, str], template: dict[str, str] | None = None, **params: object) -> dict[frozenset[str], float]:
    pairs = find_pairs({u: {"numpy_nn.py": t} for u, t in files.items()}, template, Params(**params))  # type: ignore[arg-type]
    return {frozenset((p.student_a, p.student_b)): p.score for p in pairs}


def flagged(a: str, b: str, **params: object) -> float:
    """The score of the pair (a, b) if it is flagged, else 0."""
    return pairs_of({"a": a, "b": b}, **params).get(frozenset("ab"), 0.0)


@pytest.mark.parametrize("original", [REFERENCE, LOOPS], ids=["reference", "loops"])
def test_the_same_file_resubmitted_is_flagged(original):
    assert flagged(original, original) == 1.0


@pytest.mark.parametrize("original", [REFERENCE, LOOPS], ids=["reference", "loops"])
def test_renamed_variables_are_flagged(original):
    copy = renamed(original, random.Random(1))
    assert len(set(re.findall(r"\w+", copy)) - set(re.findall(r"\w+", original))) > 10  # really renamed
    assert flagged(original, copy) >= 0.95


@pytest.mark.parametrize("original", [REFERENCE, LOOPS], ids=["reference", "loops"])
def test_reordered_functions_are_flagged(original):
    copy = reordered(original, random.Random(2))
    assert copy.index("class Linear") != original.index("class Linear") or copy.index("def forward") != original.index("def forward")
    assert flagged(original, copy) >= 0.95


@pytest.mark.parametrize("original", [REFERENCE, LOOPS], ids=["reference", "loops"])
def test_comments_and_whitespace_changed_are_flagged(original):
    copy = recommented(original, random.Random(3))
    assert copy != original
    assert flagged(original, copy) >= 0.95


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("original", [REFERENCE, LOOPS], ids=["reference", "loops"])
def test_renamed_reordered_and_recommented_together_are_flagged(original, seed):
    assert flagged(original, disguised(original, seed)) >= 0.9


def test_renamed_copy_is_missed_without_identifier_normalisation():
    """What the normalisation buys (and the renaming tests would catch if it were off)."""
    copy = recommented(renamed(REFERENCE, random.Random(1)), random.Random(1))
    assert flagged(REFERENCE, copy) >= 0.9
    assert flagged(REFERENCE, copy, normalise=False) == 0.0


HONEST_FILES = {"reference": REFERENCE, "loops": LAYERS, **HONEST}


@pytest.mark.parametrize("a,b", list(itertools.combinations(sorted(HONEST_FILES), 2)))
def test_solutions_written_independently_are_not_flagged(a, b):
    score = pairs_of({a: HONEST_FILES[a], b: HONEST_FILES[b]}, threshold=0.05).get(frozenset((a, b)), 0.0)
    assert score < 0.35, f"{a} and {b} look similar: {score}"


def test_no_honest_pair_among_many_is_flagged_but_the_copies_are():
    files = dict(HONEST_FILES)
    files["copier1"] = disguised(HONEST["functional"], 5)
    files["copier2"] = disguised(LAYERS, 6)
    assert set(pairs_of(files)) == {frozenset(("functional", "copier1")), frozenset(("loops", "copier2"))}


def test_template_code_everyone_has_does_not_make_honest_pairs_similar():
    """The handout's helpers in everyone's file: without the template they make two honest files look alike."""
    files = {name: HONEST_FILES[name] + "\n\n" + HELPERS for name in ("functional", "base_class", "verbose")}
    assert pairs_of(files, threshold=0.5)  # the shared helpers alone flag honest pairs ...
    assert pairs_of(files, {"numpy_nn.py": HELPERS}, threshold=0.3) == {}  # ... and are excluded as the template


def test_template_does_not_hide_a_copy():
    files = {"a": REFERENCE + "\n\n" + HELPERS, "b": disguised(REFERENCE, 7) + "\n\n" + HELPERS,
             "c": HONEST["verbose"] + "\n\n" + HELPERS}
    assert set(pairs_of(files, {"numpy_nn.py": HELPERS})) == {frozenset("ab")}


def test_code_nearly_everyone_writes_the_same_way_does_not_count():
    """Fingerprints held by more than common_share of the students (and at least common_min) are dropped."""
    shared = "\n\n".join(f"def helper_{k}(values, scale):\n    shifted = np.maximum(values - {k}, 0.0) * scale\n"
                         f"    return np.sqrt(shifted + {k}) / (1.0 + np.abs(values).sum(axis={k % 2}))"
                         for k in range(20))
    files = {f"s{k:02d}": HONEST_FILES[list(HONEST_FILES)[k % 5]] + "\n\n" + shared for k in range(25)}
    counted = pairs_of(files, threshold=0.5, common_min=1000)  # nothing counts as common: honest pairs flagged
    assert any(frozenset(("s00", f"s{k:02d}")) in counted for k in (1, 2, 3, 4))
    dropped = pairs_of(files, threshold=0.5, common_share=0.5, common_min=10)
    assert not any(frozenset(("s00", f"s{k:02d}")) in dropped for k in (1, 2, 3, 4))
    assert frozenset(("s00", "s05")) in dropped  # the same solution still matches its twins


def test_matching_lines_point_at_the_copied_class():
    """One class copied into an otherwise independent file: the regions are that class on both sides."""
    linear = re.search(r"^class Linear.*?(?=^class )", LOOPS, flags=re.M | re.S).group(0)
    inserted = renamed(linear, random.Random(4))
    mixed = HONEST["verbose"].replace("class ReLU", inserted + "\n\nclass ReLU")
    got = find_pairs({"a": {"numpy_nn.py": LOOPS}, "b": {"numpy_nn.py": mixed}}, params=Params(threshold=0.1))
    assert len(got) == 1
    f = got[0].files[0]
    first_a = LOOPS[: LOOPS.index(linear)].count("\n") + 1
    first_b = mixed[: mixed.index(inserted)].count("\n") + 1
    for lines, first, size in ((f.lines_a, first_a, linear.count("\n")), (f.lines_b, first_b, inserted.count("\n"))):
        inside = [(a, b) for a, b in lines if first <= a and b <= first + size]
        outside = [(a, b) for a, b in lines if (a, b) not in inside]
        assert sum(b - a + 1 for a, b in inside) > 0.7 * size, lines
        # elsewhere at most a line or two that both happen to write the same way (the sigmoid's 1 / (1 + exp))
        assert sum(b - a + 1 for a, b in outside) <= 2, lines
    start, end = mixed.index(inserted), mixed.index(inserted) + len(inserted)
    assert sum(b - a for a, b in f.spans_b if start <= a and b <= end) > 0.7 * len(inserted.strip()), f.spans_b


def test_the_filtered_text_is_copydetects():
    """grader.similarity lexes itself (for correct positions) with copydetect's filter_code rules."""
    from copydetect.utils import filter_code

    for path in [*ROOT.glob("grader/assignments/*/reference/*.py"), *ROOT.glob("grader/assignments/*/students/*/*.py")]:
        text = path.read_text()
        assert filtered(text)[0] == filter_code(text, path.name, "python")[0], path


def test_positions_map_back_to_the_source():
    text, starts, ends = filtered(REFERENCE)
    for k, c in enumerate(text):
        if c not in "VFOSP\"":
            assert REFERENCE[starts[k]:ends[k]] == c


def test_units_are_functions_and_the_code_between():
    cut = units(REFERENCE)
    assert cut[0][0] == 0 and cut[-1][1] == len(REFERENCE)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cut))
    assert sum(REFERENCE[a:b].lstrip().startswith("def ") for a, b in cut) == REFERENCE.count("    def ")


def test_notebooks_are_compared_by_their_code_cells():
    nd = ROOT / "grader/assignments/nd_hw04"
    reference = (nd / "reference/hw04.ipynb").read_bytes()
    nb = json.loads(reference)
    for c in nb["cells"]:  # the same notebook, run and saved again: outputs and counts changed
        if c["cell_type"] == "code":
            c["execution_count"] = 7
            c["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["done\n"]}]
    students = {"ref": {"hw04.ipynb": notebook_text(reference)},
                "resaved": {"hw04.ipynb": notebook_text(json.dumps(nb).encode())},
                "colab": {"hw04.ipynb": notebook_text((nd / "students/colab/hw04.ipynb").read_bytes())},
                "loops": {"hw04.ipynb": notebook_text((nd / "students/loops/hw04.ipynb").read_bytes())}}
    assert "# %% [cell 1]" in students["ref"]["hw04.ipynb"]
    got = {frozenset((p.student_a, p.student_b)) for p in find_pairs(students)}
    assert got == {frozenset(("ref", "resaved"))}


def test_pairs_are_sorted_and_scores_bounded():
    files = {"a": REFERENCE, "b": disguised(REFERENCE, 1), "c": LAYERS, "d": recommented(LAYERS, random.Random(9)),
             "e": HONEST["functional"]}
    got = find_pairs({u: {"numpy_nn.py": t} for u, t in files.items()})
    assert [p.score for p in got] == sorted((p.score for p in got), reverse=True)
    assert all(0 < p.score <= 1 and p.student_a < p.student_b for p in got)
    assert all(0 <= f.share_a <= 1 and 0 <= f.share_b <= 1 for p in got for f in p.files)


def test_empty_and_unparsable_files_do_not_break_it():
    files = {"a": "", "b": "def broken(:\n    return (\n", "c": "x = 1\n", "d": REFERENCE, "e": REFERENCE}
    assert set(pairs_of(files)) == {frozenset("de")}
    assert find_pairs({}) == []


def test_params_are_checked():
    with pytest.raises(ValueError):
        Params(noise=50, guarantee=40)
    with pytest.raises(ValueError):
        Params(threshold=0)
