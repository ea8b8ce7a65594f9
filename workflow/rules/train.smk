rule calibrate_noise:
    input:
        "<results>/data/{dataset}/split.parquet",
    output:
        NOISE_FILE,
    log:
        "<results>/logs/calibrate_noise/{dataset}/eps-{epsilon}.log",
    wildcard_constraints:
        epsilon=FINITE_EPSILON_WILDCARD,
    conda:
        ENV
    params:
        calibration=get_calibration_settings,
    script:
        "../scripts/train/calibrate_noise.py"


rule train:
    input:
        unpack(get_noise_calibration),
        cache="<results>/data/{dataset}/cache.npy",
        manifest="<results>/data/{dataset}/cache.parquet",
        split="<results>/data/{dataset}/split.parquet",
    output:
        model=f"{RUN_DIR}/model.pt",
        history=f"{RUN_DIR}/history.csv",
        privacy=f"{RUN_DIR}/privacy.json",
    log:
        "<results>/logs/train/{dataset}/eps-{epsilon}_seed-{seed}.log",
    benchmark:
        "<results>/benchmarks/train/{dataset}/eps-{epsilon}_seed-{seed}.tsv"
    conda:
        ENV
    threads: 1
    params:
        training=get_training_settings,
    script:
        "../scripts/train/train.py"


rule predict:
    input:
        model=f"{RUN_DIR}/model.pt",
        cache="<results>/data/{dataset}/cache.npy",
        manifest="<results>/data/{dataset}/cache.parquet",
        split="<results>/data/{dataset}/split.parquet",
    output:
        f"{RUN_DIR}/predictions.parquet",
    log:
        "<results>/logs/predict/{dataset}/eps-{epsilon}_seed-{seed}.log",
    conda:
        ENV
    threads: 1
    script:
        "../scripts/train/predict.py"
