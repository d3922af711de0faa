"""What every stage of the toolkit shares: where outputs go and how JSON is written, the scores, the
timings and the figures. It imports no stage, so every stage can import it."""
