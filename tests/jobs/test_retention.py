"""Nothing is kept forever: posted results' local files go after the keep-for time, and
the output folder stays under its byte budget (posted results first, then stale ones)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from storyloom.jobs.result_files import job_folder
from storyloom.jobs.retention import result_posted, sweep_outputs

HOUR = 3600.0


def make_job(out: Path, job_id: int, size: int, age_s: float) -> Path:
    folder = job_folder(out, job_id)
    folder.mkdir(parents=True)
    (folder / "story.png").write_bytes(b"x" * size)
    past = time.time() - age_s
    os.utime(folder, (past, past))
    return folder


def post(out: Path, job_id: int, age_s: float, keep_for_s: float = HOUR) -> None:
    result_posted(out, job_id, keep_for_s)
    past = time.time() - age_s
    os.utime(job_folder(out, job_id) / ".posted", (past, past))


def test_with_keep_for_zero_a_posted_result_is_deleted_at_once(tmp_path: Path) -> None:
    folder = make_job(tmp_path, 1, 10, 0)
    result_posted(tmp_path, 1, 0)
    assert not folder.exists()
    result_posted(tmp_path, 2, 0)  # nothing to delete: no error


def test_posted_results_are_kept_for_the_keep_for_time_then_swept(tmp_path: Path) -> None:
    make_job(tmp_path, 1, 10, 3 * HOUR)
    make_job(tmp_path, 2, 10, 3 * HOUR)
    make_job(tmp_path, 3, 10, 3 * HOUR)  # never posted, small: kept (within the budget)
    post(tmp_path, 1, age_s=2 * HOUR)
    post(tmp_path, 2, age_s=0.5 * HOUR)
    assert sweep_outputs(tmp_path, keep_for_s=HOUR, budget_bytes=10**9) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job-2", "job-3"]


@pytest.mark.parametrize("budget,left", [(250, ["job-3", "job-4"]), (150, ["job-4"])])
def test_past_the_budget_the_oldest_posted_go_first_then_stale_unposted(
    tmp_path: Path, budget: int, left: list[str]
) -> None:
    make_job(tmp_path, 1, 100, 3 * HOUR)
    make_job(tmp_path, 2, 100, 3 * HOUR)
    make_job(tmp_path, 3, 100, 3 * HOUR)  # unposted and old: a worker's stale copy
    make_job(tmp_path, 4, 100, 0)  # unposted and new: about to be posted, never deleted
    post(tmp_path, 1, age_s=0.3 * HOUR)
    post(tmp_path, 2, age_s=0.2 * HOUR)
    sweep_outputs(tmp_path, keep_for_s=HOUR, budget_bytes=budget)
    assert sorted(p.name for p in tmp_path.iterdir()) == left


def test_a_shown_result_is_only_marked_and_the_sweep_spares_it(tmp_path: Path) -> None:
    make_job(tmp_path, 1, 100, 3 * HOUR)
    make_job(tmp_path, 2, 100, 3 * HOUR)
    result_posted(tmp_path, 1, 0, shown=True)  # keep-for 0, but a share link shows it
    result_posted(tmp_path, 2, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job-1"]
    assert sweep_outputs(tmp_path, keep_for_s=0, budget_bytes=0, keep=frozenset({1})) == 0
    assert sweep_outputs(tmp_path, keep_for_s=0, budget_bytes=0) == 1
    assert list(tmp_path.iterdir()) == []
