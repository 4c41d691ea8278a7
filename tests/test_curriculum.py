"""Time-variant masking: cm-step's q(t) and its per-step draws, cm-gems' switch rule (against a re-statement of the
released `read_file_compute_diff`), and both across a resume."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genemask.masking import registry
from genemask.masking.schedules import CmGems, CmStep, cm_step_probability
from genemask.training.collators import ComponentBatches


@pytest.mark.parametrize(
    ("step", "total", "q"),
    [(0, 10_000, 0.0), (99, 10_000, 0.0), (100, 10_000, 0.01), (5_050, 10_000, 0.5), (9_999, 10_000, 0.99)]
    + [(250, 1_050, 0.25), (1_049, 1_050, 1.0), (0, 60, 0.0), (5, 60, 0.05), (59, 60, 0.59), (150, 120, 1.0)],
)
def test_cm_step_probability(step, total, q):
    assert cm_step_probability(step, total) == pytest.approx(q)


def test_cm_step_draws_follow_q_and_depend_on_seed_and_step_only():
    schedule = CmStep(seed=3, total_steps=10_000)
    choices = np.array([schedule.choose(t) == "global" for t in range(10_000)])
    for first in (0, 2_500, 5_000, 9_000):  # 1,000 steps each: within 5 binomial standard deviations
        q = np.array([cm_step_probability(t, 10_000) for t in range(first, first + 1_000)])
        sd = math.sqrt((q * (1 - q)).sum())
        assert abs(choices[first : first + 1_000].sum() - q.sum()) <= 5 * sd + 1
    assert not choices[:100].any()  # q = 0 for the first hundredth
    resumed = CmStep(seed=3, total_steps=10_000)  # a new process asks from step 4321 on
    assert [resumed.choose(t) for t in range(4_321, 4_400)] == [
        schedule.choose(t) for t in range(4_321, 4_400)
    ]
    other = CmStep(seed=4, total_steps=10_000)
    assert [other.choose(t) for t in range(5_000, 5_200)] != [schedule.choose(t) for t in range(5_000, 5_200)]


def losses(perplexities):
    return [math.log(p) for p in perplexities]


def test_cm_gems_switches_when_the_smallest_change_drops_below_tau_and_never_back():
    schedule = CmGems(tau=1.0)
    evaluations = list(
        zip([100, 200, 300, 400, 500, 600], losses([40.0, 30.0, 25.0, 24.5, 20.0, 30.0]), strict=True)
    )
    assert schedule.choose(0) == "genemask"
    for step, loss in evaluations[:3]:
        schedule.observe(step, loss)
    assert schedule.switch_step is None and schedule.choose(301) == "genemask"
    schedule.observe(*evaluations[3])  # 25 -> 24.5: change 0.5 < 1
    assert schedule.switch_step == 400
    assert [schedule.choose(t) for t in (399, 400, 401, 10_000)] == ["genemask", "global", "global", "global"]
    for step, loss in evaluations[4:]:  # later evaluations change nothing
        schedule.observe(step, loss)
    assert schedule.switch_step == 400 and schedule.perplexities == pytest.approx([40.0, 30.0, 25.0, 24.5])


def test_cm_gems_needs_two_evaluations_and_a_rise_counts_by_its_size():
    schedule = CmGems(tau=1.0)
    schedule.observe(10, math.log(50.0))
    assert schedule.switch_step is None and schedule.smallest_change() == math.inf
    schedule.observe(20, math.log(55.0))  # a rise of 5: as large a change as a fall of 5, no switch
    assert schedule.switch_step is None and schedule.smallest_change() == pytest.approx(5.0)
    schedule.observe(30, math.log(55.5))  # a rise of 0.5 < tau
    assert schedule.switch_step == 30
    steady = CmGems(tau=1.0)
    for step, loss in zip([10, 20, 30], losses([50.0, 48.0, 46.9]), strict=True):  # changes of 2 and 1.1
        steady.observe(step, loss)
    assert steady.switch_step is None
    steady.observe(40, float("nan"))  # an evaluation without masked tokens is not a measurement
    assert steady.switch_step is None and len(steady.perplexities) == 3


def read_file_compute_diff(lines: list[str]) -> float | None:
    """curriculum-GeneMask's CM-GEMS_pretraining_code.py, `read_file_compute_diff`, restated on the lines of
    eval_results.txt (one perplexity per evaluation, appended by `evaluate`)."""
    if len(lines) < 2:
        return None
    min_diff_val = 10000.0
    for elem_id in range(1, len(lines)):
        diff_value = abs(float(lines[elem_id]) - float(lines[elem_id - 1]))
        if diff_value < min_diff_val:
            min_diff_val = diff_value
    return min_diff_val


def released_maskings(evaluations: list[tuple[int, float]], steps: int, tau: float) -> list[str]:
    """The masking of each optimiser step as released: `mask_tokens`, before every micro-batch, reads the
    perplexities evaluated so far (after `step` steps) and uses global once their smallest change is below tau."""
    maskings = []
    for step in range(steps):
        lines = [str(perplexity) for done, perplexity in evaluations if done <= step]
        diff = read_file_compute_diff(lines)
        maskings.append("global" if diff is not None and diff < tau else "genemask")
    return maskings


def noisy_plateau(rng: np.random.Generator) -> list[float]:
    """A falling validation perplexity that levels off at 20 with noise of about +-1.5."""
    return [20.0 + 200.0 * math.exp(-i / 2.0) + rng.normal(0.0, 1.5) for i in range(16)]


@pytest.mark.parametrize(
    "perplexities",
    [
        [120.0, 90.0, 70.0, 60.0, 55.0, 52.0, 50.5, 50.0, 49.8],  # a smooth fall
        [120.0, 90.0, 95.0, 70.0, 60.0, 59.5, 40.0],  # an early rise of 5, then a change of 0.5
        [80.0, 80.4, 70.0, 60.0],  # a rise below tau at once
        [300.0, 200.0, 150.0, 120.0, 100.0],  # never below tau
        noisy_plateau(np.random.default_rng(1)),
        noisy_plateau(np.random.default_rng(2)),
        noisy_plateau(np.random.default_rng(3)),
    ],
)
@pytest.mark.parametrize("tau", [1.0, 3.0])
def test_cm_gems_switches_at_the_step_the_released_rule_gives(perplexities, tau):
    every, steps = 500, 500 * (len(perplexities) + 1)
    evaluations = [(every * (i + 1), p) for i, p in enumerate(perplexities)]
    schedule, ours = CmGems(tau=tau), []
    for step in range(steps):
        ours.append(schedule.choose(step))
        if (step + 1) % every == 0 and (step + 1) // every <= len(perplexities):
            schedule.observe(step + 1, math.log(perplexities[(step + 1) // every - 1]))
    assert ours == released_maskings(evaluations, steps, tau)


def test_a_noisy_plateau_switches_late_under_the_absolute_rule():
    """The issue's case: the first rise came at 1,500 steps, the first change below tau only at 3,500."""
    perplexities = [200.0, 120.0, 122.0, 90.0, 70.0, 60.0, 59.2, 59.9]
    schedule = CmGems(tau=1.0)
    for i, p in enumerate(perplexities):
        schedule.observe(500 * (i + 1), math.log(p))
    assert schedule.switch_step == 3_500


def test_cm_gems_resumed_from_its_state_switches_at_the_same_step():
    evaluations = list(
        zip(range(50, 501, 50), losses([90, 60, 45, 38, 34, 32.5, 32.0, 31.9, 31.8, 31.7]), strict=True)
    )
    uninterrupted = CmGems(tau=2.0)
    for step, loss in evaluations:
        uninterrupted.observe(step, loss)
    assert uninterrupted.switch_step == 300  # 34 -> 32.5
    for cut in range(len(evaluations)):
        first = CmGems(tau=2.0)
        for step, loss in evaluations[:cut]:
            first.observe(step, loss)
        state = first.state_dict()
        resumed = CmGems(tau=2.0)
        resumed.load_state_dict(state)
        for step, loss in evaluations[cut:]:
            resumed.observe(step, loss)
        assert resumed.state_dict() == uninterrupted.state_dict()


def test_schedules_come_from_the_registry_entries_and_component_batches():
    step = registry.get("cm-step").make_schedule({}, seed=1, total_steps=10)
    assert isinstance(step, CmStep) and step.components == ("random", "global")
    gems = registry.get("cm-gems").make_schedule({"tau": 0.5}, seed=1, total_steps=10)
    assert gems.tau == 0.5 and gems.components == ("genemask", "global")
    released = registry.get("cm-gems-as-released").make_schedule({"tau": None}, seed=1, total_steps=10)
    assert released.tau == 1.0 and released.components == (
        "cm-gems-genemask-as-released",
        "global-as-released",
    )
    with pytest.raises(ValueError, match="no schedule"):
        registry.get("random").make_schedule({}, seed=1, total_steps=10)
    collate = ComponentBatches({"a": lambda items: {"n": len(items)}, "b": lambda items: {"first": items[0]}})
    assert collate([7, 8]) == {"a": {"n": 2}, "b": {"first": 7}}


def test_the_training_figure_marks_the_switch(tmp_path):
    from genemask.report.figures import training_report

    rows = "step,train_loss,valid_loss,switch_step\n1,8.3,,\n2,8.2,8.25,\n3,8.1,,2\n4,8.0,8.05,2\n"
    for name, text in {
        "tiny_cm-gems_4": rows,
        "tiny_random_4": "step,train_loss,valid_loss\n1,8.3,8.3\n",
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.csv").write_text(text)
    paths = [tmp_path / "tiny_cm-gems_4" / "metrics.csv", tmp_path / "tiny_random_4" / "metrics.csv"]
    assert training_report(paths, tmp_path / "curves.png") == {"tiny_cm-gems_4": 2}
    assert (tmp_path / "curves.png").stat().st_size > 0
