"""`graphnet predict`, `export` and `import`: a trained model in and out."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .registry import command


@command("predict")
def _predict(args: argparse.Namespace) -> int:
    """Predictions of a run's (or checkpoint's) model for a file of raw examples, streamed."""
    from ..data.columns import EncodeCounts
    from ..errors import DataError
    from ..model.prediction import prediction_header, read_examples, write_predictions
    from ..model.restore import load_checkpoint
    from ..runs.folder import has_checkpoint, no_checkpoint_yet
    from ..system.fileio import STDOUT, open_output, output_target, remove_stale_temporaries

    run_folder = Path(args.run)
    if (run_folder / "run.json").is_file() and not has_checkpoint(run_folder):
        raise no_checkpoint_yet(run_folder)
    net = load_checkpoint(run_folder, batch_size=args.batch_size, backend=args.backend)
    prediction_header(net, args.proba)  # a bad --proba fails before anything is read or written
    examples = read_examples(net, args.data, chunk=args.batch_size)
    target = output_target(args.out or STDOUT)
    if target.how == "replace":  # what predictions killed while writing into this folder left behind
        remove_stale_temporaries(target.path.parent)
    counts = EncodeCounts()
    try:
        with open_output(target.given, text=True) as out:
            count = write_predictions(net, examples, out, proba=args.proba, counts=counts)
    except DataError as error:  # the model's own checks of the examples (shape, values) name no file
        if Path(args.data).name in str(error):
            raise
        raise DataError(f"{args.data}: {error}") from None
    if target.how != "stdout":
        print(f"wrote {count} predictions to {args.out}", file=sys.stderr)
    if counts.describe():
        print(f"predict: {counts.describe()}", file=sys.stderr)
    return 0


@command("export")
def _export(args: argparse.Namespace) -> int:
    from ..interop import require_onnx
    from ..interop.onnx_export import export_onnx, onnx_input_names
    from ..model.restore import load_checkpoint
    from ..system.fileio import STDOUT

    require_onnx("graphnet export")
    net = load_checkpoint(args.run, batch_size=1)
    export_onnx(net, args.out, opset=args.opset)
    print(f"wrote {args.out} (ONNX opset {args.opset}; inputs: {', '.join(onnx_input_names(net))}; "
          f"outputs: {', '.join(net.graph.outputs)})", file=sys.stderr if args.out == STDOUT else sys.stdout)
    return 0


@command("import")
def _import(args: argparse.Namespace) -> int:
    from ..interop import require_onnx
    from ..interop.onnx_import import import_onnx

    require_onnx("graphnet import")
    folder = import_onnx(args.model, args.out, dtype=args.dtype)
    print(f"wrote checkpoint {folder} (network.json + weights.npz)")
    return 0
