"""VideoMAE ViT encoder as a functional Keras model."""

import keras

from mtcae_keras.models.backbone import Backbone
from mtcae_keras.models.presets import BACKBONE_PRESETS
from mtcae_keras.models.videomae_layers import VideoMAEEncoderBlock
from mtcae_keras.models.videomae_layers import VideoMAETubeletEmbedding


def token_grid(image_size, num_frames, patch_size, tubelet_size):
    """The tubelet grid `(T, H, W)` of a clip size, and the frame size `(height, width)`.

    Raises:
        ValueError: when the frame size is not a multiple of the patch or the frame count
            of the tubelet.
    """
    height, width = tuple(image_size) if isinstance(image_size, (tuple, list)) else (
        image_size, image_size)  # fmt: skip
    if height % patch_size or width % patch_size or num_frames % tubelet_size:
        raise ValueError(
            f"image_size={image_size} must be a multiple of patch_size={patch_size} and "
            f"num_frames={num_frames} a multiple of tubelet_size={tubelet_size}."
        )
    grid = (num_frames // tubelet_size, height // patch_size, width // patch_size)
    return grid, (height, width)


@keras.saving.register_keras_serializable(package="mtcae_keras")
class VideoMAEBackbone(Backbone):
    """VideoMAE encoder without head: normalised pixels in, tokens out.

    Computes what Hugging Face `VideoMAEModel(...).last_hidden_state` computes for the same
    weights (its input is `(B, T, C, H, W)`; ours is channels-last), including the fixed
    sinusoid position embedding that the public MTCAE-DFER notebook drops.

    Args:
        image_size: int or `(height, width)`. Frame size.
        num_frames: int. Frames per clip.
        patch_size: int. Spatial patch side.
        tubelet_size: int. Frames per tubelet.
        hidden_dim: int. Token width.
        num_layers: int. Encoder blocks.
        num_heads: int. Attention heads.
        intermediate_dim: int. MLP hidden width.
        layer_norm_epsilon: float. LayerNorm epsilon.
        use_final_norm: bool. Apply the final LayerNorm `norm` (pre-training checkpoints and
            Hugging Face `use_mean_pooling=False`); fine-tuned checkpoints have none.
        qv_bias: bool. Learn query / value biases.
        layer_scale_init_value: float or None. Add layer-scale `gamma_1/gamma_2` per block.
        drop_path_rate: float. Stochastic depth, rising linearly to this rate at the last block.
        dropout_rate: float. Hidden dropout.
        attention_dropout_rate: float. Attention-probability dropout.
        use_position_embedding: bool. Keep True; False reproduces the notebook's defect.
        num_channels: int. Input channels.
        memory_saving: True, False or `"full"`. In training, the blocks recompute their
            attention sublayers, LayerNorm and GELU intermediates in the backward pass
            instead of keeping them, `"full"` also the MLP's fc1 (`VideoMAEEncoderBlock`):
            the same outputs and gradients, less memory (ViT-B training at batch 2, graph
            mode: 1.00-1.01x torch's peak at no speed cost with True, 0.92x with "full" for
            13-15% of the step, 2.05x with False; README, Speed). False keeps everything.
        dtype: dtype policy of the layers (e.g. `"mixed_bfloat16"`); the global one if None.
        **kwargs: `name`, `trainable`.

    Example:
    ```python
    backbone = mtcae_keras.VideoMAEBackbone.from_preset("videomae_base")
    tokens = backbone(np.zeros((1, 16, 224, 224, 3), "float32"))  # (1, 1568, 768)
    ```
    """

    PRESETS = BACKBONE_PRESETS
    CONFIG_KEYS = (
        "image_size", "num_frames", "patch_size", "tubelet_size", "hidden_dim", "num_layers",
        "num_heads", "intermediate_dim", "layer_norm_epsilon", "use_final_norm", "qv_bias",
        "layer_scale_init_value", "drop_path_rate", "dropout_rate", "attention_dropout_rate",
        "use_position_embedding", "num_channels", "memory_saving",
    )  # fmt: skip

    def __init__(
        self,
        image_size=224,
        num_frames=16,
        patch_size=16,
        tubelet_size=2,
        hidden_dim=768,
        num_layers=12,
        num_heads=12,
        intermediate_dim=3072,
        layer_norm_epsilon=1e-6,
        use_final_norm=False,
        qv_bias=True,
        layer_scale_init_value=None,
        drop_path_rate=0.0,
        dropout_rate=0.0,
        attention_dropout_rate=0.0,
        use_position_embedding=True,
        num_channels=3,
        memory_saving=True,
        dtype=None,
        **kwargs,
    ):
        grid, (height, width) = token_grid(image_size, num_frames, patch_size, tubelet_size)
        num_tokens = grid[0] * grid[1] * grid[2]

        # === Layers ===
        patch_embed = VideoMAETubeletEmbedding(
            hidden_dim,
            patch_size,
            tubelet_size,
            num_tokens,
            use_position_embedding=use_position_embedding,
            dtype=dtype,
            name="patch_embed",
        )
        blocks = [
            VideoMAEEncoderBlock(
                hidden_dim,
                num_heads,
                intermediate_dim,
                layer_norm_epsilon=layer_norm_epsilon,
                qv_bias=qv_bias,
                layer_scale_init_value=layer_scale_init_value,
                drop_path_rate=drop_path_rate * i / max(num_layers - 1, 1),
                dropout_rate=dropout_rate,
                attention_dropout_rate=attention_dropout_rate,
                memory_saving=memory_saving,
                dtype=dtype,
                name=f"blocks_{i}",
            )
            for i in range(num_layers)
        ]
        final_norm = (
            keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, dtype=dtype, name="norm")
            if use_final_norm
            else None
        )

        # === Functional model ===
        pixels = keras.Input(shape=(num_frames, height, width, num_channels), name="pixel_values")
        x = patch_embed(pixels)
        for block in blocks:
            x = block(x)
        if final_norm is not None:
            x = final_norm(x)
        super().__init__(inputs=pixels, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.image_size = tuple(image_size) if isinstance(image_size, list) else image_size
        self.num_frames = num_frames
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.layer_norm_epsilon = layer_norm_epsilon
        self.use_final_norm = use_final_norm
        self.qv_bias = qv_bias
        self.layer_scale_init_value = layer_scale_init_value
        self.drop_path_rate = drop_path_rate
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.use_position_embedding = use_position_embedding
        self.num_channels = num_channels
        self.memory_saving = memory_saving
        self.token_grid = grid
        self.num_tokens = num_tokens

    @classmethod
    def _from_checkpoint(cls, path, overrides):
        from mtcae_keras.conversion import is_lgi_former_state_dict
        from mtcae_keras.conversion import load_videomae_checkpoint
        from mtcae_keras.conversion import port_videomae_weights

        config, state_dict = load_videomae_checkpoint(path)
        if is_lgi_former_state_dict(state_dict):
            raise ValueError(
                f"{path} holds a MAE-DFER LGI-Former (it has lg_region_tokens), not a plain "
                "ViT: load it with LGIFormerBackbone.from_preset or "
                "mtcae_keras.models.encoders.load_encoder."
            )
        backbone = cls(**{**config, **overrides})
        port_videomae_weights(backbone, state_dict)
        return backbone
