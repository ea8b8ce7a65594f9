# Membership-inference audit of every model (docs/methods.md, "Privacy audits"): per-image attack scores stay in the
# run's folder; only the aggregate table and figure, which hold no identifier, leave <results>/runs/.
rule audit_membership:
    input:
        model=f"{RUN_DIR}/model.pt",
        cache="<results>/data/{dataset}/cache.npy",
        manifest="<results>/data/{dataset}/cache.parquet",
        split="<results>/data/{dataset}/split.parquet",
    output:
        f"{RUN_DIR}/audit.parquet",
    log:
        "<results>/logs/audit_membership/{dataset}/{init}/eps-{epsilon}_seed-{seed}.log",
    conda:
        ENV
    threads: 1
    params:
        membership={key: config["audit"]["membership"][key] for key in ("n_members", "seed")},
    script:
        "../scripts/audit/audit_membership.py"


# The table and figure are light: they run on the submitting machine, never as cluster jobs.
localrules:
    aggregate_audit,
    plot_membership_audit,


rule aggregate_audit:
    input:
        scores=get_grid_files("audit.parquet"),
        privacy=get_grid_files("privacy.json"),
    output:
        **table_outputs("membership_audit", category="Privacy audits"),
    log:
        "<results>/logs/aggregate_audit.log",
    conda:
        ENV
    params:
        confidence=config["audit"]["membership"]["confidence"],
    script:
        "../scripts/audit/aggregate_audit.py"


rule plot_membership_audit:
    input:
        "<results>/tables/membership_audit.csv",
    output:
        png=report(
            "<results>/figures/membership_audit.png",
            caption="../report/membership_audit.rst",
            category="Privacy audits",
            labels={"figure": "membership audit"},
        ),
        pdf="<results>/figures/membership_audit.pdf",
    log:
        "<results>/logs/plot_membership_audit.log",
    conda:
        ENV
    script:
        "../scripts/audit/plot_membership_audit.py"
