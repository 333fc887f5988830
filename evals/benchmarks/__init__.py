"""Loaders of public benchmarks, from local paths, into :class:`~vitron.evals.sample.Sample`s the
harness runs through the graph and scores with the same metrics as the shapes world.

Nothing is downloaded: each loader takes the directory a user unpacked the benchmark into.
"""
