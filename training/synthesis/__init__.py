"""Stage 2, synthesis: what is made from the data rather than read from it (augmented crops, out-of-class
glyphs, composed plates, detector scenes). Imports only :mod:`training.data`."""
