"""Layer 1, training: the model zoo, the distillation objectives, the training loop, its optimiser, evaluation
and the thread policy. Tensors in, tensors and numbers out; no files, no datasets by name."""
