"""Few-shot tasks: upstream pins, parsing of the real GeneMask files, preparation, sampling, simulated tasks."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from genemask import cli
from genemask.errors import UserError
from genemask.evaluation.kmer_baseline import evaluate_kmer_baseline
from genemask.evaluation.simulate_tasks import ACCEPTOR_START, DONOR_START, PROMOTER_OFFSETS, simulate_tasks
from genemask.evaluation.tasks import (
    REAL_TASKS,
    TASKS,
    LabelledSequences,
    TaskSpec,
    UpstreamFile,
    concatenate,
    download_task,
    download_task_file,
    draw_sample,
    git_blob_sha1,
    prepare_task,
    read_labelled_tsv,
    sample_task,
    write_labelled_tsv,
)
from genemask.evaluation.validation import detokenize
from genemask.genome.simulate import simulate_genome

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GENEMASK_SHARED_DATA", REPO / ".." / "shared" / "data")).resolve()
SHARED_FOLDERS = {  # where the shared data keeps each task's verbatim upstream files
    "prom-core": "prom_core/genemask",
    "prom-300": "prom_300/genemask",
    "cohn-enh": "cohn_enh/genemask",
    "splice-40": "splice_40/genemask",
    "sil-300": "sil_300",
}


def shared_upstream(task: str) -> Path:
    """The shared copy of a task's upstream folder (e.g. Data-B_fewshot-task-datasets/<Task>/)."""
    folder = SHARED / SHARED_FOLDERS[task]
    if not folder.is_dir():
        pytest.skip(f"real data absent: {folder} (the shared data folder beside the repository)")
    return folder


def shared_file(task: str, upstream_path: str) -> Path:
    return shared_upstream(task) / upstream_path.split("/", 1)[1]


def kmer_tsv(data: LabelledSequences) -> str:
    """Oracle: a TSV as the upstream test files are written (unquoted k-mer fields)."""
    rows = (f"{kmer_line(seq)}\t{label}\n" for seq, label in zip(data.sequences, data.labels, strict=True))
    return "sequence\tlabel\n" + "".join(rows)


def kmer_line(sequence: str, k: int = 6) -> str:
    """Oracle: the DNABERT text form, one k-mer at a time."""
    return " ".join(sequence[i : i + k] for i in range(len(sequence) - k + 1))


def test_command_module_reads_the_registry_without_importing_numpy():
    code = "import sys, genemask.commands.tasks; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    # the choices are the registry's: a GUE task is not a few-shot task
    assert cli.main(["tasks", "prepare", "--task", "human_tf_1", "--source-dir", ".", "--out-dir", "x"]) == 2


def test_each_task_owns_its_shot_convention():
    """Splice-40's and Sil-300's published folder N holds 10 x N per class, the others N; a config multiplier
    reaches simulated tasks only."""
    assert {name: spec.shots_multiplier for name, spec in TASKS.items() if not spec.simulated} == {
        "prom-core": 1,
        "prom-300": 1,
        "cohn-enh": 1,
        "splice-40": 10,
        "sil-300": 10,
    }
    assert TASKS["sil-300"].rows_per_class(10, simulated_multiplier=1) == 100
    assert TASKS["prom-core"].rows_per_class(10, simulated_multiplier=7) == 10
    assert TASKS["sim-splice"].rows_per_class(10, simulated_multiplier=1) == 10
    assert TASKS["sim-splice"].rows_per_class(10) == 100


def test_git_blob_sha1_is_what_git_computes(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    path = tmp_path / "f.tsv"
    path.write_bytes(b'"sequence"\t"label"\n"AAAAAA"\t0\n')
    expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True)
    assert git_blob_sha1(path) == expected.stdout.strip()


@pytest.mark.parametrize("task", REAL_TASKS)
def test_pinned_checksums_match_the_verbatim_copies(task):
    spec = TASKS[task]
    checked = 0
    for upstream in spec.upstream_files():
        assert len(upstream.git_sha1) == 40, upstream.path  # every file is pinned
        path = shared_file(task, upstream.path)
        if path.exists():
            assert upstream.git_sha1 == git_blob_sha1(path), upstream.path
            checked += 1
    assert checked >= 2


def test_every_genemask_file_is_pinned_as_the_upstream_tree_lists_it():
    listing = SHARED / "published" / "upstream_task_pins.tsv"
    if not listing.is_file():
        pytest.skip(f"real data absent: {listing}")
    rows = [line.split("\t") for line in listing.read_text().splitlines()[1:]]
    tree = {path: sha1 for path, sha1, _ in rows}
    ours = {f.path: f.git_sha1 for task in REAL_TASKS for f in TASKS[task].upstream_files()}
    genemask = {path: sha1 for path, sha1 in ours.items() if not path.startswith("silencer/")}
    assert genemask == {path: tree[path] for path in genemask}
    # Everything the tree lists is used, except Splice-40's full-dataset dev/test (copies of test.tsv's rows).
    assert set(tree) - set(genemask) == {"Splice-40/full-dataset/dev.tsv", "Splice-40/full-dataset/test.tsv"}
    for task in ("prom-core", "prom-300", "cohn-enh"):
        assert f"{TASKS[task].title}/full-dataset.zip" in {f.path for f in TASKS[task].extra_pool}


@pytest.mark.parametrize("task", REAL_TASKS)
def test_real_published_draws_parse_to_raw_sequences(task):
    spec = TASKS[task]
    for shots, upstream in spec.published.items():
        path = shared_file(task, upstream.path)
        if not path.exists():
            continue
        data = read_labelled_tsv(path, length=spec.length, n_classes=spec.n_classes)
        assert data.class_counts(spec.n_classes) == [spec.rows_per_class(shots)] * spec.n_classes
        assert all(set(seq) <= set("ACGT") for seq in data.sequences)
        # The raw sequences give back the file's k-mer fields exactly (the files quote every field).
        lines = path.read_text().splitlines()[1:]
        for row in (0, len(lines) // 2, len(lines) - 1):
            field, label = lines[row].split("\t")
            assert field == f'"{kmer_line(data.sequences[row])}"'
            assert int(label.strip('"')) == data.labels[row]


def test_sil_300_reads_as_variable_length_with_its_dev_set_as_test():
    spec = TASKS["sil-300"]
    test = read_labelled_tsv(shared_file("sil-300", spec.test.path), length=spec.length, n_classes=2)
    assert test.class_counts(2) == [794, 863]
    lengths = {len(seq) for seq in test.sequences}
    assert min(lengths) >= 100 and max(lengths) <= 300 and len(lengths) > 50
    assert spec.rows_per_class(10) == 100 and spec.test.source.startswith(
        "roysoumya/curriculum-GeneMask@d0bad0d"
    )


def test_quoted_unquoted_and_raw_files_read_alike(tmp_path):
    source = shared_file("splice-40", TASKS["splice-40"].published[10].path)
    quoted = read_labelled_tsv(source, length=40, n_classes=3)
    unquoted = tmp_path / "test.tsv"  # the upstream test files: no quotes
    unquoted.write_text(kmer_tsv(quoted))
    raw = tmp_path / "raw.tsv"
    write_labelled_tsv(raw, quoted)
    for path in (unquoted, raw):
        again = read_labelled_tsv(path, length=40, n_classes=3)
        assert again.sequences == quoted.sequences
        assert np.array_equal(again.labels, quoted.labels)


def test_detokenize_checks_the_overlaps():
    rng = np.random.default_rng(0)
    for k in (3, 6):
        sequence = "".join(rng.choice(list("ACGT"), 30))
        assert detokenize(kmer_line(sequence, k), k, "x") == sequence
    with pytest.raises(UserError, match="do not overlap"):
        detokenize("AAAAAA AAAAAC CCCCCC", 6, "x")
    with pytest.raises(UserError, match="6-mers"):
        detokenize("AAAAAA AAAAA", 6, "x")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("seq\tlabel\nACGT\t0\n", "line 1: expected the header"),
        ("sequence\tlabel\nACGTA\t0\tx\n", "line 2: expected 2 tab-separated fields"),
        ("sequence\tlabel\nACGTA\t0\nACGXA\t1\n", "line 3: expected a sequence of A, C, G, T, N"),
        ("sequence\tlabel\nACGTA\t0\nACGT\t1\n", "line 3: expected a sequence of 5 nt"),
        ("sequence\tlabel\nACGTA\tone\n", "line 2: expected an integer label"),
        ("sequence\tlabel\nACGTA\t2\n", r"line 2: expected a label in 0\.\.1"),
        ('"sequence"\t"label"\n"AAAAAA AAAAAC CCCCCC"\t"1"\n', "line 2: consecutive 6-mers"),
        ("sequence\tlabel\n", "no rows"),
    ],
)
def test_bad_task_files_name_the_line(tmp_path, content, message):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        read_labelled_tsv(path, length=5, n_classes=2)


def random_sequences(rng: np.random.Generator, n: int, length: int = 30) -> list[str]:
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


@pytest.fixture
def toy_task(tmp_path, monkeypatch):
    """A small task in the upstream layout (a full-dataset.zip included), registered with its own pins.

    Full training set: 200 per class. Test: 60 rows, 12 of them also in the full training set, 2 of these in
    the published 10-shot draw. The published 10-shot draw: 9 per class from the full set, 1 per class not in it.
    """
    rng = np.random.default_rng(3)
    full = LabelledSequences(random_sequences(rng, 400), np.repeat([0, 1], 200))
    outside = LabelledSequences(random_sequences(rng, 2), np.array([0, 1]))
    published = concatenate([full.subset([*range(9), *range(200, 209)]), outside])
    test_only = random_sequences(rng, 48)
    test = LabelledSequences(
        test_only + full.sequences[100:105] + full.sequences[300:305] + published.sequences[:2],
        np.concatenate([np.repeat([0, 1], 24), np.repeat([0, 1], 5), published.labels[:2]]),
    )
    root = tmp_path / "served"
    (root / "Toy" / "10").mkdir(parents=True)
    (root / "Toy" / "test.tsv").write_text(kmer_tsv(test))
    quoted = ['"' + line.replace("\t", '"\t"') + '"' for line in kmer_tsv(published).splitlines()]
    # As upstream: every field of a few-shot file quoted.
    (root / "Toy" / "10" / "train.tsv").write_text("\n".join(quoted) + "\n")
    with zipfile.ZipFile(root / "Toy" / "full-dataset.zip", "w") as archive:
        archive.writestr("full-dataset/train.tsv", kmer_tsv(full))
        archive.writestr("full-dataset/dev.tsv", kmer_tsv(test))
    pin = {
        path: git_blob_sha1(root / path)
        for path in ("Toy/test.tsv", "Toy/10/train.tsv", "Toy/full-dataset.zip")
    }
    spec = TaskSpec(
        "toy-task",
        "Toy",
        30,
        2,
        test=UpstreamFile("Toy/test.tsv", pin["Toy/test.tsv"]),
        published={10: UpstreamFile("Toy/10/train.tsv", pin["Toy/10/train.tsv"])},
        extra_pool=(UpstreamFile("Toy/full-dataset.zip", pin["Toy/full-dataset.zip"]),),
    )
    monkeypatch.setitem(TASKS, "toy-task", spec)
    return root, full, published, test


def test_prepare_draws_the_pool_from_the_full_training_set_minus_every_test_sequence(tmp_path, toy_task):
    source, full, published, test = toy_task
    out = tmp_path / "toy"
    provenance = prepare_task("toy-task", source, out)
    test_set = set(test.sequences)
    pool = read_labelled_tsv(out / "pool.tsv", length=30, n_classes=2)
    assert set(pool.sequences) == (set(full.sequences) | set(published.sequences)) - test_set
    assert len(pool) == 400 - 12 + 2  # the full set minus 12 test rows, plus the 2 published-only rows
    assert provenance["full_training_set_rows"] == 400
    assert provenance["full_training_set_rows_minus_test_deduplicated"] == 388
    assert provenance["pool_rows"] == len(pool) and provenance["pool_rows_per_class"] == pool.class_counts(2)
    assert provenance["published_sequences_outside_the_full_training_set"] == {"10": 2}
    assert provenance["verified_against_pins"] and set(provenance["git_blob_sha1"]) == {
        "Toy/test.tsv",
        "Toy/10/train.tsv",
        "Toy/full-dataset.zip",
    }
    kept = read_labelled_tsv(out / "published" / "10.tsv")
    assert kept.sequences == [seq for seq in published.sequences if seq not in test_set]
    assert json.loads((out / "provenance.json").read_text()) == provenance
    # Seed 0 keeps the published draw (topped up from the pool); no draw holds a test sequence.
    seed0 = sample_task(out, 10, 0, tmp_path / "s0.tsv", n_classes=2, published=out / "published" / "10.tsv")
    assert set(kept.sequences) < set(seed0.sequences) and not set(seed0.sequences) & test_set
    whole = sample_task(out, None, 3, tmp_path / "full.tsv", n_classes=2)
    assert sorted(whole.sequences) == sorted(pool.sequences)


def test_prepare_checks_every_file_against_its_pin_first(tmp_path, toy_task):
    source = toy_task[0]
    archive = source / "Toy" / "full-dataset.zip"
    with zipfile.ZipFile(archive, "a") as handle:
        handle.writestr("other/train.tsv", "sequence\tlabel\n")
    with pytest.raises(UserError, match="Toy/full-dataset.zip: git blob sha1 .* does not match the pinned"):
        prepare_task("toy-task", source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_zip_without_exactly_one_training_member_is_refused(tmp_path):
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as handle:
        handle.writestr("a/train.tsv", "sequence\tlabel\nACGT\t0\n")
        handle.writestr("b/train.tsv", "sequence\tlabel\nACGT\t1\n")
    with pytest.raises(UserError, match="expected exactly one member named train.tsv, found 2"):
        read_labelled_tsv(two, member="train.tsv")
    one = tmp_path / "one.zip"
    with zipfile.ZipFile(one, "w") as handle:
        handle.writestr("a/train.tsv", "sequence\tlabel\nACGT\t0\n")
    with pytest.raises(UserError, match="one.zip:a/train.tsv: line 2: expected a sequence of 5 nt"):
        read_labelled_tsv(one, member="train.tsv", length=5)


def serve(root: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_download_verifies_every_file_against_its_pin(tmp_path, toy_task):
    root = toy_task[0]
    server, base_url = serve(root)
    try:
        out = tmp_path / "resources"
        download_task("toy-task", out, base_url=base_url)
        for upstream in TASKS["toy-task"].upstream_files():
            assert (out / upstream.path).read_bytes() == (root / upstream.path).read_bytes()
        served = root / "Toy" / "test.tsv"
        served.write_text(served.read_text().replace("\t1", "\t0", 1))
        with pytest.raises(UserError, match="does not match the pinned"):
            download_task_file(
                "toy-task", "Toy/test.tsv", tmp_path / "bad.tsv", base_url=base_url, progress=False
            )
        assert not (tmp_path / "bad.tsv").exists()
    finally:
        server.shutdown()


def test_download_checks_the_real_pins(tmp_path):
    """The shared verbatim Prom-core draw, served locally, passes its real pin; a changed copy fails (exit 2)."""
    root = tmp_path / "served"
    (root / "Prom-core" / "10").mkdir(parents=True)
    shutil.copy(shared_file("prom-core", "Prom-core/10/train.tsv"), root / "Prom-core" / "10" / "train.tsv")
    server, base_url = serve(root)
    try:
        args = [
            "tasks",
            "download",
            "--task",
            "prom-core",
            "--path",
            "Prom-core/10/train.tsv",
            "--base-url",
            base_url,
        ]
        assert cli.main([*args, "--out", str(tmp_path / "good.tsv")]) == 0
        served = root / "Prom-core" / "10" / "train.tsv"
        served.write_bytes(served.read_bytes()[:-10] + b"X" * 10)
        assert cli.main([*args, "--out", str(tmp_path / "bad.tsv")]) == 2
        assert not (tmp_path / "bad.tsv").exists()
    finally:
        server.shutdown()


def toy_pool(per_class: int, n_classes: int) -> LabelledSequences:
    rng = np.random.default_rng(1)
    sequences = ["".join(rng.choice(list("ACGT"), 20)) for _ in range(per_class * n_classes)]
    return LabelledSequences(sequences, np.repeat(np.arange(n_classes), per_class))


def test_draws_are_balanced_seeded_and_independent():
    pool = toy_pool(50, 3)
    draws = {seed: draw_sample(pool, 10, 3, seed) for seed in range(4)}
    for sample in draws.values():
        assert sample.class_counts(3) == [10, 10, 10]
        assert len(set(sample.sequences)) == 30
        index = {seq: i for i, seq in enumerate(pool.sequences)}
        assert all(pool.labels[index[s]] == y for s, y in zip(sample.sequences, sample.labels, strict=True))
    assert draw_sample(pool, 10, 3, 2).sequences == draws[2].sequences
    assert len({tuple(sorted(d.sequences)) for d in draws.values()}) == 4
    # Another k is another draw, not an extension of the same permutation.
    assert not set(draws[0].sequences) <= set(draw_sample(pool, 11, 3, 0).sequences)
    with pytest.raises(UserError, match="pool has only 50"):
        draw_sample(pool, 51, 3, 0)


def test_the_published_draw_is_kept_and_topped_up():
    pool = toy_pool(30, 2)
    published = pool.subset([0, 1, 2, 30, 31])  # class 0 complete at 3, class 1 lost one to the test set
    sample = draw_sample(pool, 3, 2, 0, published=published)
    assert sample.class_counts(2) == [3, 3]
    assert set(published.sequences) < set(sample.sequences)
    with pytest.raises(UserError, match="more than the 2 requested"):
        draw_sample(pool, 2, 2, 0, published=published)


def test_sample_command_applies_the_splice_convention(tmp_path):
    task_dir = tmp_path / "sim-splice"
    pool = toy_pool(40, 3)
    write_labelled_tsv(task_dir / "pool.tsv", pool)
    write_labelled_tsv(
        task_dir / "test.tsv", LabelledSequences(["ACGT" * 5, "TTTT" * 5, "GGGG" * 5], np.arange(3))
    )
    out = tmp_path / "sample.tsv"
    args = [
        "tasks",
        "sample",
        "--task",
        "sim-splice",
        "--task-dir",
        str(task_dir),
        "--shots",
        "3",
        "--seed",
        "1",
    ]
    assert cli.main([*args, "--splice-multiplier", "4", "--out", str(out)]) == 0
    sample = read_labelled_tsv(out, n_classes=3)
    assert sample.class_counts(3) == [12, 12, 12]
    assert set(sample.sequences) <= set(pool.sequences)


def test_sampling_refuses_a_pool_that_leaks_test_sequences(tmp_path):
    write_labelled_tsv(tmp_path / "pool.tsv", toy_pool(40, 3))
    write_labelled_tsv(tmp_path / "test.tsv", toy_pool(40, 3).subset([5, 50]))
    with pytest.raises(UserError, match="2 sequences also occur in test.tsv"):
        sample_task(tmp_path, 3, 0, tmp_path / "sample.tsv", n_classes=3)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """A small simulated genome and the simulated tasks drawn from it."""
    root = tmp_path_factory.mktemp("simulated")
    genome = root / "sim.fa.gz"
    simulate_genome(genome, length=600_000, seed=5, n_contigs=3, instances_per_mb=400)
    summary = simulate_tasks(
        genome, root / "sim.motifs.tsv", root / "tasks", seed=9, test_size=300, pool_size=600
    )
    return root, summary


def test_simulated_tasks_have_the_promised_shape(simulated):
    root, summary = simulated
    for task in ("sim-promoter", "sim-enhancer", "sim-splice"):
        spec = TASKS[task]
        test = read_labelled_tsv(
            root / "tasks" / task / "test.tsv", length=spec.length, n_classes=spec.n_classes
        )
        pool = read_labelled_tsv(
            root / "tasks" / task / "pool.tsv", length=spec.length, n_classes=spec.n_classes
        )
        assert test.class_counts(spec.n_classes) == [300 // spec.n_classes] * spec.n_classes
        assert pool.class_counts(spec.n_classes) == [600] * spec.n_classes
        assert not set(test.sequences) & set(pool.sequences)
        assert all(set(seq) <= set("ACGT") for seq in pool.sequences)
    assert len(summary["promoter_motifs"]) == 2 and len(summary["enhancer_motifs"]) == 3


def test_simulated_tasks_carry_their_grammar(simulated):
    root, summary = simulated
    splice = read_labelled_tsv(root / "tasks" / "sim-splice" / "pool.tsv")
    donor_gt = np.array([s[DONOR_START + 3 : DONOR_START + 5] == "GT" for s in splice.sequences])
    acceptor_ag = np.array([s[ACCEPTOR_START + 12 : ACCEPTOR_START + 14] == "AG" for s in splice.sequences])
    assert donor_gt[splice.labels == 1].all() and acceptor_ag[splice.labels == 2].all()
    assert 0.05 < donor_gt[splice.labels == 0].mean() < 0.3  # decoys and chance GTs, not all

    # Every promoter positive holds a planted site of the first promoter motif inside its window.
    truth = (root / "sim.motifs.tsv").read_text().splitlines()[1:]
    complement = str.maketrans("ACGT", "TGCA")
    sites = set()
    for line in truth:
        _, _, _, strand, motif_id, _, sequence = line.split("\t")
        if motif_id == summary["promoter_motifs"][0]:
            sites.add(sequence.translate(complement)[::-1] if strand == "-" else sequence)
    promoter = read_labelled_tsv(root / "tasks" / "sim-promoter" / "pool.tsv")
    low, high = PROMOTER_OFFSETS[0]
    size = len(next(iter(sites)))
    for sequence, label in zip(promoter.sequences[:200], promoter.labels[:200], strict=True):
        found = any(sequence[start : start + size] in sites for start in range(low, high + 1))
        assert found or label == 0


def test_simulated_tasks_are_deterministic(simulated, tmp_path):
    root, _ = simulated
    simulate_tasks(
        root / "sim.fa.gz", root / "sim.motifs.tsv", tmp_path, seed=9, test_size=300, pool_size=600
    )
    for task in ("sim-promoter", "sim-enhancer", "sim-splice"):
        for part in ("test.tsv", "pool.tsv"):
            assert (tmp_path / task / part).read_bytes() == (root / "tasks" / task / part).read_bytes()


def test_simulated_tasks_are_learnable_but_not_trivial(simulated):
    """The k-mer logistic regression at 50 shots lands between chance and perfect."""
    root, _ = simulated
    for task in ("sim-promoter", "sim-enhancer", "sim-splice"):
        spec = TASKS[task]
        pool = read_labelled_tsv(root / "tasks" / task / "pool.tsv")
        test = read_labelled_tsv(root / "tasks" / task / "test.tsv")
        rows = spec.rows_per_class(50)
        accuracy = np.mean(
            [
                evaluate_kmer_baseline(draw_sample(pool, rows, spec.n_classes, seed), test, spec.n_classes)[
                    "accuracy"
                ]
                for seed in (0, 1)
            ]
        )
        assert 0.65 < accuracy < 0.95, (task, accuracy)


def test_simulate_tasks_command_writes_the_layout(simulated, tmp_path):
    root, _ = simulated
    out = tmp_path / "tasks"
    assert (
        cli.main(
            ["simulate-tasks", "--genome", str(root / "sim.fa.gz"), "--out", str(out), "--test-size", "30"]
        )
        == 0
    )
    assert (out / "simulation.json").exists()
    assert read_labelled_tsv(out / "sim-splice" / "test.tsv").class_counts(3) == [10, 10, 10]
    assert cli.main(["simulate-tasks", "--genome", str(root / "absent.fa.gz"), "--out", str(out)]) == 2


def test_sil_300_downloads_and_prepares_from_its_real_pins(tmp_path):
    """The shared verbatim Sil-300 files, served locally under the upstream layout, end to end."""
    root = tmp_path / "served"
    root.mkdir()
    (root / "silencer").symlink_to(shared_upstream("sil-300"))
    server, base_url = serve(root)
    try:
        download_task("sil-300", tmp_path / "resources", base_url=base_url)
    finally:
        server.shutdown()
    provenance = prepare_task("sil-300", tmp_path / "resources", tmp_path / "sil-300")
    assert provenance["verified_against_pins"] and len(provenance["git_blob_sha1"]) == 3
    assert provenance["test_rows_per_class"] == [794, 863]
    test = set(read_labelled_tsv(tmp_path / "sil-300" / "test.tsv").sequences)
    draws = [read_labelled_tsv(shared_file("sil-300", f.path)) for f in TASKS["sil-300"].published.values()]
    union = set().union(*(draw.sequences for draw in draws))
    pool = read_labelled_tsv(tmp_path / "sil-300" / "pool.tsv", n_classes=2)
    assert set(pool.sequences) == union - test and provenance["pool_rows"] == len(pool)
    assert provenance["full_training_set_rows"] is None  # only the published draws are public
    spec = TASKS["sil-300"]
    assert sum(provenance["test_rows_per_class"]) == spec.test_size
    lengths = [len(sequence) for sequence in [*test, *pool.sequences]]
    assert spec.lengths[0] <= min(lengths) and max(lengths) <= spec.lengths[1]

    # The demo config with `tasks: [sil-300]`: its multiplier (1, for sim-splice) leaves Sil-300's 10 x N alone,
    # so the workflow's sample command takes the published 10-shot draw and tops it up to 100 per class.
    demo_multiplier = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())["finetune"][
        "splice_shots_multiplier"
    ]
    for seed in (0, 1):
        out = tmp_path / "draws" / f"seed{seed}.tsv"
        args = [
            "tasks",
            "sample",
            "--task",
            "sil-300",
            "--task-dir",
            str(tmp_path / "sil-300"),
            "--shots",
            "10",
        ]
        args += ["--seed", str(seed), "--splice-multiplier", str(demo_multiplier), "--out", str(out)]
        args += ["--published", str(tmp_path / "sil-300" / "published" / "10.tsv")]
        assert cli.main(args) == 0
        assert read_labelled_tsv(out, n_classes=2).class_counts(2) == [100, 100]
