"""Importing crnn.pytorch weights into a crnn-jax workdir.

  crnn-jax import-torch crnn.pth --output runs/crnn_pytorch
  crnn-jax predict --checkpoint runs/crnn_pytorch word.png

crnn.pytorch (Shi et al.'s CRNN in PyTorch) saves a state dict with

  cnn.conv{i}.weight [out, in, kh, kw], cnn.conv{i}.bias            i = 0..6
  cnn.batchnorm{i}.weight/bias/running_mean/running_var            i = 2, 4, 6
  rnn.{j}.rnn.weight_ih_l0 [4H, in], weight_hh_l0 [4H, H], bias_ih_l0, bias_hh_l0
      and the same with the suffix _reverse                         j = 0, 1
  rnn.{j}.embedding.weight [out, 2H], rnn.{j}.embedding.bias

(`num_batches_tracked` is ignored), for the alphabet `0123456789abcdefghijklmnopqrstuvwxyz` with
the CTC blank at class 0, and reads grayscale height-32 images scaled to [-1, 1], which is
`crnn_jax.data.preprocess.normalize`. The layers map one to one onto `crnn_jax.models.crnn.CRNN`
with the 'torch' BatchNorm layout (BatchNorm2d's eps 1e-5 and momentum 0.1 are the model's
epsilon 1e-5 and flax momentum 0.9; MaxPool2d((2, 2), (2, 1), (0, 1)) is the model's width-padded
pooling):

  conv kernel   [kh, kw, in, out] = weight.permute(2, 3, 1, 0)
  BatchNorm     scale, bias = weight, bias; batch_stats mean, var = running_mean, running_var
  LSTM          PyTorch's gate rows are i, f, g, o: kernel `i{g}` = weight_ih[g rows].T (no
                bias), `h{g}` = weight_hh[g rows].T with bias bias_ih[g] + bias_hh[g];
                forward_cell from the *_l0 tensors, backward_cell from *_l0_reverse
  projection    kernel = embedding.weight.T, bias = embedding.bias

The file is read with `torch.load(..., weights_only=True)` (no pickled code runs). The output is
a workdir like training writes (config.json with crnn_jax/default_config.py's settings, the
model's
sizes read from the tensors, and an orbax checkpoint at step 0 with a fresh optimizer state), so
`crnn-jax predict`, `crnn-jax eval`, `crnn-jax export` and `Recognizer.from_checkpoint` use it
directly. PyTorch is needed only here (`pip install 'crnn-jax[torch]'`).
"""

from __future__ import annotations

import pathlib
from typing import Any, Mapping

import numpy as np

from crnn_jax import default_config
from crnn_jax.text import charset as charset_lib

CRNN_PYTORCH_ALPHABET = charset_lib.ALPHANUMERIC_36
BATCH_NORM_CONVS = (2, 4, 6)
_GATES = ("i", "f", "g", "o")  # PyTorch's row order in weight_ih / weight_hh.


class TorchImportError(ValueError):
  """The file is not a usable crnn.pytorch state dict (the message names the key)."""


def load_state_dict(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """Reads a crnn.pytorch checkpoint safely and returns its tensors as float32 numpy arrays.

  Args:
    path: a file saved with `torch.save(model.state_dict(), path)`. A dict holding the state
      dict under 'state_dict' or 'model' is accepted too; keys may carry a 'module.' prefix
      (nn.DataParallel).

  Raises:
    FileNotFoundError: no such file.
    ValueError: the file cannot be read with weights_only=True, or is not a dict of tensors.
    ImportError: PyTorch is not installed.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path} does not exist")
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError("importing PyTorch weights needs PyTorch: "
                      "pip install 'crnn-jax[torch]'") from None
  try:
    obj = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # pylint: disable=broad-except
    raise TorchImportError(f"{path}: cannot be read as a PyTorch state dict with "
                           f"weights_only=True ({type(e).__name__}: {str(e)[:300]})") from None
  if isinstance(obj, Mapping) and not any(torch.is_tensor(v) for v in obj.values()):
    for key in ("state_dict", "model"):
      if isinstance(obj.get(key), Mapping):
        obj = obj[key]
        break
  if not isinstance(obj, Mapping):
    raise TorchImportError(f"{path}: expected a state dict (a dict of tensors), got "
                           f"{type(obj).__name__}")
  out = {}
  for key, value in obj.items():
    if not isinstance(key, str):
      raise TorchImportError(f"{path}: state dict key {key!r} is not a string")
    if not torch.is_tensor(value):
      raise TorchImportError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
    name = key[len("module."):] if key.startswith("module.") else key
    if name.endswith("num_batches_tracked"):
      continue
    out[name] = value.detach().to(torch.float32).cpu().numpy()
  return out


def _get(state: Mapping[str, np.ndarray], key: str, shape: tuple[int | None, ...]) -> np.ndarray:
  """state[key], checked against `shape` (None: any size)."""
  if key not in state:
    raise TorchImportError(f"missing tensor {key!r} (is this a crnn.pytorch CRNN state dict?)")
  value = state[key]
  if value.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, value.shape)):
    want = "[" + ", ".join("?" if s is None else str(s) for s in shape) + "]"
    raise TorchImportError(f"tensor {key!r} has shape {list(value.shape)}, expected {want}")
  return value


def convert_state_dict(state: Mapping[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, Any]]:
  """Maps a crnn.pytorch state dict onto crnn-jax variables.

  Args:
    state: name -> float32 array, as from `load_state_dict`.

  Returns:
    variables {'params', 'batch_stats'} of a 'torch'-layout CRNN, and the model sizes
    {'conv_channels', 'lstm_hidden', 'lstm_layers', 'num_classes', 'input_channels'}.

  Raises:
    ValueError: a tensor is missing or misshapen (the message names its key), or unexpected
      keys are present.
  """
  cnn, stats = {}, {}
  channels = []
  in_ch = None
  for i in range(7):
    k = 2 if i == 6 else 3
    weight = _get(state, f"cnn.conv{i}.weight", (None, in_ch, k, k))
    out_ch = weight.shape[0]
    bias = _get(state, f"cnn.conv{i}.bias", (out_ch,))
    if i == 0:
      input_channels = weight.shape[1]
    cnn[f"conv{i}"] = {"kernel": np.ascontiguousarray(weight.transpose(2, 3, 1, 0)),
                       "bias": bias}
    if i in BATCH_NORM_CONVS:
      p = f"cnn.batchnorm{i}."
      cnn[f"bn{i}"] = {"scale": _get(state, p + "weight", (out_ch,)),
                       "bias": _get(state, p + "bias", (out_ch,))}
      stats[f"bn{i}"] = {"mean": _get(state, p + "running_mean", (out_ch,)),
                         "var": _get(state, p + "running_var", (out_ch,))}
    channels.append(out_ch)
    in_ch = out_ch

  params: dict[str, Any] = {"cnn": cnn}
  layers = 0
  while f"rnn.{layers}.rnn.weight_ih_l0" in state:
    layers += 1
  if layers == 0:
    raise TorchImportError("missing tensor 'rnn.0.rnn.weight_ih_l0' (is this a crnn.pytorch CRNN "
                           "state dict?)")
  features = channels[-1]
  hidden = _get(state, "rnn.0.rnn.weight_hh_l0", (None, None)).shape[1]
  num_classes = None
  for j in range(layers):
    p = f"rnn.{j}."
    layer: dict[str, Any] = {}
    for suffix, cell in (("_l0", "forward_cell"), ("_l0_reverse", "backward_cell")):
      w_ih = _get(state, f"{p}rnn.weight_ih{suffix}", (4 * hidden, features))
      w_hh = _get(state, f"{p}rnn.weight_hh{suffix}", (4 * hidden, hidden))
      bias = (_get(state, f"{p}rnn.bias_ih{suffix}", (4 * hidden,))
              + _get(state, f"{p}rnn.bias_hh{suffix}", (4 * hidden,)))
      gates = {}
      for g, name in enumerate(_GATES):
        rows = slice(g * hidden, (g + 1) * hidden)
        gates[f"i{name}"] = {"kernel": np.ascontiguousarray(w_ih[rows].T)}
        gates[f"h{name}"] = {"kernel": np.ascontiguousarray(w_hh[rows].T), "bias": bias[rows]}
      layer[cell] = gates
    emb = _get(state, f"{p}embedding.weight", (None, 2 * hidden))
    layer["projection"] = {"kernel": np.ascontiguousarray(emb.T),
                           "bias": _get(state, f"{p}embedding.bias", (emb.shape[0],))}
    params[f"rnn{j}"] = layer
    features = emb.shape[0]
    num_classes = emb.shape[0]
  known = {f"cnn.conv{i}.{w}" for i in range(7) for w in ("weight", "bias")}
  known |= {f"cnn.batchnorm{i}.{w}" for i in BATCH_NORM_CONVS
            for w in ("weight", "bias", "running_mean", "running_var")}
  known |= {f"rnn.{j}.rnn.{w}{s}" for j in range(layers)
            for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            for s in ("_l0", "_l0_reverse")}
  known |= {f"rnn.{j}.embedding.{w}" for j in range(layers) for w in ("weight", "bias")}
  unknown = sorted(k for k in set(state) - known if not k.endswith("num_batches_tracked"))
  if unknown:
    raise TorchImportError(f"unexpected tensor {unknown[0]!r} ({len(unknown)} unexpected in "
                           "all): only crnn.pytorch's layout with BatchNorm after convolutions "
                           "3, 5 and 7 is supported")
  sizes = dict(conv_channels=tuple(channels), lstm_hidden=int(hidden), lstm_layers=layers,
               num_classes=int(num_classes), input_channels=int(input_channels))
  return {"params": params, "batch_stats": {"cnn": stats}}, sizes


def import_torch(path, output, *, alphabet: str = CRNN_PYTORCH_ALPHABET,
                 overwrite: bool = False) -> pathlib.Path:
  """Converts a crnn.pytorch checkpoint into a crnn-jax workdir.

  Args:
    path: the crnn.pytorch `.pth` state dict.
    output: the workdir to create (config.json, checkpoints/).
    alphabet: the characters of classes 1..K-1 (crnn.pytorch's default: digits and lower-case
      letters).
    overwrite: allow an existing non-empty workdir.

  Returns:
    The workdir.

  Raises:
    ValueError: unusable file (naming the key), alphabet size not matching the output layer, a
      colour (3-channel) model, or a non-empty output directory.
  """
  import jax  # pylint: disable=g-import-not-at-top

  from crnn_jax import checkpointing, run_files, train_lib  # pylint: disable=g-import-not-at-top

  output = pathlib.Path(output)
  if output.exists() and any(output.iterdir()) and not overwrite:
    raise ValueError(f"{output} exists and is not empty")
  variables, sizes = convert_state_dict(load_state_dict(path))
  if sizes["input_channels"] != 1:
    raise TorchImportError(f"tensor 'cnn.conv0.weight' has {sizes['input_channels']} input "
                           "channels; only grayscale (1-channel) models are supported")
  if sizes["num_classes"] != len(alphabet) + 1:
    raise TorchImportError(f"tensor 'rnn.{sizes['lstm_layers'] - 1}.embedding.weight' has "
                           f"{sizes['num_classes']} classes, but the alphabet has {len(alphabet)} "
                           f"characters + blank")
  config = default_config.get_config()
  config.text.charset = alphabet
  config.text.charset_file = ""
  config.text.fold_case = alphabet == alphabet.lower()
  config.model.conv_channels = sizes["conv_channels"]
  config.model.batch_norm_layout = "torch"
  config.model.lstm_hidden = sizes["lstm_hidden"]
  config.model.lstm_layers = sizes["lstm_layers"]
  config.model.dtype = "float32"
  model = run_files.build_module(config)
  state = train_lib.create_train_state(config, model, jax.random.key(0))
  # The converted tree must match the model's exactly (names, shapes).
  template = {"params": state.params, "batch_stats": state.batch_stats}
  mismatches = train_lib.shape_mismatches(template, variables, names=("model", "converted"))
  if mismatches:
    raise TorchImportError(f"the converted weights do not fit the model ({len(mismatches)} "
                           f"arrays differ): " + "; ".join(mismatches[:5]))
  variables = jax.tree.map(lambda t, v: np.asarray(v, t.dtype), template, variables)
  state = state.replace(params=variables["params"], batch_stats=variables["batch_stats"],
                        opt_state=state.tx.init(variables["params"]))
  output.mkdir(parents=True, exist_ok=True)
  run_files.save_config(config, output)
  with checkpointing.make_manager(output) as manager:
    checkpointing.save(manager, state, force=True)
    manager.wait_until_finished()
  return output
