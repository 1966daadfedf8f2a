# RPZ - Convolutional Neural Networks, part 2: PyTorch.
# Student-style solution written from the handout only: MyNet with BatchNorm and Dropout, FinetuneNet built
# like the handout's ExampleFinetuneNet (MobileNetV2, torchvision weights only when load_pretrained=True,
# no input normalisation: the handout's Resize((96, 96)) + ToTensor images go in as they are).
import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class FCNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 1000)
        self.fc2 = nn.Linear(1000, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


class SimpleCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1)
        self.fc1 = nn.Linear(16 * 14 * 14, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = x.view(x.size(0), -1)
        return F.log_softmax(self.fc1(x), dim=1)


class MyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2, 2)
        self.dropout = nn.Dropout(0.25)
        self.fc1 = nn.Linear(32 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))  # 28 -> 14
        x = self.pool(F.relu(self.bn2(self.conv2(x))))  # 14 -> 7
        x = x.view(x.size(0), -1)
        x = self.dropout(x)
        x = F.relu(self.fc1(x))
        x = self.dropout(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


class FinetuneNet(nn.Module):
    def __init__(self, load_pretrained=False):
        super().__init__()
        if load_pretrained:
            self.model = torchvision.models.mobilenet_v2(weights=torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1)
        else:
            # the default branch used by the upload system: no download
            self.model = torchvision.models.mobilenet_v2()
        # classifier = Sequential(Dropout(0.2), Linear(1280, 1000)); cat and dog are 2 classes
        self.model.classifier[1] = nn.Linear(in_features=self.model.classifier[1].in_features, out_features=2)

    def forward(self, x):
        return self.model(x)


def classify(model, x):
    """Class index of the highest output for every image in the batch x."""
    _, predicted = torch.max(model(x), 1)
    return predicted


def visualize_data(curves, legend, xlabel="", ylabel="", save_filepath=None, hline=None, hlinelabel=None):
    plt.figure()
    for c in curves:
        plt.plot(range(1, len(c) + 1), c)
    if hline is not None:
        plt.axhline(hline, color="r", linestyle="--")
        legend = legend + [hlinelabel]
    plt.legend(legend)
    plt.xlabel(xlabel)
    plt.ylabel(ylabel)
    if save_filepath:
        plt.savefig(save_filepath)
    plt.show()
