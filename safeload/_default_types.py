"""The default trusted types, as exact ``module:qualname`` strings.

Seed list for the restricted unpickler; every entry is a data type (a class whose construction
from pickled state runs no code from the stream) or a harmless, justified function.
"""

from __future__ import annotations

DEFAULT_TYPES: tuple[str, ...] = (
    # joblib: placeholder object that joblib's own reader replaces by the array that follows it.
    "joblib.numpy_pickle:NumpyArrayWrapper",
    # numpy: arrays, dtypes and scalars as numpy pickles them (numpy 1.x and 2.x spellings).
    "numpy:ndarray",
    "numpy:dtype",
    "numpy.core.multiarray:_reconstruct",
    "numpy.core.multiarray:scalar",
    "numpy._core.multiarray:_reconstruct",
    "numpy._core.multiarray:scalar",
    # scikit-learn: the estimators used by the seed tests.
    "sklearn.pipeline:Pipeline",
    "sklearn.preprocessing._data:StandardScaler",
    "sklearn.linear_model._logistic:LogisticRegression",
    "sklearn.ensemble._forest:RandomForestClassifier",
    "sklearn.tree._classes:DecisionTreeClassifier",
    "sklearn.tree._tree:Tree",
)
