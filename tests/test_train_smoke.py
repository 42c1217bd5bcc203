import json

from src.train import train


def test_fast_dev_run_writes_metrics(make_cfg, tmp_path):
    metrics = train(make_cfg("debug=fast"))
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert {"train/nll", "val/nll", "test/nll", "test/kl_gap"} <= metrics.keys()
