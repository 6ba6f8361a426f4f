"""`crnn-jax serve`: an HTTP recognition service with dynamic batching, and a web page.

  pip install -e '.[serve]'
  crnn-jax serve [--weights NAME_OR_DIR ...] [--checkpoint WORKDIR ...] [--host 127.0.0.1]
      [--port 8080] [--decoder lm] [--max-batch 16] [--max-wait-ms 5] [--api-key KEY]

Serves the shipped default model without arguments; several --weights and --checkpoint may be
given (NAME=PATH names one), and a request picks one by name (the first is the default). Open
http://127.0.0.1:8080/ for the page, or:

  curl -F image=@word.png -F chars=true http://127.0.0.1:8080/v1/recognize

See `crnn_jax.serve.app` for the routes and `crnn_jax.serve.service` for batching and warm-up.
SIGTERM (or Ctrl-C) drains the requests in flight, then exits with status 0.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import logging
import os
import pathlib
import sys

from crnn_jax import pretrained
from crnn_jax.cli import decoder_flags
from crnn_jax.data import preprocess
from crnn_jax.decoding.decoder import DECODERS

API_KEY_ENV = "CRNN_JAX_API_KEY"
# The serve extra's modules (python-multipart is `python_multipart`, `multipart` before 0.0.13).
SERVE_MODULES = ("starlette", "uvicorn", "prometheus_client", "python_multipart|multipart")


def register(subparsers) -> None:
  """Adds the `serve` subcommand."""
  sv = subparsers.add_parser("serve", help="serve models over HTTP (needs the serve extra)")
  sv.add_argument("--weights", action="append", default=[], metavar="[NAME=]NAME_OR_DIR",
                  help="serve shipped weights "
                  f"({', '.join(pretrained.available()) or 'none installed'}) or a weights "
                  "directory; repeat for several (default, with no --checkpoint either: "
                  f"{pretrained.DEFAULT_MODEL})")
  sv.add_argument("--checkpoint", action="append", default=[], metavar="[NAME=]WORKDIR",
                  help="serve a training workdir's checkpoint; repeatable")
  sv.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  sv.add_argument("--host", default="127.0.0.1",
                  help="address to listen on (0.0.0.0 listens on every interface)")
  sv.add_argument("--port", type=int, default=8080, help="port to listen on")
  decoder_flags.add_arguments(sv, multiple=False, image_lexicons=False)
  sv.add_argument("--decoders", default=",".join(DECODERS),
                  help="the decoders requests may pick, separated by commas (--decoder is the "
                  "default of requests that name none; each decoder kind, greedy or the "
                  "others, has its own compiled programs)")
  sv.add_argument("--max-batch", type=int, default=16,
                  help="most images per model call (batches are cut at powers of two)")
  sv.add_argument("--max-wait-ms", type=float, default=5.0,
                  help="how long the oldest waiting image waits for others to join its batch")
  sv.add_argument("--max-queue", type=int, default=256,
                  help="most images waiting for the model; past it requests get 503")
  sv.add_argument("--max-images", type=int, default=64, help="images per request")
  sv.add_argument("--max-body-mb", type=float, default=20.0, help="request body size limit")
  sv.add_argument("--max-pixels", type=int, default=25_000_000,
                  help="pixels (width x height) of one image, checked before decoding it")
  sv.add_argument("--max-width", type=int, default=preprocess.DEFAULT_MAX_WIDTH,
                  help="keep-ratio models: widest input in pixels; wider images are squeezed")
  sv.add_argument("--warmup-max-width", type=int, default=512,
                  help="the warm-up compiles the batch shapes of padded widths up to this "
                  "(16:1 at height 32; wider inputs compile when first sent); 0: no warm-up, "
                  "-1: every width up to --max-width")
  sv.add_argument("--api-key", default=None,
                  help=f"require 'Authorization: Bearer KEY' on /v1/* and /metrics (default: "
                  f"${API_KEY_ENV} if set, else no key)")
  sv.add_argument("--drain-timeout", type=float, default=30.0,
                  help="on SIGTERM, seconds to wait for the requests in flight")
  sv.add_argument("--no-access-log", action="store_true", help="no line per request")
  sv.set_defaults(func=run)


def model_specs(args) -> list[tuple[str, str, str]]:
  """(name, 'weights' or 'checkpoint', path) of each model to serve, in order.

  Raises:
    ValueError: a name given twice.
  """
  specs = []
  for kind in ("weights", "checkpoint"):
    for value in getattr(args, kind):
      name, sep, path = value.partition("=")
      if not sep:
        path = value
        name = pathlib.Path(value.rstrip("/")).name or value
      specs.append((name, kind, path))
  if not specs:
    specs = [(pretrained.DEFAULT_MODEL, "weights", pretrained.DEFAULT_MODEL)]
  names = [name for name, _, _ in specs]
  for name in names:
    if names.count(name) > 1:
      raise ValueError(f"two models named {name!r}: name them with NAME=PATH")
  return specs


def _configure_logging(access_log: bool) -> None:
  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
  for name in ("crnn_jax.serve", "crnn_jax.serve.access"):
    log = logging.getLogger(name)
    log.handlers = [handler] if name == "crnn_jax.serve" else []
    log.setLevel(logging.INFO)
  logging.getLogger("crnn_jax.serve").propagate = False
  access = logging.getLogger("crnn_jax.serve.access")
  access.disabled = not access_log


def run(args) -> int:
  """The `crnn-jax serve` command."""
  missing = [names.split("|")[0] for names in SERVE_MODULES
             if not any(importlib.util.find_spec(name) for name in names.split("|"))]
  if missing:
    print(f"error: crnn-jax serve needs the serve extra (pip install 'crnn-jax[serve]'); "
          f"missing: {', '.join(missing)}", file=sys.stderr)
    return 2
  # pylint: disable=import-outside-toplevel
  from crnn_jax import inference
  from crnn_jax.decoding import decoder as decoder_lib
  from crnn_jax.serve import app as app_lib
  from crnn_jax.serve import service as service_lib
  # pylint: enable=import-outside-toplevel

  if args.decoder == "lexicon" and not args.lexicon:
    raise ValueError("--decoder lexicon needs --lexicon FILE")
  offered = [name.strip() for name in args.decoders.split(",") if name.strip()]
  limits = service_lib.Limits(max_images=args.max_images,
                              max_body_bytes=int(args.max_body_mb * 1024 * 1024),
                              max_pixels=args.max_pixels)
  batching = service_lib.Batching(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                                  max_queue=args.max_queue)
  make_decoder = functools.partial(decoder_flags.decoder_from_args, args)
  models = []
  for name, kind, path in model_specs(args):
    kwargs = dict(decoder="greedy", max_width=args.max_width)
    if kind == "weights":
      recognizer = inference.Recognizer.from_pretrained(path, **kwargs)
    else:
      recognizer = inference.Recognizer.from_checkpoint(path, args.step, **kwargs)
    default = args.decoder or decoder_lib.default_name(recognizer.charset)
    if default not in offered and not args.decoder:
      default = offered[0] if offered else default
    models.append(service_lib.build_model(
        name, recognizer, make_decoder=make_decoder, default_decoder=default,
        decoder_names=offered, source=f"{kind} {path}"))
  warmup_width = None if args.warmup_max_width < 0 else args.warmup_max_width
  service = service_lib.Service(models, batching=batching, limits=limits,
                                warmup_max_width=warmup_width)
  api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV)
  app = app_lib.create_app(service, api_key=api_key)
  _configure_logging(not args.no_access_log)
  for line in service_lib.describe_models(service.models):
    print(f"model {line}", file=sys.stderr)
  host = f"[{args.host}]" if ":" in args.host else args.host
  print(f"serving on http://{host}:{args.port}/ ({len(service.programs)} programs to warm up, "
        f"GET /readyz says when; API key {'required' if api_key else 'off'})",
        file=sys.stderr, flush=True)
  log_level = "info" if args.verbosity in ("info", "debug") else "warning"
  return app_lib.run_server(app, service, host=args.host, port=args.port,
                            drain_timeout=args.drain_timeout, log_level=log_level)
