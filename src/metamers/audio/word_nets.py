"""The audio networks of the paper: the word CNN of Table S2 (after Kell et al. 2018) and its reduced-aliasing twin.

Both take a cochleagram ``[batch, 1, 211, 400]``; TensorFlow "same" padding is reproduced so that every layer has
the paper's shape (``conv_0``: 96 x 71 x 134 = 913,344 features, as Table S1.2 counts). Layer names are the paper's:
``conv_0`` ... ``conv_4`` and ``fc_intermediate`` are the ReLU outputs, ``logits`` the classifier; the
reduced-aliasing network adds ``pool_0`` and ``pool_1`` (the first hanning pooling after ``conv_0`` and ``conv_1``,
which have the features of the standard network's ``conv_0`` and ``conv_1``).

``width`` scales every channel count and the fully-connected width (1.0 is the paper's size, 94M parameters in the
first fully-connected layer alone); the zoo's CPU default is ``width=0.25``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ARCHITECTURES",
    "TASKS",
    "HanningPool",
    "SamePad",
    "WordNet",
    "reduced_aliasing_word_net",
    "standard_word_net",
]

TASKS = ("word", "background", "joint")
ARCHITECTURES = ("standard", "reduced_aliasing")


class SamePad(nn.Module):
    """TensorFlow's "same" padding for a 2-d kernel and stride (asymmetric when needed): output = ceil(input / stride).

    Examples
    --------
    >>> SamePad((7, 14), (3, 3))(torch.zeros(1, 1, 211, 400)).shape
    torch.Size([1, 1, 217, 413])
    """

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int], value: float = 0.0) -> None:
        super().__init__()
        self.kernel, self.stride, self.value = tuple(kernel), tuple(stride), value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel), reversed(self.stride), strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads, value=self.value)


class HanningPool(nn.Module):
    """Weighted average pooling with a 2-d Hann kernel (summing to one), "same" padding: a low-pass before the stride.

    The kernel is the outer product of two 1-d Hann windows, so it is applied as two 1-d passes (same result, a
    fraction of the cost).

    Examples
    --------
    >>> HanningPool(channels=2, size=8, stride=2)(torch.ones(1, 2, 36, 67)).shape
    torch.Size([1, 2, 18, 34])
    """

    def __init__(self, channels: int, size: int, stride: int) -> None:
        super().__init__()
        w = torch.hann_window(size + 2, periodic=False)[1:-1]
        w = w / w.sum()
        self.register_buffer("kernel_rows", w.view(1, 1, size, 1).expand(channels, 1, size, 1).clone())
        self.register_buffer("kernel_cols", w.view(1, 1, 1, size).expand(channels, 1, 1, size).clone())
        self.pad = SamePad((size, size), (stride, stride))
        self.stride, self.channels, self.size = stride, channels, size

    @property
    def kernel(self) -> torch.Tensor:
        """The 2-d kernel, ``[channels, 1, size, size]``."""
        return self.kernel_rows * self.kernel_cols

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(self.pad(x), self.kernel_rows, stride=(self.stride, 1), groups=self.channels)
        return F.conv2d(x, self.kernel_cols, stride=(1, self.stride), groups=self.channels)


class _InputConv(nn.Sequential):
    """``conv_0`` of a one-channel input behind its batch norm: the norm's scale and shift move past the convolution.

    ``conv(a * x + b) = a * conv(x) + b * conv(1)`` (the "same" padding pads the normalised input with zeros, so the
    second term is the convolution of a padded field of ones). The result is the same as normalising first; the
    gain is in training, where the input needs no gradient: the first convolution then computes only its weights'
    gradient, not a full-resolution gradient for the two scalars of the norm (a third of the reduced-aliasing network's
    training time). Children and parameter names are those of :func:`_conv` (``0`` pad, ``1`` conv, ``2`` ReLU).
    """

    def forward(self, x: torch.Tensor, norm: nn.BatchNorm2d | None = None) -> torch.Tensor:
        if norm is None:
            return super().forward(x)
        pad, conv, relu = self[0], self[1], self[2]
        if norm.training and norm.num_batches_tracked is not None:
            norm.num_batches_tracked.add_(1)
        momentum = norm.momentum if norm.momentum is not None else 1.0 / float(norm.num_batches_tracked or 1)
        use_batch = norm.training or norm.running_mean is None
        xhat = F.batch_norm(
            x, norm.running_mean, norm.running_var, None, None, use_batch, momentum if norm.training else 0.0, norm.eps
        )
        ones = pad(torch.ones_like(x[:1]))
        y = conv._conv_forward(pad(xhat), conv.weight, None)
        y = y * norm.weight.view(1, 1, 1, 1) + conv._conv_forward(ones, conv.weight, None) * norm.bias.view(1, 1, 1, 1)
        return relu(y + conv.bias.view(1, -1, 1, 1))


def _conv(cin: int, cout: int, kernel: tuple[int, int], stride: tuple[int, int]) -> nn.Sequential:
    """Convolution with "same" padding followed by its ReLU: the module's output is the paper's ``conv_k``."""
    return nn.Sequential(SamePad(kernel, stride), nn.Conv2d(cin, cout, kernel, stride), nn.ReLU())


def _max_pool(kernel: tuple[int, int], stride: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(SamePad(kernel, stride, value=-math.inf), nn.MaxPool2d(kernel, stride))


class _AvgPoolSame(nn.Module):
    """TensorFlow's "same" average pooling: the mean over the window's valid elements."""

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__()
        self.pad = SamePad(kernel, stride)
        self.pool = nn.AvgPool2d(kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = torch.ones_like(x[:1, :1])
        return self.pool(self.pad(x)) / self.pool(self.pad(ones)).clamp_min(1e-12)


class WordNet(nn.Module):
    """The five-layer audio CNN, standard (Table S2) or reduced-aliasing (Table S3), with one or two heads.

    Parameters
    ----------
    n_classes : int
        Classes of the main head, ``logits`` (words for the word and joint tasks, backgrounds for the background task).
    architecture : {"standard", "reduced_aliasing"}
    width : float
        Scale of the channel counts and the fully-connected width; 1.0 is the paper's network.
    n_background : int
        Classes of the second head, ``logits_background`` (joint task only; 0 for none).
    input_shape : (int, int)
        Cochleagram ``(channels, frames)``.

    Examples
    --------
    >>> net = WordNet(10, width=0.125).eval()
    >>> net(torch.zeros(2, 1, 211, 400)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        n_classes: int,
        architecture: str = "standard",
        width: float = 1.0,
        n_background: int = 0,
        input_shape: tuple[int, int] = (211, 400),
    ) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}.")
        if not 0 < width <= 4:
            raise ValueError(f"width must be in (0, 4], got {width}.")
        self.architecture, self.width = architecture, width
        c = [max(1, round(n * width)) for n in (96, 256, 512, 1024, 512)]
        fc = max(1, round(4096 * width))
        self.bn_0 = nn.BatchNorm2d(1)
        if architecture == "standard":
            self.conv_0 = _InputConv(*_conv(1, c[0], (7, 14), (3, 3)))
            self.pool_0 = _max_pool((2, 5), (2, 2))
            self.bn_1 = nn.BatchNorm2d(c[0])
            self.conv_1 = _conv(c[0], c[1], (4, 8), (2, 2))
            self.pool_1 = _max_pool((2, 5), (2, 2))
        else:
            self.conv_0 = _InputConv(*_conv(1, c[0], (7, 14), (1, 1)))
            self.pool_0 = HanningPool(c[0], 12, 3)
            self.pool_0_1 = HanningPool(c[0], 8, 2)
            self.bn_1 = nn.BatchNorm2d(c[0])
            self.conv_1 = _conv(c[0], c[1], (4, 8), (1, 1))
            self.pool_1 = HanningPool(c[1], 8, 2)
            self.pool_1_1 = HanningPool(c[1], 8, 2)
        self.bn_2 = nn.BatchNorm2d(c[1])
        self.conv_2 = _conv(c[1], c[2], (2, 5), (1, 1))
        self.conv_3 = _conv(c[2], c[3], (2, 5), (1, 1))
        self.conv_4 = _conv(c[3], c[4], (2, 5), (1, 1))
        self.avgpool = _AvgPoolSame((2, 5), (2, 2))
        with torch.no_grad():
            flat = self._features(torch.zeros(1, 1, *input_shape)).numel()
        self.fc_intermediate = nn.Sequential(nn.Linear(flat, fc), nn.ReLU())
        self.dropout = nn.Dropout(0.5)
        self.logits = nn.Linear(fc, n_classes)
        self.logits_background = nn.Linear(fc, n_background) if n_background else None
        self.input_shape = tuple(input_shape)
        # He initialisation for the layers followed by a ReLU: with PyTorch's default the signal shrinks ~3x per layer
        # through the five convolutions and the fully-connected layer, and training stalls at chance for epochs.
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear) and m is not self.logits and m is not self.logits_background:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_0(x, self.bn_0)  # = conv_0(bn_0(x)), faster to train (see _InputConv)
        x = self.pool_0(x)
        if self.architecture == "reduced_aliasing":
            x = self.pool_0_1(x)
        x = self.pool_1(self.conv_1(self.bn_1(x)))
        if self.architecture == "reduced_aliasing":
            x = self.pool_1_1(x)
        x = self.conv_4(self.conv_3(self.conv_2(self.bn_2(x))))
        return self.avgpool(x)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """``fc_intermediate`` after dropout: what the heads read."""
        return self.dropout(self.fc_intermediate(torch.flatten(self._features(x), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.embedding(x))

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Both heads' logits (the second is None without a background head): for training the joint task."""
        h = self.embedding(x)
        return self.logits(h), (self.logits_background(h) if self.logits_background is not None else None)


def standard_word_net(n_classes: int, width: float = 1.0, n_background: int = 0) -> WordNet:
    """Table S2's network.

    Examples
    --------
    >>> standard_word_net(5, width=0.125).conv_1[1].out_channels
    32
    """
    return WordNet(n_classes, "standard", width, n_background)


def reduced_aliasing_word_net(n_classes: int, width: float = 1.0, n_background: int = 0) -> WordNet:
    """Table S3's network (hanning pooling in place of max pooling and strided convolutions).

    Examples
    --------
    >>> isinstance(reduced_aliasing_word_net(5, width=0.125).pool_0, HanningPool)
    True
    """
    return WordNet(n_classes, "reduced_aliasing", width, n_background)
