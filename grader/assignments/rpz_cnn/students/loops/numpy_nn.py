# RPZ - Convolutional Neural Networks, part 1: layers in pure numpy.
# Student-style solution written from the handout only: explicit loops over the batch, the plotting
# helpers the notebook imports with `from numpy_nn import *`, and matplotlib imported at the top.
import matplotlib.pyplot as plt
import numpy as np


class Linear:
    """Fully connected layer f(x) = x W + b (PyTorch style, not W x + b)."""

    def __init__(self, input_dim, output_dim):
        self.W = np.random.randn(input_dim, output_dim) / 100
        self.b = np.random.randn(1, output_dim) / 100
        self.inp = None
        self.dL_wrt_W = None
        self.dL_wrt_b = None

    def forward(self, x):
        # x: (batch, input_dim) -> (batch, output_dim)
        self.inp = x.copy()
        n = x.shape[0]
        out = np.zeros((n, self.W.shape[1]))
        for i in range(n):
            out[i, :] = np.dot(x[i, :], self.W) + self.b[0, :]
        return out

    def backward(self, dL_wrt_output):
        # dL_wrt_output: (batch, output_dim)
        n, d_in = self.inp.shape
        d_out = self.W.shape[1]
        self.dL_wrt_W = np.zeros((n, d_in, d_out))
        self.dL_wrt_b = np.zeros((n, 1, d_out))
        dL_wrt_x = np.zeros((n, d_in))
        for i in range(n):
            # one gradient per sample, the training loop takes the mean over the batch
            self.dL_wrt_W[i] = np.outer(self.inp[i], dL_wrt_output[i])
            self.dL_wrt_b[i, 0] = dL_wrt_output[i]
            dL_wrt_x[i] = np.dot(self.W, dL_wrt_output[i])
        return dL_wrt_x

    def params(self):
        return {"W": self.W, "b": self.b}

    def grads(self):
        return {"W": self.dL_wrt_W, "b": self.dL_wrt_b}


class ReLU:
    def __init__(self):
        self.positive = None

    def forward(self, x):
        self.positive = x > 0
        return np.where(self.positive, x, 0.0)

    def backward(self, dL_wrt_output):
        return np.where(self.positive, dL_wrt_output, 0.0)

    def params(self):
        return {}

    def grads(self):
        return {}


class Sigmoid:
    def __init__(self):
        self.s = None

    def forward(self, x):
        self.s = 1.0 / (1.0 + np.exp(-x))
        return self.s

    def backward(self, dL_wrt_output):
        return dL_wrt_output * self.s * (1 - self.s)

    def params(self):
        return {}

    def grads(self):
        return {}


class SE:
    """Squared error L(y, y_gt) = (y - y_gt)^2, elementwise (the training loop takes the mean)."""

    def __init__(self):
        self.diff = None

    def forward(self, y, y_gt):
        self.diff = y - y_gt
        return np.square(self.diff)

    def backward(self):
        return 2 * self.diff

    def params(self):
        return {}

    def grads(self):
        return {}


# ---------------------------------------------------------------- helpers the notebook uses


def load_data(path, class_a, class_b):
    """Two MNIST classes from an npz with x_train, y_train, x_test, y_test; labels 0 (class_a) / 1 (class_b)."""
    data = np.load(path)
    out = []
    for split in ("train", "test"):
        x, y = data["x_" + split], data["y_" + split]
        keep = (y == class_a) | (y == class_b)
        x = x[keep].reshape(keep.sum(), -1) / 255.0
        y = (y[keep] == class_b).astype(int).reshape(-1, 1)
        out.append((x, y))
    return out[0], out[1]


def visualize_xy(xys, legend, title="", xlabel="", ylabel="", axis=None, grid=False, linestyle="b",
                 save_filepath=None, **kwargs):
    plt.figure()
    for x, y in xys:
        plt.plot(x, y, linestyle)
    plt.legend(legend)
    plt.title(title)
    plt.xlabel(xlabel)
    plt.ylabel(ylabel)
    if axis:
        plt.axis(axis)
    plt.grid(grid)
    if save_filepath:
        plt.savefig(save_filepath)
    plt.show()


def visualize_data(curves, legend, xlabel="", ylabel="", save_filepath=None, hline=None, hlinelabel=None):
    plt.figure()
    for c in curves:
        plt.plot(c)
    if hline is not None:
        plt.axhline(hline, color="r", linestyle="--", label=hlinelabel)
    plt.legend(legend + ([hlinelabel] if hlinelabel else []))
    plt.xlabel(xlabel)
    plt.ylabel(ylabel)
    if save_filepath:
        plt.savefig(save_filepath)
    plt.show()


def show_classification(images, labels, letters):
    n = images.shape[2]
    cols = int(np.ceil(np.sqrt(n)))
    for i in range(n):
        plt.subplot(cols, cols, i + 1)
        plt.imshow(images[:, :, i], cmap="gray")
        plt.title(letters[labels[i]])
        plt.axis("off")
