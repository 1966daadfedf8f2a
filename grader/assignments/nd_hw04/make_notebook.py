"""Build hw04.ipynb (the reference submission) from hw04.py and the notebook's own top-level cells.

    python -m grader.assignments.nd_hw04.make_notebook
"""

from __future__ import annotations

from pathlib import Path

from grader.assignments.notebooks import render, write

HERE = Path(__file__).resolve().parent / "reference"
BEFORE = (
    "import os\nREPO_NAME = 'cse-30124-homeworks'\nREPO_URL = 'https://github.com/nd-cse-30124-fa25/cse-30124-homeworks'\n"
    "HW_FOLDER = 'homework04'\nif not os.path.exists(REPO_NAME):\n    !git clone {REPO_URL}\n%cd {REPO_NAME}/{HW_FOLDER}",
    "try:\n    import google.colab\nexcept ImportError:\n    pass\nimport json\nimport random\n"
    "import numpy as np\nfrom torch.utils.data import DataLoader, TensorDataset, random_split",
    "def load_dataset(data_name, device='cpu', batch_size=128, val_fraction=0.1, seed=42):\n"
    "    train_npz = np.load(f'{data_name}/{data_name}_train.npz')\n    raise NotImplementedError\n",
)
AFTER = (
    "def evaluate_on_holdout(test_loader, model):\n    accuracy = []\n"
    "    for X_batch, Y_batch in model.data_shaper(test_loader):\n        y_pred = model.forward(X_batch)\n"
    "        accuracy.append(model.get_accuracy(y_pred, Y_batch))\n    return accuracy\n\n"
    "device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')\n"
    "train_loader, val_loader, test_loader, num_classes, classes = load_dataset('emnist_balanced_small', device=device)\n"
    "model = NeuralNetwork(device=device)\nhistory = model.train(train_loader, val_loader)\n"
    "holdout_accuracy = evaluate_on_holdout(test_loader, model)\n"
    "torch.save({f'layers.{i}.{n}': getattr(layer, n) for i, layer in enumerate(model.layers) for n in ('W', 'b') "
    "if hasattr(layer, n)}, 'scratch_ffn.pt')",
    "model = FFN(num_classes=num_classes)\nmodel = train(model, train_loader, val_loader, device, epochs=100, lr=1e-3)\n"
    "torch.save(model.state_dict(), 'ffn.pt')",
    "print('Running Basic CNN Experiment...')\nmodel, basic_metrics = run_basic_cnn_experiment(train_loader, val_loader, "
    "test_loader)\ntorch.save(model.state_dict(), 'cnn.pt')",
)


def text() -> str:
    return render("Introduction to Artificial Intelligence - Homework Assignment 04", HERE / "hw04.py", BEFORE, AFTER)


if __name__ == "__main__":
    write(HERE / "hw04.ipynb", text())
