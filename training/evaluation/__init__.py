"""Stage 5, evaluation: the released models measured (test scores, per-source and leave-one-source-out
reports, confidence calibration, whole plates and photos)."""
