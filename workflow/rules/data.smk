rule generate_synthetic:
    output:
        directory("<results>/raw/{dataset}"),
    log:
        "<results>/logs/generate_synthetic/{dataset}.log",
    conda:
        ENV
    params:
        adapter=get_setting("source", "adapter"),
        synthetic=get_setting("source", "synthetic"),
    script:
        "../scripts/data/generate_synthetic.py"


rule ingest:
    input:
        get_source_dir,
    output:
        manifest="<results>/data/{dataset}/manifest.parquet",
        dropped="<results>/data/{dataset}/dropped.csv",
    log:
        "<results>/logs/ingest/{dataset}.log",
    conda:
        ENV
    params:
        source=get_ingest_options,
    script:
        "../scripts/data/ingest.py"


rule split:
    input:
        "<results>/data/{dataset}/manifest.parquet",
    output:
        "<results>/data/{dataset}/split.parquet",
    log:
        "<results>/logs/split/{dataset}.log",
    conda:
        ENV
    params:
        split=get_setting("split"),
    script:
        "../scripts/data/split.py"


rule preprocess:
    input:
        "<results>/data/{dataset}/manifest.parquet",
    output:
        cache="<results>/data/{dataset}/cache.npy",
        manifest="<results>/data/{dataset}/cache.parquet",
    log:
        "<results>/logs/preprocess/{dataset}.log",
    conda:
        ENV
    threads: 8  # parallel MONAI workers at hospital scale; Snakemake caps this at --cores
    params:
        preprocess=get_setting("preprocess"),
    script:
        "../scripts/data/preprocess.py"


localrules:
    summarise_dataset,


rule summarise_dataset:
    input:
        split="<results>/data/{dataset}/split.parquet",
        dropped="<results>/data/{dataset}/dropped.csv",
    output:
        csv=report(
            "<results>/datasets/{dataset}/summary.csv",
            caption="../report/dataset_table.rst",
            category="Datasets",
            labels={"dataset": "{dataset}", "type": "table"},
        ),
        md="<results>/datasets/{dataset}/summary.md",
        tex="<results>/datasets/{dataset}/summary.tex",
        png=report(
            "<results>/datasets/{dataset}/summary.png",
            caption="../report/dataset_summary.rst",
            category="Datasets",
            labels={"dataset": "{dataset}", "type": "figure"},
        ),
        pdf="<results>/datasets/{dataset}/summary.pdf",
    log:
        "<results>/logs/summarise_dataset/{dataset}.log",
    conda:
        ENV
    script:
        "../scripts/data/summarise_dataset.py"
