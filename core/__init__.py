"""Bilinear Eigen Lab's science core: UI-free code for the experiment of section 4.3 of
"Bilinear MLPs enable weight-based mechanistic interpretability" (Pearce et al., ICLR 2025).

Modules, in the order the experiment runs them:
config (the settings) -> data (MNIST) -> labels (similarity labels) -> model (bilinear MLP)
-> train (the training loop) -> tensor (bias-augmented interaction matrices) -> eigen
(eigendecomposition in pixel space) -> charts (Altair figures), plus checkpoint (safetensors I/O).
On top of those: explain (one input's output split per eigenvector), truncation (accuracy with
only the top-k eigenvectors), digits (user drawings and uploads as MNIST digits) and grid (the
precomputed checkpoints behind the instant sliders).
"""
