"""The evaluators: a model scored on a held-out split, on datasets on disk, with several decoders.

One jitted greedy predictor serves them all (`greedy_predictor`), with the one multi-host rule of
evaluation: each process feeds the rows of a global batch that it holds (the `[B / P, ...]`
slice of `sharding.process_batch_slice`, or its own share of a dataset) and gets back the
predictions of those rows only; the processes then add up their `RecognitionMetrics` totals
(`sum_over_processes`). `eval_step` is the program it runs: logits `[B, T, K]` of the model,
then the best path, `[B, T]` class ids and `[B]` confidences.

* `SplitEvaluator`: a run's held-out split (synthetic or `data.eval_paths`), its global batches
  prepared once: training's periodic evaluation and `crnn-jax eval --checkpoint`.
* `DatasetEvaluator`: datasets on disk under a `protocol.Protocol`, one row of results per
  dataset, with totals and skipped records: `crnn-jax eval --data`.
* `DecoderComparison`: several `decoding.decoder.Decoder`s on the same batches; the model runs
  once per batch (`logits_function`, host NumPy logits for the host-side decoders).

The state evaluated is anything with the fields of `train_lib.TrainState` that inference reads:
`apply_fn` (static), `params` and `batch_stats`, as a pytree (so that it can be jitted):
`model_state(apply_fn, variables)` makes one from an opened model, so that evaluating never
needs the training module. JAX, the mesh helpers and the input pipeline are imported inside the
functions, as the command line (which imports this module at start-up) does.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from crnn_jax import progress as progress_lib
from crnn_jax.text.charset import Charset
from crnn_jax.decoding import decoder as decoder_lib
from crnn_jax.decoding import greedy
from crnn_jax.evaluation import metrics as metrics_lib
from crnn_jax.evaluation import protocol as protocol_lib

# batch -> (predicted texts, confidences `[B]`) for the rows of the batch.
Predict = Callable[[Mapping[str, np.ndarray]], tuple[Sequence[str], np.ndarray]]
# (images `[B, 32, W, 1]`, widths `[B]`) -> (logits `[B, T, K]`, lengths `[B]`), on the host.
LogitsFn = Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]


@functools.cache
def _model_state_class():
  import flax.struct  # pylint: disable=import-outside-toplevel

  @flax.struct.dataclass
  class ModelState:
    """What the evaluators read of a model (a pytree; `apply_fn` and `step` are static)."""
    apply_fn: Callable = flax.struct.field(pytree_node=False)
    params: Any = None
    batch_stats: Any = None
    step: int = flax.struct.field(pytree_node=False, default=0)

  return ModelState


def model_state(apply_fn: Callable, variables: Mapping[str, Any], step: int = 0):
  """The state the evaluators take, from a model's `apply_fn` and its variables
  (`{'params': ..., 'batch_stats': ...}`), e.g. `run_files.load_model(...)`'s."""
  return _model_state_class()(apply_fn=apply_fn, params=variables["params"],
                              batch_stats=variables.get("batch_stats", {}), step=int(step))


def eval_step(state, batch):
  """Inference on a batch: returns best-path ids `[B, T]` and confidences `[B]`.

  Args:
    state: has `apply_fn`, `params` and `batch_stats` (e.g. a `train_lib.TrainState`).
    batch: `image` `[B, 32, W, 1]` and `width` `[B]`.
  """
  logits, lengths = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats},
                                   batch["image"], batch["width"], train=False)
  return greedy.best_reading(logits.astype(np.float32), lengths)


def _process_rows(x, mesh) -> np.ndarray:
  """This process's rows of a global array sharded over the mesh's data axis, on the host."""
  import jax  # pylint: disable=g-import-not-at-top

  if jax.process_count() == 1:
    return np.asarray(jax.device_get(x))
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  from jax.sharding import PartitionSpec  # pylint: disable=g-import-not-at-top

  from crnn_jax import sharding  # pylint: disable=g-import-not-at-top
  return np.asarray(multihost_utils.global_array_to_host_local_array(
      x, mesh, PartitionSpec(sharding.DATA_AXIS)))


def _widest_of_all_processes(images: np.ndarray) -> np.ndarray:
  """`images` `[b, 32, W, 1]` right-padded with zeros to the widest W of all processes' local
  batches, so that every process feeds the global batch the same shape (keep-ratio batches
  fall in different width buckets); the model reads each image only up to its width."""
  import jax  # pylint: disable=g-import-not-at-top

  if jax.process_count() == 1:
    return images
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  widest = int(np.max(multihost_utils.process_allgather(np.int32(images.shape[2]))))
  if widest == images.shape[2]:
    return images
  return np.pad(images, ((0, 0), (0, 0), (0, widest - images.shape[2]), (0, 0)))


def greedy_predictor(charset: Charset, mesh, *, state_shardings: Any = None
                     ) -> Callable[[Any, Mapping[str, np.ndarray]], tuple[list[str], np.ndarray]]:
  """The jitted greedy predictor on `mesh`: `predict(state, local_batch) -> (texts, confidences)`.

  The multi-host rule of every evaluation: `local_batch` holds this process's rows of a global
  batch (`image` `[B / P, 32, W, 1]`, `width` `[B / P]`; other keys are ignored), and the texts
  and confidences `[B / P]` returned are those of the same rows. All processes call it together;
  their local batches may differ in W (each is padded to the widest).

  Args:
    charset: decodes the class ids.
    mesh: the device mesh; the batch is split over its data axis.
    state_shardings: shardings of the states passed to `predict` (default: the state's own).

  Returns:
    The predictor; it compiles once per batch shape and state layout.
  """
  import jax  # pylint: disable=g-import-not-at-top

  from crnn_jax import sharding  # pylint: disable=g-import-not-at-top

  in_shardings = None
  if state_shardings is not None:
    in_shardings = (state_shardings, sharding.batch_sharded(mesh))
  step = jax.jit(eval_step, in_shardings=in_shardings, out_shardings=sharding.batch_sharded(mesh))

  def predict(state, local_batch):
    inputs = {"image": _widest_of_all_processes(np.asarray(local_batch["image"])),
              "width": local_batch["width"]}
    ids, confidence = step(state, sharding.device_batch(inputs, mesh, host_only=()))
    ids, confidence = _process_rows(ids, mesh), _process_rows(confidence, mesh)
    return [charset.decode(s) for s in greedy.collapse(ids)], confidence

  return predict


def logits_function(state) -> LogitsFn:
  """The jitted model of `state` for the host-side decoders (beam, lexicon), single process.

  Args:
    state: has `apply_fn`, `params` and `batch_stats`.

  Returns:
    `(images [B, 32, W, 1], widths [B]) -> (logits [B, T, K], lengths [B])`, NumPy arrays.
  """
  import jax  # pylint: disable=g-import-not-at-top

  apply = jax.jit(lambda variables, images, widths: state.apply_fn(variables, images, widths,
                                                                   train=False))
  variables = jax.device_put({"params": state.params, "batch_stats": state.batch_stats})

  def logits_fn(images, widths):
    return jax.device_get(apply(variables, images, widths))

  return logits_fn


def sum_over_processes(vector) -> np.ndarray:
  """Sums a vector of totals (`RecognitionMetrics.as_vector()`, ...) over all processes.

  JAX gathers float32 (without `jax_enable_x64`), so each total travels as two float32 parts,
  its rounding and the remainder: the sum keeps nearly float64 precision.
  """
  import jax  # pylint: disable=g-import-not-at-top

  vector = np.asarray(vector, np.float64)
  if jax.process_count() == 1:
    return vector
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  high = vector.astype(np.float32)
  low = (vector - high).astype(np.float32)
  parts = multihost_utils.process_allgather(np.stack([high, low]))  # [P, 2, N]
  return np.asarray(parts, np.float64).sum(axis=(0, 1))


class SplitEvaluator:
  """Greedy-decoding evaluation on a held-out split, with the batches prepared once.

  Every process keeps the whole (global) batches on the host and feeds only its own rows
  (`rows`) to its devices; the processes add up their totals, so all of them return the same
  metrics. The examples returned are those of this process's rows.
  """

  def __init__(self, config, charset: Charset, mesh, split: str = "eval",
               num_records: int | None = None, state_shardings: Any = None,
               progress: bool = False, batches: Sequence[Mapping[str, np.ndarray]] | None = None):
    """Prepares the batches.

    Args:
      config: the run's config.
      charset: the charset.
      mesh: the device mesh.
      split: 'eval' or 'test'.
      num_records: images to evaluate (default `config.data.eval_size`).
      state_shardings: shardings of the state passed to `run` (default: the state's own).
      progress: progress bars (on a terminal) while the batches are prepared and read.
      batches: global batches of `config.eval_batch_size` rows (`image`, `width`, `text`,
        `mask`) to evaluate instead of the split's (`split` and `num_records` are then unused).
    """
    from crnn_jax import sharding  # pylint: disable=g-import-not-at-top

    sharding.check_batch_size(config.eval_batch_size, mesh, "eval_batch_size")
    index, count = sharding.process_batch_slice(config.eval_batch_size, mesh)
    local = config.eval_batch_size // count
    self.rows = slice(index * local, (index + 1) * local)  # This process's rows of a batch.
    self._process_count = count
    self.charset = charset
    self.mesh = mesh
    self.progress = progress
    if batches is None:
      from crnn_jax.data import pipeline  # pylint: disable=g-import-not-at-top
      batches = pipeline.eval_batches(config, charset, split, num_records)
    self.batches = list(progress_lib.bar(batches, desc="preparing", unit="batch",
                                         quiet=not progress))
    self._predict = greedy_predictor(charset, mesh, state_shardings=state_shardings)

  def run(self, state, num_examples: int = 0):
    """Returns (metrics dict, list of (prediction, target, confidence) for the first examples)."""
    metrics = metrics_lib.RecognitionMetrics()
    examples = []
    for batch in progress_lib.bar(self.batches, desc="reading", unit="batch",
                                  quiet=not self.progress):
      local = {k: v[self.rows] for k, v in batch.items()}
      texts, conf = self._predict(state, local)
      mask = np.asarray(local["mask"], bool)
      preds = [t for t, m in zip(texts, mask) if m]
      targets = [t for t, m in zip(local["text"], mask) if m]
      confs = np.asarray(conf)[mask]
      metrics.update(preds, targets, confs)
      examples.extend(zip(preds, targets, confs.tolist()))
    if self._process_count > 1:
      metrics = metrics_lib.RecognitionMetrics.from_vector(
          sum_over_processes(metrics.as_vector()))
    return metrics.result(), examples[:num_examples]


class DatasetEvaluator:
  """A predictor scored on datasets on disk under a protocol, one row of results per dataset."""

  def __init__(self, entries, data_config, protocol: protocol_lib.Protocol, batch_size: int, *,
               split: str = "", process_index: int = 0, process_count: int = 1,
               read_threads: int = 0,
               allreduce: Callable[[np.ndarray], np.ndarray] | None = None,
               max_examples: int = 5, log=None, quiet: bool = True):
    """Configures the evaluation.

    Args:
      entries: `sources.DatasetEntry`s (name, path, kind).
      data_config: `config.data` of the model (resizing).
      protocol: the evaluation protocol.
      batch_size: the global batch size.
      split: the split of built datasets.
      process_index, process_count: this process among all (each reads its share of a dataset).
      read_threads: threads decoding records.
      allreduce: sums a float vector over processes (None: single process;
        `sum_over_processes` with several).
      max_examples: skipped records named per reason.
      log: optional callable(str) for progress messages.
      quiet: no progress bar (otherwise one per dataset, on a terminal).
    """
    self.entries = list(entries)
    self.data_config = data_config
    self.protocol = protocol
    self.batch_size = batch_size
    self.split = split
    self.process_index, self.process_count = process_index, process_count
    self.read_threads = read_threads
    self.allreduce = allreduce
    self.max_examples = max_examples
    self.log = log
    self.quiet = quiet

  def run(self, predict: Predict) -> dict[str, Any]:
    """Scores `predict` on each dataset.

    Args:
      predict: local batch -> (predicted texts, confidences `[B]`) for its rows (e.g.
        `greedy_predictor` with its state, or `decoding.decoder.make_predict`).

    Returns:
      {'protocol', 'datasets': [row], 'total', 'groups'}; a row has name, path, kind, benchmark,
      expected_records, records, count, word_accuracy, one_minus_ned, mean_confidence, skipped
      ({reason: {count, first: [{key, detail}]}}) and sums (for totals).
    """
    protocol = self.protocol
    rows = [self._dataset(entry, predict) for entry in self.entries]
    total = metrics_lib.RecognitionMetrics()
    for row in rows:
      total.add(metrics_lib.RecognitionMetrics.from_vector(row["sums"]))
    return dict(protocol=protocol.to_dict(), datasets=rows,
                total=dict(records=sum(r["records"] for r in rows), **total.result(),
                           altered=sum(r["altered"] for r in rows)),
                groups=protocol_lib.group_totals(rows))

  def _dataset(self, entry, predict: Predict) -> dict[str, Any]:
    """The results row of one dataset."""
    from crnn_jax.data import pipeline  # pylint: disable=g-import-not-at-top
    from crnn_jax.data import records  # pylint: disable=g-import-not-at-top
    from crnn_jax.data import sources  # pylint: disable=g-import-not-at-top

    protocol, process_count = self.protocol, self.process_count
    transform = pipeline.EvalExample(self.data_config, protocol.label_and_altered,
                                     with_key=True)
    source = sources.open_dataset(entry.path, entry.kind, self.split, name=entry.name)
    if self.log:
      self.log(f"{entry.name}: {len(source)} records ({entry.kind}, {entry.path})")
    score = metrics_lib.RecognitionMetrics()
    report = records.SkipReport(self.max_examples)
    skip_counts = np.zeros(len(records.REASONS), np.float64)
    altered = 0
    counter = progress_lib.bar(total=len(source), desc=entry.name, quiet=self.quiet)
    for batch in pipeline.dataset_eval_batches(
        source, self.data_config, transform, self.batch_size, process_index=self.process_index,
        process_count=process_count, read_threads=self.read_threads):
      texts, confidences = predict(batch)
      mask = np.asarray(batch["mask"], bool)
      preds = [protocol.prediction(t) for t, m in zip(texts, mask) if m]
      score.update(preds, list(batch["text"][mask]), np.asarray(confidences)[mask])
      altered += int(np.asarray(batch["altered"])[mask].sum())
      counter.update(min(len(mask) * process_count, counter.total - counter.n))
      for reason, key in zip(batch["skip_reason"], batch["key"]):
        if reason >= 0:
          report.add(records.REASONS[reason], str(key))
          skip_counts[reason] += 1
    counter.close()
    sums = np.array(score.as_vector() + skip_counts.tolist() + [altered], np.float64)
    if self.allreduce is not None:
      sums = self.allreduce(sums)
    width = len(score.as_vector())
    score = metrics_lib.RecognitionMetrics.from_vector(sums[:width])
    altered = int(round(sums[-1]))
    skipped = {}
    for r, reason in enumerate(records.REASONS):
      count = int(round(sums[width + r]))
      if count:
        skipped[reason] = dict(count=count, first=[dict(key=k) for k, _ in
                                                   report.examples.get(reason, [])])
    bench = protocol_lib.benchmark_name(entry.path) or protocol_lib.benchmark_name(entry.name)
    return dict(name=entry.name, path=str(entry.path), kind=entry.kind, benchmark=bench,
                expected_records=protocol_lib.BENCHMARKS.get(bench), records=len(source),
                **score.result(), altered=altered, skipped=skipped, sums=score.as_vector())


class DecoderComparison:
  """Recognition metrics of several decoders on the same batches (the model runs once a batch)."""

  def __init__(self, batches: Iterable[Mapping[str, Any]],
               decoders: Sequence[decoder_lib.Decoder],
               image_lexicons: Mapping[str, Sequence[str]] | None = None):
    """Configures the comparison.

    Args:
      batches: dicts with `image`, `width`, `text`, `mask` (and optionally `key`, `lexicon`);
        a sequence, to run more than once.
      decoders: the decoders to compare.
      image_lexicons: per-image lexicons for lexicon decoders.
    """
    self.batches = batches
    self.decoders = list(decoders)
    self.image_lexicons = image_lexicons

  def run(self, logits_fn: LogitsFn, num_examples: int = 0) -> dict[str, dict[str, Any]]:
    """Decodes every batch with each decoder.

    Args:
      logits_fn: `(images, widths) -> (logits, lengths)` (e.g. `logits_function(state)`).
      num_examples: (prediction, target, confidence) triples kept per decoder.

    Returns:
      decoder label -> metrics dict (see `RecognitionMetrics.result`) plus `examples`.
    """
    metrics = {d.label: metrics_lib.RecognitionMetrics() for d in self.decoders}
    examples: dict[str, list] = {d.label: [] for d in self.decoders}
    cached = {}

    def cached_logits(images, widths):
      del images, widths  # The logits of the current batch, computed once.
      return cached["out"]

    predictors = {d.label: decoder_lib.make_predict(cached_logits, d, self.image_lexicons)
                  for d in self.decoders}
    for batch in self.batches:
      cached["out"] = tuple(np.asarray(x) for x in logits_fn(batch["image"], batch["width"]))
      mask = np.asarray(batch["mask"], bool)
      targets = [t for t, m in zip(batch["text"], mask) if m]
      for label, predict in predictors.items():
        texts, confs = predict(batch)
        preds = [t for t, m in zip(texts, mask) if m]
        metrics[label].update(preds, targets, confs[mask])
        examples[label].extend(zip(preds, targets, confs[mask].tolist()))
    return {label: dict(m.result(), examples=examples[label][:num_examples])
            for label, m in metrics.items()}
