"""The shapes world: a seeded procedural generator of images and videos of coloured shapes with
masks, boxes and words about them, in train / validation / test / compositional splits
(:mod:`~vitron.evals.shapes.dataset`), written as training records by
:mod:`~vitron.evals.shapes.records`."""
