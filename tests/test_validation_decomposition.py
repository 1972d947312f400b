"""Decompositions, cross-decomposition and embeddings: components as wide as the input, and
every per-component array sized for the same component count."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.cross_decomposition import CCA, PLSSVD, PLSRegression
from sklearn.decomposition import (
    NMF,
    PCA,
    FactorAnalysis,
    FastICA,
    IncrementalPCA,
    KernelPCA,
    LatentDirichletAllocation,
    MiniBatchDictionaryLearning,
    SparsePCA,
    TruncatedSVD,
)
from sklearn.manifold import Isomap, LocallyLinearEmbedding
from sklearn.neighbors import NeighborhoodComponentsAnalysis
from sklearn.neural_network import BernoulliRBM

from safeload.errors import MalformedArtifactError
from safeload.validation import validate_model

rng = np.random.RandomState(0)
X = rng.uniform(size=(40, 5))
Y = X[:, :2] @ np.array([[1.0, 0.5], [0.2, 1.0]])
y = np.arange(40) % 2


def refused(model: Any, *fragments: str) -> None:
    with pytest.raises(MalformedArtifactError) as info:
        validate_model(model)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


# name -> (fitted model, an attribute to cut to one entry less on its last axis, or on its
# first with a "0:" prefix, expected fragment)
CASES: dict[str, tuple[Callable[[], Any], str, str]] = {
    "pca": (lambda: PCA(3).fit(X), "mean_", "mean_ has shape (4,)"),
    "pca_variance": (lambda: PCA(3).fit(X), "explained_variance_", "explained_variance_"),
    "ipca": (lambda: IncrementalPCA(3).fit(X), "var_", "var_ has shape (4,)"),
    "svd": (lambda: TruncatedSVD(3).fit(X), "singular_values_", "singular_values_"),
    "nmf": (lambda: NMF(2, max_iter=50).fit(X), "components_", "components_ has shape (2, 4)"),
    "ica": (lambda: FastICA(3, random_state=0).fit(X), "mixing_", "mixing_"),
    "fa": (lambda: FactorAnalysis(2).fit(X), "noise_variance_", "noise_variance_"),
    "lda": (
        lambda: LatentDirichletAllocation(2, random_state=0).fit(X),
        "exp_dirichlet_component_",
        "exp_dirichlet_component_",
    ),
    "sparse_pca": (lambda: SparsePCA(2, random_state=0).fit(X), "mean_", "mean_"),
    "dictionary": (
        lambda: MiniBatchDictionaryLearning(3, random_state=0).fit(X),
        "_B",
        "_B has shape",
    ),
    "kpca": (lambda: KernelPCA(3).fit(X), "X_fit_", "X_fit_ has shape (40, 4)"),
    "rbm": (lambda: BernoulliRBM(3, random_state=0).fit(X), "intercept_visible_", "visible"),
    "nca": (
        lambda: NeighborhoodComponentsAnalysis(2, random_state=0).fit(X, y),
        "components_",
        "components_",
    ),
    "pls": (lambda: PLSRegression(2).fit(X, Y), "_x_std", "_x_std has shape (4,)"),
    "pls_coef": (lambda: PLSRegression(2).fit(X, Y), "intercept_", "intercept_"),
    "cca": (lambda: CCA(2).fit(X, Y), "0:x_rotations_", "x_rotations_ has shape (4, 2)"),
    "plssvd": (lambda: PLSSVD(2).fit(X, Y), "_x_mean", "_x_mean"),
    "isomap": (lambda: Isomap(n_neighbors=5).fit(X), "dist_matrix_", "dist_matrix_"),
    "lle": (lambda: LocallyLinearEmbedding(n_neighbors=5).fit(X), "0:embedding_", "embedding_"),
}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", sorted(CASES))
def test_legit_model_passes_and_a_cut_array_is_refused(name: str) -> None:
    make, attribute, fragment = CASES[name]
    model = make()
    validate_model(model)
    first = attribute.startswith("0:")
    attribute = attribute.removeprefix("0:")
    value = getattr(model, attribute)
    setattr(model, attribute, (value[:-1] if first else value[..., :-1]).copy())
    refused(model, fragment)


def test_n_features_in_binds_every_table() -> None:
    model = PCA(3).fit(X)
    model.n_features_in_ = 9
    refused(model, "n_features_in_=9")
