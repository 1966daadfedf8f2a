import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import Dataset

EPS = 1.0e-7

# Hyperparameters
D = 64  # input dimension
M = 256  # the number of neurons in the hidden layers
K = 10  # the number of labels
num_kernels = 32  # the number of kernels for CNN
lr = 1e-3  # learning rate
wd = 1e-5  # weight decay
num_epochs = 1000  # max. number of epochs
max_patience = 20  # early stopping


class Digits(Dataset):
    """Scikit-Learn Digits dataset."""

    def __init__(self, mode='train', transforms=None):
        digits = load_digits()
        if mode == 'train':
            self.data = digits.data[:1000].astype(np.float32)
            self.targets = digits.target[:1000]
        elif mode == 'val':
            self.data = digits.data[1000:1350].astype(np.float32)
            self.targets = digits.target[1000:1350]
        else:
            self.data = digits.data[1350:].astype(np.float32)
            self.targets = digits.target[1350:]
        self.transforms = transforms

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        sample_x = self.data[idx]
        sample_y = self.targets[idx]
        if self.transforms:
            sample_x = self.transforms(sample_x)
        return (sample_x, sample_y)


class Reshape(nn.Module):
    """Reshapes an input (matrix -> tensor)."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        assert x.shape[1] == np.prod(self.size)
        return x.view(x.shape[0], *self.size)


class Flatten(nn.Module):
    """Flattens an input (tensor -> matrix) by blending dimensions beyond the batch size."""

    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x.view(x.shape[0], -1)


class ClassifierNeuralNet(nn.Module):
    """A classifier parameterized by a neural network (classnet) that outputs log-probabilities."""

    def __init__(self, classnet):
        super().__init__()
        self.classnet = classnet
        self.nll = nn.NLLLoss(reduction='none')

    def classify(self, x):
        y_pred = torch.argmax(self.classnet(x), dim=1)
        return y_pred

    def forward(self, x, y, reduction='avg'):
        loss = self.nll(self.classnet(x), y)
        if reduction == 'sum':
            return loss.sum()
        return loss.mean()


def make_mlp():
    """The MLP classnet: (B, 64) -> (B, 10) log-probabilities."""
    return nn.Sequential(
        nn.Linear(D, M),
        nn.Sigmoid(),
        nn.Linear(M, K),
        nn.LogSoftmax(dim=1),
    )


def make_cnn():
    """The CNN classnet: (B, 64) -> (1, 8, 8) images -> (B, 10) log-probabilities."""
    return nn.Sequential(
        Reshape((1, 8, 8)),
        nn.Conv2d(1, num_kernels, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(num_kernels, num_kernels * 2, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        Flatten(),
        nn.Linear(num_kernels * 8, M),
        nn.ReLU(),
        nn.Linear(M, K),
        nn.LogSoftmax(dim=1),
    )


def evaluation(test_loader, name=None, model_best=None, epoch=None):
    """Mean NLL and classification error of a model on a loader."""
    if model_best is None:
        model_best = ClassifierNeuralNet(make_cnn() if 'cnn' in name else make_mlp())
        model_best.load_state_dict(torch.load(name + '.pt', weights_only=True))
    model_best.eval()
    loss_test = 0.0
    loss_error = 0.0
    N = 0.0
    for test_batch, test_targets in test_loader:
        loss_test = loss_test + model_best.forward(test_batch, test_targets, reduction='sum').item()
        y_pred = model_best.classify(test_batch)
        loss_error = loss_error + (1.0 - 1.0 * (y_pred == test_targets)).sum().item()
        N = N + test_batch.shape[0]
    return loss_test / N, loss_error / N


def training(name, max_patience, num_epochs, model, optimizer, training_loader, val_loader):
    """Train with early stopping; the best model's state_dict is saved to name + '.pt'."""
    nll_val = []
    error_val = []
    best_nll = 1000.0
    patience = 0
    for e in range(num_epochs):
        model.train()
        for batch, targets in training_loader:
            loss = model.forward(batch, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        loss_e, error_e = evaluation(val_loader, model_best=model, epoch=e)
        nll_val.append(loss_e)
        error_val.append(error_e)
        if e == 0 or loss_e < best_nll:
            torch.save(model.state_dict(), name + '.pt')
            best_nll = loss_e
            patience = 0
        else:
            patience = patience + 1
        if patience > max_patience:
            break
    return np.asarray(nll_val), np.asarray(error_val)
