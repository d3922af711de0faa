"""Stage 1, data: the crop folders and sources on disk, their near-duplicate groups and splits, the plate
photos. Imports no other stage."""
