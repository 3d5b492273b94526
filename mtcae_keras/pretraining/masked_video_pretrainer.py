"""Masked video pre-training (VideoMAE; MAE-DFER's LGI-Former with its joint target)."""

import keras
from keras import ops

from mtcae_keras.data.input_pipeline import NORMALIZATIONS
from mtcae_keras.models.lgi_former_backbone import LGIFormerBackbone
from mtcae_keras.models.videomae_backbone import VideoMAEBackbone
from mtcae_keras.models.videomae_layers import VideoMAEEncoderBlock
from mtcae_keras.models.videomae_layers import sinusoid_position_embedding
from mtcae_keras.pretraining.reconstruction_targets import TARGETS
from mtcae_keras.pretraining.reconstruction_targets import reconstruction_targets
from mtcae_keras.pretraining.tube_mask_generator import TubeMaskGenerator


@keras.saving.register_keras_serializable(package="mtcae_keras")
class MaskedVideoPretrainer(keras.Model):
    """An encoder on the visible tokens, a light decoder that reconstructs the masked ones.

    The asymmetric masked autoencoder of VideoMAE (Tong et al., 2022) and MAE-DFER (Sun et
    al., 2023), as Hugging Face `VideoMAEForPreTraining` and MAE-DFER's
    `PretrainVisionTransformer` compute it: the encoder's tubelet embedding and position
    table, then only the visible tokens (in raster order) through its blocks and a final
    LayerNorm; a bias-free projection to the decoder width; the decoder's own sinusoid table
    added to those tokens and to one learned mask token per masked position, which follow
    them; `decoder_num_layers` ViT blocks; LayerNorm and a linear head on the masked tokens,
    predicting their `tubelet * patch * patch * 3` pixels (`reconstruction_targets`).

    With an `LGIFormerBackbone` the visible tokens are grouped by region as MAE-DFER does
    (`'b (nt t nhw hw) c -> b (nt nhw) (t hw) c'`; part-window masks whose windows are the
    regions' `(h, w)` give every region the same number), each region gets its
    representative token, and the encoder's output stays region-grouped while the decoder
    adds its position table in raster order. That is the reference's own order: with regions
    of 2 tubelets in time and 2 bands per frame (its 2x5x10 regions), half of the visible
    tokens meet another token's decoder position. It is kept so that MAE-DFER's checkpoints
    continue to train as they were trained; with one region per frame, or `t = 1`, the two
    orders agree.

    Inputs are dicts `{"pixel_values": (B, T, H, W, C) normalised clips, "mask": (B, N) bool}`
    (True = masked; `mask_generator` makes them, `make_pretraining_dataset` in `tf.data`);
    `fit` needs no targets: the loss is computed from the clips (`compute_loss`).

    Args:
        encoder: a `VideoMAEBackbone` or `LGIFormerBackbone`.
        mask_ratio: float. Fraction of each frame (`tube`) or window (`part_window`) masked.
        mask_type: `"tube"` (VideoMAE) or `"part_window"` (MAE-DFER; LGI-Former's default).
        window_size: `(h, w)` tokens of a part window; an LGI-Former's region `(h, w)` if None.
        decoder_hidden_dim: int. Decoder width (VideoMAE ViT-B: 384; MAE-DFER: 384).
        decoder_num_layers: int. Decoder blocks (4 in both).
        decoder_num_heads: int. Decoder attention heads (6).
        decoder_intermediate_dim: int. Decoder MLP width (4x the width if None).
        decoder_norm_epsilon: float. Epsilon of the decoder's final LayerNorm (the
            references: 1e-6; Hugging Face's port: 1e-5).
        norm_pix_loss: bool. Standardise each tubelet's pixels in the target (both
            references' default).
        target: `"appearance"` or `"appearance_motion"` (MAE-DFER's joint target).
        motion_weight: float or None. With the joint target, weigh the first frame's loss by
            `1 - motion_weight` and the frame differences' by `motion_weight` (MAE-DFER's
            `target_diff_weight`); None: one mean over the whole target, as its default.
        normalization: key of `NORMALIZATIONS`: how `pixel_values` were normalised, undone
            for the targets.
        **kwargs: `name`, `dtype`.

    Example:
    ```python
    encoder = mtcae_keras.VideoMAEBackbone.from_preset("videomae_tiny", use_final_norm=True)
    pretrainer = mtcae_keras.MaskedVideoPretrainer(encoder, mask_ratio=0.9)
    pretrainer.compile(keras.optimizers.AdamW(1.5e-4, weight_decay=0.05))
    pretrainer.fit(make_pretraining_dataset(videos, pretrainer.mask_generator), epochs=10)
    ```
    """

    def __init__(
        self,
        encoder,
        mask_ratio=0.9,
        mask_type=None,
        window_size=None,
        decoder_hidden_dim=384,
        decoder_num_layers=4,
        decoder_num_heads=6,
        decoder_intermediate_dim=None,
        decoder_norm_epsilon=1e-6,
        norm_pix_loss=True,
        target="appearance",
        motion_weight=None,
        normalization="imagenet",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(encoder, (VideoMAEBackbone, LGIFormerBackbone)):
            raise TypeError(
                f"encoder must be a VideoMAEBackbone or LGIFormerBackbone; got {type(encoder)}."
            )
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}; got {target!r}.")
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"Unknown normalization {normalization!r}; choose from {sorted(NORMALIZATIONS)}."
            )
        if motion_weight is not None and target != "appearance_motion":
            raise ValueError(
                "motion_weight weighs the joint target: set target='appearance_motion'."
            )
        lgi = isinstance(encoder, LGIFormerBackbone)
        mask_type = mask_type or ("part_window" if lgi else "tube")
        grid = encoder.token_grid
        if lgi:
            region = tuple(encoder.region_size)
            window_size = tuple(window_size or region[1:])
            if mask_type != "part_window" or window_size != region[1:]:
                raise ValueError(
                    "An LGI-Former pre-trains as MAE-DFER does: part_window masks whose windows "
                    f"are its regions' (h, w) = {region[1:]}, so that every region keeps the "
                    f"same number of visible tokens; got mask_type={mask_type!r}, "
                    f"window_size={window_size}."
                )
        self.encoder = encoder
        self.mask_generator = TubeMaskGenerator(grid, mask_ratio, mask_type, window_size)
        self.mask_ratio = float(mask_ratio)
        self.mask_type = mask_type
        self.window_size = None if window_size is None else tuple(window_size)
        self.decoder_hidden_dim = decoder_hidden_dim
        self.decoder_num_layers = decoder_num_layers
        self.decoder_num_heads = decoder_num_heads
        self.decoder_intermediate_dim = decoder_intermediate_dim or 4 * decoder_hidden_dim
        self.decoder_norm_epsilon = decoder_norm_epsilon
        self.norm_pix_loss = norm_pix_loss
        self.target = target
        self.motion_weight = motion_weight
        self.normalization = normalization
        self.num_visible = self.mask_generator.num_visible
        self.num_masked = self.mask_generator.num_masked
        self.pixels_per_token = encoder.tubelet_size * encoder.patch_size**2 * encoder.num_channels

        # === Layers ===
        epsilon = encoder.layer_norm_epsilon
        # The encoder's final LayerNorm: a VideoMAE backbone's own when it has one
        # (`use_final_norm`, Hugging Face's `videomae.layernorm`), else the pretrainer's.
        self.encoder_norm = None
        if lgi or not encoder.use_final_norm:
            self.encoder_norm = keras.layers.LayerNormalization(
                epsilon=epsilon, dtype=self.dtype_policy, name="encoder_norm"
            )
        self.encoder_to_decoder = keras.layers.Dense(
            decoder_hidden_dim, use_bias=False, dtype=self.dtype_policy, name="encoder_to_decoder"
        )
        self.decoder_blocks = [
            VideoMAEEncoderBlock(
                decoder_hidden_dim,
                decoder_num_heads,
                self.decoder_intermediate_dim,
                layer_norm_epsilon=epsilon,
                qv_bias=encoder.qv_bias,
                dtype=self.dtype_policy,
                name=f"decoder_blocks_{i}",
            )
            for i in range(decoder_num_layers)
        ]
        self.decoder_norm = keras.layers.LayerNormalization(
            epsilon=decoder_norm_epsilon, dtype=self.dtype_policy, name="decoder_norm"
        )
        self.decoder_head = keras.layers.Dense(
            self.pixels_per_token, dtype=self.dtype_policy, name="decoder_head"
        )
        self._decoder_positions = sinusoid_position_embedding(
            encoder.num_tokens, decoder_hidden_dim
        )

    def build(self, input_shape=None):
        encoder = self.encoder
        width = encoder.hidden_dim
        if self.encoder_norm is not None:
            self.encoder_norm.build((None, None, width))
        self.encoder_to_decoder.build((None, None, width))
        self.mask_token = self.add_weight(
            shape=(1, 1, self.decoder_hidden_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="mask_token",
        )
        for block in self.decoder_blocks:
            block.build((None, None, self.decoder_hidden_dim))
        self.decoder_norm.build((None, None, self.decoder_hidden_dim))
        self.decoder_head.build((None, None, self.decoder_hidden_dim))
        self.built = True

    def _order(self, mask):
        """Token indices `(B, N)`: the visible ones in raster order, then the masked ones."""
        n = self.encoder.num_tokens
        key = ops.cast(mask, "int32") * n + ops.arange(n, dtype="int32")[None]
        return ops.argsort(key, axis=-1)

    def _region_order(self, visible):
        """The visible token indices `(B, N_vis)` grouped by LGI-Former region, raster order
        within each: MAE-DFER's `'b (nt t nhw hw) c -> b (nt nhw) (t hw) c'` on its
        full-width regions, and the same grouping for narrower ones."""
        partition = self.encoder.get_layer("regions")
        (_, nh, nw), (t, h, w) = partition.region_counts, partition.region_size
        _, height, width = self.encoder.token_grid
        index = ops.arange(self.encoder.num_tokens, dtype="int32")
        row, column, frame = (index // width) % height, index % width, index // (height * width)
        region = ((frame // t) * nh + row // h) * nw + column // w
        key = ops.take(region, visible, axis=0) * self.encoder.num_tokens + visible
        return ops.take_along_axis(visible, ops.argsort(key, axis=-1), axis=1)

    def _encode_visible(self, tokens, training):
        """The encoder's blocks on its visible tokens `(B, N_vis, C)` (for an LGI-Former,
        grouped by region: `_region_order`)."""
        encoder = self.encoder
        if isinstance(encoder, VideoMAEBackbone):
            for i in range(encoder.num_layers):
                tokens = encoder.get_layer(f"blocks_{i}")(tokens, training=training)
            if self.encoder_norm is None:
                return encoder.get_layer("norm")(tokens)
            return self.encoder_norm(tokens)
        # LGI-Former: every region holds the same number of visible tokens (the part-window
        # mask fixes it), already grouped by region.
        partition = encoder.get_layer("regions")
        regions, width = partition.num_regions, tokens.shape[-1]
        x = ops.reshape(tokens, (-1, regions, self.num_visible // regions, width))
        region_tokens = ops.cast(partition.lg_region_tokens, x.dtype)[None, :, None]
        region_tokens = ops.broadcast_to(region_tokens, (ops.shape(x)[0], regions, 1, width))
        x = ops.concatenate([region_tokens, x], axis=2)
        for i in range(encoder.num_layers):
            x = encoder.get_layer(f"blocks_{i}")(x, training=training)
        x = ops.reshape(x[:, :, 1:], (-1, self.num_visible, width))  # region-grouped
        return self.encoder_norm(x)

    def call(self, inputs, training=None):
        pixels, mask = inputs["pixel_values"], inputs["mask"]
        order = self._order(mask)
        visible, masked = order[:, : self.num_visible], order[:, self.num_visible :]
        tokens = self.encoder.get_layer("patch_embed")(pixels)  # with the encoder's positions
        if isinstance(self.encoder, LGIFormerBackbone):
            # The decoder still adds its positions in raster order below, to tokens that come
            # out region-grouped: MAE-DFER's own order (see the class docstring).
            tokens = ops.take_along_axis(tokens, self._region_order(visible)[..., None], axis=1)
        else:
            tokens = ops.take_along_axis(tokens, visible[..., None], axis=1)
        x = self.encoder_to_decoder(self._encode_visible(tokens, training))
        positions = ops.cast(self._decoder_positions, x.dtype)
        x = ops.concatenate(
            [x + ops.take(positions, visible, axis=0),
             ops.cast(self.mask_token, x.dtype) + ops.take(positions, masked, axis=0)],
            axis=1,
        )  # fmt: skip
        for block in self.decoder_blocks:
            x = block(x, training=training)
        x = self.decoder_head(self.decoder_norm(x[:, self.num_visible :]))
        return x  # (B, N_masked, tubelet * patch * patch * C), masked tokens in raster order

    def targets(self, pixel_values, mask):
        """The masked tokens' reconstruction targets `(B, N_masked, pixels per token)`."""
        mean, std = NORMALIZATIONS[self.normalization]
        pixels = ops.cast(pixel_values, "float32") * ops.array(std) + ops.array(mean)
        all_targets = reconstruction_targets(
            pixels, self.encoder.patch_size, self.encoder.tubelet_size,
            self.norm_pix_loss, self.target,
        )  # fmt: skip
        masked = self._order(mask)[:, self.num_visible :]
        return ops.stop_gradient(ops.take_along_axis(all_targets, masked[..., None], axis=1))

    def loss_from_predictions(self, predictions, targets):
        """Mean squared error, or MAE-DFER's weighted first-frame / difference split."""
        predictions = ops.cast(predictions, "float32")
        if self.motion_weight is None:
            return ops.mean(ops.square(predictions - targets))
        t = self.encoder.tubelet_size
        shape = (-1, self.num_masked, t, self.pixels_per_token // t)
        error = ops.square(ops.reshape(predictions - targets, shape))
        first, motion = ops.mean(error[:, :, 0]), ops.mean(error[:, :, 1:])
        return (1.0 - self.motion_weight) * first + self.motion_weight * motion

    def reconstruction_loss(self, pixel_values, mask, training=False):
        """The scalar loss of clips `(B, T, H, W, C)` (normalised) under a bool mask `(B, N)`.

        Every clip must mask `num_masked` tokens (what `mask_generator` gives).
        """
        inputs = {"pixel_values": pixel_values, "mask": mask}
        predictions = self(inputs, training=training)
        return self.loss_from_predictions(predictions, self.targets(pixel_values, mask))

    def reconstruct(self, pixel_values, mask):
        """Clips in [0, 1] rebuilt from the visible tokens: `(pixels, masked, reconstructed)`,
        each `(B, T, H, W, C)` NumPy; `masked` greys the hidden tubelets out and
        `reconstructed` keeps the visible ones and puts the decoder's prediction in the others.

        Predictions of standardised targets are mapped back with each tubelet's own mean and
        standard deviation, and frame differences added to the first frame, as VideoMAE's and
        MAE-DFER's figures do.
        """
        import numpy as np

        from mtcae_keras.pretraining.reconstruction_targets import patchify

        mean, std = NORMALIZATIONS[self.normalization]
        pixels = np.asarray(pixel_values, np.float32) * np.array(std) + np.array(mean)
        mask = np.asarray(mask, bool)
        predictions = self({"pixel_values": pixel_values, "mask": mask})
        predictions = np.asarray(ops.convert_to_numpy(predictions), np.float64)
        encoder, (b, t, h, w, c) = self.encoder, pixels.shape
        tubelet, patch = encoder.tubelet_size, encoder.patch_size
        patches = np.asarray(ops.convert_to_numpy(patchify(pixels, patch, tubelet)), np.float64)
        rebuilt = patches.copy()
        for i in range(b):
            guess = predictions[i].reshape(-1, tubelet, patch * patch, c)
            if self.target == "appearance_motion":
                guess[:, 1:] += guess[:, :1]
            guess = guess.reshape(-1, tubelet * patch * patch, c)
            if self.norm_pix_loss:
                truth = patches[i][mask[i]]
                guess = guess * (truth.std(1, ddof=1, keepdims=True) + 1e-6) + truth.mean(
                    1, keepdims=True
                )
            rebuilt[i][mask[i]] = guess
        hidden = patches.copy()
        hidden[mask] = 0.5

        def unpatchify(x):
            x = x.reshape(b, t // tubelet, h // patch, w // patch, tubelet, patch, patch, c)
            return np.clip(x.transpose(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, t, h, w, c), 0, 1)

        return np.clip(pixels, 0, 1), unpatchify(hidden), unpatchify(rebuilt)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.loss_from_predictions(y_pred, self.targets(x["pixel_values"], x["mask"]))
        losses = [loss_ for loss_ in self.losses]
        return loss + ops.sum(losses) if losses else loss

    def get_config(self):
        return {
            "name": self.name,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "mask_ratio": self.mask_ratio,
            "mask_type": self.mask_type,
            "window_size": None if self.window_size is None else list(self.window_size),
            "decoder_hidden_dim": self.decoder_hidden_dim,
            "decoder_num_layers": self.decoder_num_layers,
            "decoder_num_heads": self.decoder_num_heads,
            "decoder_intermediate_dim": self.decoder_intermediate_dim,
            "decoder_norm_epsilon": self.decoder_norm_epsilon,
            "norm_pix_loss": self.norm_pix_loss,
            "target": self.target,
            "motion_weight": self.motion_weight,
            "normalization": self.normalization,
        }

    @classmethod
    def from_preset(cls, path, **overrides):
        """A pretrainer with a pre-training checkpoint's encoder and decoder, to continue
        pre-training.

        Reads Hugging Face `VideoMAEForPreTraining` folders and the original MCG-NJU VideoMAE
        and MAE-DFER pre-training `.pth` files (`port_pretrainer_weights`).

        Args:
            path: str. The checkpoint, or `hf://OWNER/REPO[@REVISION]` (e.g.
                `hf://MCG-NJU/videomae-base`, pre-trained with its decoder).
            **overrides: encoder arguments (e.g. `num_frames`, `image_size`,
                `drop_path_rate`) and pretrainer arguments (e.g. `mask_ratio`, `target`,
                `decoder_num_heads`, which original checkpoints do not store).
        """
        import json
        import os

        from mtcae_keras.conversion import is_lgi_former_state_dict
        from mtcae_keras.conversion import load_videomae_checkpoint
        from mtcae_keras.conversion.lgi_former_keys import lgi_former_config_from_state_dict
        from mtcae_keras.conversion.pretrainer_port import decoder_config_from_checkpoint
        from mtcae_keras.conversion.pretrainer_port import port_pretrainer_weights
        from mtcae_keras.models.hub import resolve_hub_name

        path = resolve_hub_name(path)
        config, state_dict = load_videomae_checkpoint(path)
        hf_config = None
        config_path = os.path.join(path, "config.json") if os.path.isdir(path) else None
        if config_path and os.path.exists(config_path):
            with open(config_path) as file:
                hf_config = json.load(file)
        decoder_config = decoder_config_from_checkpoint(state_dict, hf_config)
        if is_lgi_former_state_dict(state_dict):
            encoder_class, config = LGIFormerBackbone, lgi_former_config_from_state_dict(state_dict)
        else:
            encoder_class = VideoMAEBackbone
        encoder_overrides = {k: overrides.pop(k) for k in list(overrides)
                             if k in encoder_class.CONFIG_KEYS}  # fmt: skip
        encoder = encoder_class(**{**config, **encoder_overrides})
        pretrainer = cls(encoder, **{**decoder_config, **overrides})
        pretrainer.build()
        port_pretrainer_weights(pretrainer, state_dict)
        return pretrainer

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
