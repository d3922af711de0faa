"""Stage 3, fitting: the recipes, the networks and their training (classifier and detector). Imports the
stages below it (data, synthesis)."""
