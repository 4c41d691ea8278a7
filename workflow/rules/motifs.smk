MOTIFS = config["motifs"]


rule motif_enrichment:
    input:
        ranks=rules.npmi.output.ranks,
    output:
        enrichment="results/motifs/enrichment.tsv",
        per_kmer="results/motifs/kmer_best_motifs.tsv",
        summary="results/motifs/summary.json",
        plot=report(
            "results/motifs/enrichment.png",
            caption="../report/motif_enrichment.rst",
            category="6. Motif enrichment",
        ),
        logos=report(
            "results/motifs/logos.png",
            caption="../report/motif_logos.rst",
            category="6. Motif enrichment",
        ),
        html="results/motifs/report.html",
    log:
        "logs/motifs/enrichment.log",
    benchmark:
        "results/benchmarks/motif_enrichment.tsv"
    conda:
        "../envs/cpu.yaml"
    params:
        out_dir=lambda wildcards, output: Path(output.enrichment).parent,
        release=MOTIFS["release"],
        collection=MOTIFS["collection"],
        tax_group=MOTIFS["tax_group"] or "all",
        top_n=MOTIFS["top_n"],
        threshold=MOTIFS["threshold"],
        pseudocount=MOTIFS["pseudocount"],
        background=MOTIFS["background"],
        fdr=MOTIFS["fdr"],
        logos=MOTIFS["logos"],
    shell:
        "genemask motifs --ranks {input.ranks} --out {params.out_dir} --release {params.release}"
        " --collection {params.collection} --tax-group {params.tax_group} --top-n {params.top_n}"
        " --threshold {params.threshold} --pseudocount {params.pseudocount}"
        " --background {params.background} --fdr {params.fdr} --logos {params.logos} > {log} 2>&1"


rule motifs:
    input:
        rules.motif_enrichment.output,
