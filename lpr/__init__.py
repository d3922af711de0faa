"""The TF-free core that training and the service share.

Everything that decides what an answer means lives here once: the class list
(:mod:`lpr.labels`), the preprocessing (:mod:`lpr.preprocessing`), the plate
grammar (:mod:`lpr.plate_grammar`), calibrated confidences (:mod:`lpr.confidence`),
the ONNX models and their metadata (:mod:`lpr.model`, :mod:`lpr.detection`,
:mod:`lpr.char_finder`, :mod:`lpr.repository`, written only by :mod:`lpr.metadata`),
and the one way from a photo to its plates' text (:mod:`lpr.photo_reader`,
:mod:`lpr.readers`, :mod:`lpr.found_reader`, :mod:`lpr.plate_reader`). It imports NumPy,
Pillow, SciPy and ONNX Runtime, never TensorFlow, ``training`` or ``service`` (an import-linter contract in
``pyproject.toml`` holds it to that).
"""
