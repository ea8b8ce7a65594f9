rule generate_synthetic:
    output:
        directory("results/raw/{dataset}"),
    params:
        adapter=get_setting("source", "adapter"),
        synthetic=get_setting("source", "synthetic"),
    log:
        "results/logs/generate_synthetic/{dataset}.log",
    conda:
        ENV
    script:
        "../scripts/generate_synthetic.py"


rule ingest:
    input:
        get_source_dir,
    output:
        "results/data/{dataset}/manifest.parquet",
    params:
        source=get_ingest_options,
    log:
        "results/logs/ingest/{dataset}.log",
    conda:
        ENV
    script:
        "../scripts/ingest.py"


rule split:
    input:
        "results/data/{dataset}/manifest.parquet",
    output:
        "results/data/{dataset}/split.parquet",
    params:
        split=get_setting("split"),
    log:
        "results/logs/split/{dataset}.log",
    conda:
        ENV
    script:
        "../scripts/split.py"


rule preprocess:
    input:
        "results/data/{dataset}/manifest.parquet",
    output:
        cache="results/data/{dataset}/cache.npy",
        manifest="results/data/{dataset}/cache.parquet",
    params:
        preprocess=get_setting("preprocess"),
    threads: 2
    log:
        "results/logs/preprocess/{dataset}.log",
    conda:
        ENV
    script:
        "../scripts/preprocess.py"
