# ruff: noqa: F403, F405, I001  (a student's nn.py, in the handout's own layout: `from util import *`)
import numpy as np
from util import *
# do not include any more libraries here!
# do not put any code outside of functions!

############################## Q 2.1.2 ##############################
# initialize b to 0 vector
# b should be a 1D array, not a 2D array with a singleton dimension
# we will do XW + b.
# X be [Examples, Dimensions]
def initialize_weights(in_size,out_size,params,name=''):
    W, b = None, None
    ##### your code here #####
    # Glorot & Bengio eq. 16: U[-sqrt(6)/sqrt(n_in+n_out), +sqrt(6)/sqrt(n_in+n_out)]
    limit = np.sqrt(6.0) / np.sqrt(in_size + out_size)
    W = limit * (2.0 * np.random.rand(in_size, out_size) - 1.0)
    b = np.zeros(out_size)

    params['W' + name] = W
    params['b' + name] = b

############################## Q 2.2.1 ##############################
# x is a matrix
# a sigmoid activation function
def sigmoid(x):
    res = None
    ##### your code here #####
    res = np.zeros(x.shape)
    for i in range(x.shape[0]):
        row = x[i]
        # exp of a negative number only, so that large inputs do not overflow
        res[i] = np.where(row >= 0, 1.0 / (1.0 + np.exp(-np.abs(row))),
                          np.exp(-np.abs(row)) / (1.0 + np.exp(-np.abs(row))))
    return res

############################## Q 2.2.1 ##############################
def forward(X,params,name='',activation=sigmoid):
    """
    Do a forward pass

    Keyword arguments:
    X -- input vector [Examples x D]
    params -- a dictionary containing parameters
    name -- name of the layer
    activation -- the activation function (default is sigmoid)
    """
    pre_act, post_act = None, None
    # get the layer parameters
    W = params['W' + name]
    b = params['b' + name]

    ##### your code here #####
    num = X.shape[0]
    pre_act = np.zeros((num, W.shape[1]))
    for i in range(num):
        pre_act[i, :] = X[i] @ W + b
    post_act = activation(pre_act)

    # store the pre-activation and post-activation values
    # these will be important in backprop
    params['cache_' + name] = (X, pre_act, post_act)

    return post_act

############################## Q 2.2.2  ##############################
# x is [examples,classes]
# softmax should be done for each row
def softmax(x):
    res = None
    ##### your code here #####
    res = np.zeros(x.shape)
    for i in range(x.shape[0]):
        c = -np.max(x[i])          # Q1.1: softmax(x) = softmax(x + c)
        s = np.exp(x[i] + c)
        res[i] = s / np.sum(s)
    return res

############################## Q 2.2.3 ##############################
# compute total loss and accuracy
# y is size [examples,classes]
# probs is size [examples,classes]
def compute_loss_and_acc(y, probs):
    loss, acc = None, None
    ##### your code here #####
    loss = 0.0
    correct = 0
    for i in range(y.shape[0]):
        label = np.argmax(y[i])
        loss -= np.log(probs[i, label])
        if np.argmax(probs[i]) == label:
            correct += 1
    acc = correct / y.shape[0]
    return loss, acc

############################## Q 2.3 ##############################
# we give this to you
# because you proved it
# it's a function of post_act
def sigmoid_deriv(post_act):
    res = post_act*(1.0-post_act)
    return res

def backwards(delta,params,name='',activation_deriv=sigmoid_deriv):
    """
    Do a backwards pass

    Keyword arguments:
    delta -- errors to backprop
    params -- a dictionary containing parameters
    name -- name of the layer
    activation_deriv -- the derivative of the activation_func
    """
    grad_X, grad_W, grad_b = None, None, None
    # everything you may need for this layer
    W = params['W' + name]
    b = params['b' + name]
    X, pre_act, post_act = params['cache_' + name]

    # do the derivative through activation first
    # (don't forget activation_deriv is a function of post_act)
    # then compute the derivative W, b, and X
    ##### your code here #####
    dz = delta * activation_deriv(post_act)
    grad_W = np.zeros(W.shape)
    grad_b = np.zeros(b.shape)
    grad_X = np.zeros(X.shape)
    for i in range(X.shape[0]):
        # one example at a time; the gradients are summed over the batch
        grad_W += np.outer(X[i], dz[i])
        grad_b += dz[i]
        grad_X[i] = W @ dz[i]

    # store the gradients
    params['grad_W' + name] = grad_W
    params['grad_b' + name] = grad_b
    return grad_X

############################## Q 2.4 ##############################
# split x and y into random batches
# return a list of [(batch1_x,batch1_y)...]
def get_random_batches(x,y,batch_size):
    batches = []
    ##### your code here #####
    idx = np.arange(x.shape[0])
    np.random.shuffle(idx)
    start = 0
    while start < len(idx):
        pick = idx[start:start + batch_size]
        batches.append((x[pick, :], y[pick, :]))
        start += batch_size
    return batches
