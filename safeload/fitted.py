"""Refuse to sign a model that was never fitted.

An unfitted model saves, signs and loads like any other, and fails only in production, at its
first ``predict`` (``NotFittedError``). The usual slip is saving a search's ``.estimator`` (the
unfitted template) instead of its ``.best_estimator_``. scikit-learn's own ``check_is_fitted``
decides, so that ``__sklearn_is_fitted__`` and the ``requires_fit`` tag (stateless
transformers, such as ``FunctionTransformer``) are honoured; a Pipeline is checked step by step,
since its own check looks at its last step only.
"""

from __future__ import annotations

from typing import Any

from safeload.errors import UnfittedModelError


def check_fitted(model: Any, *, source: str | None = None) -> None:
    """Raise :class:`UnfittedModelError` if ``model`` (or any Pipeline step) is not fitted.

    ``source`` is the file the model was read from, when signing or converting a file rather
    than saving a live model: the advice is then to fit before dumping it. Objects that are not
    estimators (no ``fit``) are not judged.
    """
    from sklearn.exceptions import NotFittedError
    from sklearn.model_selection._search import BaseSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    prefix = f"The model in {source}: " if source is not None else ""
    when = "before dumping it with joblib" if source is not None else "before saving"

    def check(est: Any, steps: tuple[str, ...], shown: tuple[str, ...]) -> None:
        if isinstance(est, Pipeline):
            for name, sub in est.steps:
                if sub is None or (isinstance(sub, str) and sub == "passthrough"):
                    continue
                label = str(name)[:80]
                check(sub, (*steps, label), (*shown, f"{label!r} ({_kind(sub)})"))
            return
        if not callable(getattr(type(est), "fit", None)):
            return
        try:
            check_is_fitted(est)
            return
        except NotFittedError:
            pass
        except (TypeError, AttributeError, ValueError):
            return  # not an estimator scikit-learn can judge: not ours to refuse
        if steps:
            message = (
                f"{prefix}Pipeline step {' > '.join(shown)} is not fitted: call fit on the "
                f"whole pipeline {when} (pipeline.fit(X, y) fits every step)."
            )
        elif isinstance(est, BaseSearchCV):
            message = (
                f"{prefix}{_kind(est)} is not fitted: call fit {when}, then save the fitted "
                "search or its `.best_estimator_`."
            )
        else:
            message = (
                f"{prefix}{_kind(est)} is not fitted: call fit {when}. Saving a search's "
                "`.estimator`? The fitted model is `.best_estimator_`."
            )
        raise UnfittedModelError(message, type_name=_kind(est), steps=steps)

    check(model, (), ())


def _kind(obj: Any) -> str:
    return type(obj).__name__[:80]
