"""What every stage shares: errors, atomic outputs, seeding, provenance, running a step, statistics, and the one
table renderer and figure style of every output. Nothing here imports a stage."""
