"""The ONNX operators safeload's converter writes: the only ones the ONNX gate admits by default.

Measured, not chosen: ``benchmarks/gen_onnx_ops.py`` fitted every estimator of
``sklearn.utils.all_estimators()`` that skl2onnx converts (classifiers on three, two and
string labels; regressors on one and two targets) and common pipelines (ColumnTransformer with
SimpleImputer, StandardScaler, OneHotEncoder, OrdinalEncoder on DataFrames), converted each with
``safeload.onnxconvert.convert_to_onnx`` (the path of ``save(format="onnx")``: ``zipmap=False``,
double then float) and collected every ``domain:OpType`` of the written graph and its
subgraphs: 196 models converted of 281 tried, 60 operators (scikit-learn 1.9.1, skl2onnx
1.20.0, onnx 1.23.2; two earlier runs converted 190 and 189, same 60). skl2onnx's
default ZipMap adds ``ai.onnx.ml:ZipMap``, which safeload never writes (``zipmap=False``).
Text features are not among them: skl2onnx's TfidfVectorizer and CountVectorizer graphs need
onnxruntime's ``com.microsoft`` Tokenizer, a custom domain the gate refuses.

Why an allowlist: onnxruntime implements ~200 standard operators, and some allocate where its
capped arena does not see (the contents of strings: 36 chained ``StringConcat`` double a
2-byte constant to 2**37 bytes); an operator skl2onnx never writes is one nobody here reviewed.
Every operator below is a standard one skl2onnx writes, grouped by what sizes its output.
None makes a string longer than those of its inputs and attributes (none concatenates, pads
or splits; ``Cast`` renders a number in a few bytes), so string growth is bounded by the
copies, not their length
(``docs/threat-model.md``). Unbounded shapes: ``ConstantOfShape`` (AdaBoostClassifier,
GaussianProcessRegressor) is numeric, under the arena cap; no ``Expand``, ``Tile``, ``Range``,
``Pad``, ``Resize``, ``OneHot`` or ``Loop``.

Regenerate after upgrading skl2onnx (``python benchmarks/gen_onnx_ops.py --diff``) and review
what it adds. A caller who signs graphs from another converter extends the list in the policy,
deliberately: ``TypePolicy.default().with_onnx_ops("ai.onnx:Einsum")``.
"""

from __future__ import annotations

#: The domains an operator name may have (the gate refuses custom domains in any case).
ONNX_DOMAINS = ("ai.onnx", "ai.onnx.ml")

#: ``domain:OpType`` (the default domain spelled ``ai.onnx``), with how many models wrote each.
ONNX_OPS: frozenset[str] = frozenset(
    {
        # ai.onnx.ml models: one output row per input row, sized by checked attributes
        "ai.onnx.ml:ArrayFeatureExtractor",  # 77 model(s)
        "ai.onnx.ml:Imputer",  # 11 model(s)
        "ai.onnx.ml:LabelEncoder",  # 5 model(s)
        "ai.onnx.ml:LinearClassifier",  # 10 model(s)
        "ai.onnx.ml:LinearRegressor",  # 2 model(s)
        "ai.onnx.ml:Normalizer",  # 2 model(s)
        "ai.onnx.ml:OneHotEncoder",  # 10 model(s)
        "ai.onnx.ml:SVMClassifier",  # 8 model(s)
        "ai.onnx.ml:SVMRegressor",  # 3 model(s)
        "ai.onnx.ml:Scaler",  # 10 model(s)
        "ai.onnx.ml:TreeEnsembleClassifier",  # 27 model(s)
        "ai.onnx.ml:TreeEnsembleRegressor",  # 14 model(s)
        # elementwise: the output has the (broadcast) shape of the inputs
        "ai.onnx:Abs",  # 15 model(s)
        "ai.onnx:Add",  # 112 model(s)
        "ai.onnx:Cast",  # 82 model(s)
        "ai.onnx:Div",  # 43 model(s)
        "ai.onnx:Equal",  # 8 model(s)
        "ai.onnx:Exp",  # 27 model(s)
        "ai.onnx:Greater",  # 3 model(s)
        "ai.onnx:GreaterOrEqual",  # 1 model(s)
        "ai.onnx:Identity",  # 36 model(s)
        "ai.onnx:IsNaN",  # 1 model(s)
        "ai.onnx:Less",  # 7 model(s)
        "ai.onnx:LessOrEqual",  # 1 model(s)
        "ai.onnx:Log",  # 4 model(s)
        "ai.onnx:Mul",  # 31 model(s)
        "ai.onnx:Neg",  # 10 model(s)
        "ai.onnx:Not",  # 4 model(s)
        "ai.onnx:Or",  # 1 model(s)
        "ai.onnx:Pow",  # 4 model(s)
        "ai.onnx:Relu",  # 4 model(s)
        "ai.onnx:Sigmoid",  # 10 model(s)
        "ai.onnx:Sign",  # 2 model(s)
        "ai.onnx:Sqrt",  # 10 model(s)
        "ai.onnx:Sub",  # 46 model(s)
        "ai.onnx:Sum",  # 16 model(s)
        "ai.onnx:Where",  # 5 model(s)
        # reductions, products, reshaping, selection: outputs sized by their inputs
        "ai.onnx:ArgMax",  # 64 model(s)
        "ai.onnx:ArgMin",  # 3 model(s)
        "ai.onnx:Concat",  # 51 model(s)
        "ai.onnx:CumSum",  # 1 model(s)
        "ai.onnx:Flatten",  # 7 model(s)
        "ai.onnx:Gather",  # 14 model(s)
        "ai.onnx:GatherElements",  # 1 model(s)
        "ai.onnx:Gemm",  # 4 model(s)
        "ai.onnx:MatMul",  # 101 model(s)
        "ai.onnx:ReduceLogSumExp",  # 17 model(s)
        "ai.onnx:ReduceMean",  # 6 model(s)
        "ai.onnx:ReduceProd",  # 1 model(s)
        "ai.onnx:ReduceSum",  # 26 model(s)
        "ai.onnx:ReduceSumSquare",  # 14 model(s)
        "ai.onnx:Reshape",  # 127 model(s)
        "ai.onnx:SequenceConstruct",  # 1 model(s)
        "ai.onnx:Shape",  # 9 model(s)
        "ai.onnx:Slice",  # 5 model(s)
        "ai.onnx:Softmax",  # 14 model(s)
        "ai.onnx:TopK",  # 7 model(s)
        "ai.onnx:Transpose",  # 12 model(s)
        # a shape from a tensor's values (numeric only: the arena cap bounds it)
        "ai.onnx:ConstantOfShape",  # 6 model(s)
        # a loop over an input's rows (its body walked by the gate like any graph)
        "ai.onnx:Scan",  # 8 model(s)
    }
)
