"""The run settings: a network and how to train it (`RunSpec`, `TrainSpec`), the data
(`DataSpec`), the optimizers (tagged by `rule`) and the schedules (tagged by `kind`)."""
from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

from pydantic import Field, ValidationError, model_serializer, model_validator

from ..specmodel import SpecModel
from .network_spec import SCHEMA_VERSION, NetworkSpec, SchemaVersion
from .validation import located


class DataSpec(SpecModel):
    """Where the data comes from: a data set name or path, and how to split and scale it.
    `options` go to the reader (graphnet.data.load): a CSV's label_column, test_file and
    test_size, a table's categorical columns, missing markers and impute mode, stratify,
    target_scaling, a synthetic set's generator options."""

    name: str = Field(min_length=1)
    val_size: Annotated[int, Field(ge=0)] | Annotated[float, Field(ge=0, lt=1)] | None = None
    normalize: Literal["auto", "scale", "standardize", "none"] = "auto"
    options: dict[str, bool | int | float | str | list[str]] = {}


class AugmentSpec(SpecModel):
    """Random changes to each training example, for image inputs [C, H, W]: drawn anew every
    epoch from the run seed and the example's position in the epoch; training batches only
    (never validation, test, eval, predict or export)."""

    flip: Literal["none", "horizontal"] = Field("none", description=(
        "\"horizontal\": mirror each image left-right with probability 0.5"))
    shift: int = Field(0, ge=0, description=(
        "move each image by up to this many pixels down or up and right or left (each of the two "
        "offsets uniform in [-shift, shift]), filling the uncovered border with zeros"))


class _Tagged(SpecModel):
    """A member of a tagged union (optimizer `rule`, schedule `kind`). The tag has a default,
    so Python code need not repeat it, but it stays in every dump, even with
    exclude_defaults: without it the dump would not parse back."""

    @model_serializer(mode="wrap")
    def _tag_always(self, handler: Any) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            tag = "rule" if "rule" in type(self).model_fields else "kind"
            return {tag: getattr(self, tag), **data}
        return data


class Sgd(_Tagged):
    rule: Literal["sgd"] = "sgd"
    learning_rate: float = Field(1e-2, gt=0)


class Momentum(_Tagged):
    rule: Literal["momentum"] = "momentum"
    learning_rate: float = Field(1e-2, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)


class Nesterov(Momentum):
    rule: Literal["nesterov"] = "nesterov"  # type: ignore[assignment]


class RmsProp(_Tagged):
    rule: Literal["rmsprop"] = "rmsprop"
    learning_rate: float = Field(1e-2, gt=0)
    decay_rate: float = Field(0.99, ge=0, lt=1)
    epsilon: float = Field(1e-8, gt=0)


class Adam(_Tagged):
    rule: Literal["adam"] = "adam"
    learning_rate: float = Field(1e-3, gt=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    epsilon: float = Field(1e-8, gt=0)


class AdamW(Adam):
    rule: Literal["adamw"] = "adamw"  # type: ignore[assignment]
    weight_decay: float = Field(1e-2, ge=0)


OptimizerSpec = Annotated[Union[Sgd, Momentum, Nesterov, RmsProp, Adam, AdamW], Field(discriminator="rule")]
OPTIMIZERS: dict[str, type[SpecModel]] = {
    model.model_fields["rule"].default: model for model in (Sgd, Momentum, Nesterov, RmsProp, Adam, AdamW)
}


_WARMUP = "linear warmup from base/warmup_iterations to the base rate over these epochs"


class Constant(_Tagged):
    kind: Literal["constant"] = "constant"
    warmup_epochs: float = Field(0.0, ge=0, description=_WARMUP)


class Exponential(_Tagged):
    """The homework's `lr_decay`: the rate is multiplied by `decay` after every epoch."""

    kind: Literal["exponential"] = "exponential"
    decay: float = Field(gt=0, le=1)
    warmup_epochs: float = Field(0.0, ge=0, description=_WARMUP + "; decay still counts epochs from the start")


class StepDecay(_Tagged):
    kind: Literal["step"] = "step"
    step_epochs: int = Field(ge=1)
    gamma: float = Field(0.1, gt=0, le=1)
    warmup_epochs: float = Field(0.0, ge=0, description=_WARMUP + "; the steps stay at absolute epochs")


class Cosine(_Tagged):
    """Cosine annealing from the base rate to `min_lr` over the run after warmup (per iteration)."""

    kind: Literal["cosine"] = "cosine"
    min_lr: float = Field(0.0, ge=0)
    warmup_epochs: float = Field(0.0, ge=0, description=_WARMUP + "; the cosine spans the epochs after it")


ScheduleSpec = Annotated[Union[Constant, Exponential, StepDecay, Cosine], Field(discriminator="kind")]


class EarlyStopping(SpecModel):
    """Stop when the validation `metric` has not improved by more than `min_delta` for `patience`
    epochs, and serve the best epoch's state (Keras's EarlyStopping(restore_best_weights=True))."""

    metric: str = Field("val_loss", min_length=1, description=(
        "a validation metric of the epoch records: val_loss, val_accuracy, val_f1_macro, val_roc_auc, "
        "val_rmse, ..."))
    patience: int = Field(5, ge=1, le=100_000, description="epochs without improvement before stopping")
    min_delta: float = Field(0.0, ge=0, description="the least change that counts as an improvement")
    mode: Literal["min", "max"] | None = Field(None, description=(
        "min or max is better; inferred from the metric when not given (losses and errors: min)"))


class TensorBoardSpec(SpecModel):
    """Write TensorBoard event files: scalars per epoch, and per-parameter histograms if asked."""

    dir: str = Field(min_length=1, description="the log folder (TensorBoard's --logdir)")
    histograms: bool = Field(False, description="also a histogram of every parameter, each epoch")


class MlflowSpec(SpecModel):
    """Log the run to MLflow: its settings as params, its epochs as metrics, its folder as artifacts."""

    tracking_uri: str | None = Field(None, min_length=1, description=(
        "an MLflow tracking URI; default: the local file store ./mlruns"))
    experiment: str = Field("graphnet", min_length=1, max_length=500)
    parent_run_id: str | None = Field(None, min_length=1, max_length=100, description=(
        "log as a child run of this MLflow run (a sweep sets it for its trials)"))


class TrainSpec(SpecModel):
    """How to train: data, optimizer, schedule, epochs, batch size, seed and numerics."""

    data: str | DataSpec
    optimizer: OptimizerSpec = Adam()
    schedule: ScheduleSpec = Constant()
    epochs: int = Field(10, ge=1, le=100_000)
    batch_size: int = Field(128, ge=1, le=1 << 20)
    seed: int = Field(0, ge=0, le=2**63 - 1)
    clip_norm: float | None = Field(None, gt=0, description="clip gradients to this global L2 norm")
    dtype: Literal["float32", "float64"] = "float32"
    backend: Literal["numba", "numpy"] | None = None
    eval_batch_size: int = Field(1000, ge=1, le=1 << 20)
    init_from: str | None = Field(None, min_length=1, description=(
        "start from these weights (fine-tuning): a checkpoint folder, a run folder or an .onnx model; "
        "parameters are matched by name, those it lacks keep their initialization"))
    class_weight: Literal["balanced"] | dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] | None = Field(
        None, description=("weights of the classes in a softmax_cross_entropy or sigmoid_binary_cross_entropy "
                           "loss (PyTorch's weight): \"balanced\" (n / (classes * n_class) on the training "
                           "split) or {class name: weight}, 1 for a class left out"))
    early_stopping: EarlyStopping | None = None
    freeze: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list, description=(
        "parameters kept fixed while training: parameter names (fc1.W) or node ids (all of a node's parameters)"))
    tensorboard: TensorBoardSpec | None = None
    mlflow: MlflowSpec | None = None
    augment: AugmentSpec | None = Field(None, description=(
        "train-time image augmentation (random flips and shifts of the training batches)"))

    def data_spec(self) -> DataSpec:
        return self.data if isinstance(self.data, DataSpec) else DataSpec(name=self.data)


class RunSpec(SpecModel):
    """A network and how to train it: everything `graphnet train FILE` needs."""

    schema_ref: str | None = Field(None, alias="$schema")
    schema_version: SchemaVersion = SCHEMA_VERSION
    network: NetworkSpec
    train: TrainSpec

    @model_validator(mode="after")
    def _check_augment(self) -> "RunSpec":
        problems = augment_problems(self.train.augment, self.network)
        if problems:
            raise ValidationError.from_exception_data("RunSpec", [located(loc, message) for loc, message in problems])
        return self

    def to_json(self, indent: int | None = 2) -> str:
        """Canonical JSON: defaults omitted, so it reads like a hand-written run file."""
        return self.model_dump_json(indent=indent, exclude_defaults=True, exclude_none=True)

    def as_trained_json(self, indent: int | None = 2) -> str:
        """A run folder's run.json: the network as in `to_json`, and every train setting,
        defaults and unset (null) ones included, so the file says what was used. No "$schema"
        (a run folder has no schema.json); it parses back to this run spec, less the $schema."""
        document = {
            "schema_version": self.schema_version,
            "network": self.network.model_dump(mode="json", exclude_defaults=True, exclude_none=True,
                                               exclude={"schema_ref"}),
            "train": self.train.model_dump(mode="json"),
        }
        return json.dumps(document, indent=indent)


def augment_problems(augment: AugmentSpec | None, network: NetworkSpec) -> list[tuple[tuple[str, ...], str]]:
    """[(location, message)] when `augment` cannot apply to the network's inputs (the first input
    that is not an image [C, H, W], or whose height or width the shift reaches); [] when it can."""
    if augment is None:
        return []
    for name, value in network.inputs.items():
        if len(value.shape) != 3:
            return [(("train", "augment"), f"augmentation flips and shifts images [C, H, W]; the input '{name}' "
                                           f"has shape {value.shape}: remove \"augment\" or give the input "
                                           f"an image shape")]
        height, width = value.shape[1:]
        if augment.shift >= min(height, width):
            return [(("train", "augment", "shift"), f"shift {augment.shift} moves the image out of sight: "
                                                    f"the input '{name}' is {height}x{width} pixels; give a "
                                                    f"shift below {min(height, width)}")]
    return []
