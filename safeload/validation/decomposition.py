"""Decompositions, cross-decomposition and embeddings with a transform: component shapes.

Their transforms are numpy and BLAS products of the input with fitted matrices (and, for NMF,
LDA and dictionary learning, Cython loops sized from those products), so a mismatch raises
at best; the tables hold every fitted matrix to ``n_features_in_`` and to one component count.
"""

from __future__ import annotations

from typing import Any

from safeload.validation._base import Checks, Context, Invalid, attr, integer
from safeload.validation.shapes import Table, check_table, shape_of, table_check

_PCA: Table = {
    "components_": ("k", "f"),
    "mean_": ("f",),
    "var_": ("f",),
    "explained_variance_": ("k",),
    "explained_variance_ratio_": ("k",),
    "singular_values_": ("k",),
}
#: what transforms allocate by (MiniBatchNMF's W is (n_samples, _n_components))
_COMPONENTS = {"n_components_": "k", "_n_components": "k"}
_NMF: Table = {
    "components_": ("k", "f"),
    "_components_numerator": ("k", "f"),
    "_components_denominator": ("k", "f"),
}
_ICA: Table = {
    "components_": ("k", "f"),
    "mean_": ("f",),
    "whitening_": ("k", "f"),
    "mixing_": ("f", "k"),
    "_unmixing": ("k", "k"),
}
_FACTOR: Table = {"components_": ("k", "f"), "mean_": ("f",), "noise_variance_": ("f",)}
_LDA: Table = {"components_": ("k", "f"), "exp_dirichlet_component_": ("k", "f")}
_SPARSE_PCA: Table = {"components_": ("k", "f"), "mean_": ("f",)}
_DICTIONARY: Table = {"components_": ("k", "f"), "_A": ("k", "k"), "_B": ("f", "k")}
_CODER: Table = {"dictionary": ("k", "f")}
_KERNEL_PCA: Table = {
    "X_fit_": ("n", "f"),
    "eigenvectors_": ("n", "k"),
    "eigenvalues_": ("k",),
    "X_transformed_fit_": ("n", "k"),
    "dual_coef_": ("n", "f"),
}
_RBM: Table = {"components_": ("k", "f"), "intercept_hidden_": ("k",), "intercept_visible_": ("f",)}
_NCA: Table = {"components_": ("k", "f")}
_PLS: Table = {
    "_x_mean": ("f",),
    "_x_std": ("f",),
    "_y_mean": ("t",),
    "_y_std": ("t",),
    "x_weights_": ("f", "k"),
    "x_loadings_": ("f", "k"),
    "x_rotations_": ("f", "k"),
    "y_weights_": ("t", "k"),
    "y_loadings_": ("t", "k"),
    "y_rotations_": ("t", "k"),
    "coef_": ("t", "f"),
    "intercept_": ("t",),
}


def _visit_embedding(ctx: Context, est: Any) -> None:
    """Isomap, LocallyLinearEmbedding: per-sample arrays sized for the neighbours they hold."""
    nbrs = attr(est, "nbrs_")
    if nbrs is None:
        return
    n = integer(attr(nbrs, "n_samples_fit_"), "nbrs_.n_samples_fit_")
    # LLE's transform allocates (n_samples, n_components) for the embedding_ rows it mixes
    counts = {"n_components": "k"} if type(est).__name__ == "LocallyLinearEmbedding" else {}
    check_table(est, {"embedding_": ("n", "k"), "dist_matrix_": ("n", "n")}, {"n": n}, counts)
    n_in, width = attr(est, "n_features_in_"), shape_of(attr(nbrs, "_fit_X"))
    if n_in is not None and width is not None and width[1] != integer(n_in, "n_features_in_"):
        raise Invalid(f"nbrs_ holds {width[1]} features but n_features_in_={n_in}")


def _mod(name: str) -> str:
    return f"sklearn.decomposition.{name}"


CHECKS: Checks = [
    (((_mod("_base"), "_BasePCA"),), table_check(_PCA, _COMPONENTS)),
    (((_mod("_truncated_svd"), "TruncatedSVD"),), table_check(_PCA)),
    (((_mod("_nmf"), "_BaseNMF"),), table_check(_NMF, _COMPONENTS)),
    (((_mod("_fastica"), "FastICA"),), table_check(_ICA)),
    (((_mod("_factor_analysis"), "FactorAnalysis"),), table_check(_FACTOR)),
    (((_mod("_lda"), "LatentDirichletAllocation"),), table_check(_LDA)),
    (((_mod("_sparse_pca"), "_BaseSparsePCA"),), table_check(_SPARSE_PCA)),
    (((_mod("_dict_learning"), "_BaseSparseCoding"),), table_check(_DICTIONARY)),
    (((_mod("_dict_learning"), "SparseCoder"),), table_check(_CODER)),
    (((_mod("_kernel_pca"), "KernelPCA"),), table_check(_KERNEL_PCA)),
    ((("sklearn.neural_network._rbm", "BernoulliRBM"),), table_check(_RBM)),
    ((("sklearn.neighbors._nca", "NeighborhoodComponentsAnalysis"),), table_check(_NCA)),
    ((("sklearn.cross_decomposition._pls", "_PLS"),), table_check(_PLS)),
    ((("sklearn.cross_decomposition._pls", "PLSSVD"),), table_check(_PLS)),
    (
        (
            ("sklearn.manifold._isomap", "Isomap"),
            ("sklearn.manifold._locally_linear", "LocallyLinearEmbedding"),
        ),
        _visit_embedding,
    ),
]
