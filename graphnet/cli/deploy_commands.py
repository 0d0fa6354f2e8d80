"""`graphnet predict`, `export` and `import`: a trained model in and out."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .registry import command


@command("predict")
def _predict(args: argparse.Namespace) -> int:
    """Predictions of a run's (or checkpoint's) model for a file of raw examples, streamed."""
    from ..checkpoint import load_checkpoint
    from ..fileio import open_text_atomic
    from ..prediction import prediction_header, read_examples, write_predictions
    from ..runfolder import has_checkpoint, no_checkpoint_yet

    run_folder = Path(args.run)
    if (run_folder / "run.json").is_file() and not has_checkpoint(run_folder):
        raise no_checkpoint_yet(run_folder)
    net = load_checkpoint(run_folder, batch_size=args.batch_size, backend=args.backend)
    prediction_header(net, args.proba)  # a bad --proba fails before anything is read or written
    examples = read_examples(net, args.data, chunk=args.batch_size)
    if args.out is None:
        write_predictions(net, examples, sys.stdout, proba=args.proba)
        return 0
    with open_text_atomic(args.out) as out:
        count = write_predictions(net, examples, out, proba=args.proba)
    print(f"wrote {count} predictions to {args.out}", file=sys.stderr)
    return 0


@command("export")
def _export(args: argparse.Namespace) -> int:
    from ..checkpoint import load_checkpoint
    from ..interop import require_onnx
    from ..interop.onnx_export import export_onnx

    require_onnx("graphnet export")
    net = load_checkpoint(args.run, batch_size=1)
    export_onnx(net, args.out, opset=args.opset)
    print(f"wrote {args.out} (ONNX opset {args.opset}; inputs: {', '.join(net.graph.inputs)}; "
          f"outputs: {', '.join(net.graph.outputs)})")
    return 0


@command("import")
def _import(args: argparse.Namespace) -> int:
    from ..interop import require_onnx
    from ..interop.onnx_import import import_onnx

    require_onnx("graphnet import")
    folder = import_onnx(args.model, args.out, dtype=args.dtype)
    print(f"wrote checkpoint {folder} (network.json + weights.npz)")
    return 0
