# privfair: privacy-utility-fairness study of medical-imaging classifiers.
# Raw images -> manifest -> patient-level split -> MONAI cache -> (dataset, epsilon, seed) training grid
# -> predictions -> bootstrap evaluation and subgroup metrics -> fairness statistics, tables, figures, report.

# The study is the --configfile file(s), whole: nothing of the demo creeps into it. Without one, the demo runs.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/audit.smk"
include: "workflow/rules/canary.smk"
include: "workflow/rules/fairness.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/release.smk"


localrules:
    all,


rule all:
    input:
        get_final_outputs(),
