"""Three numpy_nn.py solutions written independently, by hand, each in its own style (tests/test_similarity.py):
they implement the same layers (Linear, ReLU, Sigmoid, SE: forward, backward, params, grads) as the reference and
the student-style loops solution, and none of them may be flagged against any other."""

FUNCTIONAL = '''\
import numpy as np


def _affine(x, w, b):
    return np.dot(x, w) + b


def _sigma(z):
    return np.exp(-np.logaddexp(0.0, -z))


class Linear:
    def __init__(self, input_dim, output_dim):
        bound = 1.0 / np.sqrt(input_dim)
        self.W = np.random.uniform(-bound, bound, (input_dim, output_dim))
        self.b = np.zeros((1, output_dim))
        self.saved = None
        self.grad = {"W": None, "b": None}

    def forward(self, x):
        self.saved = np.array(x, copy=True)
        return _affine(x, self.W, self.b)

    def backward(self, dL_wrt_output):
        xs = self.saved
        self.grad["W"] = np.einsum("ni,nj->nij", xs, dL_wrt_output)
        self.grad["b"] = dL_wrt_output.reshape(len(dL_wrt_output), 1, -1)
        return np.einsum("nj,ij->ni", dL_wrt_output, self.W)

    def params(self):
        return {"W": self.W, "b": self.b}

    def grads(self):
        return dict(self.grad)


class ReLU:
    def __init__(self):
        self.mask = None

    def forward(self, x):
        self.mask = (x > 0).astype(x.dtype)
        return x * self.mask

    def backward(self, dL_wrt_output):
        return dL_wrt_output * self.mask

    def params(self):
        return {}

    def grads(self):
        return {}


class Sigmoid:
    def __init__(self):
        self.out = None

    def forward(self, x):
        self.out = _sigma(x)
        return self.out

    def backward(self, dL_wrt_output):
        local = self.out - np.square(self.out)
        return local * dL_wrt_output

    def params(self):
        return {}

    def grads(self):
        return {}


class SE:
    def __init__(self):
        self.residual = None

    def forward(self, y, y_gt):
        self.residual = np.subtract(y, y_gt)
        return np.square(self.residual)

    def backward(self):
        return np.multiply(self.residual, 2.0)

    def params(self):
        return {}

    def grads(self):
        return {}
'''

BASE_CLASS = '''\
import numpy as np


class Layer:
    """Layers without parameters inherit the empty dictionaries."""

    def params(self):
        return {}

    def grads(self):
        return {}


class Linear(Layer):
    def __init__(self, input_dim, output_dim):
        self.W = np.random.normal(scale=0.1, size=(input_dim, output_dim))
        self.b = np.zeros(output_dim)[np.newaxis]
        self.last_x = None
        self.gW = None
        self.gb = None

    def forward(self, x):
        assert x.ndim == 2 and x.shape[1] == self.W.shape[0]
        self.last_x = x
        return self.b + x @ self.W

    def backward(self, dL_wrt_output):
        n = dL_wrt_output.shape[0]
        self.gW = self.last_x.reshape(n, -1, 1) @ dL_wrt_output.reshape(n, 1, -1)
        self.gb = np.expand_dims(dL_wrt_output, axis=1)
        return (self.W @ dL_wrt_output.T).T

    def params(self):
        return dict(W=self.W, b=self.b)

    def grads(self):
        return dict(W=self.gW, b=self.gb)


class ReLU(Layer):
    def __init__(self):
        self.inp = None

    def forward(self, x):
        self.inp = x
        y = np.array(x, dtype=float)
        y[y <= 0] = 0.0
        return y

    def backward(self, dL_wrt_output):
        g = np.array(dL_wrt_output, dtype=float)
        g[self.inp <= 0] = 0.0
        return g


class Sigmoid(Layer):
    def __init__(self):
        self.inp = None

    def forward(self, x):
        self.inp = x
        return 0.5 + 0.5 * np.tanh(x / 2)

    def backward(self, dL_wrt_output):
        s = self.forward(self.inp)
        return dL_wrt_output * (s * (1 - s))


class SE(Layer):
    def __init__(self):
        self.pair = None

    def forward(self, y, y_gt):
        self.pair = (y, y_gt)
        diff = y - y_gt
        return diff ** 2

    def backward(self):
        y, y_gt = self.pair
        return 2 * y - 2 * y_gt
'''

VERBOSE = '''\
import numpy as np

EPS = 1e-12


class Linear:
    def __init__(self, input_dim, output_dim):
        self.input_dim = input_dim
        self.output_dim = output_dim
        std = np.sqrt(1.0 / (input_dim + output_dim))
        self.W = std * np.random.randn(input_dim, output_dim)
        self.b = np.zeros(shape=(1, output_dim), dtype=np.float64)
        self.cache_input = None
        self.dW = None
        self.db = None

    def forward(self, x):
        batch_size = x.shape[0]
        assert x.shape == (batch_size, self.input_dim), "wrong input shape"
        self.cache_input = x
        result = np.matmul(x, self.W)
        result = result + np.repeat(self.b, batch_size, axis=0)
        return result

    def backward(self, dL_wrt_output):
        batch_size = dL_wrt_output.shape[0]
        x = self.cache_input
        self.dW = np.empty((batch_size, self.input_dim, self.output_dim))
        for sample in range(batch_size):
            column = x[sample].reshape(self.input_dim, 1)
            row = dL_wrt_output[sample].reshape(1, self.output_dim)
            self.dW[sample] = column * row
        self.db = dL_wrt_output[:, None, :] * np.ones((1, 1, self.output_dim))
        grad_input = np.matmul(dL_wrt_output, np.transpose(self.W))
        return grad_input

    def params(self):
        parameters = {}
        parameters["W"] = self.W
        parameters["b"] = self.b
        return parameters

    def grads(self):
        gradients = {}
        gradients["W"] = self.dW
        gradients["b"] = self.db
        return gradients


class ReLU:
    def __init__(self):
        self.cache_input = None

    def forward(self, x):
        self.cache_input = x
        return np.clip(x, a_min=0.0, a_max=None)

    def backward(self, dL_wrt_output):
        derivative = np.greater(self.cache_input, 0).astype(np.float64)
        return np.multiply(dL_wrt_output, derivative)

    def params(self):
        return dict()

    def grads(self):
        return dict()


class Sigmoid:
    def __init__(self):
        self.cache_output = None

    def forward(self, x):
        clipped = np.clip(x, -500, 500)
        self.cache_output = 1.0 / (1.0 + np.exp(-clipped))
        return self.cache_output

    def backward(self, dL_wrt_output):
        s = self.cache_output
        derivative = s * (1.0 - s)
        return dL_wrt_output * derivative

    def params(self):
        return dict()

    def grads(self):
        return dict()


class SE:
    def __init__(self):
        self.y = None
        self.y_gt = None

    def forward(self, y, y_gt):
        assert y.shape == y_gt.shape, "shapes differ"
        self.y = y
        self.y_gt = y_gt
        return np.power(y - y_gt, 2)

    def backward(self):
        return 2.0 * np.subtract(self.y, self.y_gt) + EPS * 0

    def params(self):
        return dict()

    def grads(self):
        return dict()
'''

HONEST = {"functional": FUNCTIONAL, "base_class": BASE_CLASS, "verbose": VERBOSE}
