"""The digits world: a class-conditional denoiser, a TAESD VAE and two timm classifiers for scikit-learn's digits."""
