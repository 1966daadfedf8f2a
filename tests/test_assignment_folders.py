"""An assignment is one folder, found, not listed: discovery (built-in and AUTOGRADER_ASSIGNMENT_DIRS),
`autograder assignment check` on every assignment and on broken specs built here, and a sixth assignment added
from a temporary folder (no code change) graded end to end in the real sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.assignments import list_assignments, load_assignment
from grader.assignments.check import check_folder
from grader.assignments.spec import ASSIGNMENTS_DIR, assignment_folders
from grader.result import CheckStatus, Status
from grader.selftest import run_mutants
from grader.settings import GraderSettings
from tests.tiny_assignment import NAME, REFERENCE, SPEC, write_tiny

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
    assert listed.returncode == 0 and f"{NAME}\t2 points\tTiny: ReLU in NumPy" in listed.stdout


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
    spec = SPEC.replace('kind = "function"', 'kind = "fucntion"') + SPEC[SPEC.index("[[checks]]"):]
    result = cli("assignment", "check", str(write_tiny(tmp_path, spec=spec)))
    assert result.returncode == 1
    assert "check id 'tiny.relu' is used by 2 checks (ids must be unique)" in result.stdout
    assert "check 'tiny.relu': unknown kind 'fucntion' (known: " in result.stdout
    assert result.stdout.endswith(": 2 problems\n")


def test_check_names_missing_files_modules_points_and_seed(tmp_path: Path) -> None:
    spec = (SPEC.replace('files = ["tiny.py"]', 'files = ["tiny.py", "weights.npz"]\nseed = "no_such_handout.txt"')
            .replace("points = 2\n", "points = 3\n")
            .replace('module = "tiny"', 'module = "tiny_nn"\nneeds = ["model.pt"]'))
    folder = write_tiny(tmp_path, spec=spec)
    (folder / "mutants.toml").write_text((folder / "mutants.toml").read_text().replace('target = "relu"',
                                                                                     'target = "reul"'))
    result = cli("assignment", "check", str(folder))
    assert result.returncode == 1, result.stdout
    ref = folder / "reference"
    for problem in (f"the reference solution lacks weights.npz (expected in {ref})",
                    "check 'tiny.relu': module 'tiny_nn' is none of the submission's files (tiny.py, weights.npz)",
                    "check 'tiny.relu': needs 'model.pt', which is not one of the submission's files",
                    "the checks' points add up to 2, not the declared 3",
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
    root = tmp_path / "more-assignments"
    write_tiny(root)
    cfg = fast_settings.with_(assignment_dirs=(root,))

    reference, outcomes = run_mutants(NAME, settings=cfg, log=lambda s: None)  # the selftest's machinery
    assert reference.status is Status.GRADED, reference.message
    assert (reference.score, reference.max_score, reference.passed) == (2.0, 2.0, True)
    assert [(o.mutant.name, o.caught) for o in outcomes] == [("relu keeps the negative values", True)]

    zip_path = tmp_path / "student.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("tiny.py", REFERENCE.replace("np.maximum(x, 0)", "np.abs(x)"))
    run = cli("grade", str(zip_path), "--assignment", NAME, "--json",
              env={"AUTOGRADER_ASSIGNMENT_DIRS": str(root), "AUTOGRADER_WORK_DIR": str(cfg.work_dir),
                   "AUTOGRADER_CGROUP_NAME": cfg.cgroup_name})
    result = json.loads(run.stdout)
    assert (result["status"], result["score"], result["max_score"]) == ("graded", 0.0, 2.0), run.stderr
    relu = result["checks"][0]
    assert relu["status"] == CheckStatus.FAILED.value and "relu(np.array([[-1.0, 0.0, 2.5]]))" in relu["message"]
