"""The TF-free core that training and the service share.

Everything that decides what an answer means lives here once: the class list
(:mod:`lpr.labels`), the preprocessing (:mod:`lpr.preprocessing`), plate
segmentation and the plate grammar (:mod:`lpr.segmentation`, :mod:`lpr.plate_grammar`),
calibrated confidences (:mod:`lpr.confidence`), the ONNX model and its metadata
(:mod:`lpr.model`, :mod:`lpr.repository`) and the one plate reader
(:mod:`lpr.plate_reader`). It imports NumPy, Pillow, SciPy and ONNX Runtime,
never TensorFlow, ``training`` or ``service`` (an import-linter contract in
``pyproject.toml`` holds it to that).
"""
