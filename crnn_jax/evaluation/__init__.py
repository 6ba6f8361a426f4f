"""Evaluation of a recognizer: metrics, the protocol of scene-text benchmarks, the evaluators.

  metrics.py     `RecognitionMetrics`, the one accumulator of every evaluation: word accuracy,
                 1 - normalized edit distance (ICDAR 2019), character error rate, confidence.
  protocol.py    the standard evaluation protocol of scene-text recognition (and the
                 case-sensitive, unfiltered and NFKC ones), the named benchmark sets, their
                 group totals and the Markdown table of results.
  evaluators.py  `eval_step`, the one jitted greedy predictor (each process feeds and gets back
                 its own rows of a batch), the one jitted logits function of the other decoders,
                 and the evaluators: `SplitEvaluator` (a run's held-out split, as training
                 evaluates), `DatasetEvaluator` (datasets on disk under a protocol) and
                 `DecoderComparison` (several decoders on the same batches).
  heldout_en.py  the held-out English test set: rendered once with fonts outside the training
                 pool (`crnn-jax data heldout-set`), read back, scored per group and kind.
  heldout_zh.py  the held-out set of mixed Chinese/English/digit lines (`crnn-jax data
                 heldout-zh`): its kinds, its writer and its NFKC scores.

`metrics` is re-exported here (`evaluation.RecognitionMetrics`); the other modules are imported
by name (`from crnn_jax.evaluation import evaluators`), `evaluators` only where JAX runs.
"""

from crnn_jax.evaluation.metrics import RecognitionMetrics, normalized_edit_distance

__all__ = ["RecognitionMetrics", "normalized_edit_distance"]
