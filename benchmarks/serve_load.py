"""Load test of `crnn-jax serve` on loopback: concurrent clients against one-at-a-time requests.

  pip install -e '.[serve]'
  python benchmarks/serve_load.py [--weights scene_en | --checkpoint RUN] [--clients 32]
      [--seconds 20] [--sequential-seconds 15] [--burst 48] [--max-batch 16] [--decoder lm]
      [--compare-unbatched] [--output serve_load.json]

Starts `crnn-jax serve` on a free loopback port (or uses --url, a server already running on this
machine), waits until /readyz says the warm-up has compiled, then runs three phases, each
bounded in time and in requests, with one word crop of testdata/heldout_en per request:

  burst       --burst requests sent at once (one connection each): how many are answered 200;
  sequential  one client, one request at a time, for --sequential-seconds: the baseline;
  concurrent  --clients clients in a closed loop (each sends its next request when the last
              one is answered) for --seconds.

It reports per phase the throughput (images per second), p50 and p99 latency and the errors,
the mean batch size of the concurrent phase (from /metrics), the batching gain (concurrent over
sequential throughput), and the targets of issue 31 (48 concurrent requests all answered; gain
at least 3x; p99 under 32 clients below 1 s). With --compare-unbatched a second server with
--max-batch 1 runs the concurrent phase too: what batching adds under the same load. The CPU
model and the load average (before and after) are printed with the figures. Only loopback
addresses are accepted as targets, and the script stops by itself.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import numpy as np
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "testdata" / "heldout_en"
BOUNDARY = "crnnjaxserveload"
REQUEST_TIMEOUT = 120.0  # Seconds a client waits for an answer (--timeout).

if str(REPO / "benchmarks") not in sys.path:
  sys.path.insert(0, str(REPO / "benchmarks"))

import machine  # pylint: disable=wrong-import-position


def word_crops(data: pathlib.Path, limit: int) -> list[tuple[str, bytes, tuple[int, int]]]:
  """(name, bytes, (height, width)) of the images listed in data/gt.txt (one word each)."""
  out = []
  for line in (data / "gt.txt").read_text(encoding="utf-8").splitlines()[:limit]:
    name = line.split("\t")[0]
    path = data / name
    with Image.open(path) as image:
      size = (image.height, image.width)
    out.append((name, path.read_bytes(), size))
  return out


def multipart(name: str, data: bytes, fields: dict[str, str]) -> bytes:
  """A multipart/form-data body with one `image` file and text fields."""
  parts = [f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
           for k, v in fields.items()]
  parts.append(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; "
               f"filename=\"{pathlib.Path(name).name}\"\r\nContent-Type: image/png\r\n\r\n"
               .encode() + data + b"\r\n")
  return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


class Client:
  """One keep-alive HTTP connection to the service."""

  def __init__(self, host: str, port: int, key: str | None = None):
    self.host, self.port = host, port
    self.headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    if key:
      self.headers["Authorization"] = f"Bearer {key}"
    self.connection = None

  def post(self, body: bytes) -> tuple[int, float]:
    """(status, seconds) of one POST /v1/recognize; status 0 for a connection error."""
    start = time.perf_counter()
    try:
      if self.connection is None:
        self.connection = http.client.HTTPConnection(self.host, self.port,
                                                     timeout=REQUEST_TIMEOUT)
      self.connection.request("POST", "/v1/recognize", body, self.headers)
      response = self.connection.getresponse()
      payload = response.read()
      status = response.status
      if status == 200 and not json.loads(payload)["results"]:
        status = -1
    except (OSError, http.client.HTTPException, ValueError, KeyError):
      status = 0
      self.close()
    return status, time.perf_counter() - start

  def close(self):
    if self.connection is not None:
      self.connection.close()
      self.connection = None


def summarize(samples: list[tuple[int, float]], seconds: float) -> dict[str, float]:
  latencies = np.array([s for status, s in samples if status == 200])
  errors = sum(1 for status, _ in samples if status != 200)
  return {"requests": len(samples), "errors": errors, "seconds": round(seconds, 2),
          "images_per_second": round(len(latencies) / seconds, 2) if seconds else 0.0,
          "p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 1) if len(latencies) else 0,
          "p99_ms": round(float(np.percentile(latencies, 99)) * 1000, 1) if len(latencies) else 0}


def burst(host, port, key, bodies, count) -> dict[str, float]:
  """`count` requests released at once, each on its own connection."""
  clients = [Client(host, port, key) for _ in range(count)]
  for client in clients:  # Connect first, so that the requests leave together.
    client.connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
    client.connection.connect()
  barrier = threading.Barrier(count)
  samples = [None] * count

  def run(i):
    barrier.wait()
    samples[i] = clients[i].post(bodies[i % len(bodies)])

  start = time.perf_counter()
  threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join(REQUEST_TIMEOUT + 10)
  seconds = time.perf_counter() - start
  for client in clients:
    client.close()
  return summarize([s if s is not None else (0, 0.0) for s in samples], seconds)


def closed_loop(host, port, key, bodies, clients: int, seconds: float) -> dict[str, float]:
  """`clients` clients, each sending its next request when the last is answered, until
  `seconds` have passed (requests in flight then are waited for and counted)."""
  samples: list[tuple[int, float]] = []
  lock = threading.Lock()
  stop_at = time.perf_counter() + seconds

  def run(i):
    client = Client(host, port, key)
    n = i
    while time.perf_counter() < stop_at:
      sample = client.post(bodies[n % len(bodies)])
      n += clients
      with lock:
        samples.append(sample)
    client.close()

  start = time.perf_counter()
  threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join(seconds + REQUEST_TIMEOUT + 10)
  return summarize(samples, time.perf_counter() - start)


def scrape(host, port, key) -> dict[str, float]:
  """The batch-size sum and count of /metrics."""
  connection = http.client.HTTPConnection(host, port, timeout=30)
  headers = {"Authorization": f"Bearer {key}"} if key else {}
  connection.request("GET", "/metrics", headers=headers)
  text = connection.getresponse().read().decode()
  connection.close()
  out = {}
  for line in text.splitlines():
    for name in ("crnn_serve_batch_size_sum", "crnn_serve_batch_size_count"):
      if line.startswith(name + " "):
        out[name] = float(line.split()[1])
  return out


def free_port() -> int:
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def check_loopback(host: str) -> None:
  """Refuses any target but this machine's loopback addresses."""
  try:
    addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
  except socket.gaierror as e:
    raise SystemExit(f"cannot resolve {host}: {e}") from None
  if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
    raise SystemExit(f"{host} is not a loopback address: this load test only targets "
                     "127.0.0.0/8 or ::1")


def start_server(args, port: int, max_batch: int, log_path: pathlib.Path,
                 warmup_width: int) -> subprocess.Popen:
  model = (["--checkpoint", args.checkpoint] if args.checkpoint
           else ["--weights", args.weights])
  command = [sys.executable, "-c", "import sys; from crnn_jax import cli; sys.exit(cli.main())",
             "serve", *model, "--port", str(port), "--max-batch", str(max_batch),
             "--max-wait-ms", str(args.max_wait_ms), "--max-queue", str(args.max_queue),
             "--decoders", args.decoder, "--decoder", args.decoder, "--no-access-log",
             "--warmup-max-width", str(warmup_width)]
  log = open(log_path, "w", encoding="utf-8")  # pylint: disable=consider-using-with
  return subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))


def wait_ready(host, port, process, log_path, timeout: float) -> float:
  """Seconds until /readyz answers 200."""
  start = time.perf_counter()
  while time.perf_counter() - start < timeout:
    if process is not None and process.poll() is not None:
      raise SystemExit(f"the server exited:\n{log_path.read_text()[-3000:]}")
    try:
      connection = http.client.HTTPConnection(host, port, timeout=5)
      connection.request("GET", "/readyz")
      status = connection.getresponse().status
      connection.close()
      if status == 200:
        return time.perf_counter() - start
    except OSError:
      pass
    time.sleep(0.5)
  raise SystemExit(f"not ready after {timeout:.0f} s")


def stop_server(process: subprocess.Popen) -> int:
  process.send_signal(signal.SIGTERM)
  try:
    return process.wait(60)
  except subprocess.TimeoutExpired:
    process.kill()
    return process.wait()


def run_against(args, host, port, key, bodies) -> dict:
  """The three phases against one server."""
  results = {}
  if args.burst:
    results["burst"] = burst(host, port, key, bodies, args.burst)
    print(f"  burst of {args.burst}: {results['burst']}", flush=True)
  if args.sequential_seconds:
    results["sequential"] = closed_loop(host, port, key, bodies, 1, args.sequential_seconds)
    print(f"  sequential: {results['sequential']}", flush=True)
  before = scrape(host, port, key)
  results["concurrent"] = closed_loop(host, port, key, bodies, args.clients, args.seconds)
  after = scrape(host, port, key)
  calls = after["crnn_serve_batch_size_count"] - before["crnn_serve_batch_size_count"]
  images = after["crnn_serve_batch_size_sum"] - before["crnn_serve_batch_size_sum"]
  results["concurrent"]["mean_batch"] = round(images / calls, 2) if calls else 0.0
  print(f"  {args.clients} clients: {results['concurrent']}", flush=True)
  return results


def main(argv=None) -> int:
  global REQUEST_TIMEOUT  # pylint: disable=global-statement
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--weights", default="scene_en", help="shipped weights or a directory")
  parser.add_argument("--checkpoint", default="", help="a training workdir instead")
  parser.add_argument("--url", default="", help="a server already running on loopback")
  parser.add_argument("--api-key", default=os.environ.get("CRNN_JAX_API_KEY"),
                      help="the --url server's key")
  parser.add_argument("--data", type=pathlib.Path, default=DEFAULT_DATA,
                      help="a folder with gt.txt (word crops)")
  parser.add_argument("--images", type=int, default=256, help="distinct images sent")
  parser.add_argument("--clients", type=int, default=32)
  parser.add_argument("--seconds", type=float, default=20.0, help="concurrent phase length")
  parser.add_argument("--sequential-seconds", type=float, default=15.0)
  parser.add_argument("--burst", type=int, default=48, help="requests sent at once (0: none)")
  parser.add_argument("--max-batch", type=int, default=16)
  parser.add_argument("--max-wait-ms", type=float, default=5.0)
  parser.add_argument("--max-queue", type=int, default=256)
  parser.add_argument("--decoder", default="lm", choices=("greedy", "beam", "lm"))
  parser.add_argument("--compare-unbatched", action="store_true",
                      help="also run the concurrent phase against a --max-batch 1 server")
  parser.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT,
                      help="seconds a client waits for an answer; later counts as an error")
  parser.add_argument("--warmup-max-width", type=int, default=-1,
                      help="the server's warm-up width (-1: the widest padded width of the "
                      "images sent; 0: no warm-up)")
  parser.add_argument("--ready-timeout", type=float, default=900.0)
  parser.add_argument("--output", help="write the results as JSON")
  args = parser.parse_args(argv)
  REQUEST_TIMEOUT = args.timeout

  crops = word_crops(args.data, args.images)
  bodies = [multipart(name, data, {}) for name, data, _ in crops]
  # The warm-up compiles the padded widths these crops need (height 32, keep-ratio).
  widest = max(max(8, round(w * 32 / h)) for _, _, (h, w) in crops)
  warmup_width = (min(1024, -(-widest // 32) * 32) if args.warmup_max_width < 0
                  else args.warmup_max_width)
  described = machine.describe()
  report = {"machine": described.line(load=False),
            "load_before": machine.format_load(described.load), "clients": args.clients,
            "decoder": args.decoder, "max_batch": args.max_batch,
            "max_wait_ms": args.max_wait_ms, "images": len(crops),
            "model": args.checkpoint or args.weights}
  print(f"machine: {report['machine']}; load average {report['load_before']}", flush=True)
  servers = [("batched", args.max_batch)]
  if args.compare_unbatched:
    servers.append(("unbatched", 1))
  with tempfile.TemporaryDirectory() as tmp:
    for label, max_batch in servers:
      if args.url:
        if label != "batched":
          continue
        parsed = urllib.parse.urlparse(args.url)
        host, port, process, key = parsed.hostname, parsed.port or 80, None, args.api_key
        check_loopback(host)
      else:
        host, port, key = "127.0.0.1", free_port(), None
        log_path = pathlib.Path(tmp) / f"{label}.log"
        process = start_server(args, port, max_batch, log_path, warmup_width)
      print(f"{label} server (max batch {max_batch}) on {host}:{port}", flush=True)
      ready = wait_ready(host, port, process, pathlib.Path(tmp) / f"{label}.log",
                         args.ready_timeout)
      print(f"  ready after {ready:.1f} s", flush=True)
      try:
        if label == "batched":
          results = run_against(args, host, port, key, bodies)
        else:
          results = {"concurrent": closed_loop(host, port, key, bodies, args.clients,
                                               args.seconds)}
          print(f"  {args.clients} clients: {results['concurrent']}", flush=True)
      finally:
        if process is not None:
          results["exit_status"] = stop_server(process)
      results["ready_seconds"] = round(ready, 1)
      report[label] = results
  report["load_after"] = machine.format_load(machine.load_average())
  batched = report["batched"]
  gain = (batched["concurrent"]["images_per_second"]
          / max(batched["sequential"]["images_per_second"], 1e-9)
          if "sequential" in batched else 0.0)
  report["gain_vs_sequential"] = round(gain, 2)
  if "unbatched" in report:
    report["gain_vs_unbatched"] = round(
        batched["concurrent"]["images_per_second"]
        / max(report["unbatched"]["concurrent"]["images_per_second"], 1e-9), 2)
  report["targets"] = {
      f"burst of {args.burst} answered, 0 errors": bool(
          args.burst and batched["burst"]["errors"] == 0),
      "throughput >= 3x one at a time": gain >= 3.0,
      f"p99 under {args.clients} clients < 1 s": batched["concurrent"]["p99_ms"] < 1000
                                                 and batched["concurrent"]["errors"] == 0,
  }
  print(f"\nmachine: {report['machine']}; load average {report['load_before']} before, "
        f"{report['load_after']} after")
  print(f"model {report['model']}, decoder {args.decoder}, max batch {args.max_batch}, "
        f"max wait {args.max_wait_ms} ms\n")
  print("| phase | requests | errors | images/s | p50 ms | p99 ms | mean batch |")
  print("|---|---:|---:|---:|---:|---:|---:|")
  rows = [(f"burst of {args.burst}", batched.get("burst")),
          ("sequential (1 client)", batched.get("sequential")),
          (f"{args.clients} clients", batched["concurrent"])]
  if "unbatched" in report:
    rows.append((f"{args.clients} clients, --max-batch 1", report["unbatched"]["concurrent"]))
  for name, row in rows:
    if row:
      print(f"| {name} | {row['requests']} | {row['errors']} | {row['images_per_second']} | "
            f"{row['p50_ms']} | {row['p99_ms']} | {row.get('mean_batch', '')} |")
  print(f"\nbatching gain: {report['gain_vs_sequential']}x the sequential throughput"
        + (f", {report['gain_vs_unbatched']}x the --max-batch 1 server's"
           if "gain_vs_unbatched" in report else ""))
  for target, met in report["targets"].items():
    print(f"  {'met' if met else 'NOT met'}: {target}")
  if args.output:
    pathlib.Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
