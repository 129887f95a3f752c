"""Dataset stage: the manifest, import, windowing, leak-free splits and input pipelines."""
