import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class LinearLayer:
    """Fully connected layer, batch first: W (output_dim, input_dim), b (1, output_dim)."""

    def __init__(self, input_dim, output_dim, device='cpu'):
        self.device = device
        self.W = torch.randn(output_dim, input_dim, device=self.device) * math.sqrt(2.0 / input_dim)
        self.b = torch.randn(1, output_dim, device=self.device) * math.sqrt(2.0 / input_dim)

    def forward(self, X):
        self.X = X
        return X @ self.W.T + self.b

    def backward(self, dA):
        """Gradients summed over the batch into dW (like W) and db (like b); returns dL/dX."""
        self.dW = dA.T @ self.X
        self.db = dA.sum(dim=0, keepdim=True)
        return dA @ self.W

    def update(self, lr):
        self.W -= lr * self.dW
        self.b -= lr * self.db


class ReLU:
    def forward(self, X):
        self.X = X
        return torch.clamp(X, min=0)

    def backward(self, dA):
        return dA * (self.X > 0)

    def update(self, lr):
        pass


class Softmax:
    """Row-wise softmax layer (the last layer of the network; its gradient is folded into backprop)."""

    def forward(self, X):
        shifted = X - X.max(dim=1, keepdim=True).values
        e = torch.exp(shifted)
        self.Y = e / e.sum(dim=1, keepdim=True)
        return self.Y

    def backward(self, dA):
        return self.Y * (dA - (dA * self.Y).sum(dim=1, keepdim=True))

    def update(self, lr):
        pass


class NeuralNetwork:
    """Feed-forward network of LinearLayer, ReLU and a final Softmax; (batch, 784) -> (batch, 47)."""

    def __init__(self, device='cpu', seed=42):
        self.device = device
        torch.manual_seed(seed)
        self.layers = [LinearLayer(784, 512, device=self.device), ReLU(),
                       LinearLayer(512, 47, device=self.device), Softmax()]

    def forward(self, X, eval=False):
        """The logits (all layers but the final Softmax); the probabilities when eval is True."""
        for layer in self.layers[:-1]:
            X = layer.forward(X)
        return self.layers[-1].forward(X) if eval else X

    def softmax(self, X):
        """Softmax of each row of a (batch_size, n_classes) tensor."""
        e = torch.exp(X - X.max(dim=1, keepdim=True).values)
        return e / e.sum(dim=1, keepdim=True)

    def cross_entropy(self, logits, Y):
        """Mean cross-entropy over the batch for one-hot targets."""
        log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        return -(Y * log_probs).sum(dim=1).mean()

    def get_accuracy(self, logits, Y):
        return (logits.argmax(dim=1) == Y.argmax(dim=1)).float().mean()

    def backprop(self, logits, Y):
        """dL/dlogits = (softmax(logits) - Y) / batch_size, propagated through all layers but the Softmax."""
        dA = (self.softmax(logits) - Y) / logits.shape[0]
        for layer in reversed(self.layers[:-1]):
            dA = layer.backward(dA)

    def data_shaper(self, loader, num_classes=47):
        for xb, yb in loader:
            X_batch = xb.flatten(start_dim=1)
            Y_batch = torch.eye(num_classes, dtype=torch.float32, device=self.device)[yb]
            yield X_batch, Y_batch

    def train(self, train_loader, val_loader, epochs=100, learning_rate=0.001, verbose=True):
        loss_history = []
        accuracy_history = []
        for i in range(epochs):
            for X_batch, Y_batch in self.data_shaper(train_loader):
                logits = self.forward(X_batch)
                self.backprop(logits, Y_batch)
                for layer in self.layers:
                    layer.update(learning_rate)
            loss = accuracy = float('nan')
            for X_batch, Y_batch in self.data_shaper(val_loader):
                Y_hat_full = self.forward(X_batch)
                loss = self.cross_entropy(Y_hat_full, Y_batch)
                accuracy = self.get_accuracy(Y_hat_full, Y_batch)
            loss_history.append(loss)
            accuracy_history.append(accuracy)
            if verbose and i % 10 == 0:
                print(f'Epoch {i + 1}/{epochs} loss: {loss:.5f} accuracy: {accuracy:.5f}')
        return {'loss_history': loss_history, 'accuracy_history': accuracy_history}


class FFN(nn.Module):
    def __init__(self, num_classes=47):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = x.flatten(start_dim=1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class CNN(nn.Module):
    def __init__(self, num_classes=47):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(start_dim=1)))
        return F.log_softmax(self.fc2(x), dim=1)


class ConvolutionalLayer:
    """2D convolution (no padding, stride 1) with im2col: W (out, in * k * k), b (out,)."""

    def __init__(self, in_channels, out_channels, kernel_size, device='cpu', dtype=torch.float32):
        self.input_channels = in_channels
        self.output_channels = out_channels
        self.kernel_size = kernel_size
        self.device = torch.device(device)
        self.dtype = dtype
        self.flattened_kernels_length = self.input_channels * kernel_size * kernel_size
        self.W = torch.randn(out_channels, self.flattened_kernels_length, device=self.device,
                             dtype=self.dtype) * math.sqrt(2.0 / self.flattened_kernels_length)
        self.b = torch.zeros(out_channels, device=self.device, dtype=self.dtype)
        self._X_shape = None
        self._cols = None

    def forward(self, X):
        batch_size, input_channels, input_height, input_width = X.shape
        output_height = input_height - self.kernel_size + 1
        output_width = input_width - self.kernel_size + 1
        cols = F.unfold(X, self.kernel_size).transpose(1, 2).reshape(-1, self.flattened_kernels_length)
        Z = cols @ self.W.T + self.b
        Z = Z.reshape(batch_size, output_height, output_width, self.output_channels).permute(0, 3, 1, 2)
        self._X_shape = X.shape
        self._cols = cols
        return Z

    def backward(self, dA):
        batch_size, input_channels, input_height, input_width = self._X_shape
        output_height, output_width = dA.shape[2], dA.shape[3]
        flattened_output_length = output_height * output_width
        dZ = dA.permute(0, 2, 3, 1).reshape(-1, self.output_channels)
        self.dW = dZ.T @ self._cols
        self.db = dZ.sum(dim=0)
        dcols = (dZ @ self.W).reshape(batch_size, flattened_output_length, -1).transpose(1, 2)
        dX = F.fold(dcols, (input_height, input_width), self.kernel_size)
        return dX

    def update(self, lr):
        self.W -= lr * self.dW
        self.b -= lr * self.db


class MaxPoolingLayer:
    """Non-overlapping max pooling with a square window."""

    def __init__(self, kernel_size=2):
        self.kernel_size = kernel_size
        self._X_shape = None
        self._idx = None

    def forward(self, X):
        batch_size, num_channels, input_height, input_width = X.shape
        k = self.kernel_size
        output_height, output_width = input_height // k, input_width // k
        blocks = X.reshape(batch_size, num_channels, output_height, k, output_width, k)
        blocks = blocks.permute(0, 1, 2, 4, 3, 5).reshape(batch_size, num_channels, output_height, output_width, k * k)
        Y, idx = blocks.max(dim=-1)
        self._X_shape = (batch_size, num_channels, input_height, input_width)
        self._idx = idx.contiguous()
        return Y

    def backward(self, dA):
        batch_size, num_channels, input_height, input_width = self._X_shape
        k = self.kernel_size
        output_height, output_width = input_height // k, input_width // k
        mask = F.one_hot(self._idx, k * k).to(dA.dtype) * dA.unsqueeze(-1)
        mask = mask.reshape(batch_size, num_channels, output_height, output_width, k, k).permute(0, 1, 2, 4, 3, 5)
        dX = mask.reshape(batch_size, num_channels, input_height, input_width)
        return dX

    def update(self, lr):
        pass


class FlattenLayer:
    def __init__(self):
        self.input_shape = None

    def forward(self, X):
        self.input_shape = X.shape
        X_flat = X.reshape(X.shape[0], -1)
        return X_flat

    def backward(self, dY):
        N, C, H, W = self.input_shape
        dX = dY.reshape(N, C, H, W)
        return dX

    def update(self, lr):
        pass
