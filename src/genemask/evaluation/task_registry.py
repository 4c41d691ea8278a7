"""Every evaluation task, few-shot and GUE, with its facts: classes, lengths, test size, shot convention, source.

`TASKS` are the few-shot tasks (the workflow's `results/tasks/<task>`), `GUE_TASKS` the 28 GUE tasks (DNABERT-2
paper, fine-tuned on full data by genemask.evaluation.gue); both are `TaskSpec`s and `task_spec` finds either.

The four GeneMask tasks come from the authors' repository at a pinned commit (`UPSTREAM_BASE`); Sil-300, the
CM-GEMS paper's fifth task, from the follow-up repository (`SILENCER_BASE`). GitHub raw has no checksum
listing, so every file is pinned by its git blob sha1, as the commit's tree lists it (the team's
`data/published/upstream_task_pins.tsv` and `data/sil_300/README.md`): the test sets, the published few-shot
draws, the full training sets (`full-dataset.zip` for Prom-core, Prom-300 and Cohn-enh, whose `train.tsv` member
is read; Splice-40's `full-dataset/train.tsv`). A download that does not match its pin is removed.

GUE facts: rows per split, classes and nominal lengths from the DNABERT-2 paper's GUE table; TF and mouse
sequences are 101 nt (the shared human_tf_1 and mouse_0 copies), exact lengths checked where a copy was at hand.
How each GUE task is fine-tuned (epochs, warm-up, evaluation interval, step cap) is genemask.evaluation.gue_recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genemask.errors import UserError

UPSTREAM_REPOSITORY = "roysoumya/GeneMask"
UPSTREAM_COMMIT = "c7614461323015ffcbbdb39fc4778e9255ddfcab"
UPSTREAM_FOLDER = "Data-B_fewshot-task-datasets"
UPSTREAM_BASE = f"https://raw.githubusercontent.com/{UPSTREAM_REPOSITORY}/{UPSTREAM_COMMIT}/{UPSTREAM_FOLDER}"
SILENCER_REPOSITORY = "roysoumya/curriculum-GeneMask"
SILENCER_COMMIT = "d0bad0d3cf49c65acf308cd0f255dfee42194f2a"
SILENCER_FOLDER = "data"
SILENCER_BASE = f"https://raw.githubusercontent.com/{SILENCER_REPOSITORY}/{SILENCER_COMMIT}/{SILENCER_FOLDER}"
GUE_MIRROR_REPOSITORY = "leannmlindsey/GUE"  # Hugging Face dataset mirror of the GUE archive
GUE_MIRROR_REVISION = "2db3b738af3c676c243350ac337b9560ab15b04b"
PUBLISHED_SHOTS = (10, 50, 100, 500, 1000)
FULL_TRAINING_MEMBER = "train.tsv"  # the member of a full-dataset.zip that holds the full training set


@dataclass(frozen=True)
class UpstreamFile:
    path: str  # relative to the base folder, e.g. Prom-core/test.tsv
    git_sha1: str
    base: str = UPSTREAM_BASE  # raw URL of the folder at the pinned commit

    @property
    def url(self) -> str:
        return f"{self.base}/{self.path}"

    @property
    def source(self) -> str:
        """owner/repository@commit:folder/path, for messages and provenance."""
        owner, repository, commit, folder = self.base.removeprefix(
            "https://raw.githubusercontent.com/"
        ).split("/", 3)
        return f"{owner}/{repository}@{commit[:7]}:{folder}/{self.path}"


@dataclass(frozen=True)
class TaskSpec:
    name: str  # pipeline name, used in paths and config
    title: str  # as the paper writes it, for tables and figures
    length: int | None  # nt; None: variable (Sil-300: see `lengths`)
    n_classes: int
    shots_multiplier: int = 1  # the published folder N holds shots_multiplier x N examples per class
    test: UpstreamFile | None = None
    published: dict[int, UpstreamFile] = field(default_factory=dict)
    extra_pool: tuple[UpstreamFile, ...] = ()  # full training sets (a .zip: its train.tsv member)
    simulated: bool = False  # a demo stand-in made by genemask.evaluation.simulate_tasks
    length_range: tuple[int, int] | None = None  # (min, max) nt of a variable-length task
    test_size: int | None = None  # rows of the test set; None: simulated (config simulate.test_size)
    benchmark: str = "few-shot"  # or "GUE"
    split_sizes: tuple[int, int, int] | None = None  # GUE: published train, dev, test rows
    source: str = ""  # GUE: the task's folder in the unpacked archive (prom/prom_core_all, tf/0, ...)
    group: str = ""  # GUE: the task group as CM-GEMS Table 2 names it
    dataset: str = ""  # GUE: the dataset within the group ("" for Covid: not in that table)
    exact_length: bool = True  # every sequence has `length` nt (GUE: only where a copy was checked)
    published_metric: str = "mcc"  # the metric the source paper reports (DNABERT-2 scores Covid by F1)

    @property
    def lengths(self) -> tuple[int, int]:
        """(min, max) nt of the task's sequences."""
        return self.length_range or (self.length, self.length)

    @property
    def in_published_table(self) -> bool:
        """A GUE task in CM-GEMS Table 2 (all but Covid)."""
        return bool(self.dataset)

    def upstream_files(self) -> list[UpstreamFile]:
        if self.test is None:
            return []
        return [self.test, *self.published.values(), *self.extra_pool]

    def upstream_file(self, path: str) -> UpstreamFile:
        for upstream in self.upstream_files():
            if upstream.path == path:
                return upstream
        known = ", ".join(f.path for f in self.upstream_files()) or "none (a simulated task)"
        raise UserError(f"task {self.name}: no upstream file {path!r}; expected one of {known}")

    def rows_per_class(self, shots: int, simulated_multiplier: int | None = None) -> int:
        """Training examples per class for `shots`: the task's shot convention (shots_multiplier x shots). A
        simulated task with a multiplier takes `simulated_multiplier` instead when given (the demo's config)."""
        multiplier = self.shots_multiplier
        if self.simulated and multiplier > 1 and simulated_multiplier is not None:
            multiplier = simulated_multiplier
        return shots * multiplier


def _published(
    folder: str, name: str, sha1s: dict[int, str], base: str = UPSTREAM_BASE
) -> dict[int, UpstreamFile]:
    return {
        shots: UpstreamFile(f"{folder}/{shots}/{name.format(shots=shots)}", sha1, base)
        for shots, sha1 in sha1s.items()
    }


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "prom-core",
            "Prom-core",
            70,
            2,
            test_size=5920,
            test=UpstreamFile("Prom-core/test.tsv", "c4ba3f0ddc6fc985e56c968e6679210d7498f35c"),
            published=_published(
                "Prom-core",
                "train.tsv",
                {
                    10: "5d3729ba1bd5bcc6ea1df7c80005db77a97dde13",
                    50: "1a48e3e452a09e2960261c3116603742e3a97563",
                    100: "2084a77a343ecafef73e3fd83d79dde297f01d5a",
                    500: "f4964839f515cfb90e66ae2ecb04348ff19e9193",
                    1000: "1d6040d669d8c4fe63dc03a45f77d0862f90a6e5",
                },
            ),
            extra_pool=(
                UpstreamFile("Prom-core/full-dataset.zip", "60cf221c8f59d369178c98dcf0d28c29da8aeea8"),
            ),
        ),
        TaskSpec(
            "prom-300",
            "Prom-300",
            300,
            2,
            test_size=5920,
            test=UpstreamFile("Prom-300/test.tsv", "5b95c54c277de132cbe2f57ef1f1f07fde735101"),
            published=_published(
                "Prom-300",
                "train.tsv",
                {
                    10: "fea7d4ad07477cbb09ddfe008be3996d03278921",
                    50: "269b7ef97b04c1976a92fc623012549883df2f1c",
                    100: "c1e5f767752f9ff2e897f4d4332cb97499077bbe",
                    500: "81dfd935191af4542410ddae5e696181fdb23c57",
                    1000: "369e9179fb264f293ff94a111cb700655ca4f20c",
                },
            ),
            extra_pool=(
                UpstreamFile("Prom-300/full-dataset.zip", "e4362f76e7e7c4f2ae15c761e8c0f4ea3e7e2ca9"),
            ),
        ),
        TaskSpec(
            "cohn-enh",
            "Cohn-enh",
            500,
            2,
            test_size=6948,
            test=UpstreamFile("Cohn-enh/test.tsv", "c5cca8299c35fc3d0088686390a2483c9fe6c28b"),
            published=_published(
                "Cohn-enh",
                "train.tsv",
                {
                    10: "31f93483606cf6a71024e53da2a259c5f2e604a1",
                    50: "3bbc17559ee95f12771a09f7f1d3a15e0f90d77e",
                    100: "33747f9e3fd170860920ac46f95d325fc78ee942",
                    500: "1cf523c6f2989580e7f1cc08e9b61cc1acbe594b",
                    1000: "03b19d0837686b82d9cf0d827e2b29c8d93c0b02",
                },
            ),
            extra_pool=(
                UpstreamFile("Cohn-enh/full-dataset.zip", "3ed8c000a8a6f25679d7c222aeebd5bb219cdbde"),
            ),
        ),
        TaskSpec(
            "splice-40",
            "Splice-40",
            40,
            3,
            shots_multiplier=10,
            test_size=3000,
            test=UpstreamFile("Splice-40/test.tsv", "101dcdcb8b60780c815a2bb33750e8c8ea1cb2fc"),
            published=_published(
                "Splice-40",
                "train_splice40_{shots}.tsv",
                {
                    10: "39d62293e57096024dbd13b371c884dc9ed2373f",
                    50: "cc75eb79554036074b9f557b4f60d2c586386cec",
                    100: "e1dbcaabaf76a85a6118b9b09ceb7434f86338fc",
                    500: "3e046f186a46ae9c2b0c86303a10876a601df52e",
                    1000: "f686905643e18f59f13ffcd970ac0b9887a1779f",
                },
            ),
            extra_pool=(
                UpstreamFile("Splice-40/full-dataset/train.tsv", "3216a302360de2dd14e7ec83f84081df6208d573"),
            ),
        ),
        # CM-GEMS's silencer task: variable length (about 100-300 nt); only the 10- and 50-shot draws are public,
        # so its pool is their union; 10/dev.tsv (= 50/dev.tsv) is the test set.
        TaskSpec(
            "sil-300",
            "Sil-300",
            None,
            2,
            shots_multiplier=10,
            length_range=(101, 299),  # the shared copies: test 101-298, draws 101-299 nt
            test_size=1657,
            test=UpstreamFile(
                "silencer/10/dev.tsv", "7e61513d1456f8b88cd256c7fbb7e3ccb2758a1d", SILENCER_BASE
            ),
            published=_published(
                "silencer",
                "train.tsv",
                {
                    10: "f2fffeadc7ae468a4f4d3a1ac8d0f8aec57750ca",
                    50: "493e685d6c33494ecfe2d4d8a1cec50906fb2164",
                },
                SILENCER_BASE,
            ),
        ),
        # Simulated stand-ins for the demo (genemask.evaluation.simulate_tasks): same lengths and class counts.
        TaskSpec("sim-promoter", "sim-promoter", 70, 2, simulated=True),
        TaskSpec("sim-enhancer", "sim-enhancer", 300, 2, simulated=True),
        TaskSpec("sim-splice", "sim-splice", 40, 3, shots_multiplier=10, simulated=True),
    )
}
REAL_TASKS = tuple(name for name, spec in TASKS.items() if not spec.simulated)
SIMULATED_TASKS = tuple(name for name, spec in TASKS.items() if spec.simulated)


def _gue(
    name: str,
    source: str,
    group: str,
    dataset: str,
    length: int,
    n_classes: int,
    rows: tuple[int, int, int],
    *,
    exact: bool = False,
    metric: str = "mcc",
) -> TaskSpec:
    title = f"{group} {dataset}".strip() if dataset else "Virus (Covid)"
    return TaskSpec(
        name,
        title,
        length,
        n_classes,
        test_size=rows[2],
        benchmark="GUE",
        split_sizes=rows,
        source=source,
        group=group,
        dataset=dataset,
        exact_length=exact,
        published_metric=metric,
    )


def _gue_tasks() -> list[TaskSpec]:
    tasks = []
    for kind, title, length in (("300", "PD (Human)", 300), ("core", "CPD (Human)", 70)):
        for variant, rows, dev in (("all", 47356, 5920), ("notata", 42452, 5307), ("tata", 4904, 613)):
            published = "no tata" if (kind, variant) == ("300", "notata") else variant
            name = f"prom_{kind}_{variant}"
            tasks.append(
                _gue(
                    name,
                    f"prom/{name}",
                    title,
                    published,
                    length,
                    2,
                    (rows, dev, dev),
                    exact=variant == "all",
                )
            )
    for index, rows in enumerate((32378, 30672, 19000, 27294, 19000)):
        tasks.append(
            _gue(
                f"human_tf_{index}",
                f"tf/{index}",
                "TFP (Human)",
                str(index),
                101,
                2,
                (rows, 1000, 1000),
                exact=index == 1,
            )
        )
    tasks.append(
        _gue(
            "splice_reconstructed",
            "splice/reconstructed",
            "Splice (Human)",
            "Reconstruct",
            400,
            3,
            (36496, 4562, 4562),
            exact=True,
        )
    )
    for mark, rows, dev in (
        ("H3", 11971, 1497),
        ("H3K14ac", 26438, 3305),
        ("H3K36me3", 27904, 3488),
        ("H3K4me1", 25341, 3168),
        ("H3K4me2", 24545, 3069),
        ("H3K4me3", 29439, 3680),
        ("H3K79me3", 23069, 2884),
        ("H3K9ac", 22224, 2779),
        ("H4", 11679, 1461),
        ("H4ac", 27275, 3410),
    ):
        tasks.append(_gue(f"emp_{mark}", f"EMP/{mark}", "EMP (Yeast)", mark, 500, 2, (rows, dev, dev)))
    for index, (rows, dev) in enumerate(
        ((6478, 810), (53952, 6745), (2620, 328), (1904, 239), (15064, 1883))
    ):
        tasks.append(
            _gue(
                f"mouse_{index}",
                f"mouse/{index}",
                "TFP (Mouse)",
                str(index),
                101,
                2,
                (rows, dev, dev),
                exact=index == 0,
            )
        )
    tasks.append(
        _gue("virus_covid", "virus/covid", "Virus", "", 1000, 9, (77669, 7000, 7000), metric="macro_f1")
    )
    return tasks  # fmt: skip


GUE_TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in _gue_tasks()}
GUE_GROUP_ORDER = tuple(dict.fromkeys(spec.group for spec in GUE_TASKS.values()))


def task_spec(name: str) -> TaskSpec:
    """A few-shot or GUE task by name."""
    spec = TASKS.get(name) or GUE_TASKS.get(name)
    if spec is None:
        raise UserError(f"unknown task {name!r}; expected one of {', '.join([*TASKS, *GUE_TASKS])}")
    return spec


def gue_task(name: str) -> TaskSpec:
    if name not in GUE_TASKS:
        raise UserError(f"unknown GUE task {name!r}; expected one of {', '.join(GUE_TASKS)}")
    return GUE_TASKS[name]
