"""One call for the four CTC decoders (greedy, beam, lm, lexicon), and per-image lexicons.

`Decoder` puts the decoders of this package behind one call, so that the Recognizer, the
`crnn-jax eval` and `crnn-jax predict` commands and the dataset evaluation share them:

* `greedy`: best path (the per-frame arg max, collapsed). Confidence: the probability of that
  single path.
* `beam`: CTC prefix beam search (`beam.py`). Confidence: p(l | y), the total probability of
  all alignments of the returned labelling l.
* `lm`: the prefix beam search's `beam_width` best labellings, rescored with a character
  n-gram language model of English words (`char_lm.py`, open-vocabulary: any string can come
  out): the reading maximizing log p(l | y) + lm_weight * score(l) + length_bonus * len(l)
  (len counted in the language model's alphabet). The bonus offsets the language model's
  preference for short strings. Confidence: p(l | y) of the chosen labelling, as for `beam`.
  The weights are the ones measured best on real word crops (docs/benchmarks.md, "The lm decoder").
* `lexicon`: the most probable word of a lexicon (`lexicon.py`, the CRNN paper's Sec. 2.3.2),
  with a global lexicon file and/or per-image lexicons. Confidence: p(word | y).

`build_decoder` makes one for a charset (its default decoder unless named): the Recognizer,
`predict`, `eval` and `serve` all call it. `alignment.py` places any decoder's output on the
frames. `make_predict` makes a batch predictor of a decoder, for the evaluators
(`crnn_jax.evaluation.evaluators`: a dataset evaluation, or `DecoderComparison` of several
decoders on the same batches).

Per-image lexicons (IIIT5k's and SVT's 50- and 1k-word lists) come from a record field
`lexicon` (a sequence of words per row) or from a side file read by `load_image_lexicons`: one
line per image, `KEY<TAB>WORDS`, the words separated by spaces or commas, where KEY is the
record's `key` (datasets on disk) or, for records without keys, the 0-based position of the
record in evaluation order.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import re
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from crnn_jax.text.charset import Charset
from crnn_jax.decoding import beam as beam_lib
from crnn_jax.decoding import greedy

# lexicon.py (JAX, optax) is imported when a lexicon decoder is built, so that the command line
# can add these options without importing JAX.

DECODERS = ("greedy", "beam", "lm", "lexicon")
DEFAULT_BEAM_WIDTH = 10
DEFAULT_LM_BEAM_WIDTH = 32  # The lm decoder rescores this many hypotheses.
DEFAULT_LM_WEIGHT = 0.5  # English; see default_lm_weight.
ZH_EN_LM_WEIGHT = 0.1  # The zh_en charset's: a lighter prior for the mixed-line model.
DEFAULT_LENGTH_BONUS = 1.5
DEFAULT_DELTA = 3  # lexicon.DEFAULT_DELTA


def default_name(charset: Charset) -> str:
  """The decoder `predict`, `eval` and `Recognizer` use unless told: 'lm' for the alphabets with
  a language model (English, printable ASCII: its word model reads more real crops than greedy
  decoding; the zh_en charset: with `default_lm_weight`'s light weight the mixed-line model
  reads 88.0% of heldout_zh's lines against greedy decoding's 86.25%, docs/experiments/zh_en.md),
  'greedy' for the others."""
  from crnn_jax.decoding import char_lm  # pylint: disable=g-import-not-at-top
  return "lm" if char_lm.has_model(charset.chars) else "greedy"


def default_lm_weight(charset: Charset) -> float:
  """The lm decoder's weight unless told: DEFAULT_LM_WEIGHT, or ZH_EN_LM_WEIGHT for the zh_en
  charset (both tuned on synthetic validation lines: `benchmarks/lm_decoder.py`,
  `benchmarks/zh_lm_grid.py`)."""
  from crnn_jax.decoding import char_lm  # pylint: disable=g-import-not-at-top
  return ZH_EN_LM_WEIGHT if char_lm.model_kind(charset.chars) == "chinese" else DEFAULT_LM_WEIGHT


@dataclasses.dataclass(frozen=True)
class Decoded:
  """One decoded sample.

  Attributes:
    text: the transcription.
    confidence: probability of the best path (greedy) or of the labelling (beam, lexicon).
    labels: its class ids (no blanks).
  """

  text: str
  confidence: float
  labels: tuple[int, ...]


def load_image_lexicons(path: str | pathlib.Path) -> dict[str, list[str]]:
  """Reads a per-image lexicon side file.

  Args:
    path: UTF-8 text, one line per image: `KEY<TAB>WORDS`, the words separated by spaces or
      commas. Blank lines and lines starting with `#` are skipped.

  Returns:
    KEY -> words (in file order, duplicates dropped).

  Raises:
    FileNotFoundError: no such file.
    ValueError: a line without a tab or without words, or a key given twice (naming the line).
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"per-image lexicon file {path} does not exist")
  out: dict[str, list[str]] = {}
  for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
    if not line.strip() or line.startswith("#"):
      continue
    key, tab, rest = line.partition("\t")
    words = [w for w in re.split(r"[,\s]+", rest) if w]
    if not tab or not words:
      raise ValueError(f"{path}:{number}: expected KEY<TAB>WORDS, got {line[:80]!r}")
    if key in out:
      raise ValueError(f"{path}:{number}: key {key!r} given twice")
    out[key] = list(dict.fromkeys(words))
  return out


class Decoder:
  """A configured CTC decoder.

  Attributes:
    name: one of DECODERS.
    charset: the model's charset.
    beam_width: prefixes kept by the beam search ('beam', 'lm').
    lm_weight, length_bonus: the 'lm' decoder's weights (see the module docstring).
    language_model: the 'lm' decoder's `char_lm.CharNgramLM` (None for the others).
    delta: edit-distance radius of the lexicon neighbourhood.
    lexicon: the global lexicon decoder (None: per-image lexicons only).
  """

  def __init__(self, charset: Charset, name: str = "greedy", *,
               beam_width: int | None = None,
               lexicon: Sequence[str] | str | pathlib.Path | None = None,
               delta: int = DEFAULT_DELTA,
               lm_weight: float | None = None,
               length_bonus: float = DEFAULT_LENGTH_BONUS,
               language_model: Any = None):
    """Configures the decoder.

    Args:
      charset: the model's charset.
      name: one of DECODERS.
      beam_width: for 'beam' and 'lm' (>= 1; default DEFAULT_BEAM_WIDTH for 'beam',
        DEFAULT_LM_BEAM_WIDTH for 'lm').
      lexicon: for 'lexicon': a word list or a lexicon file (one word per line). Without it,
        every decoded batch must come with per-image lexicons.
      delta: for 'lexicon': candidates within this edit distance of the greedy output (large
        lexicons; small ones are searched exhaustively).
      lm_weight: for 'lm': the weight of the language model's log score (>= 0; default
        `default_lm_weight(charset)`).
      length_bonus: for 'lm': added per character of a reading.
      language_model: for 'lm': a `char_lm.CharNgramLM` (default: `char_lm.for_charset`: the
        English model, or the mixed-line Chinese model for the zh_en charset).

    Raises:
      ValueError: an unknown name or a bad parameter.
    """
    if name not in DECODERS:
      raise ValueError(f"decoder must be one of {DECODERS}, got {name!r}")
    if beam_width is None:
      beam_width = DEFAULT_LM_BEAM_WIDTH if name == "lm" else DEFAULT_BEAM_WIDTH
    if beam_width < 1:
      raise ValueError(f"beam width must be >= 1, got {beam_width}")
    if lm_weight is None:
      lm_weight = default_lm_weight(charset)
    if not lm_weight >= 0:
      raise ValueError(f"lm weight must be >= 0, got {lm_weight}")
    if delta < 0:
      raise ValueError(f"delta must be >= 0, got {delta}")
    self.name = name
    self.charset = charset
    self.beam_width = int(beam_width)
    self.delta = int(delta)
    self.lm_weight = float(lm_weight)
    self.length_bonus = float(length_bonus)
    self.language_model = None
    if name == "lm":
      from crnn_jax.decoding import char_lm  # pylint: disable=g-import-not-at-top
      # The alphabet's own model (English, or mixed Chinese lines for zh_en); English else.
      self.language_model = (language_model or char_lm.for_charset(charset.chars)
                             or char_lm.english())
    self.lexicon = None
    if name == "lexicon" and lexicon is not None:
      from crnn_jax.decoding import lexicon as lexicon_lib  # pylint: disable=g-import-not-at-top
      words = (lexicon_lib.load_lexicon(lexicon) if isinstance(lexicon, (str, pathlib.Path))
               else list(lexicon))
      self.lexicon = lexicon_lib.LexiconDecoder(words, charset, delta=delta)

  @property
  def label(self) -> str:
    """A short name for reports, e.g. 'beam10', 'lm32' or 'lexicon'."""
    return f"{self.name}{self.beam_width}" if self.name in ("beam", "lm") else self.name

  def __repr__(self) -> str:
    extra = ""
    if self.name == "beam":
      extra = f", beam_width={self.beam_width}"
    elif self.name == "lm":
      extra = (f", beam_width={self.beam_width}, lm_weight={self.lm_weight}, "
               f"length_bonus={self.length_bonus}")
    elif self.name == "lexicon":
      size = len(self.lexicon) if self.lexicon is not None else "per-image"
      extra = f", lexicon={size}, delta={self.delta}"
    return f"Decoder({self.name!r}{extra})"

  def decode(self, log_probs: np.ndarray, lengths: np.ndarray,
             lexicons: Sequence[Sequence[str] | None] | None = None) -> list[Decoded]:
    """Decodes a batch.

    Args:
      log_probs: `[B, T, K]` per-frame log-probabilities (class 0 is blank).
      lengths: `[B]` real frames per sample.
      lexicons: for 'lexicon': B per-image word lists (None entries fall back to the global
        lexicon); ignored by the other decoders.

    Returns:
      B decoded samples.

    Raises:
      ValueError: 'lexicon' with neither a global lexicon nor a lexicon for some sample.
    """
    log_probs = np.asarray(log_probs, np.float32)
    lengths = np.asarray(lengths).reshape(-1).astype(np.int64)
    if log_probs.shape[0] == 0:
      return []
    if self.name == "greedy":
      return _greedy(log_probs, lengths, self.charset)
    if self.name == "beam":
      hyps = beam_lib.prefix_beam_search(log_probs, lengths, beam_width=self.beam_width)
      return [Decoded(self.charset.decode(ids),
                      float(greedy.reading_confidence(len(ids), _prob(score))), tuple(ids))
              for (ids, score), in hyps]
    if self.name == "lm":
      return self._decode_lm(log_probs, lengths)
    return self._decode_lexicon(log_probs, lengths, lexicons)

  def _decode_lm(self, log_probs, lengths) -> list[Decoded]:
    hyps = beam_lib.prefix_beam_search(log_probs, lengths, beam_width=self.beam_width,
                                       n_best=self.beam_width)
    texts = [self.charset.decode(ids) for sample in hyps for ids, _ in sample]
    lm_scores = self.language_model.score(texts)  # One call for the whole batch.
    out, start = [], 0
    for sample in hyps:
      sample_texts = texts[start:start + len(sample)]
      total = (np.array([score for _, score in sample])
               + self.lm_weight * lm_scores[start:start + len(sample)]
               + self.length_bonus * np.array([len(self.language_model.normalize(t))
                                               for t in sample_texts]))
      start += len(sample)
      best = int(np.argmax(total))
      ids, score = sample[best]
      out.append(Decoded(sample_texts[best],
                         float(greedy.reading_confidence(len(ids), _prob(score))), tuple(ids)))
    return out

  def _decode_lexicon(self, log_probs, lengths, lexicons) -> list[Decoded]:
    batch = log_probs.shape[0]
    lexicons = list(lexicons) if lexicons is not None else [None] * batch
    if len(lexicons) != batch:
      raise ValueError(f"{len(lexicons)} lexicons for a batch of {batch}")
    own = [i for i, lex in enumerate(lexicons) if lex is not None]
    shared = [i for i, lex in enumerate(lexicons) if lex is None]
    results: list[tuple[str, float] | None] = [None] * batch
    if shared:
      if self.lexicon is None:
        raise ValueError("lexicon decoding needs a lexicon: give a lexicon file or per-image "
                         f"lexicons (sample {shared[0]} has none)")
      for i, res in zip(shared, self.lexicon.decode(log_probs[shared], lengths[shared])):
        results[i] = res
    if own:
      from crnn_jax.decoding import lexicon as lexicon_lib  # pylint: disable=g-import-not-at-top
      decoded = lexicon_lib.decode_with_lexicons(
          log_probs[own], lengths[own], [lexicons[i] for i in own], self.charset,
          delta=self.delta)
      for i, res in zip(own, decoded):
        results[i] = res
    return [Decoded(word, _prob(score), tuple(self.charset.encode(word)))
            for word, score in results]


def build_decoder(charset: Charset, name: str | None = None, *,
                  beam_width: int | None = None,
                  lexicon: Sequence[str] | str | pathlib.Path | None = None,
                  delta: int = DEFAULT_DELTA, lm_weight: float | None = None,
                  length_bonus: float = DEFAULT_LENGTH_BONUS,
                  language_model: Any = None) -> Decoder:
  """The decoder `name` of a model's charset: how `predict`, `eval`, `serve` and the Recognizer
  all make one (the command line maps its flags to these arguments: `cli.decoder_flags`).

  Args:
    charset: the model's charset.
    name: one of DECODERS; default `default_name(charset)`: 'lm' for the alphabets with a
      language model, else 'greedy'. lm_weight None: `default_lm_weight(charset)`.
    beam_width, lexicon, delta, lm_weight, length_bonus, language_model: the settings of
      `Decoder` (each decoder uses its own and ignores the others; a lexicon is kept by the
      lexicon decoder only).

  Raises:
    ValueError: an unknown name or a bad setting.
  """
  return Decoder(charset, name or default_name(charset), beam_width=beam_width,
                 lexicon=lexicon, delta=delta,
                 lm_weight=lm_weight, length_bonus=length_bonus,
                 language_model=language_model)


def _prob(log_p: float) -> float:
  return math.exp(log_p) if log_p > -math.inf else 0.0


def _greedy(log_probs: np.ndarray, lengths: np.ndarray, charset: Charset) -> list[Decoded]:
  out = []
  for b in range(log_probs.shape[0]):
    frames = log_probs[b, :lengths[b]]
    path = frames.argmax(-1)
    ids = greedy.collapse_path(path)
    confidence = float(np.exp(frames.max(-1).astype(np.float64).sum())) if len(frames) else 1.0
    confidence = float(greedy.reading_confidence(len(ids), confidence))
    out.append(Decoded(charset.decode(ids), confidence, tuple(ids)))
  return out


def lexicons_for_batch(batch: Mapping[str, Any], image_lexicons: Mapping[str, Sequence[str]]
                       | None, offset: int) -> list[Sequence[str] | None] | None:
  """Per-row lexicons of a batch: its `lexicon` field, else the side file by key or position.

  Args:
    batch: a batch dict; may have `lexicon` (per row word lists) and `key` (record keys).
    image_lexicons: KEY -> words from `load_image_lexicons`, or None.
    offset: the position of the batch's first row in evaluation order (used as the key of
      rows without `key`).

  Returns:
    One entry per row (None where the row has no lexicon), or None when there are none at all.
  """
  rows = len(batch["mask"]) if "mask" in batch else len(batch["image"])
  if "lexicon" in batch:
    return [list(lex) if lex is not None and len(lex) else None for lex in batch["lexicon"]]
  if not image_lexicons:
    return None
  keys = ([str(k) for k in batch["key"]] if "key" in batch
          else [str(offset + i) for i in range(rows)])
  return [image_lexicons.get(k) for k in keys]


Predict = Callable[[Mapping[str, Any]], tuple[list[str], np.ndarray]]


def make_predict(logits_fn: Callable[[np.ndarray, np.ndarray], tuple[Any, Any]],
                 decoder: Decoder,
                 image_lexicons: Mapping[str, Sequence[str]] | None = None) -> Predict:
  """A batch predictor `batch -> (texts, confidences [B])` with `decoder`.

  Args:
    logits_fn: `(images [B, 32, W, 1], widths [B]) -> (logits [B, T, K], lengths [B])`.
    decoder: the decoder.
    image_lexicons: per-image lexicons by key (see `lexicons_for_batch`); rows are counted
      across calls for batches without keys.

  Returns:
    The predictor (stateful: it counts the rows it has seen).
  """
  seen = [0]

  def predict(batch):
    logits, lengths = logits_fn(batch["image"], batch["width"])
    log_probs = greedy.log_softmax(np.asarray(logits))
    lexicons = None
    if decoder.name == "lexicon":
      lexicons = lexicons_for_batch(batch, image_lexicons, seen[0])
    seen[0] += len(batch["width"])
    mask = np.asarray(batch.get("mask", np.ones(len(batch["width"]), bool)), bool)
    if lexicons is not None and decoder.lexicon is None:
      missing = [i for i, lex in enumerate(lexicons) if lex is None and mask[i]]
      if missing:
        raise ValueError("lexicon decoding without a global lexicon: no per-image lexicon for "
                         f"row {missing[0]} of this batch")
      lexicons = [lex if lex is not None else ["?"] for lex in lexicons]
    results = [Decoded("", 0.0, ())] * len(mask)
    rows = np.flatnonzero(mask)
    if rows.size:
      decoded = decoder.decode(log_probs[rows], np.asarray(lengths)[rows],
                               None if lexicons is None else [lexicons[i] for i in rows])
      for i, d in zip(rows.tolist(), decoded):
        results[i] = d
    return [d.text for d in results], np.array([d.confidence for d in results], np.float32)

  return predict
