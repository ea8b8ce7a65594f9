"""Stage ``report`` (rules ``plot_*``): the paper figures, drawn from the tables of the evaluate and fairness
stages."""
