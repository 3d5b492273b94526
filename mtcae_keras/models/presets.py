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
    "videomae_synthetic": {
        "image_size": 64,
        "num_frames": 16,
        "patch_size": 16,
        "tubelet_size": 2,
        "hidden_dim": 64,
        "num_layers": 2,
        "num_heads": 4,
        "intermediate_dim": 128,
        # No drop path: in the demo's short training it slows learning more than it helps
        # (measured, issue 4 notes).
        "drop_path_rate": 0.0,
        # Nothing to save at 128 tokens (attention probabilities of 8 MB a block at batch 32),
        # and recomputing them cost the demo's step 5-11% CPU time (measured 2x alternating,
        # issue 19).
        "memory_saving": False,
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

# Decoder presets (reference.md section 1). `notebook` is the public notebook's exact
# structure; `paper` takes the paper's numbers (5 layers, 3 heads, width 512) and scales the
# rest of the notebook to that width. Choices the paper leaves open are marked "open".
DECODER_PRESETS = {
    "notebook": {
        "hidden_dim": 256,
        "num_layers": 3,
        "num_heads": 3,
        "key_dim": 256,
        "mlp_dims": (512, 256),
        "attention_dropout_rate": 0.3,
        # open in both: the notebook's MLP dropout rate is not recorded; 0.1 as in Keras' ViT.
        "dropout_rate": 0.1,
        "layer_norm_epsilon": 1e-6,
        "memory_projection": False,  # one shared Dense(256, no bias) on Dropout(0.3)(F)
        # Off: recomputing costs more than the 10% speed budget (issue 19,
        # bench/results/cascade_memory_cpu_b2.json); "full" where memory binds.
        "memory_saving": False,
        "input_dropout_rate": 0.3,
        "head_dropout_rate": 0.1,
        "head_norm_first": False,  # token mean -> LayerNorm -> Dropout -> Dense
        # The temporal strategies (ABAW4's frameworks on MTCAE's tasks): their encoder kind
        # and Transformer heads; widths, layers and dropout are the settings above.
        "temporal_encoder": "transformer",
        "temporal_num_heads": 4,
    },
    # Small decoders for the synthetic demo and tests; no dropout (as the encoder preset).
    "tiny": {
        "hidden_dim": 64,
        "num_layers": 1,
        "num_heads": 2,
        "key_dim": 32,
        "mlp_dims": (128, 64),
        "attention_dropout_rate": 0.0,
        "dropout_rate": 0.0,
        "layer_norm_epsilon": 1e-6,
        "memory_projection": False,
        # 128 tokens in the demo: nothing worth recomputing.
        "memory_saving": False,
        "input_dropout_rate": 0.0,
        "head_dropout_rate": 0.0,
        "head_norm_first": False,
        # The temporal strategies (ABAW4's frameworks on MTCAE's tasks): their encoder kind
        # and Transformer heads; widths, layers and dropout are the settings above.
        "temporal_encoder": "transformer",
        "temporal_num_heads": 4,
    },
    "paper": {
        "hidden_dim": 512,
        "num_layers": 5,
        "num_heads": 3,
        "key_dim": 512,  # open: the notebook's key_dim equals its width
        "mlp_dims": (1024, 512),  # open: the notebook's 2x width, GELU on both
        "attention_dropout_rate": 0.3,  # open: the notebook's
        "dropout_rate": 0.1,  # open
        "layer_norm_epsilon": 1e-6,
        "memory_projection": True,  # Algorithm 1 literally: K, V = Norm(Dense(F)) per decoder
        # Off: at ViT-L batch 2 on the CPU, on saved 11% of the peak for 22% of the step and
        # "full" 42% for 28% (bench/results/cascade_memory_cpu_b2.json), both beyond the 10%
        # speed budget; train.py --decoder-memory-saving full where memory binds (batch 16).
        "memory_saving": False,
        "input_dropout_rate": 0.3,  # open: the notebook's
        "head_dropout_rate": 0.1,  # open: the notebook's
        "head_norm_first": True,  # eq. 7-9: FC(Pool(Norm(Y)))
        # The temporal strategies (ABAW4's frameworks on MTCAE's tasks): their encoder kind
        # and Transformer heads; widths, layers and dropout are the settings above.
        "temporal_encoder": "transformer",
        "temporal_num_heads": 4,
    },
}

# MAE-DFER's LGI-Former (reference.md section 5). `lgi_former_base` is the released encoder:
# 16x160x160 clips, 8x10x10 tokens in 8 regions of 2x5x10 tokens, 84,873,728 parameters (the
# logged 84,878,343 of the 7-class fine-tuned model less fc_norm and head). `lgi_former_tiny`
# is a 2-block toy for tests: a 2x4x4 token grid in 4 regions of 2x2x2. `lgi_former_synthetic`
# is the size of `videomae_synthetic` for the synthetic_faces demo data (16x64x64 clips, an
# 8x4x4 grid in 8 regions of 2x2x4, the base preset's layout of one region across the width).
LGI_FORMER_PRESETS = {
    "lgi_former_tiny": {
        "image_size": 32,
        "num_frames": 4,
        "patch_size": 8,
        "tubelet_size": 2,
        "hidden_dim": 32,
        "num_layers": 2,
        "num_heads": 4,
        "intermediate_dim": 64,
        "region_size": (2, 2, 2),
    },
    "lgi_former_synthetic": {
        "image_size": 64,
        "num_frames": 16,
        "patch_size": 16,
        "tubelet_size": 2,
        "hidden_dim": 64,
        "num_layers": 2,
        "num_heads": 4,
        "intermediate_dim": 128,
        "region_size": (2, 2, 4),
        # As videomae_synthetic: nothing worth saving at 128 tokens and width 64, where the
        # recomputation only costs step time (measured on videomae_synthetic, issue 19).
        "memory_saving": False,
    },
    "lgi_former_base": {
        "image_size": 160,
        "num_frames": 16,
        "patch_size": 16,
        "tubelet_size": 2,
        "hidden_dim": 512,
        "num_layers": 16,
        "num_heads": 8,
        "intermediate_dim": 2048,
        "region_size": (2, 5, 10),
    },
}
