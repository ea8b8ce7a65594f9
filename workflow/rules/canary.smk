# One-run canary audit (docs/methods.md, "One-run canary audit"), only when audit.canary is configured: dedicated
# training runs with canaries appended to the training split, under <results>/audit/canary/; the study's models are
# never replaced. Only the aggregate table, which holds no identifier, leaves that folder.
if "canary" in config["audit"]:
    from privfair.audit.canary import check_canary_config

    CANARY = config["audit"]["canary"]
    check_canary_config(CANARY)
    CANARY_DATA = "<results>/audit/canary/{dataset}"
    CANARY_RUN = f"{CANARY_DATA}/eps-{{epsilon}}/seed-{{seed}}"

    rule canary_cache:
        input:
            cache="<results>/data/{dataset}/cache.npy",
            manifest="<results>/data/{dataset}/cache.parquet",
        output:
            cache=f"{CANARY_DATA}/cache.npy",
            manifest=f"{CANARY_DATA}/cache.parquet",
        log:
            "<results>/logs/canary_cache/{dataset}.log",
        conda:
            ENV
        params:
            canaries={key: CANARY[key] for key in ("n_canaries", "seed")},
        script:
            "../scripts/audit/canary_cache.py"

    # σ is calibrated inside the job: the included canaries change N_train, so rule calibrate_noise's file does not fit.
    rule canary_train:
        input:
            cache=f"{CANARY_DATA}/cache.npy",
            manifest=f"{CANARY_DATA}/cache.parquet",
            split="<results>/data/{dataset}/split.parquet",
        output:
            split=f"{CANARY_RUN}/split.parquet",
            model=f"{CANARY_RUN}/model.pt",
            history=f"{CANARY_RUN}/history.csv",
            privacy=f"{CANARY_RUN}/privacy.json",
        log:
            "<results>/logs/canary_train/{dataset}/eps-{epsilon}_seed-{seed}.log",
        benchmark:
            "<results>/benchmarks/canary_train/{dataset}/eps-{epsilon}_seed-{seed}.tsv"
        conda:
            ENV
        threads: 1
        params:
            training=get_training_settings,
            seed=CANARY["seed"],
        script:
            "../scripts/audit/canary_train.py"

    rule canary_score:
        input:
            model=f"{CANARY_RUN}/model.pt",
            privacy=f"{CANARY_RUN}/privacy.json",
            split=f"{CANARY_RUN}/split.parquet",
            cache=f"{CANARY_DATA}/cache.npy",
            manifest=f"{CANARY_DATA}/cache.parquet",
        output:
            guesses=f"{CANARY_RUN}/guesses.parquet",
            summary=f"{CANARY_RUN}/audit.json",
        log:
            "<results>/logs/canary_score/{dataset}/eps-{epsilon}_seed-{seed}.log",
        conda:
            ENV
        threads: 1
        params:
            guesses=CANARY["guesses"],
            confidence=CANARY["confidence"],
        script:
            "../scripts/audit/canary_score.py"

    # The table is light: it runs on the submitting machine, never as a cluster job.
    localrules:
        aggregate_canary_audit,

    rule aggregate_canary_audit:
        # One run per audited (dataset, ε, seed): the audit's own budgets and seeds, or the study's.
        input:
            expand(
                f"{CANARY_RUN}/audit.json",
                dataset=config["study"]["datasets"],
                epsilon=[epsilon_label(e) for e in CANARY.get("epsilons", config["study"]["epsilons"])],
                seed=CANARY.get("seeds", config["study"]["seeds"]),
            ),
        output:
            **table_outputs("canary_audit", category="Privacy audits"),
        log:
            "<results>/logs/aggregate_canary_audit.log",
        conda:
            ENV
        script:
            "../scripts/audit/aggregate_canary_audit.py"
