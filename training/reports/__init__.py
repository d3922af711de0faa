"""Stage 6, reports: the model card, written from the evaluations' files. Only the command line sits above
it."""
