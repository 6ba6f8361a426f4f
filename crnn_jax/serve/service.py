"""What the HTTP service does behind its routes: models, uploads, batches and the warm-up.

`Service` holds the served models (`ServedModel`: a `Recognizer` and the decoders a request may
pick), checks and preprocesses uploaded images (`prepare`: `inference.load_image` on the bytes,
then `Recognizer.prepare`, exactly what `crnn-jax predict` does with a file), and reads them
through a `batcher.DynamicBatcher`: images of concurrent requests that ask for the same model
and decoder run in one `Recognizer.recognize_preprocessed` call.

Compiled programs. XLA compiles one program per batch shape: rows (a few sizes up to `max_batch`,
see `batch_sizes`) times the padded width (the input width rounded up to the recognizer's
`width_step`), for the greedy program and for the log-probability program of the other
decoders. `warm_up` compiles each of them once at start, in a background
thread; `ready` turns true when it is done (`GET /readyz`). Requests are served meanwhile,
compiling what they need. With the persistent compilation cache (on by default, see
`inference.enable_compilation_cache`) a restart loads the programs from disk.

Every input error is a `RequestError` with an HTTP status and a message naming the image.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import re
import threading
import time
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np

from crnn_jax import inference
from crnn_jax.decoding import decoder as decoder_lib
from crnn_jax.serve import batcher as batcher_lib

logger = logging.getLogger("crnn_jax.serve")


@dataclasses.dataclass(frozen=True)
class Limits:
  """What one request may send.

  Attributes:
    max_images: images per request.
    max_body_bytes: bytes of the request body.
    max_pixels: pixels (width x height) of one image, checked before it is decoded.
    max_lexicon_words: words of a request's lexicon.
  """

  max_images: int = 64
  max_body_bytes: int = 20 * 1024 * 1024
  max_pixels: int = 25_000_000
  max_lexicon_words: int = 10_000


@dataclasses.dataclass(frozen=True)
class Batching:
  """How images of concurrent requests are gathered (see `batcher.DynamicBatcher`).

  Attributes:
    max_batch: most images per model call.
    max_wait_ms: how long the oldest waiting image waits for others.
    max_queue: most images waiting; past it requests get 503.
  """

  max_batch: int = 16
  max_wait_ms: float = 5.0
  max_queue: int = 256


class RequestError(ValueError):
  """A request the service refuses: an HTTP status (4xx or 503) and a message.

  Attributes:
    status: the HTTP status.
    image: index of the image at fault, if one is.
    reason: a short machine-readable reason (e.g. 'empty', 'unknown_model').
  """

  def __init__(self, status: int, message: str, *, image: int | None = None,
               reason: str = "bad_request"):
    super().__init__(message)
    self.status = status
    self.image = image
    self.reason = reason


@dataclasses.dataclass
class ServedModel:
  """A model the service reads with.

  Attributes:
    name: what requests call it.
    recognizer: its `Recognizer`.
    decoders: the decoders a request may pick, by name.
    default_decoder: the one used when a request names none.
    source: where it was loaded from (for /v1/models).
  """

  name: str
  recognizer: inference.Recognizer
  decoders: dict[str, decoder_lib.Decoder]
  default_decoder: str
  source: str = ""

  def describe(self) -> dict[str, Any]:
    """The model as /v1/models lists it."""
    decoders = [{"name": name, "label": d.label,
                 "needs_lexicon": name == "lexicon" and d.lexicon is None}
                for name, d in self.decoders.items()]
    recognizer = self.recognizer
    return {"name": self.name, "source": self.source, "decoders": decoders,
            "default_decoder": self.default_decoder, "charset": recognizer.charset.chars,
            "height": recognizer.preprocessing.height,
            "fixed_width": recognizer.preprocessing.fixed_width,
            "max_width": recognizer.preprocessing.max_width}


def build_model(name: str, recognizer: inference.Recognizer, *,
                make_decoder: Callable[[Any, str], decoder_lib.Decoder] | None = None,
                default_decoder: str | None = None,
                decoder_names: Sequence[str] = decoder_lib.DECODERS,
                source: str = "") -> ServedModel:
  """A ServedModel offering the decoders `decoder_names` (default: all of
  `decoding.decoder.DECODERS`).

  Args:
    name: the model's name in requests.
    recognizer: its recognizer.
    make_decoder: `(charset, decoder name) -> Decoder` (e.g. configured by command-line flags,
      `cli.decoder_flags.decoder_from_args`); default: each decoder's defaults (the lexicon
      decoder then reads per-request word lists only).
    default_decoder: the decoder of requests that name none (default: the recognizer's own,
      else the first of decoder_names).
    decoder_names: the decoders requests may pick.
    source: where the model came from.

  Raises:
    ValueError: an unknown decoder name, or a default decoder not offered.
  """
  for decoder_name in decoder_names:
    if decoder_name not in decoder_lib.DECODERS:
      raise ValueError(f"unknown decoder {decoder_name!r}; decoders: "
                       f"{', '.join(decoder_lib.DECODERS)}")
  if not default_decoder:
    default_decoder = (recognizer.decoder.name if recognizer.decoder.name in decoder_names
                       else decoder_names[0])
  if default_decoder not in decoder_names:
    raise ValueError(f"the default decoder {default_decoder!r} is not among the decoders "
                     f"offered ({', '.join(decoder_names)})")
  decoders = {}
  for decoder_name in dict.fromkeys(decoder_names):
    if make_decoder is not None:
      decoders[decoder_name] = make_decoder(recognizer.charset, decoder_name)
    elif decoder_name == recognizer.decoder.name:
      decoders[decoder_name] = recognizer.decoder
    else:
      decoders[decoder_name] = decoder_lib.build_decoder(recognizer.charset, decoder_name)
  return ServedModel(name, recognizer, decoders, default_decoder, source)


@dataclasses.dataclass(frozen=True)
class Job:
  """One preprocessed image waiting for the model.

  Attributes:
    array: float32 `[height, W]` model input.
    size: the upright input image's (height, width).
    lexicon: the request's word list (lexicon decoder), else None.
  """

  array: np.ndarray
  size: tuple[int, int]
  lexicon: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class WarmupProgram:
  """One compiled program: a model's greedy or log-probability function at one batch shape."""

  model: str
  kind: str  # 'greedy' or 'log_probs'
  rows: int
  width: int


# A batch of n images runs padded to the next allowed size s only when n >= 0.75 s; the
# Recognizer pads a batch to the next power of two, which is then s itself.
MIN_FILL = 0.75


def batch_sizes(max_batch: int) -> list[int]:
  """The row counts the service compiles and runs: powers of 4 below `max_batch`, and the
  largest power of two not above it (16: 1, 4, 16; 32: 1, 4, 16, 32; 8: 1, 4, 8).

  Each is a program per padded width, so there are few of them. Images waiting run padded to
  one of them when they fill at least MIN_FILL of it (3 as 4 rows, 14 as 16), else they are
  cut at the largest one they fill (9: 4, 4, 1): on a CPU an extra call costs a few
  milliseconds, a padding row as much as an image.
  """
  top = 1 << (max(1, max_batch).bit_length() - 1)
  return sorted({4 ** k for k in range(16) if 4 ** k < top} | {top})


def parse_lexicon(value: Any, limit: int) -> tuple[str, ...]:
  """A request's `lexicon`: a string of words (separated by white space or commas) or a list
  of words. Raises RequestError."""
  if isinstance(value, str):
    words = [w for w in re.split(r"[,\s]+", value) if w]
  elif isinstance(value, (list, tuple)) and all(isinstance(w, str) for w in value):
    words = [w.strip() for w in value if w.strip()]
  else:
    raise RequestError(400, "lexicon must be a string of words or a list of strings",
                       reason="bad_lexicon")
  words = list(dict.fromkeys(words))
  if not words:
    raise RequestError(400, "lexicon is empty", reason="bad_lexicon")
  if len(words) > limit:
    raise RequestError(413, f"lexicon has {len(words)} words, at most {limit} are allowed",
                       reason="bad_lexicon")
  if max(len(w) for w in words) > 100:
    raise RequestError(400, "lexicon words are at most 100 characters long",
                       reason="bad_lexicon")
  return tuple(words)


class Service:
  """The served models and the batcher that runs them.

  Attributes:
    models: the ServedModels by name (the first is the default).
    limits: per-request limits.
    batching: the batching bounds.
    batcher: the DynamicBatcher.
    programs: the programs the warm-up compiles.
    warmed: how many of them are compiled.
  """

  def __init__(self, models: Sequence[ServedModel], *, batching: Batching = Batching(),
               limits: Limits = Limits(), warmup_max_width: int | None = None):
    """Sets up the service (call `start`).

    Args:
      models: the models; names must be unique; the first is the default.
      batching: batching bounds.
      limits: request limits.
      warmup_max_width: the warm-up compiles padded widths up to this (None: up to each
        recognizer's max_width; 0: no warm-up, `ready` at once).

    Raises:
      ValueError: no models, or a name given twice, or limits that do not fit the queue.
    """
    if not models:
      raise ValueError("no models to serve")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
      raise ValueError(f"model names must be unique, got {names}")
    if limits.max_images > batching.max_queue:
      raise ValueError(f"max_images ({limits.max_images}) must not exceed the queue "
                       f"({batching.max_queue})")
    self.models = {m.name: m for m in models}
    self.default_model = names[0]
    self.limits = limits
    self.batching = batching
    sizes = batch_sizes(batching.max_batch)
    self.batcher = batcher_lib.DynamicBatcher(
        self._run_batch, max_batch=batching.max_batch, max_wait_ms=batching.max_wait_ms,
        max_queue=batching.max_queue, batch_sizes=sizes, min_fill=MIN_FILL,
        on_batch=self._batch_done,
        name="crnn-serve-batcher")
    self.batch_listeners: list[batcher_lib.OnBatch] = []  # (key, size, seconds), e.g. metrics.
    self.programs = (self._warmup_programs(sizes, warmup_max_width)
                     if warmup_max_width != 0 else [])
    self.warmed = 0
    self.warmup_seconds = 0.0
    self._ready = threading.Event()
    self._draining = threading.Event()
    self._warmup_thread: threading.Thread | None = None

  # Life cycle.

  def start(self, *, background: bool = True) -> None:
    """Starts the batcher and the warm-up (in a thread, unless background=False)."""
    self.batcher.start()
    if background:
      self._warmup_thread = threading.Thread(target=self.warm_up, name="crnn-serve-warmup",
                                             daemon=True)
      self._warmup_thread.start()
    else:
      self.warm_up()

  def drain(self) -> None:
    """Marks the service as shutting down (`ready` turns false); requests in flight go on."""
    self._draining.set()

  def close(self, timeout: float | None = None) -> None:
    """Runs the queued images and stops the batcher."""
    self._draining.set()
    self.batcher.close(timeout)

  @property
  def ready(self) -> bool:
    """Warmed up, and not shutting down."""
    return self._ready.is_set() and not self._draining.is_set()

  @property
  def draining(self) -> bool:
    return self._draining.is_set()

  # Warm-up.

  def _warmup_programs(self, sizes: Sequence[int], max_width: int | None
                       ) -> list[WarmupProgram]:
    programs = []
    for model in self.models.values():
      backend, preprocessing = model.recognizer.backend, model.recognizer.preprocessing
      if not backend.compiles:
        continue  # onnxruntime compiles nothing.
      step = backend.width_step
      if preprocessing.fixed_width:
        widths = [-(-preprocessing.fixed_width // step) * step]
      else:
        top = min(preprocessing.max_width, max_width or preprocessing.max_width)
        widths = list(range(step, -(-top // step) * step + 1, step))
      kinds = sorted({"greedy" if name == "greedy" else "log_probs"
                      for name in model.decoders})
      # Narrow shapes first: the common words are compiled soonest.
      programs += [WarmupProgram(model.name, kind, rows, width)
                   for width in widths for rows in sizes for kind in kinds]
    return programs

  def warm_up(self) -> None:
    """Compiles (and runs once) every program of `programs`; then `ready` turns true."""
    start = time.monotonic()
    for program in self.programs:
      if self._draining.is_set():
        return
      recognizer = self.models[program.model].recognizer
      images = np.zeros((program.rows, recognizer.preprocessing.height, program.width, 1),
                        np.float32)
      widths = np.full(program.rows, program.width, np.int32)
      if program.kind == "greedy":
        recognizer.backend.best_paths(images, widths)
      else:
        recognizer.backend.log_probs(images, widths)
      self.warmed += 1
    self.warmup_seconds = time.monotonic() - start
    if self.programs:
      logger.info("warm-up: %d programs compiled in %.1f s", len(self.programs),
                  self.warmup_seconds)
    self._ready.set()

  # Requests.

  def model(self, name: str | None) -> ServedModel:
    """The model a request names (default: the first). Raises RequestError."""
    if name in (None, ""):
      return self.models[self.default_model]
    if not isinstance(name, str) or name not in self.models:
      raise RequestError(400, f"unknown model {name!r}; this service has "
                         f"{', '.join(self.models)}", reason="unknown_model")
    return self.models[name]

  def decoder(self, model: ServedModel, name: str | None,
              lexicon: tuple[str, ...] | None) -> str:
    """The decoder name a request asks for, checked. Raises RequestError."""
    if name in (None, ""):
      name = model.default_decoder
    if not isinstance(name, str) or name not in model.decoders:
      raise RequestError(400, f"unknown decoder {name!r}; model {model.name} has "
                         f"{', '.join(model.decoders)}", reason="unknown_decoder")
    if name == "lexicon":
      if lexicon is None and model.decoders[name].lexicon is None:
        raise RequestError(400, "decoder lexicon needs a word list: send field 'lexicon'",
                           reason="missing_lexicon")
      if lexicon is not None:
        charset = model.recognizer.charset
        if not any(charset.can_encode(charset.normalize(w)) for w in lexicon):
          raise RequestError(400, f"no word of the lexicon can be written with model "
                             f"{model.name}'s characters", reason="bad_lexicon")
    return name

  def prepare(self, model: ServedModel, uploads: Sequence[tuple[str, bytes]],
              lexicon: tuple[str, ...] | None = None) -> list[Job]:
    """Decodes and preprocesses uploaded images as `predict` reads files.

    Args:
      model: the model that will read them (its input height and resizing).
      uploads: (label naming the image in errors, encoded bytes) per image.
      lexicon: the request's word list.

    Raises:
      RequestError: naming the first image that cannot be read (400; 413 over the pixel
        limit).
    """
    jobs = []
    for index, (label, data) in enumerate(uploads):
      try:
        gray = inference.load_image(data, name=label, max_pixels=self.limits.max_pixels)
        array, size = model.recognizer.prepare(gray)
      except inference.ImageError as e:
        status = 413 if e.reason == "too_many_pixels" else 400
        raise RequestError(status, str(e), image=index, reason=e.reason) from None
      except ValueError as e:
        raise RequestError(400, f"{label}: cannot read image ({e})", image=index,
                           reason="not_an_image") from None
      jobs.append(Job(array, tuple(int(s) for s in size), lexicon))
    return jobs

  def submit(self, model: ServedModel, decoder: str, jobs: Sequence[Job]
             ) -> list[concurrent.futures.Future]:
    """Queues the jobs; a future per job gives its `inference.Prediction`.

    Raises:
      RequestError: 503 when the queue is full or the service is shutting down.
    """
    try:
      return self.batcher.submit((model.name, decoder), list(jobs))
    except batcher_lib.QueueFull as e:
      raise RequestError(503, f"busy: {e}; retry later", reason="busy") from None

  def _batch_done(self, key: Hashable, size: int, seconds: float) -> None:
    for listener in self.batch_listeners:
      listener(key, size, seconds)

  def _run_batch(self, key: Hashable, jobs: list[Job]) -> list[inference.Prediction]:
    model_name, decoder_name = key
    model = self.models[model_name]
    decoder = model.decoders[decoder_name]
    lexicons = [job.lexicon for job in jobs] if decoder_name == "lexicon" else None
    return model.recognizer.recognize_preprocessed(
        [job.array for job in jobs], self.batching.max_batch,
        input_sizes=[job.size for job in jobs], lexicons=lexicons, decoder=decoder)

  def describe(self) -> dict[str, Any]:
    """The models and limits, as /v1/models answers."""
    return {"default_model": self.default_model,
            "models": [m.describe() for m in self.models.values()],
            "limits": dataclasses.asdict(self.limits),
            "batching": dataclasses.asdict(self.batching)}


def prediction_json(prediction: inference.Prediction, chars: bool) -> dict[str, Any]:
  """One result of /v1/recognize: text and confidence, and with `chars` the per-character
  spans (input-image columns), the frame path and the input size."""
  out: dict[str, Any] = {"text": prediction.text,
                         "confidence": round(float(prediction.confidence), 6)}
  if prediction.too_wide:
    out["too_wide"] = True
  if chars:
    out["chars"] = [{"char": s.char, "x0": round(s.x0, 2), "x1": round(s.x1, 2),
                     "first_frame": s.first_frame, "last_frame": s.last_frame}
                    for s in prediction.spans]
    out["path"] = prediction.path
    out["width"] = prediction.input_width
    out["model_width"] = prediction.model_width
  return out


def describe_models(models: Mapping[str, ServedModel]) -> list[str]:
  """One line per model for the start-up log."""
  return [f"{m.name}: {m.source or 'in memory'}, {len(m.recognizer.charset)} characters, "
          f"decoders {', '.join(m.decoders)} (default {m.default_decoder})"
          for m in models.values()]
