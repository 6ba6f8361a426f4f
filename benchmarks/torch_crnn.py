"""The CRNN of `crnn_jax.models.crnn` in PyTorch, for speed comparisons only.

Same layers in the same order (NCHW instead of NHWC): seven convolutions with biases,
BatchNorm after the convolutions of the chosen layout, ReLU, the four max-pools, then two
bidirectional LSTMs, each followed by a linear projection of the concatenated states. Images
are processed at their padded width without masking, which is what PyTorch CRNN code does.

The parameter count equals crnn.pytorch's (8,331,301 for 37 classes): PyTorch's LSTM has two
bias vectors per gate (`b_ih`, `b_hh`) where Flax's has one, 4 x 4 x 256 more numbers.
`load_flax_variables` copies a Flax CRNN's weights (with `b_hh = 0`), so both frameworks
compute the same function (tests/models/test_torch_crnn_speed.py).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

# Same meaning as crnn_jax.models.crnn: (width stride, width padding) of the pools after these
# 0-based convolutions, and the convolutions followed by BatchNorm in each layout.
POOLS = {0: (2, 0), 1: (2, 0), 3: (1, 1), 5: (1, 1)}
BATCH_NORM_LAYOUTS = {"torch": (2, 4, 6), "paper": (4, 5)}


class BidirectionalLSTM(nn.Module):
  """`nn.LSTM(bidirectional=True)` and a linear projection, time-major `[T, B, D]`."""

  def __init__(self, in_features: int, hidden: int, out_features: int):
    super().__init__()
    self.rnn = nn.LSTM(in_features, hidden, bidirectional=True)
    self.projection = nn.Linear(2 * hidden, out_features)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    """`[T, B, D]` -> `[T, B, out_features]`."""
    y, _ = self.rnn(x)
    return self.projection(y)


class CRNN(nn.Module):
  """The CRNN; `forward(images [B, 1, 32, W]) -> logits [T, B, K]` with T = W // 4 + 1."""

  def __init__(self, num_classes: int,
               conv_channels: Sequence[int] = (64, 128, 256, 256, 512, 512, 512),
               batch_norm_layout: str = "torch", lstm_hidden: int = 256, lstm_layers: int = 2):
    super().__init__()
    layers = []
    in_channels = 1
    for i, out_channels in enumerate(conv_channels):
      last = i == len(conv_channels) - 1
      layers.append(nn.Conv2d(in_channels, out_channels, 2 if last else 3, 1, 0 if last else 1))
      if i in BATCH_NORM_LAYOUTS[batch_norm_layout]:
        layers.append(nn.BatchNorm2d(out_channels, eps=1e-5, momentum=0.1))
      layers.append(nn.ReLU(inplace=True))
      if i in POOLS:
        stride, pad = POOLS[i]
        layers.append(nn.MaxPool2d((2, 2), (2, stride), (0, pad)))
      in_channels = out_channels
    self.cnn = nn.Sequential(*layers)
    rnns = []
    for i in range(lstm_layers):
      last = i == lstm_layers - 1
      rnns.append(BidirectionalLSTM(in_channels if i == 0 else lstm_hidden, lstm_hidden,
                                    num_classes if last else lstm_hidden))
    self.rnn = nn.Sequential(*rnns)

  def forward(self, images: torch.Tensor) -> torch.Tensor:
    features = self.cnn(images)  # [B, C, 1, T]
    x = features.squeeze(2).permute(2, 0, 1)  # [T, B, C]
    return self.rnn(x)


def _t(array) -> torch.Tensor:
  return torch.from_numpy(np.array(array, np.float32))


def load_flax_variables(model: CRNN, variables: Mapping[str, Any]) -> None:
  """Copies a `crnn_jax.models.crnn.CRNN`'s params and batch_stats into `model` in place."""
  params, stats = variables["params"], variables.get("batch_stats", {})
  convs = [m for m in model.cnn if isinstance(m, nn.Conv2d)]
  norms = [m for m in model.cnn if isinstance(m, nn.BatchNorm2d)]
  bn_names = sorted((k for k in params["cnn"] if k.startswith("bn")), key=lambda k: int(k[2:]))
  with torch.no_grad():
    for i, conv in enumerate(convs):
      p = params["cnn"][f"conv{i}"]
      conv.weight.copy_(_t(p["kernel"]).permute(3, 2, 0, 1))  # HWIO -> OIHW
      conv.bias.copy_(_t(p["bias"]))
    for name, norm in zip(bn_names, norms):
      norm.weight.copy_(_t(params["cnn"][name]["scale"]))
      norm.bias.copy_(_t(params["cnn"][name]["bias"]))
      norm.running_mean.copy_(_t(stats["cnn"][name]["mean"]))
      norm.running_var.copy_(_t(stats["cnn"][name]["var"]))
    for i, block in enumerate(model.rnn):
      p = params[f"rnn{i}"]
      for suffix, cell in (("", "forward_cell"), ("_reverse", "backward_cell")):
        c = p[cell]
        # PyTorch stacks the gates as (i, f, g, o) rows of [4H, D].
        w_ih = np.concatenate([c[f"i{g}"]["kernel"] for g in "ifgo"], axis=1).T
        w_hh = np.concatenate([c[f"h{g}"]["kernel"] for g in "ifgo"], axis=1).T
        bias = np.concatenate([c[f"h{g}"]["bias"] for g in "ifgo"])
        getattr(block.rnn, f"weight_ih_l0{suffix}").copy_(_t(w_ih))
        getattr(block.rnn, f"weight_hh_l0{suffix}").copy_(_t(w_hh))
        getattr(block.rnn, f"bias_ih_l0{suffix}").copy_(_t(bias))
        getattr(block.rnn, f"bias_hh_l0{suffix}").zero_()
      block.projection.weight.copy_(_t(p["projection"]["kernel"]).T)
      block.projection.bias.copy_(_t(p["projection"]["bias"]))
