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


rule pretrain:
    input:
        cache="<results>/data/{public}/cache.npy",
        manifest="<results>/data/{public}/cache.parquet",
        split="<results>/data/{public}/split.parquet",
    output:
        model=f"{PRETRAINED_DIR}/model.pt",
        history=f"{PRETRAINED_DIR}/history.csv",
        record=f"{PRETRAINED_DIR}/pretrain.json",
    log:
        "<results>/logs/pretrain/{public}.log",
    benchmark:
        "<results>/benchmarks/pretrain/{public}.tsv"
    conda:
        ENV
    threads: 1
    params:
        training=get_pretraining_settings,
        seed=lambda wildcards: config["datasets"][wildcards.public]["public"]["seed"],
    script:
        "../scripts/train/pretrain.py"


rule train:
    input:
        unpack(get_noise_calibration),
        unpack(get_init_checkpoint),
        cache="<results>/data/{dataset}/cache.npy",
        manifest="<results>/data/{dataset}/cache.parquet",
        split="<results>/data/{dataset}/split.parquet",
    output:
        model=f"{RUN_DIR}/model.pt",
        history=f"{RUN_DIR}/history.csv",
        privacy=f"{RUN_DIR}/privacy.json",
    log:
        "<results>/logs/train/{dataset}/{init}/eps-{epsilon}_seed-{seed}.log",
    benchmark:
        "<results>/benchmarks/train/{dataset}/{init}/eps-{epsilon}_seed-{seed}.tsv"
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
        "<results>/logs/predict/{dataset}/{init}/eps-{epsilon}_seed-{seed}.log",
    conda:
        ENV
    threads: 1
    script:
        "../scripts/train/predict.py"
