"""Structural validation of a deserialized model, before it is returned to the caller.

The trusted-type policy decides *which* classes a model file may build; it cannot decide
whether the numbers inside them are consistent. Several scikit-learn structures are walked by
native code that trusts its indices (Cython compiled with ``boundscheck=False``, libsvm), so a
signed-but-crafted (or corrupted) model can read or write out of bounds, and crash the process
or worse, the first time it predicts. :func:`validate_model` walks the loaded object graph and
checks those structures against the invariants scikit-learn itself guarantees when it builds
them, and refuses the model (:class:`~safeload.errors.MalformedArtifactError`, naming where in
the model and what) if any does not hold:

* ``sklearn.tree._tree.Tree`` (decision trees, forests, gradient boosting, isolation forests):
  ``1 <= node_count <= capacity``; a node is a leaf iff both children are ``TREE_LEAF``; every
  child index lies in ``(parent, node_count)`` (sklearn adds a parent before its children, so
  this also rules out cycles); every node but the root has exactly one parent; split features
  lie in ``[0, n_features)``; the stored ``max_depth`` covers the real depth (``decision_path``
  sizes its buffer with it); ``n_classes``/``value`` agree with ``n_outputs``; and the tree
  agrees with its estimator (``n_features_in_``, ``n_outputs_``, ``n_classes_``), forest or
  boosting ensemble (shape of ``estimators_``, regression trees, feature subsets, a forest's
  ``n_outputs_``/``n_classes_``, an isolation forest's per-node path lengths).
* HistGradientBoosting ``TreePredictor``: node dtype, children in ``(parent, n_nodes)`` with one
  parent each, feature indices within ``n_features_in_``, categorical splits only on features
  the bin mapper marks categorical, bitset indices within the bitset arrays (shape ``(n, 8)``);
  ``n_trees_per_iteration_`` predictors per iteration, agreeing with ``classes_`` and the
  ``(1, n_trees_per_iteration_)`` baseline; one bin-threshold array per feature.
* ``KDTree``/``BallTree``: ``idx_array`` a permutation-range of the samples, node ranges within
  it, ``n_nodes = 2**n_levels - 1`` with children of inner nodes in range, ``node_bounds`` shape,
  ``sample_weight`` length, and the distance metric's parameters sized for the data.
* Neighbours estimators (KNeighbors*, RadiusNeighbors*, NearestNeighbors, LocalOutlierFactor,
  the neighbours transformers, and those holding one: Isomap, LLE, label propagation):
  ``_fit_X`` is ``(n_samples_fit_, n_features_in_)`` and is the ``_tree``'s data for the
  ``_fit_method``; every array metric parameter (``w``, ``V``, ``VI``) spans the features;
  ``_y`` has a row per sample and a classifier's labels index its ``classes_`` (the class-mode
  reductions write scores at them); LOF's per-sample arrays; KernelDensity's tree and
  NearestCentroid's centroids as wide as the input.
* libsvm models (SVC, NuSVC, SVR, NuSVR, OneClassSVM): ``_n_support``, ``support_``,
  ``support_vectors_`` (empty only for a precomputed or callable kernel), ``_dual_coef_``,
  ``_intercept_``, ``_probA``/``_probB``, ``class_weight_`` sizes agree; ``_sparse`` matches the
  vectors and ``_impl`` is the class's (the kernel name: :mod:`~safeload.validation.callables`).
* k-means (all three): centers float32/float64, C-contiguous, one row per cluster as wide as
  the input, ``1 <= _n_threads <= MAX_THREADS``; Birch's norms and
  labels one per subcluster center; MeanShift/AffinityPropagation centers as wide as the input;
  HDBSCAN's single linkage tree joins only nodes that exist (``dbscan_clustering`` unions them
  in Cython); FeatureAgglomeration's labels within ``n_clusters_``.
* Every estimator: ``n_features_in_`` a positive int, ``feature_names_in_`` that many str; any
  ``coef_`` as wide as the input with one intercept per row and one row per class; and shape
  tables for MLPs, discriminant analysis, decompositions, cross-decomposition, naive Bayes,
  mixtures, covariance estimators and Gaussian processes (these only reach numpy/BLAS, which
  would raise, but a crafted width is refused at load rather than mid-request). Integers that
  size predict-time allocations count the arrays they describe: ``n_classes_`` is
  ``len(classes_)`` (per output), a dummy's ``n_outputs_`` its ``constant_``/``classes_``, NMF's
  ``_n_components`` its components, a forest's ``n_outputs_`` its trees'.
* BisectingKMeans' cluster tree (centers as wide as the data, leaves labelled ``0..k-1``).
* Stored callables (:mod:`safeload.validation.callables`): a function scikit-learn would call
  on the caller's data must be on :data:`safeload.callsafe.SAFE_TO_CALL` with its keyword
  arguments in bounds; any other stored function or class only where sklearn keeps it uncalled.
* scipy sparse matrices/arrays (``check_format(full_check=True)``, coordinate bounds),
  ``BSpline`` knots/coefficients/degree, and hashing ``n_features``.
* Fitted values that size predict-time work or index output buffers (``preprocessing``,
  ``kernel_approximation``, ``text``, ``selection``, ``meta``): each count is re-derived from the
  other fitted state as ``fit`` derives it (PolynomialFeatures' output counts, one-hot
  ``_n_features_outs`` from ``categories_`` and the infrequent and dropped categories,
  vocabularies that are exact permutations of their columns, sketch hashes within
  ``n_components``, selector masks, estimator counts of multiclass wrappers, ...) and must
  agree; then output widths must fit ``ScanLimits.max_output_features`` and per-value loops
  (n-gram lengths, polynomial degrees) ``ScanLimits.max_work_per_value``.

The walk visits estimators' ``__dict__`` values, lists, tuples, sets, dicts and object arrays;
it is iterative, cycle-safe and bounded (``max_objects``). It never calls a model method that
runs native code on the structures before they have been checked. It does not (cannot) prove a
model harmless: it closes the memory-safety holes listed here, for the types of the default
policy.
"""

from __future__ import annotations

from collections.abc import Iterable

from safeload.typegate.limits import Deadline, ScanLimits
from safeload.validation._walk import MAX_OBJECTS, Walker

__all__ = ["MAX_OBJECTS", "validate_model"]


def validate_model(
    obj: object,
    *,
    max_objects: int | None = None,
    limits: ScanLimits | None = None,
    deadline: Deadline | None = None,
    safe_to_call: Iterable[str] = (),
) -> None:
    """Check every structure in ``obj`` whose inconsistency could crash native code.

    Args:
        obj: The freshly deserialized model (any object graph).
        max_objects: Refuse graphs with more objects than this (bounded time and memory);
            by default ``limits.max_opcodes``, since every object a stream builds costs at
            least one opcode (a 2M-term vocabulary is a real model, not an attack).
        limits: The caller's limits (the predict-time budgets among them); defaults otherwise.
        deadline: The gate's one clock, started before the scan; a fresh one otherwise.
        safe_to_call: Exact ``module:qualname`` names the caller vouches scikit-learn may call
            on its data with the model's arguments, on top of
            :data:`safeload.callsafe.SAFE_TO_CALL` (see :mod:`safeload.validation.callables`).

    Raises:
        MalformedArtifactError: Naming the path inside the model (``model.steps[1][1].tree_``)
            and the inconsistency found.
    """
    limits = limits or ScanLimits()
    names = tuple(safe_to_call)
    if any(not isinstance(n, str) or ":" not in n for n in names):
        raise TypeError("safe_to_call takes exact 'module:qualname' strings")
    cap = limits.max_opcodes if max_objects is None else max_objects
    Walker(cap, limits, deadline or Deadline(limits.max_seconds), names).run(obj)
