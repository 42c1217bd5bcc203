"""A sweep seen through the real TensorBoard: one run per job, scalars, and HPARAMS."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import run_module

TENSORBOARD = Path(sys.executable).with_name("tensorboard")
STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(port: int, path: str, **query: object) -> object:
    params = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in query.items()}
    url = f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def wait_for_runs(port: int, n: int, server: subprocess.Popen) -> list[str]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, "tensorboard exited"
        try:
            runs = get(port, "/data/runs")
            if len(runs) >= n:
                return runs
        except OSError:
            pass  # not listening yet
        time.sleep(1)
    raise AssertionError("tensorboard did not list the runs in time")


@pytest.mark.slow
def test_tensorboard_serves_a_sweep_side_by_side(tmp_path):
    args = ["-m", "seed=0,1", "trainer.max_epochs=2", "data.n_train=500", "data.n_test=500"]
    args += ["callbacks=none", f"paths.log_dir={tmp_path}"]
    swept = run_module("src.train", *args, cwd=tmp_path)
    assert swept.returncode == 0, swept.stderr[-3000:]
    (sweep_dir,) = tmp_path.glob("*/multiruns/*")
    port = free_port()
    serve = ["--logdir", str(sweep_dir), "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [str(TENSORBOARD), *serve, "--reload_interval", "1", "--load_fast", "false"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        settings = "data.n_train=500-data.n_test=500"  # the job's own, not paths or trainer
        runs = [f"{j}/tensorboard/flow1d-mog1d-s{j}-{settings}" for j in (0, 1)]
        assert sorted(wait_for_runs(port, 2, server)) == runs  # named after the job
        tags = get(port, "/data/plugin/scalars/tags")
        for run in runs:
            assert {"train/nll", "val/nll", "test/nll", "test/kl_gap"} <= set(tags[run])
        points = get(port, "/data/plugin/scalars/scalars", run=runs[0], tag="val/nll")
        assert len(points) == 2  # one validation per epoch

        experiment = get(port, "/data/plugin/hparams/experiment", request={"experimentName": ""})
        assert {"seed", "model.n_components", "optimizer.lr"} <= {
            h["name"] for h in experiment["hparamInfos"]
        }
        assert {"test/nll", "val/nll"} <= {m["name"]["tag"] for m in experiment["metricInfos"]}
        request = {"startIndex": 0, "sliceSize": 10, "allowedStatuses": STATUSES}
        request["colParams"] = [{"hparam": "seed"}, {"metric": {"tag": "test/nll"}}]
        groups = get(port, "/data/plugin/hparams/session_groups", request=request)
        by_seed = {g["hparams"]["seed"]: g for g in groups["sessionGroups"]}
        assert set(by_seed) == {0.0, 1.0}
        for seed, group in by_seed.items():
            final = json.loads((sweep_dir / str(int(seed)) / "metrics.json").read_text())
            values = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
            assert values["test/nll"] == pytest.approx(final["test/nll"], rel=1e-6)
    finally:
        server.terminate()
        server.wait(timeout=30)
