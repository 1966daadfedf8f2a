"""Simple neural-network layers in pure NumPy (RPZ assignment, part 1).

Every layer has ``forward``, ``backward``, ``params`` and ``grads``. Batches are stacked along axis 0.
Parameter gradients are kept per sample (leading batch axis); the training loop averages them.
"""

from __future__ import annotations

import numpy as np


class Linear:
    """Fully-connected layer ``f(x) = x W + b``."""

    def __init__(self, input_dim: int, output_dim: int, rng: np.random.Generator | None = None) -> None:
        """
        :param input_dim: number of input features
        :param output_dim: number of output features
        :param rng: random generator for the weight initialisation (a fresh one if None)
        """
        rng = np.random.default_rng() if rng is None else rng
        # He initialisation suits the ReLU layers this layer is usually followed by.
        self.W: np.ndarray = rng.normal(0.0, np.sqrt(2.0 / input_dim), size=(input_dim, output_dim))
        self.b: np.ndarray = np.zeros((1, output_dim))
        self.x: np.ndarray | None = None
        self.dL_wrt_W: np.ndarray | None = None
        self.dL_wrt_b: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """
        :param x: layer input, shape (B, input_dim)
        :return: layer output, shape (B, output_dim)
        """
        self.x = x
        return x @ self.W + self.b

    def backward(self, dL_wrt_output: np.ndarray) -> np.ndarray:
        """
        Computes the gradients w.r.t. the input and (per sample) w.r.t. W and b.

        :param dL_wrt_output: gradient of the loss w.r.t. the layer output, shape (B, output_dim)
        :return: gradient of the loss w.r.t. the layer input, shape (B, input_dim)

        Sets ``self.dL_wrt_W`` of shape (B, input_dim, output_dim) and ``self.dL_wrt_b`` of shape (B, 1, output_dim).
        """
        assert self.x is not None, "forward must be called before backward"
        self.dL_wrt_W = self.x[:, :, np.newaxis] * dL_wrt_output[:, np.newaxis, :]
        self.dL_wrt_b = dL_wrt_output[:, np.newaxis, :].copy()
        return dL_wrt_output @ self.W.T

    def params(self) -> dict[str, np.ndarray]:
        """The layer's parameters (the arrays themselves, so in-place updates take effect)."""
        return {"W": self.W, "b": self.b}

    def grads(self) -> dict[str, np.ndarray | None]:
        """Per-sample gradients of the loss w.r.t. the parameters, computed by ``backward``."""
        return {"W": self.dL_wrt_W, "b": self.dL_wrt_b}


class ReLU:
    """Rectified linear unit ``f(x) = max(0, x)``, for inputs of any shape."""

    def __init__(self) -> None:
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """
        :param x: layer input, any shape
        :return: layer output, same shape as ``x``
        """
        self.x = x
        return np.maximum(x, 0.0)

    def backward(self, dL_wrt_output: np.ndarray) -> np.ndarray:
        """
        :param dL_wrt_output: gradient of the loss w.r.t. the layer output, same shape as the input
        :return: gradient of the loss w.r.t. the layer input
        """
        assert self.x is not None, "forward must be called before backward"
        return dL_wrt_output * (self.x > 0)

    def params(self) -> dict[str, np.ndarray]:
        return {}

    def grads(self) -> dict[str, np.ndarray]:
        return {}


class Sigmoid:
    """Logistic sigmoid ``f(x) = 1 / (1 + exp(-x))``, for inputs of any shape."""

    def __init__(self) -> None:
        self.y: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """
        :param x: layer input, any shape
        :return: layer output, same shape as ``x``
        """
        x = np.asarray(x, dtype=float)
        # Numerically stable: exp is only ever taken of non-positive numbers.
        e = np.exp(-np.abs(x))
        self.y = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return self.y

    def backward(self, dL_wrt_output: np.ndarray) -> np.ndarray:
        """
        :param dL_wrt_output: gradient of the loss w.r.t. the layer output, same shape as the input
        :return: gradient of the loss w.r.t. the layer input
        """
        assert self.y is not None, "forward must be called before backward"
        return dL_wrt_output * self.y * (1.0 - self.y)

    def params(self) -> dict[str, np.ndarray]:
        return {}

    def grads(self) -> dict[str, np.ndarray]:
        return {}


class SE:
    """Squared-error loss ``L(y, y_gt) = (y - y_gt)**2``, elementwise."""

    def __init__(self) -> None:
        self.y: np.ndarray | None = None
        self.y_gt: np.ndarray | None = None

    def forward(self, y: np.ndarray, y_gt: np.ndarray) -> np.ndarray:
        """
        :param y: network output, any shape
        :param y_gt: ground truth, same shape as ``y``
        :return: elementwise loss, same shape as ``y``
        """
        self.y = y
        self.y_gt = y_gt
        return (y - y_gt) ** 2

    def backward(self) -> np.ndarray:
        """
        :return: gradient of the loss w.r.t. ``y``, same shape as ``y``
        """
        assert self.y is not None and self.y_gt is not None, "forward must be called before backward"
        return 2.0 * (self.y - self.y_gt)

    def params(self) -> dict[str, np.ndarray]:
        return {}

    def grads(self) -> dict[str, np.ndarray]:
        return {}
