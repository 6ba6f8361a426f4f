"""`Recognizer`: a trained model reading images, made of parts.

  Recognizer(backend, preprocessing, decoder, calibration)

* `backend` runs the model (`backends.JaxBackend`, or `backends.OnnxBackend` for onnxruntime);
* `preprocessing` resizes images as the model was trained (`images.Preprocessing`: to height
  32 keeping their aspect ratio, or to a fixed width for models trained with
  `data.resize = 'fixed'`);
* `decoder` turns log-probabilities into text (`crnn_jax.decoding.decoder.Decoder`, made by
  `decoder.build_decoder`);
* `calibration` maps the decoder's confidence to the probability of being right (optional).

The constructors `from_pretrained`, `from_checkpoint`, `from_onnx`, `from_config` and
`from_model` build the parts from keyword arguments (see `from_model`). Images are grouped by
width and run in padded batches (the backend's `batch_shape`: XLA rounds widths up to a
multiple of `width_step`, so a stream of mixed-size images compiles only a handful of programs).

  recognizer = Recognizer.from_pretrained()      # the shipped English model (62 characters)
  recognizer = Recognizer.from_checkpoint("runs/default")            # greedy decoding
  recognizer = Recognizer.from_checkpoint("runs/default", decoder="lexicon",
                                          lexicon="words.txt")
  for p in recognizer.recognize(["word.png", pil_image, numpy_array]):
    print(p.text, p.confidence, [(s.char, s.x0, s.x1) for s in p.spans])

Character spans. Each prediction carries, per character, the first and last frame of its run in
the frame alignment (the best path for greedy decoding; for beam and lexicon decoding the most
probable alignment of the decoded text, found by Viterbi), and the matching column range of the
*input* image. Frame t of the model's output is centred on column 4t of the resized
(height-32) image and covers about columns [4t - 2, 4t + 2) (the two stride-2 poolings make
the frame step 4 pixels); a character on frames a..b thus covers resized columns
[4a - 2, 4b + 2), clipped to the image, which are scaled back to the input by
input_width / resized_width. The receptive field of a frame is much wider than 4 pixels, so the
spans locate characters roughly (to within a few pixels at height 32), they do not segment them.

Confidence. A shipped model's weights directory may hold `calibration.json`, a monotone map per
decoder from the decoder's raw confidence (a path or labelling probability) to the probability
that the reading is right, fitted on synthetic images (`crnn_jax.calibration`).
`from_pretrained` loads it, and `Prediction.confidence` is then calibrated for the decoders it
covers (with the settings they were fitted with); `Prediction.raw_confidence` is always the
decoder's own figure.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Callable, Sequence
import warnings

import numpy as np

from crnn_jax import calibration as calibration_lib
from crnn_jax import pretrained, run_files
from crnn_jax.data import preprocess
from crnn_jax.text.charset import Charset
from crnn_jax.decoding import alignment
from crnn_jax.decoding import decoder as decoder_lib
from crnn_jax.decoding import greedy
from crnn_jax.inference import backends
from crnn_jax.inference import images as images_lib
from crnn_jax.models import crnn


@dataclasses.dataclass(frozen=True)
class CharSpan:
  """Where one recognized character lies.

  Attributes:
    char: the character.
    first_frame: first output frame of its run in the frame alignment.
    last_frame: last output frame of its run.
    x0: first input-image column it covers (float, input pixels).
    x1: end (exclusive) of the input-image columns it covers.
  """

  char: str
  first_frame: int
  last_frame: int
  x0: float
  x1: float


@dataclasses.dataclass(frozen=True)
class Prediction:
  """One recognized text line.

  Attributes:
    text: the transcription.
    confidence: the estimated probability that `text` is right, when the recognizer has a
      calibration map for its decoder (`Recognizer.confidence_map`; the shipped models have
      one for greedy and lm decoding); otherwise `raw_confidence`.
    spans: per character of `text`, its frames and input columns (see the module docstring);
      empty when the text has no alignment on the frames (a lexicon word too long for them).
    path: the frame alignment as a string, one character per frame, `-` for blank, e.g.
      `a-----v--a-i-l-a-bb-l-ee--` (the best path for greedy decoding).
    input_width: width of the input image in pixels (0 if unknown).
    model_width: width of the resized image the model read.
    aspect_ratio: the input's width / height (0 if unknown).
    too_wide: the input is far wider than anything the model was trained on
      (`Recognizer.max_aspect_ratio`): it was squeezed and may read poorly or empty.
    error: why the input could not be read (`recognize(..., errors='report')`); the text is
      then empty. Empty for every image that was read.
    raw_confidence: the decoder's own confidence: greedy decoding: the probability of the best
      CTC path; beam, lm and lexicon decoding: p(text | image), the total probability of its
      alignments; 0 for an empty text (see `greedy.reading_confidence`). Defaults to
      `confidence`.
  """

  text: str
  confidence: float
  spans: tuple[CharSpan, ...] = ()
  path: str = ""
  input_width: int = 0
  model_width: int = 0
  aspect_ratio: float = 0.0
  too_wide: bool = False
  error: str = ""
  raw_confidence: float | None = None

  def __post_init__(self):
    if self.raw_confidence is None:
      object.__setattr__(self, "raw_confidence", self.confidence)


class Recognizer:
  """A trained CRNN ready to read text-line images: a backend, a preprocessing, a decoder.

  Attributes:
    backend: runs the model (`backends.Backend`: `backend.name` is 'jax' or 'onnxruntime';
      `backend.model` and `backend.variables` are the flax module and its variables, None for
      an ONNX file alone).
    preprocessing: makes the model's inputs (`images.Preprocessing`: height, max_width,
      fixed_width).
    decoder: the CTC decoder (`crnn_jax.decoding.decoder.Decoder`).
    calibration: confidence maps per decoder (`crnn_jax.calibration.Calibration`), or None.
    charset: the charset the model was trained with (the decoder's).
  """

  def __init__(self, backend: backends.Backend, preprocessing: images_lib.Preprocessing,
               decoder: decoder_lib.Decoder,
               calibration: calibration_lib.Calibration | None = None):
    """Puts the parts together.

    Args:
      backend: what runs the model.
      preprocessing: how images become its inputs.
      decoder: a decoder of the model's charset.
      calibration: confidence maps per decoder: predictions of a decoder it covers report
        calibrated confidence. Default: none (`from_pretrained` loads the weights directory's
        own).
    """
    self.backend = backend
    self.preprocessing = preprocessing
    self.decoder = decoder
    self.calibration = calibration

  @property
  def charset(self) -> Charset:
    """The model's charset (its decoder's)."""
    return self.decoder.charset

  @classmethod
  def from_model(cls, model: crnn.CRNN | None, variables: dict[str, Any] | None,
                 charset: Charset, *,
                 height: int = 32, max_width: int = preprocess.DEFAULT_MAX_WIDTH,
                 width_step: int = 32,
                 fixed_width: int | None = None,
                 decoder: decoder_lib.Decoder | str | Callable[[Charset], decoder_lib.Decoder]
                 | None = None,
                 beam_width: int | None = None,
                 lexicon: Sequence[str] | str | pathlib.Path | None = None,
                 delta: int = decoder_lib.DEFAULT_DELTA,
                 lm_weight: float | None = None,
                 length_bonus: float = decoder_lib.DEFAULT_LENGTH_BONUS,
                 compilation_cache: bool | str | pathlib.Path = True,
                 backend: str = "jax", onnx_model: Any = None,
                 threads: int = 0,
                 calibration: calibration_lib.Calibration | str | pathlib.Path | None = None
                 ) -> "Recognizer":
    """A recognizer of a model, its parts built from keyword arguments (what the other
    constructors' `**kwargs` take).

    Args:
      model: the flax CRNN (None with an `onnx_model` alone).
      variables: {'params', 'batch_stats'} (None with `model`).
      charset: its charset.
      height, max_width, fixed_width: the preprocessing (`images.Preprocessing`).
      width_step: the JAX backend rounds batch widths up to a multiple of this.
      decoder: a `Decoder`; a function `charset -> Decoder` (e.g. one configured by
        command-line flags); or a name, 'greedy', 'beam', 'lm' or 'lexicon', built by
        `decoder.build_decoder` with the following settings (default: the charset's default
        decoder, 'lm' for English charsets, else 'greedy').
      beam_width: prefixes kept by the beam and lm decoders (default: the decoder's).
      lexicon: the lexicon decoder's word list or lexicon file (optional when every call to
        `recognize` passes per-image lexicons).
      delta: the lexicon decoder's edit-distance radius.
      lm_weight, length_bonus: the lm decoder's weights (see `crnn_jax.decoding.decoder`).
      compilation_cache: True: `backends.enable_compilation_cache()` (a per-user cache
        directory); a path: that directory; False: leave JAX's settings alone.
      backend: 'jax' (XLA) or 'onnxruntime' (`backends.make_backend`). Both give the same
        predictions.
      onnx_model: with backend 'onnxruntime', a `.onnx` file of this model, its bytes or an
        `onnx_backend.OnnxModel`; default: converted from `model` and `variables` and kept in
        the compilation cache directory.
      threads: with backend 'onnxruntime', its intra-op threads (0: one per core).
      calibration: a `calibration.Calibration` or the path of a calibration.json.

    Raises:
      ValueError: an unknown backend or decoder, or an ONNX model that cannot be loaded.
    """
    if backend not in backends.BACKENDS:
      raise ValueError(f"backend must be one of {backends.BACKENDS}, got {backend!r}")
    cache = None
    if compilation_cache:
      cache = backends.enable_compilation_cache(
          None if compilation_cache is True else compilation_cache)
      if compilation_cache is not True:  # ONNX conversions go to a directory given here.
        cache = compilation_cache
    runner = backends.make_backend(backend, model, variables, height=height,
                                   width_step=width_step, onnx_model=onnx_model,
                                   threads=threads, cache_dir=cache)
    if isinstance(decoder, decoder_lib.Decoder):
      pass
    elif callable(decoder):
      decoder = decoder(charset)
    else:
      decoder = decoder_lib.build_decoder(charset, decoder, beam_width=beam_width,
                                          lexicon=lexicon, delta=delta, lm_weight=lm_weight,
                                          length_bonus=length_bonus)
    if isinstance(calibration, (str, pathlib.Path)):
      calibration = calibration_lib.Calibration.load(calibration)
    preprocessing = images_lib.Preprocessing(height=height, max_width=max_width,
                                             fixed_width=fixed_width)
    return cls(runner, preprocessing, decoder, calibration)

  @classmethod
  def from_checkpoint(cls, workdir: str | pathlib.Path, step: int | None = None,
                      **kwargs) -> "Recognizer":
    """Loads the latest (or given) checkpoint of a training workdir.

    Args:
      workdir: a training workdir (config.json and checkpoints/), e.g. one written by
        `crnn-jax import-torch`.
      step: the checkpoint step (default: the latest).
      **kwargs: the parts' settings (see `from_model`: decoder, beam_width, lexicon, delta,
        max_width, width_step, backend, ...).
    """
    loaded = run_files.load_model(workdir, step)
    return cls.from_config(loaded.config, loaded.variables, **kwargs)

  @classmethod
  def from_pretrained(cls, name_or_dir: str | pathlib.Path = pretrained.DEFAULT_MODEL,
                      **kwargs) -> "Recognizer":
    """Loads weights shipped with the package (default: `pretrained.DEFAULT_MODEL`) or a
    weights directory written by `crnn-jax export --format weights`.

    Args:
      name_or_dir: a name of `pretrained.available()` or a weights directory.
      **kwargs: the parts' settings (see `from_model`); without `calibration`, the
        directory's calibration.json when it has one (`calibration=None`: raw confidences).
    """
    loaded = run_files.load_model(weights=name_or_dir)
    if "calibration" not in kwargs:
      kwargs["calibration"] = calibration_lib.load_for(pretrained.resolve(name_or_dir))
    return cls.from_config(loaded.config, loaded.variables, **kwargs)

  @classmethod
  def from_config(cls, config, variables: dict[str, Any], **kwargs) -> "Recognizer":
    """A recognizer for `variables` of the model that the training `config` describes.

    Images are resized as in training: to config.data.fixed_width for `resize = 'fixed'`,
    keeping the aspect ratio otherwise.
    """
    if config.data.get("resize", "keep_ratio") == "fixed":
      kwargs.setdefault("fixed_width", config.data.fixed_width)
    return cls.from_model(run_files.build_module(config), variables,
                          Charset.from_config(config.text), height=config.data.height,
                          **kwargs)

  @classmethod
  def from_onnx(cls, path: str | pathlib.Path, **kwargs) -> "Recognizer":
    """Reads with an ONNX file of `crnn-jax export --format onnx` in onnxruntime alone.

    The charset, case folding, input height and resizing come from the file's metadata, and
    the confidence maps too when the file has them (exports of the shipped models).

    Args:
      path: the `.onnx` file (float32 or int8).
      **kwargs: the parts' settings (see `from_model`: decoder, threads, ...).

    Raises:
      ValueError: naming the file, when it cannot be loaded or was not written by crnn-jax.
    """
    from crnn_jax import onnx_backend  # pylint: disable=import-outside-toplevel
    onnx_model = onnx_backend.OnnxModel(path, threads=kwargs.pop("threads", 0))
    try:
      settings = onnx_backend.recognizer_settings(onnx_model.metadata)
    except ValueError as e:
      raise ValueError(f"{path}: {e}") from None
    charset = Charset(settings.pop("chars"), fold_case=settings.pop("fold_case"))
    for key, value in settings.items():
      kwargs.setdefault(key, value)
    stored = onnx_model.metadata.get("crnn_jax.calibration")
    if stored and "calibration" not in kwargs:
      try:
        kwargs["calibration"] = calibration_lib.Calibration.from_dict(
            json.loads(stored), f"{path}: crnn_jax.calibration metadata")
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}: crnn_jax.calibration metadata is not JSON: {e}") from None
    return cls.from_model(None, None, charset, backend="onnxruntime", onnx_model=onnx_model,
                          **kwargs)

  @property
  def max_aspect_ratio(self) -> float:
    """Widest input (width / height) read without a warning (`Preprocessing.max_aspect_ratio`)."""
    return self.preprocessing.max_aspect_ratio

  def confidence_map(self, decoder: decoder_lib.Decoder | None = None
                     ) -> calibration_lib.ConfidenceMap | None:
    """The calibration map applied to `decoder`'s confidences (default: the recognizer's own
    decoder), or None (raw confidences): no calibration, no map for that decoder, or other
    settings than it was fitted with."""
    if self.calibration is None:
      return None
    return self.calibration.map_for(decoder or self.decoder)

  def preprocess(self, image) -> np.ndarray:
    """A path, PIL image or array -> float32 `[32, W]` in [-1, 1]."""
    return self.preprocessing.prepare(image)[0]

  def prepare(self, image) -> tuple[np.ndarray, tuple[int, int]]:
    """(float32 `[32, W]` in [-1, 1], the input's (height, width)) of a path, an encoded
    image's bytes, a PIL image or an array (`Preprocessing.prepare`).

    Raises:
      ValueError: naming the file, for a path or bytes that cannot be read (`load_image`).
    """
    return self.preprocessing.prepare(image)

  def warn_too_wide(self, predictions: Sequence[Prediction]) -> str | None:
    """One warning line for the `too_wide` predictions (None if there are none)."""
    wide = [p for p in predictions if p.too_wide]
    if not wide:
      return None
    widest = max(p.aspect_ratio for p in wide)
    return (f"{len(wide)} of {len(predictions)} images are wider than "
            f"{self.max_aspect_ratio:.0f}:1 (up to {widest:.0f}:1), far beyond what the model "
            "was trained on: they are squeezed and may read poorly or empty; crop them into "
            "words or shorter lines")

  def recognize(self, images: Sequence[Any], batch_size: int = 64,
                lexicons: Sequence[Sequence[str] | None] | None = None, *,
                errors: str = "raise", progress: bool = False) -> list[Prediction]:
    """Reads text from images.

    Args:
      images: file paths, PIL images or arrays (`[H, W]` grayscale, `[H, W, 3|4]` color; uint8,
        or floats in [0, 1] or [0, 255]) of any size.
      batch_size: images per model call (images are grouped by width).
      lexicons: for the lexicon decoder, one word list per image (None entries use the
        recognizer's global lexicon).
      errors: 'raise': an input that cannot be read raises ValueError naming it; 'report': its
        Prediction has empty text and the reason in `error`, and the others are read.
      progress: progress bars for loading and reading, on a terminal (`crnn_jax.progress`).

    Returns:
      One Prediction per image, in input order; spans are in input-image columns.
    """
    from crnn_jax import progress as progress_lib  # pylint: disable=import-outside-toplevel
    if errors not in ("raise", "report"):
      raise ValueError(f"errors must be 'raise' or 'report', got {errors!r}")
    if lexicons is not None and len(lexicons) != len(images):
      raise ValueError(f"{len(lexicons)} lexicons for {len(images)} images")
    prepared, failures = [], {}
    for i, image in enumerate(progress_lib.bar(images, desc="loading", unit="image",
                                               quiet=not progress)):
      try:
        prepared.append((i, *self.prepare(image)))
      except ValueError as e:
        if errors == "raise":
          raise
        failures[i] = str(e)
    read = self.recognize_preprocessed(
        [a for _, a, _ in prepared], batch_size, input_sizes=[s for _, _, s in prepared],
        lexicons=None if lexicons is None else [lexicons[i] for i, _, _ in prepared],
        progress=progress)
    message = self.warn_too_wide(read)
    if message:
      warnings.warn(message, images_lib.TooWideWarning, stacklevel=2)
    predictions = [Prediction("", 0.0, error=failures[i]) if i in failures else None
                   for i in range(len(images))]
    for (i, _, _), prediction in zip(prepared, read):
      predictions[i] = prediction
    return predictions

  def recognize_preprocessed(self, arrays: Sequence[np.ndarray], batch_size: int = 64, *,
                             input_widths: Sequence[int] | None = None,
                             input_sizes: Sequence[tuple[int, int]] | None = None,
                             lexicons: Sequence[Sequence[str] | None] | None = None,
                             progress: bool = False,
                             decoder: decoder_lib.Decoder | None = None) -> list[Prediction]:
    """Like `recognize` for float32 `[32, W]` arrays already preprocessed (no warning).

    Args:
      arrays: preprocessed images.
      batch_size: images per model call.
      input_widths: the widths of the original images, to map spans back to them (default:
        spans in the columns of `arrays`).
      input_sizes: the (height, width) of the original images (from `prepare`): spans map
        back to them and `aspect_ratio` and `too_wide` are set.
      lexicons: per-image lexicons (see `recognize`).
      progress: show a progress bar on a terminal (see `crnn_jax.progress`).
      decoder: decode with this `Decoder` (of this model's charset) instead of the
        recognizer's own, e.g. a service offering several decoders of one model.

    Returns:
      One Prediction per array, in input order.
    """
    from crnn_jax import progress as progress_lib  # pylint: disable=import-outside-toplevel
    if lexicons is not None and len(lexicons) != len(arrays):
      raise ValueError(f"{len(lexicons)} lexicons for {len(arrays)} images")
    if input_sizes is not None:
      input_widths = [int(w) for _, w in input_sizes]
    results: list[Prediction | None] = [None] * len(arrays)
    counter = progress_lib.bar(total=len(arrays), desc="reading", quiet=not progress)
    decoder = decoder or self.decoder
    greedy_decoding = decoder.name == "greedy"
    confidence_map = self.confidence_map(decoder)
    for idx, widths, fetch in self._model_batches(arrays, batch_size, greedy_decoding):
      if greedy_decoding:
        ids, confidence = fetch()
        lengths = np.asarray(crnn.output_lengths(widths))
        decoded = [(greedy.collapse_path(ids[row, :lengths[row]]), float(confidence[row]),
                    ids[row, :lengths[row]]) for row in range(len(idx))]
      else:
        log_probs, lengths = fetch()
        batch_lexicons = None if lexicons is None else [lexicons[i] for i in idx]
        out = decoder.decode(log_probs[:len(idx)], lengths[:len(idx)], batch_lexicons)
        decoded = [(list(d.labels), d.confidence,
                    alignment.best_alignment(log_probs[row, :lengths[row]], d.labels))
                   for row, d in enumerate(out)]
      for row, i in enumerate(idx):
        labels, confidence, path = decoded[row]
        model_width = int(widths[row])
        input_width = int(input_widths[i]) if input_widths is not None else model_width
        results[i] = self._prediction(labels, confidence, path, model_width, input_width,
                                      confidence_map)
      counter.update(len(idx))
    counter.close()
    if input_sizes is not None:
      limit = self.max_aspect_ratio
      for i, (height, width) in enumerate(input_sizes):
        ratio = width / max(height, 1)
        results[i] = dataclasses.replace(results[i], aspect_ratio=ratio, too_wide=ratio > limit)
    return results

  def frame_log_probs(self, arrays: Sequence[np.ndarray], batch_size: int = 64
                      ) -> list[np.ndarray]:
    """Per-frame log-probabilities of preprocessed arrays, batched as `recognize_preprocessed`
    batches them.

    Returns:
      One float32 `[T, K]` array per input (its real frames only), in input order.
    """
    out: list[np.ndarray | None] = [None] * len(arrays)
    for idx, _, fetch in self._model_batches(arrays, batch_size, greedy_decoding=False):
      log_probs, lengths = fetch()
      for row, i in enumerate(idx):
        out[i] = np.asarray(log_probs[row, :lengths[row]], np.float32)
    return out

  def _model_batches(self, arrays, batch_size: int, greedy_decoding: bool):
    """Yields (indices, widths, fetch) per batch of `arrays` sorted by width (see
    `_start_batch`). The model's next batch is dispatched (JAX runs it asynchronously) before
    the current one is yielded, so that host-side decoding overlaps the model."""
    order = sorted(range(len(arrays)), key=lambda i: arrays[i].shape[1])
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    pending = self._start_batch(arrays, batches[0], greedy_decoding) if batches else None
    for number, idx in enumerate(batches):
      current = pending
      if number + 1 < len(batches):
        pending = self._start_batch(arrays, batches[number + 1], greedy_decoding)
      yield (idx, *current)

  def _start_batch(self, arrays, idx, greedy_decoding: bool):
    """Pads the arrays `idx` into a batch (the backend's `batch_shape`) and starts the model.

    Returns:
      (widths `[rows]`, fetch): fetch() waits for and returns the model's outputs as numpy
      arrays: (ids, confidence) of `Backend.best_paths` when greedy_decoding, else
      (log_probs, lengths) of `Backend.log_probs`.
    """
    widest = max(arrays[i].shape[1] for i in idx)
    rows, width = self.backend.batch_shape(len(idx), widest)
    images = preprocess.pad_to_width([arrays[i] for i in idx], width)
    widths = np.array([arrays[i].shape[1] for i in idx], np.int32)
    if rows > len(idx):
      images = np.concatenate([images, np.zeros((rows - len(idx),) + images.shape[1:],
                                                np.float32)])
      widths = np.concatenate([widths, np.full(rows - len(idx), preprocess.MIN_WIDTH,
                                               np.int32)])
    return widths, self.backend.start(images, widths, greedy_decoding=greedy_decoding)

  def _prediction(self, labels, confidence, path, model_width, input_width,
                  confidence_map=None) -> Prediction:
    text = self.charset.decode(labels)
    raw = float(confidence)
    if confidence_map is not None:
      confidence = float(confidence_map(raw))
    if path is None:  # No alignment fits the frames (lexicon word too long).
      return Prediction(text, confidence, (), "", input_width, model_width, raw_confidence=raw)
    scale = input_width / model_width
    spans = []
    for k, first, last in alignment.char_spans(path):
      x0, x1 = crnn.frame_columns(first, last, model_width)
      spans.append(CharSpan(self.charset.chars[k - 1], first, last, x0 * scale, x1 * scale))
    return Prediction(text, confidence, tuple(spans), alignment.frame_path(path, self.charset),
                      input_width, model_width, raw_confidence=raw)
