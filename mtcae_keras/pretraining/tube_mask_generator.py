"""Seeded tube and part-window tube masks for masked video pre-training, inside `tf.data`."""

import tensorflow as tf


class TubeMaskGenerator:
    """Boolean token masks `(N,)` (True = masked) over a `(T', H', W')` tubelet grid.

    `tube` (VideoMAE): `int(mask_ratio * H' * W')` positions of one frame are drawn and
    masked in every frame. `part_window` (MAE-DFER): each frame is cut into windows of
    `window_size` `(h, w)` tokens and `int(mask_ratio * h * w)` positions are drawn in every
    window, so each window keeps the same number of visible tokens (LGI-Former's regions
    need equal sizes); again the same mask in every frame. MAE-DFER's windows span the frame's
    width (its generator asserts so), where the window order is the raster order; narrower
    windows are placed at their raster positions. The mask is returned in the encoder's
    `(t, h, w)` raster order.

    Masks are pure functions of a `(2,)` integer seed (`tf.random.stateless_uniform`), so a
    run is reproducible from its seed; `map_dataset` draws a new seed per clip and epoch.

    Args:
        token_grid: `(T', H', W')` tubelets per axis.
        mask_ratio: float in (0, 1). Fraction of each frame (window) masked.
        mask_type: `"tube"` or `"part_window"`.
        window_size: `(h, w)` tokens per window, for `part_window` (MAE-DFER: `(5, 10)`).
    """

    def __init__(self, token_grid, mask_ratio, mask_type="tube", window_size=None):
        self.token_grid = tuple(int(v) for v in token_grid)
        self.mask_ratio = float(mask_ratio)
        self.mask_type = mask_type
        frames, height, width = self.token_grid
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1); got {mask_ratio}.")
        if mask_type == "tube":
            if window_size is not None:
                raise ValueError("window_size is for part_window masks; tube masks take none.")
            self.window_size = (height, width)
        elif mask_type == "part_window":
            if window_size is None:
                raise ValueError("part_window masking needs window_size (h, w) in tokens.")
            self.window_size = tuple(int(v) for v in window_size)
            if height % self.window_size[0] or width % self.window_size[1]:
                raise ValueError(
                    f"window_size {self.window_size} must divide the frame's token grid "
                    f"({height}, {width})."
                )
        else:
            raise ValueError(f"mask_type must be 'tube' or 'part_window'; got {mask_type!r}.")
        window_tokens = self.window_size[0] * self.window_size[1]
        self.masked_per_window = int(self.mask_ratio * window_tokens)
        self.windows_per_frame = (height // self.window_size[0]) * (width // self.window_size[1])
        if self.masked_per_window in (0, window_tokens):
            raise ValueError(
                f"mask_ratio {mask_ratio} masks {self.masked_per_window} of the "
                f"{window_tokens} tokens of a window: nothing or everything."
            )

    @property
    def num_tokens(self):
        frames, height, width = self.token_grid
        return frames * height * width

    @property
    def num_masked(self):
        """Masked tokens per clip (the same for every clip)."""
        return self.token_grid[0] * self.windows_per_frame * self.masked_per_window

    @property
    def num_visible(self):
        return self.num_tokens - self.num_masked

    def __call__(self, seed):
        """The mask `(N,)` bool for an integer seed `(2,)`."""
        frames, height, width = self.token_grid
        win_h, win_w = self.window_size
        scores = tf.random.stateless_uniform(
            (self.windows_per_frame, win_h * win_w), seed=tf.cast(seed, tf.int64)
        )
        # The `masked_per_window` highest scores of each window are masked: a uniformly
        # random subset of exactly that size.
        ranks = tf.argsort(tf.argsort(scores, axis=-1, direction="DESCENDING"), axis=-1)
        window_mask = ranks < self.masked_per_window  # (windows, h * w)
        grid = tf.reshape(window_mask, (height // win_h, width // win_w, win_h, win_w))
        frame = tf.reshape(tf.transpose(grid, (0, 2, 1, 3)), (height * width,))
        return tf.reshape(tf.tile(frame[None], (frames, 1)), (-1,))

    def map_dataset(self, dataset, seed=0, key="mask"):
        """Adds a fresh mask to every element (a dict) of `dataset`, as `key`.

        The seeds come from `tf.data.Dataset.random(seed)`, drawn anew each epoch, so clips
        get other masks every epoch and the whole sequence repeats for the same seed.
        """
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        return tf.data.Dataset.zip(dataset, seeds).map(
            lambda element, s: {**element, key: self(s)},
            num_parallel_calls=tf.data.AUTOTUNE,
        )
