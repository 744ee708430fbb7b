"""Side-by-side benchmark of replaykit and its peers; see benchmarks/README.md."""
