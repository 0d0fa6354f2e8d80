"""A table model in ONNX (graphnet.interop.onnx_table): the column encoding and the target
scaling as standard ops, checked by onnx.checker and run by ONNX Runtime, and cut off again
by the import."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn

from tests._support.extras import HAVE_ONNX

pytestmark = pytest.mark.skipif(not HAVE_ONNX, reason="ONNX is in the [onnx] extra: pip install 'graphnet[onnx]'")

ROWS = np.array([[1.0, "x", "cook"], [None, "y", "astronaut"], [3.0, None, "pilot"], [0.5, "?", ""]], dtype=object)


def table_model(tmp_path: Path, *, normalize: str, label: dict, loss: str, units: int, **options: object):
    """A model trained on a small table: columns a (number), x (text: its name is the
    network input's too) and job (text), label y."""
    rng = np.random.default_rng(0)
    rows = [f"{i % 2 if 'classes' in label else 100 + 10 * i},{'' if i % 7 == 0 else f'{rng.normal():.4f}'},"
            f"{'xy'[i % 2]},{('cook', 'pilot')[i % 3 == 0]}" for i in range(40)]
    data = tmp_path / "t.csv"
    data.write_text("y,a,x,job\n" + "\n".join(rows) + "\n")
    run = {"network": {"inputs": {"x": {"shape": [1 + 4 + 4]}}, "labels": {"y": label},
                       "nodes": [{"id": "fc", "op": "affine", "inputs": ["x"], "units": units},
                                 {"id": "loss", "op": loss, "inputs": ["fc", "y"]}],
                       "outputs": ["fc"], "loss": "loss"},
           "train": {"data": {"name": str(data), "normalize": normalize, "options": options}, "epochs": 2,
                     "batch_size": 8}}
    gn.train(gn.parse_run(run), out=tmp_path / "run", log=None, progress=False)
    return gn.load_checkpoint(tmp_path / "run")


@pytest.mark.parametrize("normalize", ["none", "standardize"])
def test_the_export_encodes_raw_columns_as_net_predict_does_and_the_import_reads_it_back(tmp_path, normalize):
    import onnx
    from tests._support.onnx_checks import run_ort, table_feeds

    from graphnet.interop.onnx_export import export_onnx, onnx_input_names

    net = table_model(tmp_path, normalize=normalize, label={"classes": 2}, loss="softmax_cross_entropy", units=2)
    model = export_onnx(net, tmp_path / "m.onnx")
    proto = onnx.load(str(model))
    onnx.checker.check_model(proto, full_check=True)
    # the text column "x" takes another name than the numbers' input "x"
    assert [i.name for i in proto.graph.input] == onnx_input_names(net) == ["x", "x/x", "job"]
    assert {op.domain: op.version for op in proto.opset_import}["ai.onnx.ml"] == 3
    np.testing.assert_allclose(run_ort(model, table_feeds(model, ROWS))["fc"], net.forward(net.prepare(ROWS)),
                               rtol=1e-5, atol=1e-6)
    again = gn.from_onnx(model)
    assert again.encoding.description() == net.encoding.description()
    assert again.preprocessing.mode == net.preprocessing.mode and again.preprocessing.label_column == "y"
    np.testing.assert_allclose(again.predict_proba(ROWS), net.predict_proba(ROWS), rtol=1e-5, atol=1e-7)
    bare = onnx.load(str(export_onnx(net, tmp_path / "bare.onnx", preprocessing={})))
    assert [i.name for i in bare.graph.input] == ["x"] and "graphnet.encoding" not in {p.key for p in
                                                                                         bare.metadata_props}


def test_a_scaled_regression_output_is_scaled_back_in_the_graph_and_cut_off_by_the_import(tmp_path):
    from tests._support.onnx_checks import run_ort, table_feeds

    from graphnet.interop.onnx_export import export_onnx

    net = table_model(tmp_path, normalize="standardize", label={"shape": [1]}, loss="mse", units=1,
                      target_scaling=True)
    model = export_onnx(net, tmp_path / "m.onnx")
    np.testing.assert_allclose(run_ort(model, table_feeds(model, ROWS))["fc"], net.predict(ROWS), rtol=1e-5)
    again = gn.from_onnx(model)
    np.testing.assert_allclose(again.forward(again.prepare(ROWS)), net.forward(net.prepare(ROWS)), rtol=1e-5,
                               atol=1e-6)  # the network's own units: the scaling is the record's
    assert json.dumps(again.target_scaling.description()) == json.dumps(net.target_scaling.description())
