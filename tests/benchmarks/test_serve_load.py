"""Tests of benchmarks/serve_load.py: a short run against the tiny model, and loopback only."""

import json

import pytest

pytest.importorskip("uvicorn")


@pytest.mark.parametrize("host", ["10.0.0.1", "192.168.1.2", "8.8.8.8"])
def test_only_loopback_targets_are_accepted(serve_load, host):
  with pytest.raises(SystemExit, match="not a loopback address"):
    serve_load.check_loopback(host)
  serve_load.check_loopback("127.0.0.1")
  serve_load.check_loopback("::1")


def test_multipart_bodies_carry_one_image(serve_load):
  body = serve_load.multipart("word_lower/00001.png", b"\x89PNG...", {"decoder": "greedy"})
  assert body.count(b'name="image"; filename="00001.png"') == 1
  assert b'name="decoder"\r\n\r\ngreedy' in body
  assert body.endswith(f"--{serve_load.BOUNDARY}--\r\n".encode())


@pytest.mark.slow
def test_a_short_run_reports_every_phase(serve_load, tiny_workdir, tmp_path, capsys):
  output = tmp_path / "load.json"
  assert serve_load.main(["--checkpoint", str(tiny_workdir), "--decoder", "greedy",
                          "--images", "16", "--burst", "12", "--clients", "6", "--seconds", "2",
                          "--sequential-seconds", "1", "--max-batch", "4",
                          "--warmup-max-width", "0",
                          "--output", str(output)]) == 0
  report = json.loads(output.read_text())
  batched = report["batched"]
  assert batched["burst"]["requests"] == 12 and batched["burst"]["errors"] == 0
  assert batched["sequential"]["requests"] >= 1 and batched["concurrent"]["errors"] == 0
  assert batched["concurrent"]["requests"] >= 6
  assert 1 <= batched["concurrent"]["mean_batch"] <= 4  # Seen through /metrics.
  assert batched["exit_status"] == 0  # SIGTERM drained it.
  assert report["gain_vs_sequential"] > 0 and "load_before" in report
  printed = capsys.readouterr().out
  assert "| 6 clients |" in printed and "batching gain" in printed
