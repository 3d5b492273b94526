"""MAE-DFER's LGI-Former encoder as a functional Keras model."""

import keras

from mtcae_keras.models.backbone import Backbone
from mtcae_keras.models.lgi_former_block import LGIFormerBlock
from mtcae_keras.models.lgi_former_region_merge import LGIFormerRegionMerge
from mtcae_keras.models.lgi_former_region_partition import LGIFormerRegionPartition
from mtcae_keras.models.lgi_former_region_partition import region_grid
from mtcae_keras.models.presets import LGI_FORMER_PRESETS
from mtcae_keras.models.videomae_backbone import token_grid
from mtcae_keras.models.videomae_layers import VideoMAETubeletEmbedding


@keras.saving.register_keras_serializable(package="mtcae_keras")
class LGIFormerBackbone(Backbone):
    """LGI-Former (Sun et al., MAE-DFER, ACM MM 2023) without head: pixels in, tokens out.

    The tubelet embedding and fixed sinusoid position table of VideoMAE, then the tokens
    are grouped into regions of `region_size` tokens, each with a learnable representative
    token, and run through `LGIFormerBlock`s (local, global and local-global attention, then
    an MLP). With the same weights it computes what MAE-DFER's
    `VisionTransformer(attn_type='local_global')` computes before its head: the output is
    the local tokens `(B, N, hidden_dim)` back in `(t, h, w)` raster order, the contract of
    `VideoMAEBackbone`, so every decoder and strategy takes it unchanged.

    Args:
        image_size: int or `(height, width)`. Frame size (160 in MAE-DFER).
        num_frames: int. Frames per clip.
        patch_size: int. Spatial patch side.
        tubelet_size: int. Frames per tubelet.
        hidden_dim: int. Token width.
        num_layers: int. LGI-Former blocks.
        num_heads: int. Attention heads.
        intermediate_dim: int. MLP hidden width.
        region_size: `(t, h, w)` tokens per region and axis; must divide the token grid
            `(num_frames / tubelet_size, height / patch_size, width / patch_size)`.
        layer_norm_epsilon: float. LayerNorm epsilon.
        return_region_tokens: bool. Return `{"tokens": (B, N, C), "region_tokens":
            (B, regions, C)}` instead of the tokens alone.
        qv_bias: bool. Learn query / value biases.
        drop_path_rate: float. Stochastic depth, rising linearly to this rate at the last block.
        dropout_rate: float. Dropout after the position embedding, each attention projection
            and each MLP.
        attention_dropout_rate: float. Attention-probability dropout.
        num_channels: int. Input channels.
        memory_saving: True, False or `"full"`. In training, the blocks recompute their
            attention sublayers, LayerNorm and GELU intermediates in the backward pass
            instead of keeping them, `"full"` also the MLP's fc1 (`LGIFormerBlock`): the same
            outputs and gradients, less memory (README, Speed). False keeps everything.
        dtype: dtype policy of the layers (e.g. `"mixed_bfloat16"`); the global one if None.
        **kwargs: `name`, `trainable`.

    Example:
    ```python
    backbone = mtcae_keras.LGIFormerBackbone.from_preset("lgi_former_base")
    tokens = backbone(np.zeros((1, 16, 160, 160, 3), "float32"))  # (1, 800, 512)
    backbone = mtcae_keras.LGIFormerBackbone.from_preset("checkpoint-49.pth")  # MAE-DFER's
    ```
    """

    PRESETS = LGI_FORMER_PRESETS
    CONFIG_KEYS = (
        "image_size", "num_frames", "patch_size", "tubelet_size", "hidden_dim", "num_layers",
        "num_heads", "intermediate_dim", "region_size", "layer_norm_epsilon",
        "return_region_tokens", "qv_bias", "drop_path_rate", "dropout_rate",
        "attention_dropout_rate", "num_channels", "memory_saving",
    )  # fmt: skip

    def __init__(
        self,
        image_size=160,
        num_frames=16,
        patch_size=16,
        tubelet_size=2,
        hidden_dim=512,
        num_layers=16,
        num_heads=8,
        intermediate_dim=2048,
        region_size=(2, 5, 10),
        layer_norm_epsilon=1e-6,
        return_region_tokens=False,
        qv_bias=True,
        drop_path_rate=0.0,
        dropout_rate=0.0,
        attention_dropout_rate=0.0,
        num_channels=3,
        memory_saving=True,
        dtype=None,
        **kwargs,
    ):
        grid, (height, width) = token_grid(image_size, num_frames, patch_size, tubelet_size)
        region_size = tuple(region_size)
        region_grid(grid, region_size)  # a clear error before any layer is made
        num_tokens = grid[0] * grid[1] * grid[2]

        # === Layers ===
        patch_embed = VideoMAETubeletEmbedding(
            hidden_dim, patch_size, tubelet_size, num_tokens, dtype=dtype, name="patch_embed"
        )
        pos_drop = keras.layers.Dropout(dropout_rate, dtype=dtype, name="pos_drop")
        partition = LGIFormerRegionPartition(grid, region_size, dtype=dtype, name="regions")
        blocks = [
            LGIFormerBlock(
                hidden_dim,
                num_heads,
                intermediate_dim,
                layer_norm_epsilon=layer_norm_epsilon,
                qv_bias=qv_bias,
                drop_path_rate=drop_path_rate * i / max(num_layers - 1, 1),
                dropout_rate=dropout_rate,
                attention_dropout_rate=attention_dropout_rate,
                memory_saving=memory_saving,
                dtype=dtype,
                name=f"blocks_{i}",
            )
            for i in range(num_layers)
        ]
        merge = LGIFormerRegionMerge(grid, region_size, dtype=dtype, name="region_merge")

        # === Functional model ===
        pixels = keras.Input(shape=(num_frames, height, width, num_channels), name="pixel_values")
        x = partition(pos_drop(patch_embed(pixels)))
        for block in blocks:
            x = block(x)
        tokens, region_tokens = merge(x)
        outputs = {"tokens": tokens, "region_tokens": region_tokens}
        super().__init__(
            inputs=pixels,
            outputs=outputs if return_region_tokens else tokens,
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.image_size = tuple(image_size) if isinstance(image_size, list) else image_size
        self.num_frames = num_frames
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.region_size = region_size
        self.layer_norm_epsilon = layer_norm_epsilon
        self.return_region_tokens = return_region_tokens
        self.qv_bias = qv_bias
        self.drop_path_rate = drop_path_rate
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.num_channels = num_channels
        self.memory_saving = memory_saving
        self.token_grid = grid
        self.num_tokens = num_tokens
        self.num_regions = partition.num_regions

    @classmethod
    def _from_checkpoint(cls, path, overrides):
        from mtcae_keras.conversion import load_lgi_former_checkpoint
        from mtcae_keras.conversion import port_lgi_former_weights

        config, state_dict = load_lgi_former_checkpoint(path)
        backbone = cls(**{**config, **overrides})
        port_lgi_former_weights(backbone, state_dict)
        return backbone
