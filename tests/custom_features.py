"""A user's own transformer and function, as a project outside scikit-learn would write them.

The policy-file tests trust these by exact name (``tests.custom_features:RatioFeatures``): a
class the default policy cannot know, which a pickle constructs and so must be callable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class RatioFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Appends column 0 divided by column 1 (scaled by the fitted mean of column 1)."""

    def __init__(self, eps: float = 1e-6) -> None:
        self.eps = eps

    def fit(self, X: Any, y: Any = None) -> RatioFeatures:
        X = np.asarray(X, dtype=np.float64)
        self.scale_ = float(np.mean(np.abs(X[:, 1]))) + self.eps
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        ratio = X[:, :1] / (np.abs(X[:, 1:2]) + self.scale_)
        return np.hstack([X, ratio])


def clip01(X: Any) -> np.ndarray:
    """Clip to [0, 1]: bounded elementwise work, the kind of function one vouches for."""
    return np.clip(np.asarray(X, dtype=np.float64), 0.0, 1.0)
