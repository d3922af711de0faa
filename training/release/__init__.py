"""Stage 4, release: a fitted model made into what the service loads (ONNX export and its metadata, int8
quantisation, shipping into the model repository)."""
