import numpy as np


# Given in util.py of the handout (copied here: the reference submission needs no util.py).
def linear(x):
    return x


def linear_deriv(post_act):
    return np.ones_like(post_act)


def relu(x):
    return np.maximum(x, 0)


def relu_deriv(x):
    return (x > 0).astype(float)


############################## Q 2.1.2 ##############################
def initialize_weights(in_size, out_size, params, name=''):
    """Xavier initialization: W ~ U(-a, a), a = sqrt(6 / (in + out)), so Var[W] = 2 / (in + out); b = 0."""
    bound = np.sqrt(6.0 / (in_size + out_size))
    W = np.random.uniform(-bound, bound, (in_size, out_size))
    b = np.zeros(out_size)
    params['W' + name] = W
    params['b' + name] = b


############################## Q 2.2.1 ##############################
def sigmoid(x):
    res = 1.0 / (1.0 + np.exp(-x))
    return res


def forward(X, params, name='', activation=sigmoid):
    """y = activation(XW + b) for an N x D input X; caches (X, pre_act, post_act) in params['cache_' + name]."""
    W = params['W' + name]
    b = params['b' + name]
    pre_act = X @ W + b
    post_act = activation(pre_act)
    params['cache_' + name] = (X, pre_act, post_act)
    return post_act


############################## Q 2.2.2 ##############################
def softmax(x):
    """Row-wise softmax, shifted by each row's maximum for numerical stability."""
    shifted = x - np.max(x, axis=1, keepdims=True)
    e = np.exp(shifted)
    res = e / np.sum(e, axis=1, keepdims=True)
    return res


############################## Q 2.2.3 ##############################
def compute_loss_and_acc(y, probs):
    """Cross-entropy summed over the examples, and the accuracy, for one-hot labels y."""
    loss = -np.sum(y * np.log(probs))
    acc = np.mean(np.argmax(y, axis=1) == np.argmax(probs, axis=1))
    return loss, acc


############################## Q 2.3 ##############################
def sigmoid_deriv(post_act):
    res = post_act * (1.0 - post_act)
    return res


def backwards(delta, params, name='', activation_deriv=sigmoid_deriv):
    """Gradients of one layer (summed over the batch) into params; returns the gradient w.r.t. X."""
    W = params['W' + name]
    X, pre_act, post_act = params['cache_' + name]
    d = delta * activation_deriv(post_act)
    grad_W = X.T @ d
    grad_b = np.sum(d, axis=0)
    grad_X = d @ W.T
    params['grad_W' + name] = grad_W
    params['grad_b' + name] = grad_b
    return grad_X


############################## Q 2.4 ##############################
def get_random_batches(x, y, batch_size):
    """Random batches of batch_size examples (the last may be smaller) that partition (x, y)."""
    order = np.random.permutation(x.shape[0])
    batches = []
    for start in range(0, x.shape[0], batch_size):
        idx = order[start:start + batch_size]
        batches.append((x[idx], y[idx]))
    return batches
