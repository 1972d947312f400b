"""``safeload serve``: a prediction server whose every model passed the whole gate.

The registry (:mod:`safeload.serve.registry`) and the input parsing
(:mod:`safeload.serve.inputs`) need no web framework; :mod:`safeload.serve.app` is the FastAPI
application and needs the ``[serve]`` extra (fastapi, uvicorn, pandas). ``import safeload``
imports none of this package.
"""

from safeload.serve.registry import Entry, ModelRegistry

__all__ = ["Entry", "ModelRegistry"]
