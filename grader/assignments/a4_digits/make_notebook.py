"""Build assignment4.ipynb (the reference submission) from assignment4.py and the notebook's own cells.

    python -m grader.assignments.a4_digits.make_notebook
"""

from __future__ import annotations

from pathlib import Path

from grader.assignments.notebooks import render, write

HERE = Path(__file__).resolve().parent / "reference"
BEFORE = (
    "%pip install torch torchvision torchaudio",
    "# IF YOU USE COLAB, THIS IS VERY USEFUL! OTHERWISE, PLEASE REMOVE IT.\nfrom google.colab import drive\n"
    "drive.mount('/content/gdrive')\nresults_dir = '/content/gdrive/My_Drive/Colab Notebooks/assignment_4/'",
)
AFTER = (
    "# PLEASE DO NOT REMOVE\n# Here, we plot some images (8px x 8px).\ndigits = load_digits()\n"
    "x = digits.data[:16].astype(np.float32)\nprint(x.shape)",
    "train_data = Digits(mode='train')\nval_data = Digits(mode='val')\ntest_data = Digits(mode='test')\n"
    "training_loader = DataLoader(train_data, batch_size=64, shuffle=True)\n"
    "val_loader = DataLoader(val_data, batch_size=64, shuffle=False)\n"
    "test_loader = DataLoader(test_data, batch_size=64, shuffle=False)",
    "names = ['classifier_mlp', 'classifier_cnn']\nfor name in names:\n    print('-> START', name)\n"
    "    model = ClassifierNeuralNet(make_mlp() if name == 'classifier_mlp' else make_cnn())\n"
    "    optimizer = torch.optim.Adamax([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=wd)\n"
    "    nll_val, error_val = training(name=results_dir + name, max_patience=max_patience, num_epochs=num_epochs,\n"
    "                                  model=model, optimizer=optimizer, training_loader=training_loader,\n"
    "                                  val_loader=val_loader)\n"
    "    test_loss, test_error = evaluation(name=results_dir + name, test_loader=test_loader)\n"
    "    !cp {results_dir + name}.pt .",
    "raise SystemExit('the grader must not run this cell')",
)


def text() -> str:
    return render("Assignment 4: Neural Networks", HERE / "assignment4.py", BEFORE, AFTER)


if __name__ == "__main__":
    write(HERE / "assignment4.ipynb", text())
