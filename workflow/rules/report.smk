rule report_chunks:
    input:
        summary=rules.chunk_genome.output.summary,
    output:
        figure=report(
            "results/report/chunk_lengths.png",
            caption="../report/chunk_lengths.rst",
            category="1. Genome and chunks",
        ),
        table=report(
            "results/report/chunk_summary.html",
            caption="../report/chunk_summary.rst",
            category="1. Genome and chunks",
        ),
    log:
        "logs/report/chunks.log",
    conda:
        "../envs/cpu.yaml"
    shell:
        "genemask report chunks --summary {input.summary} --figure {output.figure}"
        " --table {output.table} > {log} 2>&1"


rule report_npmi:
    input:
        ngrams=rules.npmi.output.ngrams,
        ranks=rules.npmi.output.ranks,
    output:
        figure=report(
            "results/report/npmi_distribution.png",
            caption="../report/npmi_distribution.rst",
            category="2. NPMI",
        ),
        table=report(
            "results/report/top_kmers.html",
            caption="../report/top_kmers.rst",
            category="2. NPMI",
        ),
    log:
        "logs/report/npmi.log",
    conda:
        "../envs/cpu.yaml"
    shell:
        "genemask report npmi --ngrams {input.ngrams} --ranks {input.ranks}"
        " --figure {output.figure} --table {output.table} > {log} 2>&1"


rule report_masking:
    input:
        statistics=rules.masking_statistics.output[0],
    output:
        report(
            "results/report/masking_deciles.png",
            caption="../report/masking_deciles.rst",
            category="3. Masking",
        ),
    log:
        "logs/report/masking.log",
    conda:
        "../envs/cpu.yaml"
    shell:
        "genemask report masking --statistics {input.statistics} --figure {output} > {log} 2>&1"


rule report_figures:
    input:
        rules.report_chunks.output,
        rules.report_npmi.output,
        rules.report_masking.output,


rule report_learning_curves:
    input:
        summary="results/tables/fewshot_summary.csv",
    output:
        report(
            expand(
                "results/report/learning_curves/{task}.png", task=FINETUNE["tasks"]
            ),
            caption="../report/learning_curves.rst",
            category="5. Few-shot",
        ),
    log:
        "logs/report/learning_curves.log",
    conda:
        "../envs/cpu.yaml"
    params:
        out_dir=lambda wildcards, output: Path(output[0]).parent,
        tasks=FINETUNE["tasks"],
    shell:
        "genemask report learning-curves --summary {input.summary} --tasks {params.tasks}"
        " --out-dir {params.out_dir} > {log} 2>&1"
