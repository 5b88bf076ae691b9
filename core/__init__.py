"""Bilinear Eigen Lab's science core: UI-free code for the experiment of section 4.3 of
"Bilinear MLPs enable weight-based mechanistic interpretability" (Pearce et al., ICLR 2025).

Modules, in the order the experiment runs them:
config (the settings) -> data (MNIST) -> labels (similarity labels) -> model (bilinear MLP)
-> train (the training loop the app runs; reference_train: the same law in plain PyTorch, to read)
-> tensor (bias-augmented interaction matrices) -> eigen
(eigendecomposition in pixel space). Beside them: identity (model ids and the trained-model record),
checkpoint (safetensors I/O), store (checkpoints at an fsspec URL), findings (every sentence about a model,
computed), explain (one input's output split per eigenvector), truncation (accuracy with only the top-k
eigenvectors), digits (drawings and uploads as MNIST digits), grid (the precomputed checkpoints), urlstate
(what a link carries), board and lesson (the class board's rows and lesson mode's questions), reproduce (the CLI).
Nothing here imports streamlit, altair or the app's other folders (tests/unit/test_layers.py).
"""
