"""Tests of crnn_jax/train_lib.py on datasets with bad records: they are skipped and counted per
reason in the log."""

import json

import pytest

from configs import tiny
from crnn_jax import train_lib


@pytest.mark.slow
def test_training_logs_skipped_records_per_reason(gt_folder, tmp_path):
  root, good, bad = gt_folder
  config = tiny.get_config()
  config.data.source = "folder"
  config.data.train_paths = (str(root),)
  config.data.eval_paths = (str(root),)
  config.batch_size = 4
  config.eval_batch_size = 4
  config.num_train_steps = 3
  config.log_every_steps = 3
  config.checkpoint_every_steps = 3
  metrics = train_lib.train_and_evaluate(config, str(tmp_path / "run"))
  assert metrics["count"] == 3  # alpha, beta and 7up; the others are skipped.

  lines = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").open()]
  assert [line["step"] for line in lines] == [1, 2, 3]
  reasons = {}
  for line in lines:
    for reason, n in line.get("skipped_records", {}).items():
      reasons[reason] = reasons.get(reason, 0) + n
  # 12 samples drawn from 3 usable records: the pipeline went through every bad one.
  assert set(bad.values()) | {"unknown_chars"} <= set(reasons), reasons
  assert all(n >= 1 for n in reasons.values())
  # And the loss stayed finite.
  assert all(line["loss"] is not None and line["loss"] < 1e3 for line in lines)
