"""Named configurations.

Encoder presets are VideoMAE ViT sizes at 16x224x224 (reference.md section 4), plus
`videomae_tiny`, a 2-layer toy for tests and quick CPU runs.
"""

BACKBONE_PRESETS = {
    "videomae_tiny": {
        "image_size": 32,
        "num_frames": 4,
        "patch_size": 8,
        "tubelet_size": 2,
        "hidden_dim": 32,
        "num_layers": 2,
        "num_heads": 4,
        "intermediate_dim": 64,
    },
    "videomae_small": {
        "hidden_dim": 384,
        "num_layers": 12,
        "num_heads": 6,
        "intermediate_dim": 1536,
    },
    "videomae_base": {
        "hidden_dim": 768,
        "num_layers": 12,
        "num_heads": 12,
        "intermediate_dim": 3072,
    },
    "videomae_large": {
        "hidden_dim": 1024,
        "num_layers": 24,
        "num_heads": 16,
        "intermediate_dim": 4096,
    },
    "videomae_huge": {
        "hidden_dim": 1280,
        "num_layers": 32,
        "num_heads": 16,
        "intermediate_dim": 5120,
    },
}

# Attention heads of the standard widths; a checkpoint does not store the head count.
HEADS_BY_WIDTH = {384: 6, 768: 12, 1024: 16, 1280: 16}
