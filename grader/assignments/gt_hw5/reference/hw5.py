import time

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import Dataset


## Problem 3 (b)
class Digits(Dataset):
    def __init__(self, X, y):
        """Stores the data matrix X (num_samples, 64) and the labels y (num_samples,) of load_digits."""
        self.X = X
        self.y = y

    def __getitem__(self, index):
        """One example as a float tensor of shape (1, 8, 8) and its label as a long tensor."""
        input = torch.tensor(self.X[index], dtype=torch.float).view(1, 8, 8)
        target = torch.tensor(self.y[index], dtype=torch.long)
        return input, target

    def __len__(self):
        return self.X.shape[0]


## Problem 3 (c)
class MySimpleCNN(torch.nn.Module):
    def __init__(self):
        """conv 1->16 (3x3, padding 1), ReLU, conv 16->32 (3x3, padding 1), ReLU, 2x2 max pool, linear 512->10."""
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels=1, out_channels=16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(in_channels=16, out_channels=32, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.fc = nn.Linear(in_features=32 * 4 * 4, out_features=10)

    def forward(self, x):
        """(batch_size, 1, 8, 8) images to (batch_size, 10) scores."""
        x = torch.relu(self.conv1(x))
        x = self.pool(torch.relu(self.conv2(x)))
        x = x.view(-1, 32 * 4 * 4)
        out = self.fc(x)
        return out


## Problem 5 (b-i)
def sigmoid(x):
    """Element-wise sigmoid of a float or an array."""
    return 1 / (1 + np.exp(-x))


## Problem 5 (b-ii)
def softmax(x):
    """Softmax of each row of an (N, dim) array."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


## Problem 5 (b-iii)
def init_layers(batch_size, layer_sizes):
    """Empty arrays to hold the hidden layer outputs."""
    hidden_layers = [np.empty((batch_size, layer_size)) for layer_size in layer_sizes]
    return hidden_layers


def init_weights(layer_sizes, fix_seed=False):
    """Weight matrices drawn uniformly from [-1, 1]."""
    weights = list()
    for i in range(layer_sizes.shape[0] - 1):
        if fix_seed:
            rng = np.random.default_rng(seed=8803 if i == 1 else 4803)
            weights.append(rng.uniform(-1, 1, size=[layer_sizes[i], layer_sizes[i + 1]]))
        else:
            weights.append(np.random.uniform(-1, 1, size=[layer_sizes[i], layer_sizes[i + 1]]))
    return weights


def feed_forward(batch, hidden_layers, weights):
    """Forward pass: every layer is sigmoid(h @ W); the last layer's output goes through softmax."""
    h = batch
    hidden_layers[0] = h
    for i, weight in enumerate(weights):
        h = sigmoid(np.dot(h, weight))
        hidden_layers[i + 1] = h
    output = softmax(h)
    return output, hidden_layers


## Problem 5 (c-i)
def sigmoid_prime(sigmoid_out):
    """Derivative of the sigmoid from its output."""
    return sigmoid_out * (1 - sigmoid_out)


## Problem 5 (c-ii)
def back_prop(output, batch_y, hidden_layers, weights, batch_size, lr):
    """One SGD step on the weights (updated in place and returned)."""
    delta_t = (output - batch_y) * sigmoid_prime(hidden_layers[-1])
    for i in range(1, len(weights) + 1):
        weights[-i] -= lr * (hidden_layers[-i - 1].T.dot(delta_t)) / batch_size
        if i < len(weights):
            delta_t = delta_t.dot(weights[-i].T) * sigmoid_prime(hidden_layers[-i - 1])
    return weights


## Problem 5 (d)
class MLP:

    def __init__(self, X, Y, X_val, Y_val, L=1, N_l=128):
        self.X = np.concatenate((X, np.ones((X.shape[0], 1))), axis=1)
        self.Y = np.squeeze(np.eye(10)[Y.astype(int).reshape(-1)])
        self.X_val = np.concatenate((X_val, np.ones((X_val.shape[0], 1))), axis=1)
        self.Y_val = np.squeeze(np.eye(10)[Y_val.astype(int).reshape(-1)])
        self.L = L
        self.N_l = N_l
        self.n_samples = self.X.shape[0]
        self.layer_sizes = np.array([self.X.shape[1]] + [N_l] * L + [self.Y.shape[1]])
        self.__init_weights()
        self.train_loss = list()
        self.train_acc = list()
        self.val_loss = list()
        self.val_acc = list()
        self.train_time = list()
        self.tot_time = list()
        self.metrics = [self.train_loss, self.train_acc, self.val_loss, self.val_acc, self.train_time, self.tot_time]

    def __sigmoid(self, x):
        return 1 / (1 + np.exp(-x))

    def __softmax(self, x):
        e = np.exp(x - np.max(x, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True)

    def __loss(self, y_pred, y):
        return ((-np.log(y_pred)) * y).sum(axis=1).mean()

    def __accuracy(self, y_pred, y):
        return np.all(y_pred == y, axis=1).mean()

    def __sigmoid_prime(self, h):
        return h * (1 - h)

    def __to_categorical(self, x):
        categorical = np.zeros((x.shape[0], self.Y.shape[1]))
        categorical[np.arange(x.shape[0]), x.argmax(axis=1)] = 1
        return categorical

    def __init_weights(self):
        self.weights = list()
        for i in range(self.layer_sizes.shape[0] - 1):
            self.weights.append(np.random.uniform(-1, 1, size=[self.layer_sizes[i], self.layer_sizes[i + 1]]))

    def __init_layers(self, batch_size):
        self.__h = [np.empty((batch_size, layer)) for layer in self.layer_sizes]

    def __feed_forward(self, batch):
        h_l = batch
        self.__h[0] = h_l
        for i, weights in enumerate(self.weights):
            h_l = self.__sigmoid(np.dot(h_l, weights))
            self.__h[i + 1] = h_l
        self.__out = self.__softmax(self.__h[-1])

    def __back_prop(self, batch_y):
        delta_t = (self.__out - batch_y) * self.__sigmoid_prime(self.__h[-1])
        for i in range(1, len(self.weights) + 1):
            self.weights[-i] -= self.lr * (self.__h[-i - 1].T.dot(delta_t)) / self.batch_size
            if i < len(self.weights):
                delta_t = delta_t.dot(self.weights[-i].T) * self.__sigmoid_prime(self.__h[-i - 1])

    def predict(self, X):
        X = np.concatenate((X, np.ones((X.shape[0], 1))), axis=1)
        self.__init_layers(X.shape[0])
        self.__feed_forward(X)
        return self.__to_categorical(self.__out)

    def evaluate(self, X, Y):
        prediction = self.predict(X)
        return self.__accuracy(prediction, Y)

    def train(self, batch_size=8, epochs=25, lr=1.0):
        self.lr = lr
        self.batch_size = batch_size
        for epoch in range(epochs):
            start = time.time()
            self.__init_layers(self.batch_size)
            shuffle = np.random.permutation(self.n_samples)
            train_loss = 0
            train_acc = 0
            X_batches = np.array_split(self.X[shuffle], self.n_samples / self.batch_size)
            Y_batches = np.array_split(self.Y[shuffle], self.n_samples / self.batch_size)
            for batch_x, batch_y in zip(X_batches, Y_batches, strict=True):
                self.__feed_forward(batch_x)
                train_loss += self.__loss(self.__out, batch_y)
                train_acc += self.__accuracy(self.__to_categorical(self.__out), batch_y)
                self.__back_prop(batch_y)
            train_loss = train_loss / len(X_batches)
            train_acc = train_acc / len(X_batches)
            self.train_loss.append(train_loss)
            self.train_acc.append(train_acc)
            self.train_time.append(round(time.time() - start, 3))
            self.__init_layers(self.X_val.shape[0])
            self.__feed_forward(self.X_val)
            val_loss = self.__loss(self.__out, self.Y_val)
            val_acc = self.__accuracy(self.__to_categorical(self.__out), self.Y_val)
            self.val_loss.append(val_loss)
            self.val_acc.append(val_acc)
            self.tot_time.append(round(time.time() - start, 3))
            print(f'Epoch {epoch + 1}: loss = {train_loss.round(3)} | acc = {train_acc.round(3)} | '
                  f'val_loss = {val_loss.round(3)} | val_acc = {val_acc.round(3)}')


## Problem 6
def my_convolution(input_numpy, kernel_numpy):
    """torch.conv2d with default settings (no padding, stride 1) in numpy: (B, C, H, W) * (O, C, kh, kw)."""
    batch_size, input_channels, input_height, input_width = input_numpy.shape
    output_channels, kernel_input_channels, kernel_height, kernel_width = kernel_numpy.shape
    output_height = input_height - kernel_height + 1
    output_width = input_width - kernel_width + 1
    windows = np.lib.stride_tricks.sliding_window_view(input_numpy, (kernel_height, kernel_width), axis=(2, 3))
    my_conv_output = np.einsum('bchwij,ocij->bohw', windows, kernel_numpy)
    assert my_conv_output.shape == (batch_size, output_channels, output_height, output_width)
    return my_conv_output
