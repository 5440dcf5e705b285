"""The numbers world: 1-3 handwritten digits side by side on one canvas, one UNet for every width (README.md)."""
