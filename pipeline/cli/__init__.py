"""The ``fmcg`` command line: thin wiring over the pipeline's stages and the local runtime."""
