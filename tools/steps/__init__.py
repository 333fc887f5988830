"""Steps several backends share: locating a text target with Grounding DINO, SAM masks for a
target, SAM 2 tracking of a target through a video. Backends call these; no backend imports another
(tests/tools/test_layers.py walks the imports). Signal projection is :mod:`vitron.tools.signals`.

- :mod:`~vitron.tools.steps.detection`: ``phrases``, ``detect`` (one text target or several class
  names in one Grounding DINO pass);
- :mod:`~vitron.tools.steps.masks`: ``find_masks`` (regions, points, a mask or words -> SAM masks);
- :mod:`~vitron.tools.steps.tracking`: ``TrackTarget``, ``track_masks`` (-> a lazy mask stream).
"""
