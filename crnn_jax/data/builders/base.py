"""The common TFDS builder of text-line datasets: raw records in, ArrayRecord shards out.

Every builder reads raw records (see `crnn_jax.data.records`), skips bad ones with a count per
reason, and writes examples

  image: grayscale PNG `[H, W, 1]` (re-encoded with Pillow: no TensorFlow needed);
  text:  the NFC label, not case-folded;
  key:   where the record came from (for example `IIIT5k_3000/000000042` or `gt.txt:7:a.png`),

in their original order (no shuffling), as ArrayRecord shards readable with
`tfds.data_source` / `tfds.builder_from_directory(dir).as_data_source()`. The report of written
and skipped records is kept in the dataset's metadata (`metadata.json`, key `build_report`).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from typing import Any, Iterator, Sequence

from absl import logging
import tensorflow_datasets as tfds

from crnn_jax import progress
from crnn_jax.data import preprocess
from crnn_jax.data import records
from crnn_jax.data import sources

VERSION = "1.0.0"
_BLOCK = 256  # Records per task of a parallel build.


@dataclasses.dataclass(eq=False)
class TextLineConfig(tfds.core.BuilderConfig):
  """What to read and how to filter it.

  Attributes:
    paths: input datasets (default: the manual directory).
    split: the name of the split written.
    source_split: the split of the input (the MJSynth annotation file: train, val, test).
    charset: if set, labels with other characters (after `fold_case`) are skipped.
    fold_case: lower-case labels before the charset check (labels are stored unchanged).
    max_label_length: if positive, longer labels are skipped.
    height: if positive, images are resized to this height keeping their aspect ratio.
    num_workers: processes that decode and re-encode images (0: in this process).
    max_examples: offending records named per skip reason in the report.
    training_config: a training config file; if set, records that training with it would skip
      are skipped too: characters outside its charset, labels longer than its limit or than the
      CTC frames of the image once resized as it resizes (`transforms.DecodeExample`).
  """

  paths: tuple[str, ...] = ()
  split: str = "train"
  source_split: str = ""
  charset: str = ""
  fold_case: bool = False
  max_label_length: int = 0
  height: int = 0
  num_workers: int = 0
  max_examples: int = 5
  training_config: str = ""


class RecordEncoder:
  """Raw record -> ('ok', png, text, key) or ('bad', reason, key, detail)."""

  def __init__(self, config: TextLineConfig):
    chars = set(config.charset)
    fold = config.fold_case
    self.allowed = None
    if chars:
      self.allowed = (lambda c: c.lower() in chars) if fold else (lambda c: c in chars)
    self.max_length = config.max_label_length
    self.height = config.height
    self.training_check = None
    if config.training_config:
      from crnn_jax.data import pipeline  # pylint: disable=g-import-not-at-top
      self.training_check = pipeline.training_skip_check(config.training_config)

  def __call__(self, record: dict[str, Any]) -> tuple:
    key = record.get("key", "?")
    try:
      image, text = records.parse_record(record, allowed=self.allowed, max_length=self.max_length)
    except records.BadRecord as e:
      return ("bad", e.reason, key, e.detail)
    skip = self.training_check(record) if self.training_check is not None else None
    if skip is not None:
      return ("bad", skip.reason, key, skip.detail)
    if self.height:
      image = preprocess.resize(image, height=self.height)
    return ("ok", records.encode_png(image), text, key)


# Per-worker globals of a parallel build.
_WORKER: dict[str, Any] = {}


def _worker_init(source, config):
  _WORKER["source"] = source
  _WORKER["encode"] = RecordEncoder(config)


def _encode_block(bounds: tuple[int, int]) -> list[tuple]:
  source, encode = _WORKER["source"], _WORKER["encode"]
  return [encode(source[i]) for i in range(*bounds)]


def encode_records(source, config: TextLineConfig) -> Iterator[tuple]:
  """Encodes every record of `source` in order, in worker processes if configured."""
  n = len(source)
  if config.num_workers <= 0:
    encode = RecordEncoder(config)
    for i in range(n):
      yield encode(source[i])
    return
  blocks = [(s, min(s + _BLOCK, n)) for s in range(0, n, _BLOCK)]
  ctx = multiprocessing.get_context("spawn")
  with ctx.Pool(config.num_workers, initializer=_worker_init, initargs=(source, config)) as pool:
    for block in pool.imap(_encode_block, blocks, chunksize=1):
      yield from block


class TextLineBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the text-line builders; subclasses define `open_source`."""

  VERSION = tfds.core.Version(VERSION)
  BUILDER_CONFIG_CLASS = TextLineConfig
  # No checksums file next to the code (and TFDS's lookup of it needs importlib_resources).
  code_path = None
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Place the dataset in the manual directory, or give its paths in the builder config "
      "(`crnn-jax data build ... --input PATH`).")

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.report = records.SkipReport(self.builder_config.max_examples)
    self.notes: list[str] = []
    self.show_progress = False  # A progress bar over the records (`build(progress=True)`).

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
            "text": tfds.features.Text(),
            "key": tfds.features.Text(),
        }),
        disable_shuffling=True,  # Keep the input order: evaluation reads records in order.
        metadata=tfds.core.MetadataDict(),
    )

  def open_source(self, paths: Sequence[str]) -> sources.DatasetSource:
    raise NotImplementedError

  # TFDS prints these two lines on stdout ("Downloading and preparing dataset Unknown size ...")
  # although a build downloads nothing; they are INFO log lines here (`--verbosity info`).
  def _log_download_bytes(self) -> None:
    logging.info("preparing %s in %s", self.name, self.data_dir)

  def _log_download_done(self) -> None:
    logging.info("%s prepared in %s", self.name, self.data_dir)

  def _split_generators(self, dl_manager):
    paths = tuple(self.builder_config.paths) or (str(dl_manager.manual_dir),)
    source = self.open_source(paths)
    self.notes.extend(source.notes)
    return {self.builder_config.split: self._generate_examples(source)}

  def _generate_examples(self, source):
    report = self.report
    index = 0
    results = progress.bar(encode_records(source, self.builder_config), total=len(source),
                           desc=self.builder_config.name, unit="rec",
                           quiet=not self.show_progress)
    for result in results:
      if result[0] == "ok":
        _, png, text, key = result
        yield index, {"image": png, "text": text, "key": key}
        index += 1
        report.written += 1
      else:
        _, reason, key, detail = result
        report.add(reason, key, detail)
    if not report.written:
      raise ValueError(f"no usable record in {source.path}: {report.skipped} skipped\n"
                       + report.format())
    self.info.metadata["build_report"] = report.to_dict()
    self.info.metadata["notes"] = list(self.notes)
    self.info.metadata["source"] = dict(kind=source.kind, path=source.path, records=len(source))
    for note in self.notes:
      logging.warning("%s", note)


def open_concat(paths: Sequence[str], kind: str, split: str = "",
                name: str | None = None) -> sources.DatasetSource:
  """The datasets at `paths` (of one kind) one after the other."""
  opened = [sources.open_dataset(p, kind, split) for p in paths]
  if len(opened) == 1:
    return opened[0]
  notes = [n for s in opened for n in s.notes]
  return sources.ConcatSource(opened, name=name or opened[0].name,
                              path=", ".join(str(p) for p in paths), kind=kind, notes=notes)


def config_name(name: str) -> str:
  """A TFDS config name from a dataset name: letters, digits, '_' (kept case)."""
  cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name).strip("_")
  return cleaned or "default"
