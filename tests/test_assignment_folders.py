"""An assignment is one folder, found, not listed: discovery (built-in and AUTOGRADER_ASSIGNMENT_DIRS),
`autograder assignment check` on every assignment and on broken specs built here (hidden sets a folder declares
included), and a sixth assignment added from a temporary folder (no code change), with a hidden set of its own,
prepared and graded end to end in the real sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader.assignments import list_assignments, load_assignment
from grader.assignments.check import check_folder
from grader.assignments.spec import ASSIGNMENTS_DIR, assignment_folders
from grader.result import CheckStatus, Status
from grader.selftest import run_mutants
from grader.settings import GraderSettings
from tests.tiny_assignment import NAME, REFERENCE, SET, SPEC, blobs, blobs_npz, write_tiny

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`autograder ARGS` in a fresh process (this checkout first on its path)."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True, text=True, env=full,
                          cwd=cwd or ROOT, timeout=600)


# --- discovery ----------------------------------------------------------------------------------------------


def test_the_built_in_assignments_are_the_folders_holding_a_spec() -> None:
    folders = assignment_folders(())
    assert set(folders) == set(list_assignments(())) and len(folders) >= 5
    assert set(folders.values()) == {p.parent for p in ASSIGNMENTS_DIR.glob("*/assignment.toml")}
    for name, folder in folders.items():
        spec = load_assignment(name, ())
        assert spec.folder == folder and spec.reference_dir == folder / "reference"


def test_folders_of_the_setting_are_assignments_too(tmp_path: Path) -> None:
    write_tiny(tmp_path)
    (tmp_path / "notes").mkdir()  # a folder without a spec is not an assignment
    cfg = GraderSettings.from_env({"AUTOGRADER_ASSIGNMENT_DIRS": f"{tmp_path}{os.pathsep}"})
    assert cfg.assignment_dirs == (tmp_path,)
    assert NAME in list_assignments(cfg.assignment_dirs) and NAME not in list_assignments(())
    assert load_assignment(NAME, cfg.assignment_dirs).reference_dir == tmp_path / "tiny_relu" / "reference"
    listed = cli("assignment", "list", env={"AUTOGRADER_ASSIGNMENT_DIRS": str(tmp_path)})
    assert listed.returncode == 0 and f"{NAME}\t3 points\tTiny: ReLU in NumPy" in listed.stdout


def test_a_name_declared_twice_is_refused(tmp_path: Path) -> None:
    write_tiny(tmp_path, folder="one")
    write_tiny(tmp_path, folder="two")
    with pytest.raises(ValueError, match="'tiny-relu' is declared twice"):
        assignment_folders((tmp_path,))


# --- autograder assignment check -------------------------------------------------------------------------------


@pytest.mark.parametrize("assignment", list_assignments(()))
def test_every_assignment_passes_the_check(assignment: str) -> None:
    assert check_folder(assignment_folders(())[assignment]) == []


def test_the_tiny_assignment_passes_the_check(tmp_path: Path) -> None:
    result = cli("assignment", "check", str(write_tiny(tmp_path)))
    assert (result.returncode, result.stdout.strip()) == (0, f"{tmp_path / 'tiny_relu'}: ok")


def test_check_names_unknown_kinds_and_duplicate_ids(tmp_path: Path) -> None:
    relu = SPEC[SPEC.index("[[checks]]"):SPEC.index('[[checks]]\nid = "tiny.classify"')]
    spec = SPEC.replace('kind = "function"', 'kind = "fucntion"') + relu
    result = cli("assignment", "check", str(write_tiny(tmp_path, spec=spec)))
    assert result.returncode == 1
    assert "check id 'tiny.relu' is used by 2 checks (ids must be unique)" in result.stdout
    assert "check 'tiny.relu': unknown kind 'fucntion' (known: " in result.stdout
    assert result.stdout.endswith(": 2 problems\n")


def test_check_names_missing_files_modules_points_and_seed(tmp_path: Path) -> None:
    spec = (SPEC.replace('files = ["tiny.py"]', 'files = ["tiny.py", "weights.npz"]\nseed = "no_such_handout.txt"')
            .replace("points = 3\n", "points = 4\n")
            .replace('module = "tiny"', 'module = "tiny_nn"\nneeds = ["model.pt"]', 1))
    folder = write_tiny(tmp_path, spec=spec)
    (folder / "mutants.toml").write_text((folder / "mutants.toml").read_text().replace('target = "relu"',
                                                                                     'target = "reul"'))
    result = cli("assignment", "check", str(folder))
    assert result.returncode == 1, result.stdout
    ref = folder / "reference"
    for problem in (f"the reference solution lacks weights.npz (expected in {ref})",
                    "check 'tiny.relu': module 'tiny_nn' is none of the submission's files (tiny.py, weights.npz)",
                    "check 'tiny.relu': needs 'model.pt', which is not one of the submission's files",
                    "the checks' points add up to 3, not the declared 4",
                    "the seed (handout) 'no_such_handout.txt' is not in ",
                    "mutant 'relu keeps the negative values': target 'reul' is no check's target"):
        assert problem in result.stdout, result.stdout
    assert "6 problems" in result.stdout


def test_check_names_a_missing_reference_module_and_a_bad_spec(tmp_path: Path) -> None:
    folder = write_tiny(tmp_path)
    (folder / "reference" / "tiny.py").unlink()
    result = cli("assignment", "check", str(folder))
    assert result.returncode == 1
    assert f"the reference solution lacks tiny.py (expected in {folder / 'reference'})" in result.stdout
    assert f"check 'tiny.relu': the reference has no tiny.py (the judge runs it) in {folder / 'reference'}" in result.stdout

    (folder / "assignment.toml").write_text(SPEC.replace('name = "tiny-relu"', 'name = "tiny-relu'))
    assert "not valid TOML" in cli("assignment", "check", str(folder)).stdout
    (folder / "assignment.toml").write_text(SPEC.replace('title = "Tiny: ReLU in NumPy"\n', ""))
    bad = cli("assignment", "check", str(folder))
    assert bad.returncode == 1 and "the spec does not load: missing key 'title'" in bad.stdout
    unknown = cli("assignment", "check", "no-such-assignment")
    assert unknown.returncode == 1 and "no assignment 'no-such-assignment'" in unknown.stderr


# --- a sixth assignment, from a folder, graded end to end ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_sixth_assignment_from_a_folder_is_graded_end_to_end(tmp_path: Path, fast_settings: GraderSettings,
                                                               host_unharmed: None) -> None:
    """The folder brings its spec, reference, mutants and its own hidden set (declared in the spec, its file in
    the folder): `autograder data prepare` builds it, `data status` shows it, and its accuracy check grades on it;
    nothing but the folder is added."""
    root = tmp_path / "more-assignments"
    write_tiny(root)
    cfg = fast_settings.with_(assignment_dirs=(root,), hidden_data=tmp_path / "hidden")
    env = {"AUTOGRADER_ASSIGNMENT_DIRS": str(root), "AUTOGRADER_WORK_DIR": str(cfg.work_dir),
           "AUTOGRADER_CGROUP_NAME": cfg.cgroup_name, "AUTOGRADER_HIDDEN_DATA": str(cfg.hidden_data)}

    prepared = cli("data", "prepare", "--set", SET, env=env)
    assert prepared.returncode == 0, prepared.stderr
    assert f"{SET}: 24 images -> {cfg.hidden_data / 'arrays' / SET / '4x4'}" in prepared.stderr
    status = cli("data", "status", env=env)
    assert f"{SET}\t4x4\t2 classes\tconventions v1\tready: 24 images" in status.stdout.splitlines(), status.stdout

    reference, outcomes = run_mutants(NAME, settings=cfg, log=lambda s: None)  # the selftest's machinery
    assert reference.status is Status.GRADED, reference.message
    assert (reference.score, reference.max_score, reference.passed) == (3.0, 3.0, True), reference.checks
    assert reference.metrics["tiny.accuracy"] == 1.0
    assert [(o.mutant.name, o.caught) for o in outcomes] == [("relu keeps the negative values", True),
                                                              ("classify swaps dark and light", True)], outcomes

    zip_path = tmp_path / "student.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("tiny.py", REFERENCE.replace("np.maximum(x, 0)", "np.abs(x)").replace("> 0.5", "> 1.5"))  # all dark
    run = cli("grade", str(zip_path), "--assignment", NAME, "--json", env=env)
    result = json.loads(run.stdout)
    assert (result["status"], result["score"], result["max_score"]) == ("graded", 0.0, 3.0), run.stderr
    relu, classify = result["checks"]
    assert relu["status"] == CheckStatus.FAILED.value and "relu(np.array([[-1.0, 0.0, 2.5]]))" in relu["message"]
    assert classify["status"] == CheckStatus.FAILED.value and result["metrics"]["tiny.accuracy"] == 0.5, classify


# --- hidden sets a folder declares ------------------------------------------------------------------------------


def test_check_names_the_problems_of_declared_hidden_sets(tmp_path: Path) -> None:
    import hashlib

    x, y = blobs()
    decl = SPEC[SPEC.index("[[hidden_sets]]"):]
    more = (decl.replace('name = "tiny_blobs"', 'name = "mnist"')  # a built-in set's name
            + decl.replace('name = "tiny_blobs"', 'name = "tiny_gone"').replace("data/tiny_blobs.npz", "data/gone.npz")
            + decl.replace('name = "tiny_blobs"', 'name = "tiny_keys"').replace("data/tiny_blobs.npz", "data/keys.npz")
                  .replace("@SHA256@", hashlib.sha256(keys := blobs_npz(images=x, y=y)).hexdigest())
            + decl.replace('name = "tiny_blobs"', 'name = "tiny_shape"').replace("data/tiny_blobs.npz", "data/shape.npz")
                  .replace("@SHA256@", hashlib.sha256(shape := blobs_npz(x=x[:, :3], y=y)).hexdigest())
            + decl.replace('name = "tiny_blobs"', 'name = "tiny_other"').replace("data/tiny_blobs.npz", "data/other.npz")
            + decl.replace('name = "tiny_blobs"', 'name = "Tiny Typo"').replace("layout =", "layuot ="))
    spec = SPEC.replace('data = "tiny_blobs"', 'data = "tiny_blob"') + more
    folder = write_tiny(tmp_path, spec=spec)
    (folder / "data" / "keys.npz").write_bytes(keys)
    (folder / "data" / "shape.npz").write_bytes(shape)
    (folder / "data" / "other.npz").write_bytes(blobs_npz(x=x[::-1], y=y))
    result = cli("assignment", "check", str(folder))
    assert result.returncode == 1, result.stdout
    for problem in ("hidden set 'mnist' is the name of a built-in set (choose another name)",
                    f"hidden set 'tiny_gone': its source {folder / 'data' / 'gone.npz'} is missing",
                    "hidden set 'tiny_keys': keys.npz has no key 'x' (it has 'images', 'y')",
                    "hidden set 'tiny_shape': 'x' has shape (24, 3, 4); layout NHW with image_size [4, 4] and 1 "
                    "channel(s) means (N, 4, 4)",
                    f"hidden set 'tiny_other': {folder / 'data' / 'other.npz'} has sha256 ",
                    "hidden set 'Tiny Typo': the [[hidden_sets]] table does not load: name: Value error, 'Tiny Typo' "
                    "is not a set name",
                    "layuot: Extra inputs are not permitted",
                    "check 'tiny.classify': hidden set 'tiny_blob' is neither built in nor declared ([[hidden_sets]]) "
                    "by an assignment"):
        assert problem in result.stdout, result.stdout
    assert result.stdout.endswith(": 7 problems\n"), result.stdout


def test_a_declared_set_is_served_from_the_folder_and_refused_once_its_declaration_changes(tmp_path: Path) -> None:
    from grader.data import DataUnavailable, load_hidden, prepare, registry
    from grader.data.status import status

    root = tmp_path / "more"
    folder = write_tiny(root)
    cfg = GraderSettings.from_env().with_(assignment_dirs=(root,), hidden_data=tmp_path / "hidden")
    assert SET in registry.names(cfg.assignment_dirs) and SET not in registry.names(())
    entry = registry.entry(SET, cfg.assignment_dirs)
    assert entry.classes == ("dark", "light") and entry.image_size == (4, 4) and entry.declared
    assert [c.topic for c in entry.conventions] == ["label order", "image orientation", "scaling"]
    assert prepare(settings=cfg, sets=[SET], log=lambda s: None) == [SET]
    hidden = load_hidden(cfg, SET)
    x, y = blobs()
    assert np.array_equal(hidden.images[:, 0], x) and np.array_equal(hidden.labels, y)

    spec = folder / "assignment.toml"  # the instructor says the file stores its images transposed, and does not
    spec.write_text(spec.read_text().replace('layout = "NHW"', 'layout = "NHW"\ntransposed = true'))  # prepare
    with pytest.raises(DataUnavailable, match=rf"hidden set '{SET}': the arrays in .* are stale: .*autograder data "
                                              "prepare"):
        load_hidden(cfg, SET)
    assert not next(s for s in status(cfg) if s.name == SET).ready
    prepare(settings=cfg, sets=[SET], log=lambda s: None)
    assert np.array_equal(load_hidden(cfg, SET).images[:, 0], x.transpose(0, 2, 1))

    (folder / "data" / "tiny_blobs.npz").write_bytes(blobs_npz(x=x[::-1], y=y))  # another file, same declaration
    (cfg.hidden_data / "declared" / SET / "tiny_blobs.npz").unlink()
    with pytest.raises(DataUnavailable, match=r"has sha256 [0-9a-f]{64}, the declaration says"):
        prepare(settings=cfg, sets=[SET], log=lambda s: None)

    spec.write_text(spec.read_text().replace(f'name = "{SET}"', 'name = "mnist"'))  # a built-in set's name
    assert registry.entry("mnist", cfg.assignment_dirs) is registry.entry("mnist", ())
    assert any("'mnist' of assignment 'tiny-relu'" in s.detail and "a built-in set" in s.detail
               for s in status(cfg) if not s.ready)


def test_a_declared_set_may_come_from_the_shared_data_folder(tmp_path: Path) -> None:
    from grader.data import load_hidden, prepare

    x, y = blobs()
    spec = SPEC.replace('source = "data/tiny_blobs.npz"', 'source = "shared:tiny/blobs_v1.npz"')
    folder = write_tiny(tmp_path / "more", spec=spec)
    (tmp_path / "shared" / "tiny").mkdir(parents=True)
    (folder / "data" / "tiny_blobs.npz").rename(tmp_path / "shared" / "tiny" / "blobs_v1.npz")
    cfg = GraderSettings.from_env().with_(assignment_dirs=(tmp_path / "more",), hidden_data=tmp_path / "hidden",
                                          shared_data=tmp_path / "shared")
    assert check_folder(folder, shared=tmp_path / "shared") == []
    assert check_folder(folder, shared=tmp_path) == [
        f"hidden set {SET!r}: its source {tmp_path / 'tiny' / 'blobs_v1.npz'} is missing"]
    logs: list[str] = []
    assert prepare(settings=cfg, sets=[SET], log=logs.append) == [SET]
    assert f"{SET}: copied from {tmp_path / 'shared' / 'tiny' / 'blobs_v1.npz'} (declared by assignment {NAME})" in logs
    assert np.array_equal(load_hidden(cfg, SET).labels, y)
