"""What a data set's training split fits, applied to the six arrays: the validation split
(stratified by class when asked), the encoding of a table's columns (graphnet.data.columns),
the normalization of the features and the scaling of regression targets
(graphnet.data.targets)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError
from .columns import ColumnEncoding, EncodeCounts, TableSettings, fit_encoding
from .splits import normalize_splits, split_off, split_size
from .targets import TargetScaling

DEFAULT_VAL_FRACTION = 0.1   # of the training set ...
DEFAULT_VAL_MAX = 5000       # ... but at most this many: MNIST-like 60000 -> 55000 / 5000


@dataclass(frozen=True, eq=False)
class DataInfo:
    """What `load_with_info` learned besides the arrays: the per-example shape of the
    features the normalization reads (a table's: its encoded features), the normalization
    fitted on the training split (x -> (x - shift) / scale, shift and scale float64 () or
    per feature; mode "none": None), the CSV's feature and label column names (a table's
    feature columns are its encoding's), the class names of text labels (else None), a
    table's column encoding and the cells it met in the three splits (missing, unseen
    categories), whether the splits were stratified by class, and the scaling of
    regression targets."""

    raw_shape: tuple[int, ...]
    mode: str = "none"
    shift: np.ndarray | None = None
    scale: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None
    label_column: str | None = None
    class_names: tuple[str, ...] | None = None
    encoding: ColumnEncoding | None = None
    counts: EncodeCounts | None = None
    stratified: bool = False
    target_scaling: TargetScaling | None = None


@dataclass(frozen=True)
class RawColumns:
    """The columns of a raw table (graphnet.data.columns): names, kinds, whether the names
    come from a header, the settings they were read with, and the encoding to apply as it
    is (a trained model's) instead of one fitted on the training split."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    named: bool
    settings: TableSettings
    encoding: ColumnEncoding | None = None

    def fit(self, X_train: np.ndarray) -> ColumnEncoding:
        """The encoding: the given one, else fitted on the training split's cells."""
        if self.encoding is not None:
            return self.encoding
        s = self.settings
        return fit_encoding(X_train, self.names, self.kinds, s.categorical, s.missing, s.impute, self.named)


def finish_splits(Xt: np.ndarray, yt: np.ndarray, Xv: np.ndarray | None, yv: np.ndarray | None, Xs: np.ndarray,
                  ys: np.ndarray, *, val_size: Any, normalize: str | None, flatten: bool, dtype: np.dtype,
                  val_rng: np.random.Generator, source: str, columns: tuple[Any, Any, Any] = (None, None, None),
                  raw: np.dtype | None = None, table: RawColumns | None = None, stratify: bool = False,
                  target_scaling: bool = False, split_test: bool = False) -> tuple[dict[str, np.ndarray], DataInfo]:
    """The six arrays from the raw splits: the validation split taken from the training set
    (unless given; with `stratify`, each class in proportion), a `table`'s cells encoded
    (its encoding fitted on the training split), flattened, cast to `dtype` and normalized
    by the training split's fit ("auto" by the `raw` dtype of the features, default Xt's;
    a table's one-hot slots are left as they are); with `target_scaling`, float targets
    standardized by the training split's mean and std. `split_test`: the test split was split
    off the same way (the info says whether a split was stratified)."""
    stratified = stratify and (Xv is None or split_test)
    if Xv is None:
        default = min(DEFAULT_VAL_MAX, round(DEFAULT_VAL_FRACTION * len(Xt)))
        Xt, yt, Xv, yv = split_off(Xt, yt, split_size(val_size, len(Xt), "val_size", default), val_rng, stratify)
    elif val_size is not None:
        raise DataError(f"{source}: has its own X_val/y_val; val_size={val_size!r} does not apply")
    encoding, counts, keep = None, None, None
    if table is not None:
        encoding, counts = table.fit(Xt), EncodeCounts()
        Xt, Xv, Xs = (encoding.encode(X, dtype, counts=counts) for X in (Xt, Xv, Xs))
        raw, keep, columns = np.dtype(np.float64), encoding.one_hot(), (None, *columns[1:])
    raw = Xt.dtype if raw is None else raw
    mode = ("scale" if raw == np.uint8 else None) if normalize == "auto" else None if normalize == "none" else normalize
    width = int(np.prod(Xt.shape[1:]))
    arrays = [np.array(a.reshape(len(a), width) if flatten else a, dtype=dtype, order="C") for a in (Xt, Xv, Xs)]
    fit = normalize_splits(arrays, mode, raw, keep)
    scaling = None
    if target_scaling:
        scaling = TargetScaling.fit(yt, f"{source}: y_train")
        yt, yv, ys = (scaling.scale(y) for y in (yt, yv, ys))
    info = DataInfo(tuple(Xt.shape[1:]), mode or "none", *(fit or (None, None)), *columns, encoding=encoding,
                    counts=counts, stratified=stratified, target_scaling=scaling)
    data = {"X_train": arrays[0], "y_train": yt, "X_val": arrays[1], "y_val": yv, "X_test": arrays[2], "y_test": ys}
    return data, info
