"""Measuring the system: metrics (:mod:`~vitron.evals.metrics`), the shapes world
(:mod:`~vitron.evals.shapes`), benchmark loaders (:mod:`~vitron.evals.benchmarks`), and the
harness behind ``vitron eval`` (:mod:`~vitron.evals.runner`), which runs samples through the graph
end to end and scores only its final outputs."""
