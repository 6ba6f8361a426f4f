"""Tests of `crnn-jax serve` (crnn_jax/cli/serve.py): its flags, and the real server in a
subprocess: 48 concurrent requests, the API key from the environment, SIGTERM draining."""

import concurrent.futures
import io
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image
import pytest

from crnn_jax import cli
from crnn_jax import pretrained
from crnn_jax.cli import serve as serve_command
import deploy_helpers

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _args(*argv):
  return cli.build_parser().parse_args(["serve", *argv])


def test_models_are_named_by_shipped_name_directory_or_given_name():
  assert serve_command.model_specs(_args()) == [
      (pretrained.DEFAULT_MODEL, "weights", pretrained.DEFAULT_MODEL)]
  specs = serve_command.model_specs(_args("--weights", "synth_en", "--weights", "w/exported/",
                                          "--checkpoint", "runs/a", "--checkpoint",
                                          "b=runs/other"))
  assert specs == [("synth_en", "weights", "synth_en"), ("exported", "weights", "w/exported/"),
                   ("a", "checkpoint", "runs/a"), ("b", "checkpoint", "runs/other")]
  with pytest.raises(ValueError, match="two models named 'a'"):
    serve_command.model_specs(_args("--checkpoint", "x/a", "--checkpoint", "y/a"))


def test_defaults_listen_on_loopback_with_bounded_batches():
  args = _args()
  assert (args.host, args.port) == ("127.0.0.1", 8080)
  assert (args.max_batch, args.max_wait_ms, args.max_queue) == (16, 5.0, 256)
  assert args.decoders == "greedy,beam,lm,lexicon" and args.decoder is None
  assert not hasattr(args, "image_lexicons")
  help_text = cli.build_parser().format_help()
  assert "crnn-jax serve" in help_text


def test_bad_settings_fail_before_serving(tiny_workdir, capsys):
  assert cli.main(["serve", "--checkpoint", str(tiny_workdir), "--decoder", "lexicon"]) == 2
  assert "--decoder lexicon needs --lexicon" in capsys.readouterr().err
  assert cli.main(["serve", "--checkpoint", str(tiny_workdir), "--decoders", "greedy,ctc"]) == 2
  assert "unknown decoder 'ctc'" in capsys.readouterr().err


def test_without_the_serve_extra_it_says_what_to_install(monkeypatch, capsys):
  real = serve_command.importlib.util.find_spec
  monkeypatch.setattr(serve_command.importlib.util, "find_spec",
                      lambda name: None if name == "uvicorn" else real(name))
  assert cli.main(["serve"]) == 2
  err = capsys.readouterr().err
  assert "pip install 'crnn-jax[serve]'" in err and "missing: uvicorn" in err


def _free_port() -> int:
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def _multipart(images) -> tuple[bytes, str]:
  boundary = "crnnjaxtestboundary"
  parts = []
  for i, data in enumerate(images):
    parts.append((f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
                  f"filename=\"w{i}.png\"\r\nContent-Type: image/png\r\n\r\n").encode()
                 + data + b"\r\n")
  return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _post(url, images, key=None, timeout=60):
  body, content_type = _multipart(images)
  headers = {"Content-Type": content_type}
  if key:
    headers["Authorization"] = f"Bearer {key}"
  request = urllib.request.Request(url + "/v1/recognize", body, headers)
  try:
    with urllib.request.urlopen(request, timeout=timeout) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


def _metrics(url) -> str:
  request = urllib.request.Request(url + "/metrics", headers={"Authorization": "Bearer k3y"})
  with urllib.request.urlopen(request, timeout=30) as response:
    return response.read().decode()


def _png(array) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="PNG")
  return buffer.getvalue()


@pytest.mark.slow
def test_the_server_answers_48_concurrent_requests_and_drains_on_sigterm(tiny_workdir):
  port = _free_port()
  url = f"http://127.0.0.1:{port}"
  env = dict(os.environ, PYTHONPATH=str(ROOT), CRNN_JAX_API_KEY="k3y")
  server = subprocess.Popen(
      [sys.executable, "-c", "import sys; from crnn_jax import cli; sys.exit(cli.main())",
       "serve", "--checkpoint", f"tiny={tiny_workdir}", "--port", str(port), "--max-batch",
       "16", "--max-wait-ms", "3000", "--warmup-max-width", "128", "--decoders", "greedy"],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    deadline = time.monotonic() + 240
    while True:
      assert server.poll() is None, server.communicate()[1][-3000:]
      try:
        with urllib.request.urlopen(url + "/readyz", timeout=5) as response:
          if json.loads(response.read())["ready"]:
            break
      except (urllib.error.URLError, ConnectionError):
        pass
      assert time.monotonic() < deadline, "not ready in time"
      time.sleep(0.2)
    images = [_png(a) for a in deploy_helpers.text_images(3, [40 + 2 * i for i in range(48)])]
    assert _post(url, images[:1])[0] == 401  # The key comes from $CRNN_JAX_API_KEY.
    with concurrent.futures.ThreadPoolExecutor(48) as pool:
      answers = list(pool.map(lambda d: _post(url, [d], key="k3y"), images))
    assert [status for status, _ in answers] == [200] * 48  # 0 errors.
    texts = [body["results"][0]["text"] for _, body in answers]
    assert texts[:4] == [_post(url, [d], key="k3y")[1]["results"][0]["text"]
                         for d in images[:4]]  # Each answer is its own image's.
    metrics = _metrics(url)
    sizes = [line for line in metrics.splitlines()
             if line.startswith("crnn_serve_batch_size_sum ")]
    count = [line for line in metrics.splitlines()
             if line.startswith("crnn_serve_batch_size_count ")]
    batches = float(count[0].split()[1])
    assert float(sizes[0].split()[1]) == 52 and batches < 48  # Batched: fewer calls than images.

    # Requests in flight when SIGTERM comes are answered; then the process exits 0. Their 6
    # images wait up to 3 s (--max-wait-ms) for company: the signal comes meanwhile.
    slow = [_png(a) for a in deploy_helpers.text_images(4, [100] * 6)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
      pending = [pool.submit(_post, url, [d], "k3y") for d in slow]
      while True:
        in_flight = [line for line in _metrics(url).splitlines()
                     if line.startswith("crnn_serve_requests_in_flight ")]
        if float(in_flight[0].split()[1]) >= 7:  # The 6 and this scrape.
          break
        assert time.monotonic() < deadline + 120 and not any(p.done() for p in pending)
        time.sleep(0.05)
      server.send_signal(signal.SIGTERM)
      drained = [p.result(120) for p in pending]
    assert [status for status, _ in drained] == [200] * 6
    assert all(len(body["results"]) == 1 for _, body in drained)
    _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr[-3000:]
  finally:
    if server.poll() is None:
      server.kill()
      server.communicate()
  access = [line for line in stderr.splitlines() if '"POST /v1/recognize HTTP/1.1"' in line]
  assert len(access) == 1 + 48 + 4 + 6  # One line per request.
  assert "serving on http://127.0.0.1:" in stderr and "warm-up: 12 programs" in stderr  # 3 x 4 shapes
  np.testing.assert_equal(len([l for l in access if '" 401 ' in l]), 1)
