"""Statistics beside the results: paired tests, BH correction, the published numbers, collapsed runs, refusals."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from genemask import cli
from genemask.errors import UserError
from genemask.evaluation.metrics import METRICS, prediction_summary
from genemask.evaluation.model_names import pretrained_model
from genemask.evaluation.paired import (
    WILCOXON_EXACT_MAX_N,
    baselines,
    benjamini_hochberg,
    paired_statistics,
    paired_table,
    significance_mark,
    smallest_wilcoxon_p,
    wilcoxon_signed_rank,
)
from genemask.evaluation.published import (
    PUBLISHED_CSV,
    PUBLISHED_SHA1,
    holm,
    match_published,
    published_table,
    verdicts,
    vs_paper,
    welch_comparison,
)
from genemask.evaluation.run_records import write_run_record
from genemask.evaluation.tasks import LabelledSequences, git_blob_sha1, read_train_test, write_labelled_tsv

# ---------------------------------------------------------------- paired statistics


def test_paired_statistics_match_scipy_and_the_textbook_formulas():
    ours = np.array([0.62, 0.58, 0.66, 0.61, 0.70])
    baseline = np.array([0.55, 0.57, 0.60, 0.62, 0.61])
    differences = ours - baseline  # 0.07 0.01 0.06 -0.01 0.09
    result = paired_statistics(differences)
    mean, sd = differences.mean(), differences.std(ddof=1)
    t = mean / (sd / math.sqrt(5))
    assert result["mean_difference"] == pytest.approx(0.044)
    assert result["t"] == pytest.approx(t)
    assert result["t"] == pytest.approx(stats.ttest_rel(ours, baseline).statistic)
    assert result["p_ttest"] == pytest.approx(stats.ttest_rel(ours, baseline).pvalue)
    assert result["p_wilcoxon"] == pytest.approx(stats.wilcoxon(ours, baseline).pvalue)
    half = stats.t.ppf(0.975, 4) * sd / math.sqrt(5)
    assert (result["ci95_low"], result["ci95_high"]) == pytest.approx((mean - half, mean + half))


def test_identical_results_and_single_seeds_give_no_test():
    assert math.isnan(paired_statistics(np.zeros(4))["p_ttest"])
    assert math.isnan(paired_statistics(np.zeros(4))["p_wilcoxon"])
    single = paired_statistics(np.array([0.1]))
    assert single["n_pairs"] == 1 and math.isnan(single["ci95_low"]) and math.isnan(single["p_ttest"])


def test_benjamini_hochberg_by_hand():
    p = pd.Series([0.01, 0.04, np.nan, 0.03, 0.20])
    # sorted 0.01 0.03 0.04 0.20 (m = 4): 0.04, 0.06, 0.0533, 0.20 -> monotone from the top: 0.04 .0533 .0533 .2
    expected = [0.04, 0.16 / 3, np.nan, 0.16 / 3, 0.20]
    np.testing.assert_allclose(benjamini_hochberg(p).to_numpy(), expected)
    assert [significance_mark(q) for q in (0.009, 0.01, 0.049, 0.099, 0.1, np.nan)] == [
        "**",
        "*",
        "*",
        "dagger",
        "",
        "",
    ]


def runs_frame(accuracies: dict[str, list[float]], task: str = "prom-core", shots: int = 10) -> pd.DataFrame:
    rows = []
    for model, values in accuracies.items():
        for seed, value in enumerate(values):
            rows.append(
                {"model": model, "task": task, "shots": shots, "seed": seed, "collapsed": False}
                | {metric: value for metric in METRICS}
            )
    return pd.DataFrame(rows)


def test_paired_table_compares_each_strategy_with_random_and_the_floor_seed_by_seed():
    runs = runs_frame(
        {
            "logo_random_10000": [0.50, 0.55, 0.60, 0.52],
            "logo_genemask_10000": [0.58, 0.60, 0.66, 0.57],
            "logo_random-init": [0.50, 0.50, 0.51, 0.50],
            "logo_genemask_500": [0.9, 0.9, 0.9, 0.9],  # no random model at 500 steps: only the floor
            "kmer-logreg": [0.7, 0.7, 0.7, 0.7],
        }
    )
    table = paired_table(runs)
    pairs = set(zip(table.model, table.baseline, table.comparison, strict=True))
    assert pairs == {
        ("logo_genemask_10000", "logo_random_10000", "random"),
        ("logo_genemask_10000", "logo_random-init", "random-init"),
        ("logo_random_10000", "logo_random-init", "random-init"),
        ("logo_genemask_500", "logo_random-init", "random-init"),
    }
    row = table[(table.comparison == "random") & (table.metric == "accuracy")].iloc[0]
    expected = stats.ttest_rel([0.58, 0.60, 0.66, 0.57], [0.50, 0.55, 0.60, 0.52])
    assert row.n_pairs == 4 and row.p_ttest == pytest.approx(expected.pvalue)
    for comparison in ("random", "random-init"):  # two families, each corrected on its own
        family = table[table.comparison == comparison].dropna(subset="p_ttest")
        q = stats.false_discovery_control(family.p_ttest.to_numpy(), method="bh")
        np.testing.assert_allclose(family.q_ttest.to_numpy(), q)
    assert row.mark == significance_mark(row.q_ttest)


# ---------------------------------------------------------------- the published numbers


def test_the_shipped_published_numbers_are_the_shared_file():
    assert git_blob_sha1(PUBLISHED_CSV) == PUBLISHED_SHA1
    table = published_table()
    assert len(table) == 360
    row = table[
        (table.architecture == "LOGO")
        & (table.masking == "genemask")
        & (table.task == "Prom-300")
        & (table.shots == 10)
        & (table.metric == "accuracy")
    ]
    assert len(row) == 1 and row.iloc[0]["std"] > 0


def test_models_map_to_published_rows_exactly_or_labelled_nearest():
    identity = pretrained_model("tiny_genemask-as-released_60")
    assert (identity.preset, identity.strategy, identity.steps) == ("tiny", "genemask-as-released", 60)
    assert pretrained_model("tiny_random-init") is None and pretrained_model("kmer-logreg") is None
    exact = match_published("logo_random_10000", "prom-core", 10, "accuracy")
    assert exact.kind == "exact" and exact.row.architecture == "LOGO" and exact.row.steps == 10000
    nearest = match_published("tiny_random_60", "sim-promoter", 10, "auc")
    assert (
        nearest.kind == "nearest" and nearest.row.architecture == "LOGO" and nearest.row.task == "Prom-core"
    )
    assert "60" in nearest.label and "tiny" in nearest.label and "simulated" in nearest.label
    reference = match_published("dnabert_random_120000", "splice-40", 50, "accuracy")
    assert reference.kind == "exact" and reference.row.steps == 120000
    assert match_published("dnabert_random_100000", "splice-40", 50, "accuracy").row.steps == 120000
    assert match_published("logo_random-init", "prom-core", 10, "accuracy") is None
    assert match_published("logo_random_10000", "prom-core", "full", "accuracy") is None


def test_welch_comparison_matches_scipy_on_raw_samples():
    ours = np.array([0.61, 0.55, 0.66, 0.59])
    theirs = np.array([0.58, 0.60, 0.52, 0.57, 0.63, 0.55, 0.59, 0.61, 0.50, 0.56])
    welch = welch_comparison(
        ours.mean(), ours.std(ddof=1), ours.size, theirs.mean(), theirs.std(ddof=1), theirs.size
    )
    expected = stats.ttest_ind(ours, theirs, equal_var=False)
    assert welch.p_value() == pytest.approx(expected.pvalue)
    low, high = welch.ci95()
    assert (low + high) / 2 == pytest.approx(ours.mean() - theirs.mean())
    # TOST = the larger one-sided p of H0: d <= -margin and H0: d >= +margin, each Welch's one-sided test
    margin = 0.02
    below = stats.ttest_ind(ours + margin, theirs, equal_var=False, alternative="greater").pvalue
    above = stats.ttest_ind(ours - margin, theirs, equal_var=False, alternative="less").pvalue
    assert welch.tost_p(margin) == pytest.approx(max(below, above))
    # MDD: a true difference of MDD is found with 80% power (noncentral t, two-sided alpha 0.05), approximately
    mdd = welch.minimum_detectable_difference()
    critical = stats.t.ppf(0.975, welch.df)
    power = stats.nct.sf(critical, welch.df, mdd / welch.standard_error)
    assert power == pytest.approx(0.80, abs=0.02)
    assert welch_comparison(0.5, np.nan, 1, 0.6, 0.05, 10) is None


def test_holm_by_hand():
    p = pd.Series([0.01, np.nan, 0.04, 0.03])
    # sorted 0.01 0.03 0.04 (m = 3): 0.03, 0.06, 0.04 -> monotone: 0.03 0.06 0.06
    np.testing.assert_allclose(holm(p).to_numpy(), [0.03, np.nan, 0.06, 0.06])


def test_nearest_and_simulated_rows_carry_no_test_and_no_verdict():
    summary = pd.DataFrame(
        [
            ("tiny_random_60", "sim-splice", 10, "accuracy", 0.40, 0.02, 3),  # simulated: nearest
            ("logo_random_500", "prom-core", 10, "accuracy", 0.40, 0.02, 3),  # other steps: nearest
            ("kmer-logreg", "prom-core", 10, "accuracy", 0.58, 0.02, 3),  # no published row
        ],
        columns=["model", "task", "shots", "metric", "mean", "std", "n_seeds"],
    )
    table = vs_paper(summary)
    assert list(table.model) == ["tiny_random_60", "logo_random_500"]
    assert set(table.match.str.split(":").str[0]) == {"nearest"}
    tested = ["difference", "ci95_low", "welch_p", "holm_p", "tost_p", "mdd80"]
    assert table[tested].isna().all().all() and set(table.verdict) == {""}
    assert table.paper_mean.notna().all()  # shown for orientation
    lines = verdicts(table, ["prom-core", "sim-splice"])
    assert all("orientation only, untested" in line for line in lines.values())


def write_records(directory, model, task, shots, accuracies):
    for seed, value in enumerate(accuracies):
        metrics = {"accuracy": value, "macro_f1": value, "mcc": 2 * value - 1, "auc": value + 0.05}
        write_run_record(
            directory / f"{model}_{task}_{shots}_{seed}.json",
            {"metrics": metrics, "collapsed": False},
            model=model,
            task=task,
            shots=shots,
            seed=seed,
        )


def test_exact_cells_get_a_difference_interval_tost_and_a_three_way_verdict(tmp_path):
    """Crafted records for exact real-task cells (LOGO at 10K steps on Prom-core): one per verdict."""
    runs = tmp_path / "runs"
    ours = np.array([0.500, 0.505, 0.510, 0.506, 0.509] * 4)
    write_records(runs, "logo_random_10000", "prom-core", 10, ours)
    write_records(runs, "logo_genemask_10000", "prom-core", 10, [0.70, 0.72, 0.74])
    write_records(runs, "logo_random_10000", "prom-core", 50, [0.50, 0.70])
    out = tmp_path / "out"
    assert (
        cli.main(["results", "--runs", str(runs), "--out-dir", str(out), "--equivalence-margin", "0.02"]) == 0
    )
    table = pd.read_csv(out / "tables/vs_paper.csv", keep_default_na=False, na_values=[""])
    accuracy = table[table.metric == "accuracy"].set_index(["model", "shots"])
    paper = published_table().query(
        "architecture == 'LOGO' and steps == 10000 and task == 'Prom-core' and metric == 'accuracy'"
    )
    random10 = paper.query("masking == 'random' and shots == 10").iloc[0]  # 0.506 +- 0.017
    welch = welch_comparison(ours.mean(), ours.std(ddof=1), 20, random10["mean"], random10["std"], 10)
    row = accuracy.loc[("logo_random_10000", 10)]
    assert row.difference == pytest.approx(ours.mean() - random10["mean"], abs=1e-6)
    assert (row.ci95_low, row.ci95_high) == pytest.approx(welch.ci95(), rel=1e-5)
    assert row.tost_p == pytest.approx(welch.tost_p(0.02), rel=1e-5) and row.tost_p < 0.05
    assert row.verdict == "reproduced"
    assert accuracy.loc[("logo_genemask_10000", 10)].verdict == "differs"  # 0.72 against 0.540 +- 0.049
    undecided = accuracy.loc[("logo_random_10000", 50)]  # two seeds 0.2 apart: nothing can be said
    assert undecided.verdict == "inconclusive" and undecided.mdd80 > 0.2
    markdown = (out / "tables/vs_paper.md").read_text()
    assert "- **Prom-core**: differs from the paper: " in markdown
    assert f"| {row.difference:+.3f} [{row.ci95_low:+.3f}, {row.ci95_high:+.3f}] |" in markdown


# ---------------------------------------------------------------- collapsed runs and refused input


def test_prediction_summary_marks_a_single_predicted_class():
    assert prediction_summary(np.array([[0.6, 0.4], [0.7, 0.3]])) == {
        "predicted_class_counts": [2, 0],
        "collapsed": True,
    }
    assert not prediction_summary(np.array([[0.6, 0.4], [0.3, 0.7]]))["collapsed"]


def test_a_run_that_predicts_one_class_is_marked_and_counted_in_the_tables(tmp_path):
    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list("ACGT"), 30)) for _ in range(60)]
    labels = np.array([1] * 5 + [0] * 25 + [0, 1] * 15)
    write_labelled_tsv(tmp_path / "train.tsv", LabelledSequences(sequences[:30], labels[:30]))
    write_labelled_tsv(tmp_path / "test.tsv", LabelledSequences(sequences[30:], labels[30:]))
    common = ["kmer-baseline", "--train", str(tmp_path / "train.tsv"), "--test", str(tmp_path / "test.tsv")]
    common += ["--task", "toy", "--shots", "15", "--k", "3"]
    # A huge penalty leaves only the intercept, which favours the majority class for every test sequence.
    assert cli.main([*common, "--seed", "0", "--l2", "1e6", "--out", str(tmp_path / "runs/a.json")]) == 0
    assert cli.main([*common, "--seed", "1", "--l2", "1", "--out", str(tmp_path / "runs/b.json")]) == 0
    collapsed = json.loads((tmp_path / "runs/a.json").read_text())
    assert collapsed["collapsed"] and collapsed["predicted_class_counts"] == [30, 0]
    assert collapsed["metrics"]["accuracy"] == 0.5
    assert not json.loads((tmp_path / "runs/b.json").read_text())["collapsed"]
    assert cli.main(["results", "--runs", str(tmp_path / "runs"), "--out-dir", str(tmp_path / "out")]) == 0
    assert "[1/2 collapsed]" in (tmp_path / "out/tables/fewshot.md").read_text()
    summary = pd.read_csv(tmp_path / "out/tables/fewshot_summary.csv")
    assert set(summary.n_collapsed) == {1}


@pytest.mark.parametrize(
    ("train_labels", "test_labels", "bad", "message"),
    [
        ([0, 0, 0], [0, 1], "train", "every row has label 0"),
        ([0, 1, 0], [1, 1], "test", "every row has label 1"),
        ([0, 1, 0], [0, 2, 1], "test", "label [2] never occurs in the training file"),
    ],
)
def test_input_that_cannot_give_a_meaningful_score_is_refused(
    tmp_path, train_labels, test_labels, bad, message
):
    for name, labels in (("train", train_labels), ("test", test_labels)):
        data = LabelledSequences(["ACGTACGTAC"] * len(labels), np.array(labels))
        write_labelled_tsv(tmp_path / f"{name}.tsv", data)
    with pytest.raises(UserError, match=rf"^{tmp_path / bad}\.tsv: .*{message}".replace("[", r"\[")):
        read_train_test(tmp_path / "train.tsv", tmp_path / "test.tsv")


def test_results_put_the_paper_marks_and_verdicts_beside_our_tables(tmp_path):
    """Runs of LOGO random and genemask at 10K steps on Prom-core: every output of `genemask results`."""
    accuracy = {
        "logo_random_10000": [0.50, 0.52, 0.51, 0.49],
        "logo_genemask_10000": [0.55, 0.58, 0.56, 0.55],
    }
    for model, values in accuracy.items():
        for seed, value in enumerate(values):
            record = {
                "metrics": {"accuracy": value, "macro_f1": value, "mcc": 2 * value - 1, "auc": value + 0.05}
            }
            path = tmp_path / "runs" / model / f"seed{seed}.json"
            write_run_record(
                path, record | {"collapsed": False}, model=model, task="prom-core", shots=10, seed=seed
            )
    out = tmp_path / "results"
    assert cli.main(["results", "--runs", str(tmp_path / "runs"), "--out-dir", str(out)]) == 0
    markdown = (out / "tables" / "fewshot.md").read_text()
    # Paired t on the differences 0.05 0.06 0.05 0.06: p ~ 1e-4, under 0.01 after BH over the four metrics.
    # The mark as the paper prints it (escaped in Markdown), the paper's cell beside ours.
    assert "| 0.560 ± 0.014\\*\\* (paper 0.540 ± 0.049) |" in markdown
    assert "0.505 ± 0.013 (paper 0.506 ± 0.017)" in markdown
    assert "$^{**}$ (paper 0.540 $\\pm$ 0.049)" in (out / "tables" / "fewshot.tex").read_text()
    assert "0.560 ± 0.014** (paper 0.540 ± 0.049)" in (out / "tables" / "fewshot.csv").read_text()
    paired = pd.read_csv(out / "tables" / "paired.csv")
    assert set(paired.comparison) == {"random"} and len(paired) == 4
    vs = pd.read_csv(out / "tables" / "vs_paper.csv")
    assert set(vs.match) == {"exact"} and len(vs) == 4  # accuracy and AUC of both models
    assert "**Prom-core**: " in (out / "tables" / "vs_paper.md").read_text()
    assert "Prom-core" in (out / "tables" / "vs_paper.html").read_text()
    for figure in ("prom-core.png", "paired_vs_random.png"):
        assert (out / "figures" / figure).stat().st_size > 10_000


def test_exported_models_are_compared_within_their_run():
    """An export (`..._step30`) is compared with random masking's export at the same step of the same run."""
    models = ["tiny_genemask_60_step30", "tiny_random_60_step30", "tiny_random_60", "tiny_genemask_60"]
    pairs = {(model, base) for model, base, kind in baselines(models) if kind == "random"}
    assert pairs == {
        ("tiny_genemask_60_step30", "tiny_random_60_step30"),
        ("tiny_genemask_60", "tiny_random_60"),
    }
    assert pretrained_model("tiny_genemask_60_step30").steps == 30  # matched with the paper's rows by step 30


def test_rankdata_averages_ties_like_scipy():
    from scipy.stats import rankdata as scipy_rankdata

    from genemask.evaluation.metrics import rankdata

    rng = np.random.default_rng(3)
    for values in (rng.integers(0, 5, 200), rng.random(50), np.array([1.0]), np.array([2, 2, 2])):
        np.testing.assert_array_equal(rankdata(values), scipy_rankdata(values))


def test_a_constant_difference_is_no_evidence():
    """Two seeds each one test sequence worse: zero variance makes t infinite; no p-value, no mark."""
    result = paired_statistics(np.array([-1 / 66, -1 / 66]))
    assert math.isnan(result["p_ttest"]) and math.isnan(result["t"])
    assert result["p_wilcoxon"] == 0.5 == smallest_wilcoxon_p(2)
    assert significance_mark(result["p_ttest"]) == ""


def test_float_noise_is_no_variance():
    """The issue's case: one sequence in 66 better on both seeds, computed two ways, differs in the 16th digit."""
    noisy = np.array([0.0151515151515152, 0.0151515151515151])
    assert noisy.std(ddof=1) > 0  # the old exact guard passed and gave t = 5e14
    result = paired_statistics(noisy)
    assert math.isnan(result["t"]) and math.isnan(result["p_ttest"]) and result["p_wilcoxon"] == 0.5
    assert result["std_difference"] == 0 and (result["wins"], result["ties"], result["losses"]) == (2, 0, 0)


def brute_force_wilcoxon(differences: np.ndarray) -> float:
    """The oracle: enumerate every sign flip of the non-zero differences' mid-ranks; two-sided p."""
    nonzero = differences[differences != 0]
    ranks = stats.rankdata(np.abs(nonzero))
    observed = ranks[nonzero > 0].sum()
    sums = np.array(
        [ranks[np.array(signs, dtype=bool)].sum() for signs in itertools.product((0, 1), repeat=len(ranks))]
    )
    lower, upper = np.mean(sums <= observed + 1e-9), np.mean(sums >= observed - 1e-9)
    return min(1.0, 2 * min(lower, upper))


def test_wilcoxon_is_the_exact_permutation_test_with_zeros_dropped_and_mid_ranks():
    rng = np.random.default_rng(7)
    for n in range(1, 11):
        for _ in range(6):
            differences = rng.integers(-3, 4, n) / 66  # many ties and zeros
            if not differences.any():
                continue
            assert wilcoxon_signed_rank(differences) == pytest.approx(brute_force_wilcoxon(differences)), (
                differences
            )
    untied = rng.normal(0.02, 0.03, 9)
    assert wilcoxon_signed_rank(untied) == pytest.approx(stats.wilcoxon(untied, method="exact").pvalue)
    assert math.isnan(wilcoxon_signed_rank(np.zeros(3)))
    assert [smallest_wilcoxon_p(n) for n in (1, 2, 3, 5)] == [1.0, 0.5, 0.25, 0.0625]


def test_wilcoxon_above_the_exact_range_is_the_tie_corrected_normal_approximation():
    rng = np.random.default_rng(8)
    differences = rng.integers(-5, 9, 2 * WILCOXON_EXACT_MAX_N) / 100
    nonzero = differences[differences != 0]
    assert nonzero.size > WILCOXON_EXACT_MAX_N
    ranks = stats.rankdata(np.abs(nonzero))
    z = (ranks[nonzero > 0].sum() - ranks.sum() / 2) / math.sqrt((ranks**2).sum() / 4)
    assert wilcoxon_signed_rank(differences) == pytest.approx(2 * stats.norm.sf(abs(z)))


def test_one_test_sequence_better_on_every_seed_gets_no_mark_through_the_tables(tmp_path):
    """Run records -> `genemask results`: a strategy one sequence in 66 better than random on both seeds."""
    for seed, base in enumerate((30 / 66, 41 / 66)):
        # the same fraction reached by two roundings, as two runs' metrics are
        values = {"tiny_random_60": base, "tiny_genemask_60": (base * 66 + 1) / 66 + 1e-17 * (seed - 0.5)}
        for model, value in values.items():
            metrics = {"accuracy": value, "macro_f1": value, "mcc": 2 * value - 1, "auc": value}
            write_run_record(
                tmp_path / "runs" / f"{model}_{seed}.json",
                {"metrics": metrics, "collapsed": False},
                model=model,
                task="sim-promoter",
                shots=10,
                seed=seed,
            )
    assert cli.main(["results", "--runs", str(tmp_path / "runs"), "--out-dir", str(tmp_path / "out")]) == 0
    paired = pd.read_csv(tmp_path / "out/tables/paired.csv")
    assert paired.p_ttest.isna().all() and (paired.p_wilcoxon == 0.5).all()
    assert paired.mark.isna().all()
    runs = pd.read_csv(tmp_path / "out/tables/fewshot.csv").set_index(["metric", "model"])
    assert not runs.loc[:, "sim-promoter 10"].str.contains("[*†]").any()  # no mark in any cell
    raw = [
        json.loads((tmp_path / "runs" / f"tiny_genemask_60_{seed}.json").read_text())["metrics"]["accuracy"]
        - json.loads((tmp_path / "runs" / f"tiny_random_60_{seed}.json").read_text())["metrics"]["accuracy"]
        for seed in (0, 1)
    ]
    assert np.std(raw) > 0  # as the records hold them, the differences are not quite equal


def test_the_equivalence_margin_has_one_default():
    from genemask.config import load_schema
    from genemask.evaluation.settings import EQUIVALENCE_MARGIN

    schema = load_schema()["properties"]["results"]["properties"]["equivalence_margin"]
    assert schema["default"] == EQUIVALENCE_MARGIN
    assert cli.main(["results", "--runs", "x", "--out-dir", "y", "--equivalence-margin", "nan"]) == 2
