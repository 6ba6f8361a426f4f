"""The HTTP routes of `crnn-jax serve` (Starlette), and the uvicorn server that runs them.

  GET  /               the web page (page.html: drop, paste or pick an image; offline)
  POST /v1/recognize   read images: multipart field `image` (repeatable) or JSON
                       {"images": [base64, ...]}; optional `model`, `decoder`, `chars`, `lexicon`
  GET  /v1/models      the models, their decoders and the request limits
  GET  /healthz        the process answers
  GET  /readyz         200 once the warm-up has compiled (503 before, and while shutting down)
  GET  /metrics        Prometheus text (see `metrics.py`)

/v1/recognize answers `{"model", "decoder", "results": [{"text", "confidence"[, "chars",
"path", "width", "model_width"]}]}`, one result per image in the order sent. The optional fields
come as form fields (multipart), JSON keys or query parameters. Every refusal is JSON
`{"error": message, "reason": ...[, "image": index]}` with a 4xx status naming the image at
fault, or 503 with Retry-After when the queue is full; malformed input never gets a 500.

With an API key (`create_app(..., api_key=...)`), /v1/* and /metrics need the header
`Authorization: Bearer KEY`, compared in constant time (`hmac.compare_digest`); the page, /healthz
and /readyz stay open (the page asks for the key when the service wants one).

Each request writes one access-log line to the `crnn_jax.serve.access` logger: client, request
line, status, response bytes and milliseconds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import importlib.resources
import json
import logging
import re
import signal
import time
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from crnn_jax.serve import metrics as metrics_lib
from crnn_jax.serve import service as service_lib
from crnn_jax.serve.service import RequestError

access_logger = logging.getLogger("crnn_jax.serve.access")
logger = logging.getLogger("crnn_jax.serve")

FIELDS = ("image", "images", "model", "decoder", "chars", "lexicon")
ROUTES = ("/", "/v1/recognize", "/v1/models", "/healthz", "/readyz", "/metrics")
RETRY_AFTER_SECONDS = 1
# The page loads nothing from elsewhere: everything is inline, images are local blobs.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
                               "style-src 'unsafe-inline'; img-src 'self' blob: data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def page_html() -> str:
  """The web page, shipped as package data (crnn_jax/serve/page.html)."""
  return importlib.resources.files("crnn_jax.serve").joinpath("page.html").read_text("utf-8")


def error_response(error: RequestError) -> JSONResponse:
  body: dict[str, Any] = {"error": str(error), "reason": error.reason}
  if error.image is not None:
    body["image"] = error.image
  headers = {}
  if error.status == 503:
    headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
  if error.status == 401:
    headers["WWW-Authenticate"] = "Bearer"
  return JSONResponse(body, status_code=error.status, headers=headers)


class AccessLog:
  """ASGI middleware: one access-log line and the request metrics per HTTP request."""

  def __init__(self, app, metrics: metrics_lib.Metrics):
    self.app = app
    self.metrics = metrics

  async def __call__(self, scope, receive, send):
    if scope["type"] != "http":
      return await self.app(scope, receive, send)
    start = time.perf_counter()
    status, size = [500], [0]

    async def send_and_count(message):
      if message["type"] == "http.response.start":
        status[0] = message["status"]
      elif message["type"] == "http.response.body":
        size[0] += len(message.get("body", b""))
      await send(message)

    self.metrics.in_flight.inc()
    try:
      await self.app(scope, receive, send_and_count)
    finally:
      self.metrics.in_flight.dec()
      seconds = time.perf_counter() - start
      path = scope.get("path", "")
      route = path if path in ROUTES else "other"
      method = scope.get("method", "")
      self.metrics.requests.labels(route, method, str(status[0])).inc()
      self.metrics.latency.labels(route).observe(seconds)
      client = scope.get("client") or ("-", 0)
      query = scope.get("query_string", b"").decode("latin-1")
      target = path + (f"?{query}" if query else "")
      access_logger.info('%s:%s "%s %s HTTP/%s" %d %dB %.1fms', client[0], client[1], method,
                         target[:200], scope.get("http_version", "1.1"), status[0], size[0],
                         seconds * 1000)


def _bool_field(value: Any) -> bool:
  if isinstance(value, bool):
    return value
  if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
    return True
  if isinstance(value, str) and value.strip().lower() in ("", "0", "false", "no", "off"):
    return False
  raise RequestError(400, f"chars must be true or false, got {value!r}", reason="bad_field")


_DATA_URL = re.compile(r"^data:[^,]{0,100};base64,")


def _decode_base64(value: Any, index: int) -> bytes:
  if not isinstance(value, str):
    raise RequestError(400, f"images[{index}]: expected a base64 string, got "
                       f"{type(value).__name__}", image=index, reason="bad_base64")
  text = re.sub(r"\s+", "", _DATA_URL.sub("", value, count=1))
  try:
    return base64.b64decode(text, validate=True)
  except (binascii.Error, ValueError):
    raise RequestError(400, f"images[{index}]: not valid base64", image=index,
                       reason="bad_base64") from None


class Handlers:
  """The route handlers, bound to a service."""

  def __init__(self, service: service_lib.Service, metrics: metrics_lib.Metrics,
               api_key: str | None):
    self.service = service
    self.metrics = metrics
    self.api_key = api_key or None
    self.page = page_html()

  def check_key(self, request: Request) -> None:
    """Raises RequestError(401) unless the request carries the API key (if one is set)."""
    if self.api_key is None:
      return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode("utf-8"), self.api_key.encode("utf-8")):
      raise RequestError(401, "missing or wrong API key: send 'Authorization: Bearer KEY'",
                         reason="unauthorized")

  async def read_body(self, request: Request) -> bytes:
    """The request body, refused (413) past the size limit before it is all read."""
    limit = self.service.limits.max_body_bytes
    too_large = RequestError(413, f"request body over the limit of {limit:,} bytes",
                             reason="body_too_large")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
      raise too_large
    chunks, total = [], 0
    async for chunk in request.stream():
      total += len(chunk)
      if total > limit:
        raise too_large
      chunks.append(chunk)
    return b"".join(chunks)

  async def parse_multipart(self, request: Request, body: bytes
                            ) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """(fields, [(label, bytes)] of the `image` parts) of a multipart body."""

    async def replay():
      return {"type": "http.request", "body": body, "more_body": False}

    max_images = self.service.limits.max_images
    try:
      form = await Request(request.scope, replay).form(
          max_files=max_images + 1, max_fields=len(FIELDS) + 1000,
          max_part_size=self.service.limits.max_body_bytes)
    except (HTTPException, MultiPartException) as e:
      detail = getattr(e, "detail", None) or getattr(e, "message", "") or str(e)
      if "Too many files" in detail:
        raise RequestError(413, f"too many images: at most {max_images} per request",
                           reason="too_many_images") from None
      raise RequestError(400, f"malformed multipart body: {detail}",
                         reason="bad_multipart") from None
    fields: dict[str, Any] = {}
    uploads: list[tuple[str, bytes]] = []
    lexicon_parts = []
    try:
      for key, value in form.multi_items():
        if key == "image":
          index = len(uploads)
          if not isinstance(value, UploadFile):
            raise RequestError(400, f"image {index}: expected a file upload, got a text field",
                               image=index, reason="not_a_file")
          name = (value.filename or "")[:100]
          label = f"image {index} ({name!r})" if name else f"image {index}"
          uploads.append((label, await value.read()))
        elif key == "lexicon":
          lexicon_parts.append(value if isinstance(value, str) else "")
        elif key in FIELDS and key != "images":
          if isinstance(value, UploadFile):
            raise RequestError(400, f"field {key!r} must be text, not a file",
                               reason="bad_field")
          fields[key] = value
        else:
          raise RequestError(400, f"unknown field {key!r}; fields: image (files), model, "
                             "decoder, chars, lexicon", reason="unknown_field")
    finally:
      await form.close()
    if lexicon_parts:
      fields["lexicon"] = " ".join(lexicon_parts)
    return fields, uploads

  @staticmethod
  def parse_json(body: bytes) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """(fields, [(label, bytes)]) of a JSON body {"images": [base64, ...], ...}."""
    try:
      data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
      raise RequestError(400, f"malformed JSON: {e}", reason="bad_json") from None
    if not isinstance(data, dict):
      raise RequestError(400, "the JSON body must be an object {\"images\": [...]}",
                         reason="bad_json")
    unknown = [k for k in data if k not in FIELDS or k == "image"]
    if unknown:
      raise RequestError(400, f"unknown field {unknown[0]!r}; fields: images (base64 strings), "
                         "model, decoder, chars, lexicon", reason="unknown_field")
    images = data.pop("images", [])
    if not isinstance(images, list):
      raise RequestError(400, "images must be a list of base64 strings", reason="bad_json")
    return data, [(f"images[{i}]", _decode_base64(v, i)) for i, v in enumerate(images)]

  async def recognize(self, request: Request) -> Response:
    try:
      self.check_key(request)
      if self.service.draining:
        raise RequestError(503, "the service is shutting down", reason="shutting_down")
      body = await self.read_body(request)
      content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
      if content_type == "multipart/form-data":
        fields, uploads = await self.parse_multipart(request, body)
      elif content_type in ("application/json", ""):
        fields, uploads = self.parse_json(body) if body else ({}, [])
      else:
        raise RequestError(415, f"unsupported content type {content_type!r}: send "
                           "multipart/form-data or application/json", reason="bad_content_type")
      for key in ("model", "decoder", "chars", "lexicon"):
        if key not in fields and key in request.query_params:
          fields[key] = request.query_params[key]
      limits = self.service.limits
      if not uploads:
        raise RequestError(400, "no image: send multipart field 'image' or JSON "
                           "{\"images\": [base64, ...]}", reason="no_image")
      if len(uploads) > limits.max_images:
        raise RequestError(413, f"too many images: {len(uploads)}, at most "
                           f"{limits.max_images} per request", reason="too_many_images")
      model = self.service.model(fields.get("model"))
      lexicon = (service_lib.parse_lexicon(fields["lexicon"], limits.max_lexicon_words)
                 if fields.get("lexicon") not in (None, "") else None)
      decoder = self.service.decoder(model, fields.get("decoder"), lexicon)
      chars = _bool_field(fields.get("chars", False))
      jobs = await run_in_threadpool(self.service.prepare, model, uploads,
                                     lexicon if decoder == "lexicon" else None)
      futures = self.service.submit(model, decoder, jobs)
      predictions = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
    except RequestError as e:
      return error_response(e)
    self.metrics.images.labels(model.name, decoder).inc(len(predictions))
    return JSONResponse({"model": model.name, "decoder": decoder,
                         "results": [service_lib.prediction_json(p, chars)
                                     for p in predictions]})

  async def models(self, request: Request) -> Response:
    try:
      self.check_key(request)
    except RequestError as e:
      return error_response(e)
    return JSONResponse(self.service.describe())

  async def index(self, request: Request) -> Response:
    del request
    return HTMLResponse(self.page, headers=PAGE_HEADERS)

  async def healthz(self, request: Request) -> Response:
    del request
    return JSONResponse({"status": "ok"})

  async def readyz(self, request: Request) -> Response:
    del request
    service = self.service
    body = {"ready": service.ready, "warmed": service.warmed, "programs": len(service.programs),
            "draining": service.draining}
    return JSONResponse(body, status_code=200 if service.ready else 503)

  async def metrics_text(self, request: Request) -> Response:
    try:
      self.check_key(request)
    except RequestError as e:
      return error_response(e)
    return Response(self.metrics.render(), media_type=metrics_lib.CONTENT_TYPE)


async def _http_error(request: Request, exc: HTTPException) -> Response:
  del request
  return JSONResponse({"error": str(exc.detail), "reason": "http"},
                      status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _server_error(request: Request, exc: Exception) -> Response:
  del request
  logger.error("internal error: %s: %s", type(exc).__name__, exc)
  return JSONResponse({"error": "internal error", "reason": "internal"}, status_code=500)


def create_app(service: service_lib.Service, *, api_key: str | None = None,
               metrics: metrics_lib.Metrics | None = None) -> Starlette:
  """The Starlette app of `service`; its lifespan starts the service (batcher and warm-up)
  and closes it after the last request.

  Args:
    service: the models and batcher.
    api_key: if set, /v1/* and /metrics need `Authorization: Bearer KEY`.
    metrics: the metrics (default: a new registry).
  """
  metrics = metrics or metrics_lib.Metrics()
  metrics.bind(service)
  handlers = Handlers(service, metrics, api_key)

  @contextlib.asynccontextmanager
  async def lifespan(app):
    del app
    service.start()
    try:
      yield
    finally:
      await run_in_threadpool(service.close)

  routes = [Route("/", handlers.index, methods=["GET"]),
            Route("/v1/recognize", handlers.recognize, methods=["POST"]),
            Route("/v1/models", handlers.models, methods=["GET"]),
            Route("/healthz", handlers.healthz, methods=["GET"]),
            Route("/readyz", handlers.readyz, methods=["GET"]),
            Route("/metrics", handlers.metrics_text, methods=["GET"])]
  app = Starlette(routes=routes, lifespan=lifespan,
                  middleware=[Middleware(AccessLog, metrics=metrics)],
                  exception_handlers={HTTPException: _http_error, Exception: _server_error})
  app.state.service = service
  app.state.metrics = metrics
  return app


class _Terminated(Exception):
  """Raised by the signal handler that uvicorn re-raises after its graceful shutdown."""


def run_server(app: Starlette, service: service_lib.Service, *, host: str = "127.0.0.1",
               port: int = 8080, drain_timeout: float = 30.0, log_level: str = "warning") -> int:
  """Runs `app` with uvicorn until SIGTERM or SIGINT, then drains: new connections are
  refused, `/readyz` answers 503, the requests in flight are answered (for at most
  `drain_timeout` seconds) and the queued images read; returns 0."""
  import uvicorn  # pylint: disable=import-outside-toplevel

  class Server(uvicorn.Server):
    """uvicorn's server, marking the service as draining when a signal arrives."""

    def handle_exit(self, sig, frame):
      service.drain()
      super().handle_exit(sig, frame)

  config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                          timeout_graceful_shutdown=max(1, int(drain_timeout)),
                          lifespan="on")
  server = Server(config)

  def stop(sig, frame):
    del sig, frame
    raise _Terminated

  # uvicorn replaces these while it runs and raises the signal again once it has shut down:
  # that ends the process here with status 0 instead of as killed by the signal.
  previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
  try:
    server.run()
  except _Terminated:
    pass
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)
  return 0 if server.started or service.draining else 1
