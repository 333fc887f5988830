"""The web UI (``vitron web``): a Gradio chat over the Vitron graph, with uploads, region sketches,
inline results, streamed answers, tool progress, approval buttons and persistent threads.

Gradio is imported only by :mod:`vitron.apps.web.app`, so the pure parts (rendering, upload
checks, the thread list) load without it.
"""
