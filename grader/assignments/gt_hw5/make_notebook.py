"""Build hw5.ipynb (the reference submission) from hw5.py and the notebook's own top-level cells.

    python -m grader.assignments.gt_hw5.make_notebook
"""

from __future__ import annotations

from pathlib import Path

from grader.assignments.notebooks import render, write

HERE = Path(__file__).resolve().parent / "reference"
BEFORE = (
    "## Problem 1\n# Import Pytorch Libraries\nimport torch\n!nvidia-smi\n"
    "A = torch.tensor([[1., -1.], [0., 1.]])\nv1 = torch.tensor([[1.], [2.]], requires_grad=True)\n"
    "v2 = torch.tensor([[-2.], [-1.]], requires_grad=True)\ny = torch.sum((v1 - v2) ** 2)\n"
    "torch.autograd.backward(y)\nprint(v1.grad, v2.grad)",
    "## Problem 3 (a)\nfrom sklearn.datasets import load_digits\nfrom sklearn.model_selection import train_test_split\n"
    "X, y = load_digits().data, load_digits().target\nnum_train = 500\nnum_test = X.shape[0] - num_train\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=num_test, train_size=num_train, "
    "random_state=4803)",
)
AFTER = (
    "## Problem 3 (d)\nfrom torch.utils.data import DataLoader\nlr = 1e-3\nepochs = 100\nnet = MySimpleCNN()\n"
    "trainloader = DataLoader(Digits(X_train, y_train), batch_size=100, shuffle=True)\n"
    "optimizer = torch.optim.Adam(net.parameters(), lr=lr)\nfor epoch in range(epochs):\n    net.train()\n"
    "    for x, t in trainloader:\n        optimizer.zero_grad()\n"
    "        loss = nn.CrossEntropyLoss()(net(x), t)\n        loss.backward()\n        optimizer.step()",
    "%matplotlib inline\ndef load_data(dir_name):\n    data = list()\n    with open(dir_name, 'r') as f:\n"
    "        for line in f:\n            data.append(np.array(line.split(',')).astype(np.float32))\n"
    "    data = np.asarray(data)\n    return data[:, 1:], data[:, 0]\n\n"
    "X_train, Y_train = load_data('sample_data/mnist_train_small.csv')\n"
    "X_test, Y_test = load_data('sample_data/mnist_test.csv')\nX_train = X_train / X_train.max()\n"
    "X_test = X_test / X_test.max()",
    "model = MLP(X_train, Y_train, X_test, Y_test, L=1, N_l=16)\nmodel.train(batch_size=8, epochs=25, lr=1.0)\n"
    "np.savez('mlp_weights.npz', *model.weights)",
    "sample_input = np.random.random([5, 3, 24, 24])\nsample_kernel = np.random.random([16, 3, 5, 5])\n"
    "my_output = my_convolution(sample_input, sample_kernel)\nprint(my_output.shape)",
)


def text() -> str:
    return render("ECE 4252/8803 Homework Assignment 5", HERE / "hw5.py", BEFORE, AFTER)


if __name__ == "__main__":
    write(HERE / "hw5.ipynb", text())
