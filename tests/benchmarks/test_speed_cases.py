"""benchmarks/speed.py compares like with like: greedy decoding in JAX against PyTorch's greedy
decoding, and the lm decoder in a case of its own."""

import numpy as np

SMALL = dict(conv_channels=(8, 16, 16, 16, 32, 32, 32), lstm_hidden=16)


def test_mixed_stream_cases_decode_greedy_and_lm_apart(speed):
  cases = speed._parse_args([]).cases.split(",")  # pylint: disable=protected-access
  assert "infer_mixed" in cases and "infer_mixed_lm" in cases
  bench = speed.JaxBench(SMALL, batch_size=4)
  # The charset is English (36 characters), whose Recognizer default is lm: the PyTorch
  # comparison must still decode greedily.
  assert bench.recognizer.decoder.name == "greedy"
  assert bench.lm_recognizer.decoder.name == "lm"
  stream = speed.mixed_stream(np.random.default_rng(0), 6)
  greedy = bench.infer_stream(stream)
  lm = bench.infer_stream_lm(stream)
  assert len(greedy) == len(lm) == 6
