"""Stage ``fairness`` (rules ``subgroup_metrics``, ``analyse_fairness``): metrics per patient subgroup, performance
gaps and fairness differences, and their statistics across the grid."""
