# ruff: noqa: F403, F405, UP032  (the handout's run_q3.py style: `from nn import *`, str.format)
# run_q3.py as the handout has it, filled in the way the handout's Q3.1 answer does (seed 1, 50 epochs,
# batch 100, learning rate 2e-3, batches drawn once), saving q3_weights.npz instead of q3_weights.pickle.
#
# The grader's stand-in data: python -m grader.assignments.cmu_16720_hw5.nist36_mats /tmp/nist36_data, then
#   cd grader/assignments/cmu_16720_hw5/students/handout_loops && NIST36_DATA=/tmp/nist36_data python run_q3.py
import os

import numpy as np
import scipy.io
from nn import *

data_dir = os.environ.get('NIST36_DATA', '../data')
train_data = scipy.io.loadmat(os.path.join(data_dir, 'nist36_train.mat'))
valid_data = scipy.io.loadmat(os.path.join(data_dir, 'nist36_valid.mat'))

train_x, train_y = train_data['train_data'], train_data['train_labels']
valid_x, valid_y = valid_data['valid_data'], valid_data['valid_labels']

np.random.seed(1)

max_iters = 50
# pick a batch size, learning rate
batch_size = 100
learning_rate = 2e-3
hidden_size = 64

batches = get_random_batches(train_x,train_y,batch_size)
batch_num = len(batches)

params = {}

# initialize layers here
initialize_weights(train_x.shape[1],hidden_size,params,'layer1')
initialize_weights(hidden_size,train_y.shape[1],params,'output')

# with default settings, you should get loss < 150 and accuracy > 80%
for itr in range(max_iters):
    total_loss = 0
    total_acc = 0
    for xb,yb in batches:
        # training loop can be exactly the same as q2!
        h1 = forward(xb, params, 'layer1')
        probs = forward(h1, params, 'output', softmax)
        loss, acc = compute_loss_and_acc(yb, probs)
        total_loss += loss
        total_acc += acc / batch_num
        # the derivative of cross-entropy(softmax(x)) is probs - 1[correct actions]
        delta1 = probs - yb
        delta2 = backwards(delta1, params, 'output', linear_deriv)
        backwards(delta2, params, 'layer1', sigmoid_deriv)
        # apply gradient
        for name in ('output', 'layer1'):
            params['W' + name] -= learning_rate * params['grad_W' + name]
            params['b' + name] -= learning_rate * params['grad_b' + name]

    if itr % 2 == 0:
        print("itr: {:02d} \t loss: {:.2f} \t acc : {:.2f}".format(itr,total_loss,total_acc))

# run on validation set and report accuracy! should be above 75%
h1 = forward(valid_x, params, 'layer1')
probs = forward(h1, params, 'output', softmax)
_, valid_acc = compute_loss_and_acc(valid_y, probs)
print('Validation accuracy: ',valid_acc)

saved_params = {k:v for k,v in params.items() if '_' not in k}
np.savez('q3_weights.npz', **saved_params)
