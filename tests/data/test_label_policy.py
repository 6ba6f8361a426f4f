"""Labels with characters outside the charset: dropped and counted, or a clear error."""

import numpy as np
import pytest

from configs import tiny
from crnn_jax.data import transforms
from crnn_jax.text.charset import Charset, UnknownCharacterError


def _example(text):
  return dict(image=np.full((20, 60), 200, np.uint8), text=text)


def test_unknown_characters_drop_the_sample_and_count_it():
  config = tiny.get_config()
  charset = Charset.from_config(config.text)
  encode = transforms.EncodeExample(config.data, charset, "drop")
  good, bad = encode(_example("Hello")), encode(_example("héllo!"))
  assert good["mask"] and int(good["dropped"]) == 0 and good["text"] == "hello"
  assert list(good["label"][:5]) == charset.encode("hello")
  assert not bad["mask"] and int(bad["dropped"]) == 1 and int(bad["label_length"]) == 0
  batch = transforms.Collate(config.data)([good, bad])
  np.testing.assert_array_equal(batch["mask"], [True, False])
  assert int(batch["dropped"].sum()) == 1


def test_unknown_characters_can_fail_naming_the_label():
  config = tiny.get_config()
  encode = transforms.EncodeExample(config.data, Charset.from_config(config.text), "error")
  with pytest.raises(UnknownCharacterError, match="'héllo!'"):
    encode(_example("héllo!"))
