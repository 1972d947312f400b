"""The default trusted types (exact ``module:qualname`` strings), and those a stream may call.

Generated against scikit-learn 1.9.1, numpy 2.4.6, scipy 1.17.1 and joblib 1.6.0 (Python 3.11),
then reviewed by hand: ``benchmarks/gen_default_types.py`` fits every estimator of
``sklearn.utils.all_estimators()`` (and common pipelines, losses, metrics, kernels, scorers and
splitters), records every global the joblib streams name and how each is used (called by which
opcode, with which arguments, or only stored), and prints the candidates (``--calls`` for the
call table); each group below says why its entries are safe to name. Nothing here is trusted by
module prefix.

A name is trusted in one of two ways:

* as a *reference* (every entry of :data:`DEFAULT_TYPES`): the stream may store it as a value,
  e.g. ``func=numpy.log1p``, ``score_func=f_classif``, ``dtype=numpy.float64``, or the
  ``numpy.ndarray`` joblib records as an array's ``subclass``. Storing a function runs nothing;
* as a *callable* (the entries of :data:`DEFAULT_CALLS`, a subset): the stream may also call it
  (``REDUCE``, ``NEWOBJ``, ``NEWOBJ_EX``, ``OBJ``, ``INST``), and ``BUILD`` may then restore the
  state of what it made. These are exactly the names that legitimate pickles call, measured:
  data classes that pickles construct with ``cls.__new__(cls)`` and fill from a state (a
  ``__dict__`` update or a validating ``__setstate__``), and the reconstructors numpy, scipy and
  Cython write into their own pickles. Each comes with a rule (:data:`CALL_RULES`) fixing the
  only form of call its pickles take: ``numpy.core.multiarray._reconstruct`` is always called
  with shape ``(0,)``, so any other shape (an allocation chosen by the file) is refused; an
  estimator class is only ever created by ``NEWOBJ`` without arguments, never by running its
  ``__init__`` on the stream's arguments.

The split closes a whole class of attacks rather than a list of names: any function here would
be "harmless" to store, yet ``numpy.ndarray((10**12,))`` or ``numpy.square(huge)`` called by a
100-byte stream exhausts memory. A stream can only call what is in :data:`DEFAULT_CALLS`, in
the form its rule allows; a user who adds their own names (``TypePolicy.extend``) makes them
callable unless they pass ``callable=False``.

What an entry may be:

* a data class: constructing it (``NEWOBJ``) and restoring its state (``BUILD``, i.e.
  ``__setstate__`` or a plain ``__dict__`` update) only stores values. Crafted values can
  still be inconsistent (tree node indices out of range, ...): :mod:`safeload.validation`
  checks the structures whose inconsistency could crash native code;
* a reconstructor numpy, scipy or Cython writes into its own pickles, which builds data from
  data (``_reconstruct``, ``scalar``, ``_frombuffer``, ``__pyx_unpickle_*`` with its checksum),
  called only in the form its rule allows;
* a pure computation stored as a parameter (a score function, a metric, a ufunc): a reference
  only, never called by the stream.

What is never here: anything that imports, evaluates or compiles, reads or writes files, the
network or the OS, returns attributes or arbitrary callables (``getattr``, ``attrgetter``,
``methodcaller``), binds or defers calls (``functools.partial``, but for its one exact form
below), loads nested pickles or ``.npy`` data (``pickle.loads``, ``numpy.load``, joblib's
loaders), or decodes text with a caller-chosen codec (``builtins.str``/``bytearray`` with an
encoding argument; ``_codecs.encode`` only ever with ``'latin1'``: a codec lookup imports
``encodings.*`` modules). Some reconstructors call an argument they are given
(``__bit_generator_ctor``, ``__generator_ctor``, ``newObj``, ``_mareconstruct``,
``__pyx_unpickle_*``, ``copyreg._reconstructor``): their rules fix which exact names that
argument may be, so they cannot launder a call to a reference-only name.

Protocols 0 to 2 name some of these by their Python 2 spelling (``copy_reg._reconstructor``,
``__builtin__.object``); both walls translate a name as the unpickler's ``fix_imports`` does
(below protocol 3 only) and judge the translated one, which is what is listed here. Those
protocols also write ``bytes`` as ``_codecs.encode(text, 'latin1')`` and plain objects as
``copyreg._reconstructor(cls, object, None)``: each is callable in exactly that form.

Consequences worth knowing (see ``tests/test_all_estimators.py`` for the measured list):

* ``BisectingKMeans`` stores the private k-means routine ``_kmeans_single_lloyd`` (or
  ``_kmeans_single_elkan``) as an attribute. Called with inconsistent arrays it writes out of
  bounds, so both are references only: no stream may call them (no rule in either wall), and
  :mod:`safeload.validation.callables` accepts them only in a ``BisectingKMeans``'s own
  ``_kmeans_single`` field, which ``fit`` alone calls (and refits recompute the arrays).
* Trusted to be *stored* is not trusted to be *called* by scikit-learn later:
  ``FunctionTransformer(func=...)``, a callable ``metric`` or ``kernel`` are judged after
  loading against :data:`safeload.callsafe.SAFE_TO_CALL` (see ``validation/callables.py``).
* ``HistGradientBoosting*`` with categorical features stores
  ``functools.partial(sklearn.utils.validation.check_array, ...)``. ``functools.partial`` is
  callable only under its exact rule (:mod:`safeload.typegate.partialrule`): it binds nothing
  but ``check_array`` (itself a reference only), with keyword arguments of ``check_array``
  holding plain data; a partial of anything else is refused by both walls.
* pandas objects are not here. A model fitted on a DataFrame stores its column names as an
  object array of ``str`` (no pandas type); a pickled DataFrame or Series is rebuilt through
  version-specific pandas internals (block managers, extension arrays, Cython reconstructors)
  that are a large, moving surface and that no estimator's fitted state needs.

scikit-learn moves classes between private modules across releases; the estimator entries are
those of the version above. Regenerate (and review) the list when the supported versions move.
"""

from __future__ import annotations

# ---- how a callable may be called ------------------------------------------------------------
# The rule names are shared by the scanner (on symbolic values) and the restricted unpickler (on
# real ones); each says the only form of call that the library's own pickles take.

ANY = "any"  # any arguments: the callable only stores or converts them
NEW = "new"  # only ``cls.__new__(cls)``: NEWOBJ/NEWOBJ_EX with no arguments (no __init__)
NO_ARGS = "no_args"  # called with no arguments at all
DTYPE = "dtype"  # numpy.dtype(code: str[, align: bool[, copy: bool]])
RECONSTRUCT = "reconstruct"  # _reconstruct(<trusted class>, (0,), 'b')
MARECONSTRUCT = "mareconstruct"  # _mareconstruct(<class>, <class>, (0,), 'b')
SCALAR = "scalar"  # scalar(<dtype>, <bytes>): never the one-argument form (zero-filled itemsize)
FROMBUFFER = "frombuffer"  # _frombuffer(<bytes>, <dtype>, <shape>, <order>[, <axes>]): a view
BIT_GENERATOR = "bit_generator"  # __bit_generator_ctor(<name> | <BitGenerator class>)
RNG = "rng"  # __generator_ctor/__randomstate_ctor(<name> | <bit generator>[, __bit_generator_ctor])
MODULE_CLASS = "module_class"  # newObj(<a trusted class of newObj's own module>)
PYX_UNPICKLE = "pyx_unpickle"  # __pyx_unpickle_X(<module:X>, <checksum int>, <state>)
TREE = "tree"  # Tree(n_features >= 0, n_classes: 1-d int array of n_outputs, n_outputs >= 1)
HASHED = "hashed"  # set/frozenset(<list or tuple>): its items are hashed (bounded like keys)
COPYREG_RECONSTRUCTOR = (
    "copyreg_reconstructor"  # (<class>, object, None), (<namedtuple>, tuple, ..)
)
COPYREG_NEWOBJ = "copyreg_newobj"  # __newobj__(<class>, *args): the NEWOBJ rule of <class>
COPYREG_NEWOBJ_EX = "copyreg_newobj_ex"  # __newobj_ex__(<class>, args, kwargs): NEWOBJ_EX's
ENCODE = "encode"  # _codecs.encode(<str>, 'latin1'): bytes at protocols 0-2 (one byte per char)
PARTIAL = (
    "partial"  # partial(check_array), then BUILD (check_array, (), {<its kwarg>: <data>}, None)
)
# Rules only the opt-in packs use (safeload._packs, safeload.typegate.packrules):
BYTEARRAY = "bytearray"  # bytearray(<bytes>) | bytearray(<str>, 'latin-1'): XGBoost's Booster
DEFAULTDICT = "defaultdict"  # defaultdict(collections.OrderedDict): LightGBM's eval results

#: namedtuple classes fitted state holds, and their fields: each is created by NEWOBJ with
#: exactly one value per field (its own __new__ only stores them), under a rule of its own.
NAMEDTUPLES: dict[str, tuple[str, ...]] = {
    "sklearn.impute._iterative:_ImputerTriplet": ("feat_idx", "neighbor_feat_idx", "estimator"),
}


def namedtuple_rule(name: str) -> str:
    """The call rule of the namedtuple class ``name`` (a key of :data:`NAMEDTUPLES`)."""
    return f"namedtuple {name}"


RULES = frozenset(
    {
        ANY,
        NEW,
        NO_ARGS,
        DTYPE,
        RECONSTRUCT,
        MARECONSTRUCT,
        SCALAR,
        FROMBUFFER,
        BIT_GENERATOR,
        RNG,
        MODULE_CLASS,
        PYX_UNPICKLE,
        TREE,
        HASHED,
        COPYREG_RECONSTRUCTOR,
        COPYREG_NEWOBJ,
        COPYREG_NEWOBJ_EX,
        ENCODE,
        PARTIAL,
        BYTEARRAY,
        DEFAULTDICT,
        *(namedtuple_rule(n) for n in NAMEDTUPLES),
    }
)

#: The classes ``__bit_generator_ctor`` may be given (it calls what it is given).
BIT_GENERATOR_CLASSES: tuple[str, ...] = (
    "numpy.random._mt19937:MT19937",
    "numpy.random._pcg64:PCG64",
    "numpy.random._pcg64:PCG64DXSM",
    "numpy.random._philox:Philox",
    "numpy.random._sfc64:SFC64",
)

# ---- scikit-learn: every estimator of all_estimators() (experimental ones included) -----------
# Estimators are created by NEWOBJ without arguments and restore their state with
# BaseEstimator.__setstate__ (a __dict__ update plus a version note).
_ESTIMATORS: tuple[str, ...] = (
    "sklearn.calibration:CalibratedClassifierCV",
    "sklearn.cluster._affinity_propagation:AffinityPropagation",
    "sklearn.cluster._agglomerative:AgglomerativeClustering",
    "sklearn.cluster._agglomerative:FeatureAgglomeration",
    "sklearn.cluster._bicluster:SpectralBiclustering",
    "sklearn.cluster._bicluster:SpectralCoclustering",
    "sklearn.cluster._birch:Birch",
    "sklearn.cluster._bisect_k_means:BisectingKMeans",
    "sklearn.cluster._dbscan:DBSCAN",
    "sklearn.cluster._hdbscan.hdbscan:HDBSCAN",
    "sklearn.cluster._kmeans:KMeans",
    "sklearn.cluster._kmeans:MiniBatchKMeans",
    "sklearn.cluster._mean_shift:MeanShift",
    "sklearn.cluster._optics:OPTICS",
    "sklearn.cluster._spectral:SpectralClustering",
    "sklearn.compose._column_transformer:ColumnTransformer",
    "sklearn.compose._target:TransformedTargetRegressor",
    "sklearn.covariance._elliptic_envelope:EllipticEnvelope",
    "sklearn.covariance._empirical_covariance:EmpiricalCovariance",
    "sklearn.covariance._graph_lasso:GraphicalLasso",
    "sklearn.covariance._graph_lasso:GraphicalLassoCV",
    "sklearn.covariance._robust_covariance:MinCovDet",
    "sklearn.covariance._shrunk_covariance:LedoitWolf",
    "sklearn.covariance._shrunk_covariance:OAS",
    "sklearn.covariance._shrunk_covariance:ShrunkCovariance",
    "sklearn.cross_decomposition._pls:CCA",
    "sklearn.cross_decomposition._pls:PLSCanonical",
    "sklearn.cross_decomposition._pls:PLSRegression",
    "sklearn.cross_decomposition._pls:PLSSVD",
    "sklearn.decomposition._dict_learning:DictionaryLearning",
    "sklearn.decomposition._dict_learning:MiniBatchDictionaryLearning",
    "sklearn.decomposition._dict_learning:SparseCoder",
    "sklearn.decomposition._factor_analysis:FactorAnalysis",
    "sklearn.decomposition._fastica:FastICA",
    "sklearn.decomposition._incremental_pca:IncrementalPCA",
    "sklearn.decomposition._kernel_pca:KernelPCA",
    "sklearn.decomposition._lda:LatentDirichletAllocation",
    "sklearn.decomposition._nmf:MiniBatchNMF",
    "sklearn.decomposition._nmf:NMF",
    "sklearn.decomposition._pca:PCA",
    "sklearn.decomposition._sparse_pca:MiniBatchSparsePCA",
    "sklearn.decomposition._sparse_pca:SparsePCA",
    "sklearn.decomposition._truncated_svd:TruncatedSVD",
    "sklearn.discriminant_analysis:LinearDiscriminantAnalysis",
    "sklearn.discriminant_analysis:QuadraticDiscriminantAnalysis",
    "sklearn.dummy:DummyClassifier",
    "sklearn.dummy:DummyRegressor",
    "sklearn.ensemble._bagging:BaggingClassifier",
    "sklearn.ensemble._bagging:BaggingRegressor",
    "sklearn.ensemble._forest:ExtraTreesClassifier",
    "sklearn.ensemble._forest:ExtraTreesRegressor",
    "sklearn.ensemble._forest:RandomForestClassifier",
    "sklearn.ensemble._forest:RandomForestRegressor",
    "sklearn.ensemble._forest:RandomTreesEmbedding",
    "sklearn.ensemble._gb:GradientBoostingClassifier",
    "sklearn.ensemble._gb:GradientBoostingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting:HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting:HistGradientBoostingRegressor",
    "sklearn.ensemble._iforest:IsolationForest",
    "sklearn.ensemble._stacking:StackingClassifier",
    "sklearn.ensemble._stacking:StackingRegressor",
    "sklearn.ensemble._voting:VotingClassifier",
    "sklearn.ensemble._voting:VotingRegressor",
    "sklearn.ensemble._weight_boosting:AdaBoostClassifier",
    "sklearn.ensemble._weight_boosting:AdaBoostRegressor",
    "sklearn.feature_extraction._dict_vectorizer:DictVectorizer",
    "sklearn.feature_extraction._hash:FeatureHasher",
    "sklearn.feature_extraction.image:PatchExtractor",
    "sklearn.feature_extraction.text:CountVectorizer",
    "sklearn.feature_extraction.text:HashingVectorizer",
    "sklearn.feature_extraction.text:TfidfTransformer",
    "sklearn.feature_extraction.text:TfidfVectorizer",
    "sklearn.feature_selection._from_model:SelectFromModel",
    "sklearn.feature_selection._rfe:RFE",
    "sklearn.feature_selection._rfe:RFECV",
    "sklearn.feature_selection._sequential:SequentialFeatureSelector",
    "sklearn.feature_selection._univariate_selection:GenericUnivariateSelect",
    "sklearn.feature_selection._univariate_selection:SelectFdr",
    "sklearn.feature_selection._univariate_selection:SelectFpr",
    "sklearn.feature_selection._univariate_selection:SelectFwe",
    "sklearn.feature_selection._univariate_selection:SelectKBest",
    "sklearn.feature_selection._univariate_selection:SelectPercentile",
    "sklearn.feature_selection._variance_threshold:VarianceThreshold",
    "sklearn.frozen._frozen:FrozenEstimator",
    "sklearn.gaussian_process._gpc:GaussianProcessClassifier",
    "sklearn.gaussian_process._gpr:GaussianProcessRegressor",
    "sklearn.impute._base:MissingIndicator",
    "sklearn.impute._base:SimpleImputer",
    "sklearn.impute._iterative:IterativeImputer",
    "sklearn.impute._knn:KNNImputer",
    "sklearn.isotonic:IsotonicRegression",
    "sklearn.kernel_approximation:AdditiveChi2Sampler",
    "sklearn.kernel_approximation:Nystroem",
    "sklearn.kernel_approximation:PolynomialCountSketch",
    "sklearn.kernel_approximation:RBFSampler",
    "sklearn.kernel_approximation:SkewedChi2Sampler",
    "sklearn.kernel_ridge:KernelRidge",
    "sklearn.linear_model._base:LinearRegression",
    "sklearn.linear_model._bayes:ARDRegression",
    "sklearn.linear_model._bayes:BayesianRidge",
    "sklearn.linear_model._coordinate_descent:ElasticNet",
    "sklearn.linear_model._coordinate_descent:ElasticNetCV",
    "sklearn.linear_model._coordinate_descent:Lasso",
    "sklearn.linear_model._coordinate_descent:LassoCV",
    "sklearn.linear_model._coordinate_descent:MultiTaskElasticNet",
    "sklearn.linear_model._coordinate_descent:MultiTaskElasticNetCV",
    "sklearn.linear_model._coordinate_descent:MultiTaskLasso",
    "sklearn.linear_model._coordinate_descent:MultiTaskLassoCV",
    "sklearn.linear_model._glm.glm:GammaRegressor",
    "sklearn.linear_model._glm.glm:PoissonRegressor",
    "sklearn.linear_model._glm.glm:TweedieRegressor",
    "sklearn.linear_model._huber:HuberRegressor",
    "sklearn.linear_model._least_angle:Lars",
    "sklearn.linear_model._least_angle:LarsCV",
    "sklearn.linear_model._least_angle:LassoLars",
    "sklearn.linear_model._least_angle:LassoLarsCV",
    "sklearn.linear_model._least_angle:LassoLarsIC",
    "sklearn.linear_model._logistic:LogisticRegression",
    "sklearn.linear_model._logistic:LogisticRegressionCV",
    "sklearn.linear_model._omp:OrthogonalMatchingPursuit",
    "sklearn.linear_model._omp:OrthogonalMatchingPursuitCV",
    "sklearn.linear_model._passive_aggressive:PassiveAggressiveClassifier",
    "sklearn.linear_model._passive_aggressive:PassiveAggressiveRegressor",
    "sklearn.linear_model._perceptron:Perceptron",
    "sklearn.linear_model._quantile:QuantileRegressor",
    "sklearn.linear_model._ransac:RANSACRegressor",
    "sklearn.linear_model._ridge:Ridge",
    "sklearn.linear_model._ridge:RidgeCV",
    "sklearn.linear_model._ridge:RidgeClassifier",
    "sklearn.linear_model._ridge:RidgeClassifierCV",
    "sklearn.linear_model._stochastic_gradient:SGDClassifier",
    "sklearn.linear_model._stochastic_gradient:SGDOneClassSVM",
    "sklearn.linear_model._stochastic_gradient:SGDRegressor",
    "sklearn.linear_model._theil_sen:TheilSenRegressor",
    "sklearn.manifold._classical_mds:ClassicalMDS",
    "sklearn.manifold._isomap:Isomap",
    "sklearn.manifold._locally_linear:LocallyLinearEmbedding",
    "sklearn.manifold._mds:MDS",
    "sklearn.manifold._spectral_embedding:SpectralEmbedding",
    "sklearn.manifold._t_sne:TSNE",
    "sklearn.mixture._bayesian_mixture:BayesianGaussianMixture",
    "sklearn.mixture._gaussian_mixture:GaussianMixture",
    "sklearn.model_selection._classification_threshold:FixedThresholdClassifier",
    "sklearn.model_selection._classification_threshold:TunedThresholdClassifierCV",
    "sklearn.model_selection._search:GridSearchCV",
    "sklearn.model_selection._search:RandomizedSearchCV",
    "sklearn.model_selection._search_successive_halving:HalvingGridSearchCV",
    "sklearn.model_selection._search_successive_halving:HalvingRandomSearchCV",
    "sklearn.multiclass:OneVsOneClassifier",
    "sklearn.multiclass:OneVsRestClassifier",
    "sklearn.multiclass:OutputCodeClassifier",
    "sklearn.multioutput:ClassifierChain",
    "sklearn.multioutput:MultiOutputClassifier",
    "sklearn.multioutput:MultiOutputRegressor",
    "sklearn.multioutput:RegressorChain",
    "sklearn.naive_bayes:BernoulliNB",
    "sklearn.naive_bayes:CategoricalNB",
    "sklearn.naive_bayes:ComplementNB",
    "sklearn.naive_bayes:GaussianNB",
    "sklearn.naive_bayes:MultinomialNB",
    "sklearn.neighbors._classification:KNeighborsClassifier",
    "sklearn.neighbors._classification:RadiusNeighborsClassifier",
    "sklearn.neighbors._graph:KNeighborsTransformer",
    "sklearn.neighbors._graph:RadiusNeighborsTransformer",
    "sklearn.neighbors._kde:KernelDensity",
    "sklearn.neighbors._lof:LocalOutlierFactor",
    "sklearn.neighbors._nca:NeighborhoodComponentsAnalysis",
    "sklearn.neighbors._nearest_centroid:NearestCentroid",
    "sklearn.neighbors._regression:KNeighborsRegressor",
    "sklearn.neighbors._regression:RadiusNeighborsRegressor",
    "sklearn.neighbors._unsupervised:NearestNeighbors",
    "sklearn.neural_network._multilayer_perceptron:MLPClassifier",
    "sklearn.neural_network._multilayer_perceptron:MLPRegressor",
    "sklearn.neural_network._rbm:BernoulliRBM",
    "sklearn.pipeline:FeatureUnion",
    "sklearn.pipeline:Pipeline",
    "sklearn.preprocessing._data:Binarizer",
    "sklearn.preprocessing._data:KernelCenterer",
    "sklearn.preprocessing._data:MaxAbsScaler",
    "sklearn.preprocessing._data:MinMaxScaler",
    "sklearn.preprocessing._data:Normalizer",
    "sklearn.preprocessing._data:PowerTransformer",
    "sklearn.preprocessing._data:QuantileTransformer",
    "sklearn.preprocessing._data:RobustScaler",
    "sklearn.preprocessing._data:StandardScaler",
    "sklearn.preprocessing._discretization:KBinsDiscretizer",
    "sklearn.preprocessing._encoders:OneHotEncoder",
    "sklearn.preprocessing._encoders:OrdinalEncoder",
    "sklearn.preprocessing._function_transformer:FunctionTransformer",
    "sklearn.preprocessing._label:LabelBinarizer",
    "sklearn.preprocessing._label:LabelEncoder",
    "sklearn.preprocessing._label:MultiLabelBinarizer",
    "sklearn.preprocessing._polynomial:PolynomialFeatures",
    "sklearn.preprocessing._polynomial:SplineTransformer",
    "sklearn.preprocessing._target_encoder:TargetEncoder",
    "sklearn.random_projection:GaussianRandomProjection",
    "sklearn.random_projection:SparseRandomProjection",
    "sklearn.semi_supervised._label_propagation:LabelPropagation",
    "sklearn.semi_supervised._label_propagation:LabelSpreading",
    "sklearn.semi_supervised._self_training:SelfTrainingClassifier",
    "sklearn.svm._classes:LinearSVC",
    "sklearn.svm._classes:LinearSVR",
    "sklearn.svm._classes:NuSVC",
    "sklearn.svm._classes:NuSVR",
    "sklearn.svm._classes:OneClassSVM",
    "sklearn.svm._classes:SVC",
    "sklearn.svm._classes:SVR",
    "sklearn.tree._classes:DecisionTreeClassifier",
    "sklearn.tree._classes:DecisionTreeRegressor",
    "sklearn.tree._classes:ExtraTreeClassifier",
    "sklearn.tree._classes:ExtraTreeRegressor",
)

#: Every trusted name (each may be stored by a stream; see DEFAULT_CALLS for those it may call).
DEFAULT_TYPES: tuple[str, ...] = (
    # ---- joblib --------------------------------------------------------------------------------
    # Placeholder object that safeload's reader replaces by the raw array bytes that follow it;
    # its state is (subclass, shape, order, dtype, allow_mmap, alignment). The legacy
    # NDArrayWrapper (reads a side file with np.load) is deliberately absent.
    "joblib.numpy_pickle:NumpyArrayWrapper",
    # ---- numpy: arrays, dtypes, scalars ------------------------------------------------------
    # ndarray/dtype are the classes named by array and dtype pickles; numpy validates the state
    # (shape x itemsize must match the bytes given). ``ndarray`` is a reference only (joblib's
    # ``subclass`` field, ``_reconstruct``'s argument): called, it allocates any shape.
    # ``_reconstruct`` allocates an empty array of a given subclass (its rule pins the shape to
    # ``(0,)``), ``scalar`` builds a scalar from a dtype and its raw bytes, and ``_frombuffer``
    # wraps a (pickle-5) buffer: data from data. numpy 1.x writes ``numpy.core.*``, numpy 2.x
    # ``numpy._core.*``; both load on numpy 2.
    "numpy:ndarray",
    "numpy:dtype",
    "numpy._core.multiarray:_reconstruct",
    "numpy._core.multiarray:scalar",
    "numpy._core.numeric:_frombuffer",
    "numpy.core.multiarray:_reconstruct",
    "numpy.core.multiarray:scalar",
    "numpy.core.numeric:_frombuffer",
    # Masked arrays: GridSearchCV/RandomizedSearchCV ``cv_results_["param_*"]`` are masked
    # arrays. ``_mareconstruct`` allocates the data and mask arrays (shape ``(0,)`` by its rule)
    # and calls the given (policy) subclass's ``__new__``; MaskedConstant's reduce returns the
    # ``masked`` singleton. The MaskedArray classes are references (``_mareconstruct``'s).
    # numpy 2.x names the class ``numpy.ma.MaskedArray``, numpy 1.x ``numpy.ma.core.MaskedArray``.
    "numpy.ma:MaskedArray",
    "numpy.ma.core:MaskedArray",
    "numpy.ma.core:MaskedConstant",
    "numpy.ma.core:_mareconstruct",
    # ---- numpy: random state -------------------------------------------------------------------
    # RandomState / Generator pickles (estimators keep ``_rng``/``random_state_`` objects):
    # the ctors build a bit generator from its class (or name) and the state is then restored
    # by numpy's own ``__setstate__``, which validates it. ``__bit_generator_ctor`` instantiates
    # the class it is given with no arguments: its rule only lets a stream give it a name or one
    # of the bit generator classes (references only: ``SeedSequence(pool_size=2**40)`` would
    # allocate). SeedSequence is restored by its Cython unpickle helper (checksum-checked).
    # skops names the RandomState and Generator classes themselves (skops constructs them; in a
    # pickle they are references only).
    "numpy.random._pickle:__bit_generator_ctor",
    "numpy.random._pickle:__generator_ctor",
    "numpy.random._pickle:__randomstate_ctor",
    "numpy.random._mt19937:MT19937",
    "numpy.random._pcg64:PCG64",
    "numpy.random._pcg64:PCG64DXSM",
    "numpy.random._philox:Philox",
    "numpy.random._sfc64:SFC64",
    "numpy.random.bit_generator:SeedSequence",
    "numpy.random.bit_generator:__pyx_unpickle_SeedSequence",
    "numpy.random.mtrand:RandomState",
    "numpy.random._generator:Generator",
    # ---- numpy: scalar types passed as parameters ---------------------------------------------
    # ``dtype=np.float64`` (vectorizers, encoders, ...) and ``make_column_selector(dtype_include=
    # np.number)`` pickle the type itself: references only, never called by a stream.
    # (``str_``/``bytes_`` are absent: they accept a codec name.) numpy 2.x names the boolean
    # type ``numpy.bool``, numpy 1.x ``numpy.bool_``.
    "numpy:bool",
    "numpy:bool_",
    "numpy:int8",
    "numpy:int16",
    "numpy:int32",
    "numpy:int64",
    "numpy:uint8",
    "numpy:uint16",
    "numpy:uint32",
    "numpy:uint64",
    "numpy:float16",
    "numpy:float32",
    "numpy:float64",
    "numpy:complex64",
    "numpy:complex128",
    "numpy:object_",
    "numpy:number",
    "numpy:integer",
    "numpy:signedinteger",
    "numpy:unsignedinteger",
    "numpy:floating",
    "numpy:inexact",
    "numpy:complexfloating",
    # ---- numpy: functions stored as parameters -------------------------------------------------
    # Elementwise math commonly given to FunctionTransformer / TransformedTargetRegressor
    # (``func=np.log1p, inverse_func=np.expm1``) and FeatureAgglomeration's default
    # ``pooling_func=np.mean``: references only (a stream calling ``numpy.square`` on a huge
    # array would be a memory bomb).
    "numpy:log",
    "numpy:log1p",
    "numpy:exp",
    "numpy:expm1",
    "numpy:sqrt",
    "numpy:square",
    "numpy:mean",
    # More of what users give FunctionTransformer and pooling_func, all on
    # safeload.callsafe.SAFE_TO_CALL (called on the caller's data with bounded keyword
    # arguments); references only. The rest of that list loads with an explicit extension.
    *(
        f"numpy:{n}"
        for n in "log2 log10 absolute sign reciprocal tanh clip round median sum max min".split()
    ),
    # ---- scipy -----------------------------------------------------------------------------------
    # Sparse matrices and arrays in the formats fitted state holds (SparseRandomProjection's
    # components, SVC/KNN fitted on sparse input, SpectralEmbedding's affinity): plain classes
    # created by NEWOBJ (never their ``__init__``, which allocates from a shape) and restored
    # from their ``__dict__``. Their index arrays are checked by safeload.validation.
    "scipy.sparse._csr:csr_matrix",
    "scipy.sparse._csr:csr_array",
    "scipy.sparse._csc:csc_matrix",
    "scipy.sparse._csc:csc_array",
    "scipy.sparse._coo:coo_matrix",
    "scipy.sparse._coo:coo_array",
    # SplineTransformer's ``bsplines_``: BSpline is restored from its ``__dict__`` (knots,
    # coefficients, degree; checked by safeload.validation) and keeps the array namespace's
    # ``asarray`` (a conversion, a reference only) as an attribute.
    "scipy.interpolate._bsplines:BSpline",
    "scipy._lib.array_api_compat.numpy._aliases:asarray",
    # ---- builtins and collections -------------------------------------------------------------
    # slice: ColumnTransformer stores column selections as slices. set/frozenset: protocols
    # before 4 have no set opcodes. complex: no opcode in any protocol. float/int/bool/object:
    # ``dtype=float``-style parameters and ``make_column_selector(dtype_include=object)``:
    # references only. OrderedDict: a dict, created empty then filled by SETITEMS.
    # collections.defaultdict is absent: it calls its stored ``default_factory`` on any
    # missing-key lookup, and no fitted estimator needs it.
    "builtins:slice",
    "builtins:set",
    "builtins:frozenset",
    "builtins:complex",
    "builtins:float",
    "builtins:int",
    "builtins:bool",
    "builtins:object",
    "builtins:tuple",
    "builtins:dict",
    "builtins:bytes",
    "collections:OrderedDict",
    # Protocols 0-2 (see the module docstring): bytes are _codecs.encode(text, 'latin1') (the
    # text is already in the stream; latin-1 makes one byte per character), empty bytes are
    # bytes(), and objects without a reduce of their own are copyreg._reconstructor(cls,
    # object, None), i.e. object.__new__(cls); for a dict class (Bunch) its base is dict and
    # the dict's items are copied in, for a namedtuple tuple.__new__(cls, values). tuple and
    # dict are references only: _reconstructor's base argument.
    "_codecs:encode",
    "copyreg:_reconstructor",
    "functools:partial",
    "sklearn.utils.validation:check_array",  # a reference only: bound by partial, never called
    # ---- scikit-learn: every estimator of all_estimators() ------------------------------------
    *_ESTIMATORS,
    # ---- scikit-learn: helper classes fitted estimators pickle ---------------------------------
    # Decision trees: Tree(n_features, n_classes, n_outputs) (its rule: n_classes holds exactly
    # n_outputs counts, so the allocation follows the file) then __setstate__ copies the node
    # and value arrays after checking their dtype and shape; node indices are checked by
    # safeload.validation before the model is returned.
    "sklearn.tree._tree:Tree",
    # HistGradientBoosting: the per-iteration predictors (a structured node array, checked by
    # safeload.validation) and the bin mapper (thresholds and flags).
    "sklearn.ensemble._hist_gradient_boosting.predictor:TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning:_BinMapper",
    # Loss and link objects kept by gradient boosting, GLMs and SGD (``_loss``, ``_base_loss``,
    # ``loss_function_``): small classes holding a few numbers; the Cython ones reduce to their
    # class and parameters, the multinomial one through its checksum-checked unpickle helper.
    "sklearn._loss.loss:HalfSquaredError",
    "sklearn._loss.loss:AbsoluteError",
    "sklearn._loss.loss:PinballLoss",
    "sklearn._loss.loss:HuberLoss",
    "sklearn._loss.loss:HalfPoissonLoss",
    "sklearn._loss.loss:HalfGammaLoss",
    "sklearn._loss.loss:HalfTweedieLoss",
    "sklearn._loss.loss:HalfTweedieLossIdentity",
    "sklearn._loss.loss:HalfBinomialLoss",
    "sklearn._loss.loss:HalfMultinomialLoss",
    "sklearn._loss.loss:ExponentialLoss",
    "sklearn._loss.link:Interval",
    "sklearn._loss.link:IdentityLink",
    "sklearn._loss.link:LogLink",
    "sklearn._loss.link:LogitLink",
    "sklearn._loss.link:HalfLogitLink",
    "sklearn._loss.link:MultinomialLogit",
    "sklearn._loss._loss:CyHalfSquaredError",
    "sklearn._loss._loss:CyAbsoluteError",
    "sklearn._loss._loss:CyPinballLoss",
    "sklearn._loss._loss:CyHuberLoss",
    "sklearn._loss._loss:CyHalfPoissonLoss",
    "sklearn._loss._loss:CyHalfGammaLoss",
    "sklearn._loss._loss:CyHalfTweedieLoss",
    "sklearn._loss._loss:CyHalfTweedieLossIdentity",
    "sklearn._loss._loss:CyHalfBinomialLoss",
    "sklearn._loss._loss:CyHalfMultinomialLoss",
    "sklearn._loss._loss:CyExponentialLoss",
    "sklearn._loss._loss:__pyx_unpickle_CyHalfMultinomialLoss",
    "sklearn.linear_model._sgd_fast:Hinge",
    "sklearn.linear_model._sgd_fast:SquaredHinge",
    "sklearn.linear_model._sgd_fast:ModifiedHuber",
    "sklearn.linear_model._sgd_fast:EpsilonInsensitive",
    "sklearn.linear_model._sgd_fast:SquaredEpsilonInsensitive",
    # Neighbors: KDTree/BallTree and their DistanceMetric reduce to ``newObj(cls)`` (which is
    # ``cls.__new__(cls)``, what the NEWOBJ opcode does anyway; only for a class of newObj's own
    # module) plus a state tuple of arrays, checked by safeload.validation. The classes are
    # references: KDTree(data) would build a tree from whatever the stream gives. The metrics
    # are those BallTree/KDTree accept; PyFuncDistance (holds a Python callable) is absent.
    "sklearn.neighbors._kd_tree:KDTree",
    "sklearn.neighbors._kd_tree:newObj",
    "sklearn.neighbors._ball_tree:BallTree",
    "sklearn.neighbors._ball_tree:newObj",
    "sklearn.metrics._dist_metrics:newObj",
    "sklearn.metrics._dist_metrics:EuclideanDistance64",
    "sklearn.metrics._dist_metrics:SEuclideanDistance64",
    "sklearn.metrics._dist_metrics:ManhattanDistance64",
    "sklearn.metrics._dist_metrics:ChebyshevDistance64",
    "sklearn.metrics._dist_metrics:MinkowskiDistance64",
    "sklearn.metrics._dist_metrics:MahalanobisDistance64",
    "sklearn.metrics._dist_metrics:HammingDistance64",
    "sklearn.metrics._dist_metrics:CanberraDistance64",
    "sklearn.metrics._dist_metrics:BrayCurtisDistance64",
    "sklearn.metrics._dist_metrics:JaccardDistance64",
    "sklearn.metrics._dist_metrics:MatchingDistance64",
    "sklearn.metrics._dist_metrics:DiceDistance64",
    "sklearn.metrics._dist_metrics:RogersTanimotoDistance64",
    "sklearn.metrics._dist_metrics:RussellRaoDistance64",
    "sklearn.metrics._dist_metrics:SokalSneathDistance64",
    "sklearn.metrics._dist_metrics:HaversineDistance64",
    # Private containers of fitted state (plain classes with data attributes).
    "sklearn.calibration:_CalibratedClassifier",
    "sklearn.calibration:_SigmoidCalibration",
    "sklearn.calibration:_TemperatureScaling",
    "sklearn.cluster._birch:_CFNode",
    "sklearn.cluster._birch:_CFSubcluster",
    "sklearn.cluster._bisect_k_means:_BisectingTree",
    # BisectingKMeans' ``_kmeans_single``: the routine fit chose. References only (called with
    # inconsistent arrays it writes out of bounds); validation admits them in that field alone.
    "sklearn.cluster._kmeans:_kmeans_single_lloyd",
    "sklearn.cluster._kmeans:_kmeans_single_elkan",
    "sklearn.gaussian_process._gpc:_BinaryGaussianProcessClassifierLaplace",
    "sklearn.multiclass:_ConstantPredictor",
    "sklearn.neural_network._stochastic_optimizers:AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers:SGDOptimizer",
    "sklearn.utils._bunch:Bunch",
    *NAMEDTUPLES,
    "sklearn.utils._metadata_requests:MetadataRequest",
    "sklearn.utils._metadata_requests:MethodMetadataRequest",
    # Gaussian-process kernels: parameter holders; evaluating one is numpy arithmetic
    # (PairwiseKernel's metric is a string, or a callable that must itself be in the policy).
    "sklearn.gaussian_process.kernels:CompoundKernel",
    "sklearn.gaussian_process.kernels:Sum",
    "sklearn.gaussian_process.kernels:Product",
    "sklearn.gaussian_process.kernels:Exponentiation",
    "sklearn.gaussian_process.kernels:ConstantKernel",
    "sklearn.gaussian_process.kernels:WhiteKernel",
    "sklearn.gaussian_process.kernels:RBF",
    "sklearn.gaussian_process.kernels:Matern",
    "sklearn.gaussian_process.kernels:RationalQuadratic",
    "sklearn.gaussian_process.kernels:ExpSineSquared",
    "sklearn.gaussian_process.kernels:DotProduct",
    "sklearn.gaussian_process.kernels:PairwiseKernel",
    # Column selection by dtype or regex, stored by ColumnTransformer.
    "sklearn.compose._column_transformer:make_column_selector",
    # Cross-validation splitters (the ``cv=`` parameter of *CV estimators): parameter holders.
    "sklearn.model_selection._split:KFold",
    "sklearn.model_selection._split:StratifiedKFold",
    "sklearn.model_selection._split:GroupKFold",
    "sklearn.model_selection._split:StratifiedGroupKFold",
    "sklearn.model_selection._split:TimeSeriesSplit",
    "sklearn.model_selection._split:LeaveOneOut",
    "sklearn.model_selection._split:LeavePOut",
    "sklearn.model_selection._split:LeaveOneGroupOut",
    "sklearn.model_selection._split:LeavePGroupsOut",
    "sklearn.model_selection._split:RepeatedKFold",
    "sklearn.model_selection._split:RepeatedStratifiedKFold",
    "sklearn.model_selection._split:ShuffleSplit",
    "sklearn.model_selection._split:GroupShuffleSplit",
    "sklearn.model_selection._split:StratifiedShuffleSplit",
    "sklearn.model_selection._split:PredefinedSplit",
    # Scorers (``scoring=`` of searches, TunedThresholdClassifierCV): a scorer holds a metric
    # function, its sign and keyword arguments.
    "sklearn.metrics._scorer:_Scorer",
    "sklearn.metrics._scorer:_PassthroughScorer",
    "sklearn.metrics._scorer:_CurveScorer",
    # The metric functions behind every name of ``sklearn.metrics.get_scorer_names()``: public
    # functions that validate their inputs and compute a number; references only (the scorer
    # holds them, the stream never calls them).
    "sklearn.metrics._classification:accuracy_score",
    "sklearn.metrics._classification:balanced_accuracy_score",
    "sklearn.metrics._classification:brier_score_loss",
    "sklearn.metrics._classification:d2_brier_score",
    "sklearn.metrics._classification:d2_log_loss_score",
    "sklearn.metrics._classification:f1_score",
    "sklearn.metrics._classification:jaccard_score",
    "sklearn.metrics._classification:log_loss",
    "sklearn.metrics._classification:matthews_corrcoef",
    "sklearn.metrics._classification:precision_score",
    "sklearn.metrics._classification:recall_score",
    "sklearn.metrics._ranking:average_precision_score",
    "sklearn.metrics._ranking:roc_auc_score",
    "sklearn.metrics._ranking:top_k_accuracy_score",
    "sklearn.metrics._regression:d2_absolute_error_score",
    "sklearn.metrics._regression:explained_variance_score",
    "sklearn.metrics._regression:max_error",
    "sklearn.metrics._regression:mean_absolute_error",
    "sklearn.metrics._regression:mean_absolute_percentage_error",
    "sklearn.metrics._regression:mean_gamma_deviance",
    "sklearn.metrics._regression:mean_poisson_deviance",
    "sklearn.metrics._regression:mean_squared_error",
    "sklearn.metrics._regression:mean_squared_log_error",
    "sklearn.metrics._regression:median_absolute_error",
    "sklearn.metrics._regression:r2_score",
    "sklearn.metrics._regression:root_mean_squared_error",
    "sklearn.metrics._regression:root_mean_squared_log_error",
    "sklearn.metrics._scorer:negative_likelihood_ratio",
    "sklearn.metrics._scorer:positive_likelihood_ratio",
    "sklearn.metrics.cluster._supervised:adjusted_mutual_info_score",
    "sklearn.metrics.cluster._supervised:adjusted_rand_score",
    "sklearn.metrics.cluster._supervised:completeness_score",
    "sklearn.metrics.cluster._supervised:fowlkes_mallows_score",
    "sklearn.metrics.cluster._supervised:homogeneity_score",
    "sklearn.metrics.cluster._supervised:mutual_info_score",
    "sklearn.metrics.cluster._supervised:normalized_mutual_info_score",
    "sklearn.metrics.cluster._supervised:rand_score",
    "sklearn.metrics.cluster._supervised:v_measure_score",
    # Univariate score functions (``score_func=`` of SelectKBest & co., default f_classif):
    # public statistics that validate their inputs; references only.
    "sklearn.feature_selection._univariate_selection:f_classif",
    "sklearn.feature_selection._univariate_selection:f_regression",
    "sklearn.feature_selection._univariate_selection:r_regression",
    "sklearn.feature_selection._univariate_selection:chi2",
    "sklearn.feature_selection._mutual_info:mutual_info_classif",
    "sklearn.feature_selection._mutual_info:mutual_info_regression",
)

#: The entries of DEFAULT_TYPES that a stream may call, each with the only form of call its
#: pickles take (see the rule names above). Everything else in DEFAULT_TYPES is a reference
#: only: measured over every estimator, legitimate pickles store those names and never call them
#: (ufuncs, metric and score functions, scalar types, ``numpy.ndarray``, the bit generator and
#: tree classes that the reconstructors below receive as arguments, ...).
DEFAULT_CALLS: dict[str, str] = {
    # joblib creates its array wrapper with NEWOBJ and fills it by BUILD; the scanner models
    # every form of its construction (it sizes the raw array bytes that follow).
    "joblib.numpy_pickle:NumpyArrayWrapper": ANY,
    # numpy: dtypes are numpy.dtype(code, False, True) plus a BUILD that both walls rebuild and
    # compare; arrays are _reconstruct(ndarray, (0,), b'b') plus a BUILD that numpy checks (the
    # raw bytes must match shape x itemsize); scalars are scalar(dtype, raw bytes); pickle-5
    # buffers are views. Masked arrays: _mareconstruct(MaskedArray, ndarray, (0,), 'b') and the
    # ``masked`` singleton, MaskedConstant().
    "numpy:dtype": DTYPE,
    "numpy._core.multiarray:_reconstruct": RECONSTRUCT,
    "numpy.core.multiarray:_reconstruct": RECONSTRUCT,
    "numpy._core.multiarray:scalar": SCALAR,
    "numpy.core.multiarray:scalar": SCALAR,
    "numpy._core.numeric:_frombuffer": FROMBUFFER,
    "numpy.core.numeric:_frombuffer": FROMBUFFER,
    "numpy.ma.core:_mareconstruct": MARECONSTRUCT,
    "numpy.ma.core:MaskedConstant": NO_ARGS,
    # numpy random state: the ctors receive a bit generator's name or class (or instance), and
    # the state is then restored by numpy's validating __setstate__.
    "numpy.random._pickle:__bit_generator_ctor": BIT_GENERATOR,
    "numpy.random._pickle:__generator_ctor": RNG,
    "numpy.random._pickle:__randomstate_ctor": RNG,
    "numpy.random.bit_generator:__pyx_unpickle_SeedSequence": PYX_UNPICKLE,
    # scipy: sparse matrices and BSpline are created by NEWOBJ and filled from their __dict__
    # (their __init__, which allocates from a shape, is never run).
    "scipy.sparse._csr:csr_matrix": NEW,
    "scipy.sparse._csr:csr_array": NEW,
    "scipy.sparse._csc:csc_matrix": NEW,
    "scipy.sparse._csc:csc_array": NEW,
    "scipy.sparse._coo:coo_matrix": NEW,
    "scipy.sparse._coo:coo_array": NEW,
    "scipy.interpolate._bsplines:BSpline": NEW,
    # builtins: protocols before 4 write sets as set([...]) (their items are hashed, so they
    # are bounded like dict keys), complex numbers as complex(re, im), slices as slice(a, b, c);
    # OrderedDict() is then filled by SETITEMS. float/int/bool/object are references only.
    "builtins:slice": ANY,
    "builtins:set": HASHED,
    "builtins:frozenset": HASHED,
    "builtins:complex": ANY,
    "collections:OrderedDict": NO_ARGS,
    "builtins:bytes": NO_ARGS,
    "_codecs:encode": ENCODE,
    "copyreg:_reconstructor": COPYREG_RECONSTRUCTOR,
    # HistGradientBoosting's categorical preprocessor: partial(check_array, dtype=.., ...).
    "functools:partial": PARTIAL,
    # scikit-learn: estimators, then the helper classes their fitted state holds.
    **dict.fromkeys(_ESTIMATORS, NEW),
    # Tree(n_features, n_classes, n_outputs) allocates n_outputs entries and reads n_classes.
    "sklearn.tree._tree:Tree": TREE,
    "sklearn.ensemble._hist_gradient_boosting.predictor:TreePredictor": NEW,
    "sklearn.ensemble._hist_gradient_boosting.binning:_BinMapper": NEW,
    "sklearn._loss.loss:HalfSquaredError": NEW,
    "sklearn._loss.loss:AbsoluteError": NEW,
    "sklearn._loss.loss:PinballLoss": NEW,
    "sklearn._loss.loss:HuberLoss": NEW,
    "sklearn._loss.loss:HalfPoissonLoss": NEW,
    "sklearn._loss.loss:HalfGammaLoss": NEW,
    "sklearn._loss.loss:HalfTweedieLoss": NEW,
    "sklearn._loss.loss:HalfTweedieLossIdentity": NEW,
    "sklearn._loss.loss:HalfBinomialLoss": NEW,
    "sklearn._loss.loss:HalfMultinomialLoss": NEW,
    "sklearn._loss.loss:ExponentialLoss": NEW,
    "sklearn._loss.link:Interval": NEW,
    "sklearn._loss.link:IdentityLink": NEW,
    "sklearn._loss.link:LogLink": NEW,
    "sklearn._loss.link:LogitLink": NEW,
    "sklearn._loss.link:HalfLogitLink": NEW,
    "sklearn._loss.link:MultinomialLogit": NEW,
    # Cython losses reduce to their class and a few floats (CyHalfTweedieLoss(power), ...);
    # the multinomial one goes through its checksum-checked unpickle helper.
    "sklearn._loss._loss:CyHalfSquaredError": ANY,
    "sklearn._loss._loss:CyAbsoluteError": ANY,
    "sklearn._loss._loss:CyPinballLoss": ANY,
    "sklearn._loss._loss:CyHuberLoss": ANY,
    "sklearn._loss._loss:CyHalfPoissonLoss": ANY,
    "sklearn._loss._loss:CyHalfGammaLoss": ANY,
    "sklearn._loss._loss:CyHalfTweedieLoss": ANY,
    "sklearn._loss._loss:CyHalfTweedieLossIdentity": ANY,
    "sklearn._loss._loss:CyHalfBinomialLoss": ANY,
    "sklearn._loss._loss:CyExponentialLoss": ANY,
    "sklearn._loss._loss:__pyx_unpickle_CyHalfMultinomialLoss": PYX_UNPICKLE,
    "sklearn.linear_model._sgd_fast:Hinge": ANY,
    "sklearn.linear_model._sgd_fast:SquaredHinge": ANY,
    "sklearn.linear_model._sgd_fast:ModifiedHuber": ANY,
    "sklearn.linear_model._sgd_fast:EpsilonInsensitive": ANY,
    "sklearn.linear_model._sgd_fast:SquaredEpsilonInsensitive": ANY,
    # KDTree, BallTree and the distance metrics are made by their module's newObj(cls), which
    # is cls.__new__(cls); the classes themselves are references (their __init__ builds a tree
    # from whatever data it is given).
    "sklearn.neighbors._kd_tree:newObj": MODULE_CLASS,
    "sklearn.neighbors._ball_tree:newObj": MODULE_CLASS,
    "sklearn.metrics._dist_metrics:newObj": MODULE_CLASS,
    "sklearn.calibration:_CalibratedClassifier": NEW,
    "sklearn.calibration:_SigmoidCalibration": NEW,
    "sklearn.calibration:_TemperatureScaling": NEW,
    "sklearn.cluster._birch:_CFNode": NEW,
    "sklearn.cluster._birch:_CFSubcluster": NEW,
    "sklearn.cluster._bisect_k_means:_BisectingTree": NEW,
    "sklearn.gaussian_process._gpc:_BinaryGaussianProcessClassifierLaplace": NEW,
    "sklearn.multiclass:_ConstantPredictor": NEW,
    "sklearn.neural_network._stochastic_optimizers:AdamOptimizer": NEW,
    "sklearn.neural_network._stochastic_optimizers:SGDOptimizer": NEW,
    "sklearn.utils._bunch:Bunch": NEW,
    **{name: namedtuple_rule(name) for name in NAMEDTUPLES},
    "sklearn.utils._metadata_requests:MetadataRequest": NEW,
    "sklearn.utils._metadata_requests:MethodMetadataRequest": NEW,
    "sklearn.gaussian_process.kernels:CompoundKernel": NEW,
    "sklearn.gaussian_process.kernels:Sum": NEW,
    "sklearn.gaussian_process.kernels:Product": NEW,
    "sklearn.gaussian_process.kernels:Exponentiation": NEW,
    "sklearn.gaussian_process.kernels:ConstantKernel": NEW,
    "sklearn.gaussian_process.kernels:WhiteKernel": NEW,
    "sklearn.gaussian_process.kernels:RBF": NEW,
    "sklearn.gaussian_process.kernels:Matern": NEW,
    "sklearn.gaussian_process.kernels:RationalQuadratic": NEW,
    "sklearn.gaussian_process.kernels:ExpSineSquared": NEW,
    "sklearn.gaussian_process.kernels:DotProduct": NEW,
    "sklearn.gaussian_process.kernels:PairwiseKernel": NEW,
    "sklearn.compose._column_transformer:make_column_selector": NEW,
    "sklearn.model_selection._split:KFold": NEW,
    "sklearn.model_selection._split:StratifiedKFold": NEW,
    "sklearn.model_selection._split:GroupKFold": NEW,
    "sklearn.model_selection._split:StratifiedGroupKFold": NEW,
    "sklearn.model_selection._split:TimeSeriesSplit": NEW,
    "sklearn.model_selection._split:LeaveOneOut": NEW,
    "sklearn.model_selection._split:LeavePOut": NEW,
    "sklearn.model_selection._split:LeaveOneGroupOut": NEW,
    "sklearn.model_selection._split:LeavePGroupsOut": NEW,
    "sklearn.model_selection._split:RepeatedKFold": NEW,
    "sklearn.model_selection._split:RepeatedStratifiedKFold": NEW,
    "sklearn.model_selection._split:ShuffleSplit": NEW,
    "sklearn.model_selection._split:GroupShuffleSplit": NEW,
    "sklearn.model_selection._split:StratifiedShuffleSplit": NEW,
    "sklearn.model_selection._split:PredefinedSplit": NEW,
    "sklearn.metrics._scorer:_Scorer": NEW,
    "sklearn.metrics._scorer:_PassthroughScorer": NEW,
    "sklearn.metrics._scorer:_CurveScorer": NEW,
}

#: The argument rule of every callable safeload knows, default or not: a rule describes what
#: the function does, so it holds in any policy that lets a stream call the function (a name
#: a user adds that is not here may be called with any arguments). copyreg's helpers (only
#: ``_reconstructor`` is trusted by default) construct the class they are given: it must itself
#: be callable in the policy, and is held to its own rule. Python 2 spellings are translated
#: before a rule is looked up, so they have none of their own.
CALL_RULES: dict[str, str] = {
    **DEFAULT_CALLS,
    # Other spellings of numpy.dtype (no pickle writes them; trusted only by a user's choice).
    "numpy._core:dtype": DTYPE,
    "numpy.core:dtype": DTYPE,
    "numpy._core.multiarray:dtype": DTYPE,
    "numpy.core.multiarray:dtype": DTYPE,
    "copyreg:__newobj__": COPYREG_NEWOBJ,
    "copyreg:__newobj_ex__": COPYREG_NEWOBJ_EX,
}
